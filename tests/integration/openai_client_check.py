#!/usr/bin/env python3
"""The official `openai` Python client against `llmctl serve`: completions
(n > 1, stop, logprobs, streaming with usage, concurrent requests), models,
errors and --api-key on ../shared/assets/stories260K, where greedy output
must equal `llmctl generate`, with and without --async-scheduling;
chat (plain and streaming) on the demo model, which has a chat template.

CI's python3 has no `openai`: packaging/install-deps.sh installs it into
/opt/llmctl-test-venv, and this script re-runs itself with that interpreter.
It skips (77) only when neither has the package."""
import concurrent.futures
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

VENV = "/opt/llmctl-test-venv"
VENV_PYTHON = VENV + "/bin/python"

try:
    import openai
except ImportError:
    # (The venv's python is a symlink to the system one: compare prefixes, not binaries.)
    if os.path.exists(VENV_PYTHON) and os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(VENV_PYTHON, [VENV_PYTHON] + sys.argv)
    print("skip: the openai package is in neither python3 nor", VENV_PYTHON)
    sys.exit(77)

BIN = os.environ["LLMCTL_BIN"]
SHARED = os.environ.get("LLMCTL_SHARED_DIR", "")
STORIES = os.path.join(SHARED, "assets", "stories260K")
PROMPT = "Once upon a time"
KEY = "s3cret"


class Server:
    def __init__(self, args):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port)] + args,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit("serve exited: " + self.proc.stderr.read())
            if time.time() > deadline:
                raise SystemExit("serve did not become healthy")
            time.sleep(0.1)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def expect_error(cls, status, fn):
    try:
        fn()
    except cls as e:
        assert e.status_code == status, (cls.__name__, e.status_code)
        return e
    raise AssertionError(f"expected {cls.__name__} ({status})")


