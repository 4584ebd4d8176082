#!/usr/bin/env python3
"""The official `openai` client against `llmctl serve` (demo model): models,
completions, chat, streaming with usage, n, stop, logprobs, errors and
--api-key. Skips (77) where the package is not installed (CI has plain python3)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request

try:
    import openai
except ImportError:
    print("skip: the openai package is not installed")
    sys.exit(77)

BIN = os.environ["LLMCTL_BIN"]
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
proc = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--api-key", "k"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health").status == 200:
                break
        except OSError:
            time.sleep(0.1)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    assert [m.id for m in client.models.list().data] == ["demo"]
    c = client.completions.create(model="demo", prompt="The meaning of life is", max_tokens=16, temperature=0,
                                  n=2, logprobs=1)
    assert len(c.choices) == 2 and c.choices[0].text == c.choices[1].text and c.choices[0].text
    assert len(c.choices[0].logprobs.token_logprobs) == c.usage.completion_tokens
    stop_word = c.choices[0].text.split()[1] if len(c.choices[0].text.split()) > 1 else "zzz"
    st = client.completions.create(model="demo", prompt="The meaning of life is", max_tokens=16, temperature=0,
                                   stop=[stop_word])
    assert stop_word not in st.choices[0].text
    chat = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Tell me a fortune."}],
                                          max_tokens=24, temperature=0)
    streamed = ""
    usage = None
    for chunk in client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Tell me a fortune."}],
                                                max_tokens=24, temperature=0, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.choices:
            streamed += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert streamed == chat.choices[0].message.content, (streamed, chat.choices[0].message.content)
    assert usage is not None and usage.completion_tokens == chat.usage.completion_tokens
    try:
        client.completions.create(model="demo", prompt="x", temperature=-3)
        raise AssertionError("expected 400")
    except openai.BadRequestError as e:
        assert e.status_code == 400
    try:
        client.completions.create(model="other", prompt="x")
        raise AssertionError("expected 404")
    except openai.NotFoundError:
        pass
    try:
        openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong").models.list()
        raise AssertionError("expected 401")
    except openai.AuthenticationError:
        pass
    print("ok")
finally:
    proc.terminate()
    proc.wait(timeout=10)