def generate_reference(max_tokens):
    out = subprocess.run([BIN, "generate", "--model", STORIES, "--prompt", PROMPT, "--max-tokens", str(max_tokens),
                          "--temperature", "0", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def check_stories(ref, extra_args):
    server = Server(["--model", STORIES, "--served-model-name", "stories", "--api-key", KEY, "--max-model-len", "256"]
                    + extra_args)
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
        models = client.models.list().data
        assert [m.id for m in models] == ["stories"], models

        # Greedy, n = 2, with logprobs: every choice is generate's text.
        c = client.completions.create(model="stories", prompt=PROMPT, max_tokens=24, temperature=0, n=2, logprobs=2)
        assert [ch.index for ch in c.choices] == [0, 1]
        for ch in c.choices:
            assert ch.text == ref["text"], (ch.text, ref["text"])
            assert ch.finish_reason == "length"
        # usage sums over the choices, as in OpenAI's API and vLLM.
        assert c.usage.completion_tokens == 2 * 24, c.usage
        assert c.usage.prompt_tokens == ref["usage"]["prompt_tokens"], (c.usage, ref["usage"])
        lp = c.choices[0].logprobs
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 24, lp
        assert "".join(lp.tokens) == ref["text"], lp.tokens
        assert lp.text_offset == sorted(lp.text_offset)
        for tok, tlp, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            assert tlp <= 0 and 1 <= len(top) <= 3, (tok, tlp, top)
            # Greedy: the chosen token is the most likely one.
            assert math.isclose(tlp, max(top.values()), abs_tol=1e-4), (tok, tlp, top)
        # Same tokens; batched with its twin (and its prompt from the prefix cache), the
        # second choice's logprobs may differ in the last float bits.
        assert c.choices[1].logprobs.tokens == lp.tokens
        assert all(math.isclose(x, y, abs_tol=1e-3) for x, y in zip(c.choices[1].logprobs.token_logprobs,
                                                                   lp.token_logprobs))

        # A stop string cuts the text before it.
        words = ref["text"].split()
        stop = " " + words[2]
        st = client.completions.create(model="stories", prompt=PROMPT, max_tokens=24, temperature=0, stop=[stop])
        assert st.choices[0].text == ref["text"][:ref["text"].find(stop)], (st.choices[0].text, stop)
        assert st.choices[0].finish_reason == "stop"

        # Streaming: the chunks add up to the same text; the last chunk carries usage.
        text, usage, finish = "", None, None
        for chunk in client.completions.create(model="stories", prompt=PROMPT, max_tokens=24, temperature=0,
                                               stream=True, stream_options={"include_usage": True}):
            if chunk.choices:
                text += chunk.choices[0].text
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        assert text == ref["text"], (text, ref["text"])
        assert finish == "length" and usage is not None and usage.completion_tokens == 24, (finish, usage)

        # Sampling with a seed is reproducible.
        a = client.completions.create(model="stories", prompt=PROMPT, max_tokens=16, temperature=1.0, seed=7)
        b = client.completions.create(model="stories", prompt=PROMPT, max_tokens=16, temperature=1.0, seed=7)
        assert a.choices[0].text == b.choices[0].text

        # Errors in OpenAI's shape, with the status the client maps to its exception classes.
        e = expect_error(openai.BadRequestError, 400,
                         lambda: client.completions.create(model="stories", prompt=PROMPT, temperature=-3))
        assert "temperature" in str(e), e
        expect_error(openai.BadRequestError, 400,
                     lambda: client.completions.create(model="stories", prompt=PROMPT, max_tokens=1000))
        expect_error(openai.NotFoundError, 404, lambda: client.completions.create(model="other", prompt=PROMPT))
        # stories260K has no chat template: 400, not a crash.
        expect_error(openai.BadRequestError, 400, lambda: client.chat.completions.create(
            model="stories", messages=[{"role": "user", "content": "hi"}]))
        # Concurrent requests ending at different steps: each is its prefix of generate's text.
        def one(k):
            r = client.completions.create(model="stories", prompt=PROMPT, max_tokens=k, temperature=0)
            return k, r.choices[0].text, r.usage.completion_tokens
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for k, text, used in pool.map(one, [3, 24, 7, 1, 11, 24, 5, 16]):
                assert used == k and ref["text"].startswith(text) and text, (k, text, used)

        wrong = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
        expect_error(openai.AuthenticationError, 401, lambda: wrong.models.list())
        expect_error(openai.AuthenticationError, 401,
                     lambda: wrong.completions.create(model="stories", prompt=PROMPT, max_tokens=4))
    finally:
        server.stop()


def check_demo_chat():
    server = Server([])
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "Tell me a fortune."}]
        chat = client.chat.completions.create(model="demo", messages=messages, max_tokens=24, temperature=0)
        msg = chat.choices[0].message
        assert msg.role == "assistant" and msg.content, chat
        # The same prompt, rendered and tokenized by the server, through /v1/completions.
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/tokenize",
                                     json.dumps({"model": "demo", "messages": messages}).encode(),
                                     {"Content-Type": "application/json"})
        ids = json.loads(urllib.request.urlopen(req, timeout=30).read())["tokens"]
        comp = client.completions.create(model="demo", prompt=ids, max_tokens=24, temperature=0)
        assert comp.choices[0].text == msg.content, (comp.choices[0].text, msg.content)

        streamed, usage, role = "", None, None
        for chunk in client.chat.completions.create(model="demo", messages=messages, max_tokens=24, temperature=0,
                                                    stream=True, stream_options={"include_usage": True}):
            if chunk.choices:
                role = chunk.choices[0].delta.role or role
                streamed += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage
        assert role == "assistant" and streamed == msg.content, (streamed, msg.content)
        assert usage is not None and usage.completion_tokens == chat.usage.completion_tokens, usage

        lp = client.chat.completions.create(model="demo", messages=messages, max_tokens=8, temperature=0,
                                            logprobs=True, top_logprobs=2, n=2)
        assert len(lp.choices) == 2
        for ch in lp.choices:
            content = ch.logprobs.content
            assert len(content) == lp.usage.completion_tokens // 2, (len(content), lp.usage)
            assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content)
            assert "".join(t.token for t in content) == ch.message.content
    finally:
        server.stop()


if __name__ == "__main__":
    if not os.path.isdir(STORIES):
        print("FAIL: no", STORIES, file=sys.stderr)
        sys.exit(1)
    reference = generate_reference(24)
    assert reference["usage"]["completion_tokens"] == 24 and reference["text"], reference
    check_stories(reference, [])
    # Step N+1 scheduled while step N runs: every answer must be the same.
    check_stories(reference, ["--async-scheduling"])
    check_demo_chat()
    print("ok")
