#!/usr/bin/env python3
"""`--load-format dummy`: a model folder with only config.json and a
tokenizer runs with seeded random weights (an untied head here). `generate` gives the same greedy
tokens on every run and at --tp 1, 2 and 4 (every rank holds a slice of one
model, the vocabulary of 515 padded on the last rank); `serve --tp 2` returns
the same text for the same prompt. Without the flag the folder is refused
with a message that names it; a bad value is refused too."""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_ports import free_port  # noqa: E402
from tp_model_fixture import write_model  # noqa: E402

BIN = os.environ["LLMCTL_BIN"]
SHARED = os.environ["LLMCTL_SHARED_DIR"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def generate(model, prompt, tp, *extra):
    cmd = [BIN, "generate", "--model", model, "--prompt", prompt, "--max-tokens", "32", "--temperature", "0",
           "--ignore-eos", "--json", "--tp", str(tp), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


with tempfile.TemporaryDirectory() as tmp:
    model = write_model(os.path.join(tmp, "shape-only"), SHARED)
    os.remove(os.path.join(model, "model.safetensors"))  # config.json and the tokenizer stay
    # An untied head: random weights tied to the embedding would repeat the
    # last prompt token forever, and equal tokens would hide a wrong slice.
    with open(os.path.join(model, "config.json")) as f:
        config = json.load(f)
    config["tie_word_embeddings"] = False
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump(config, f)
    prompt = "Once upon a time"

    p = generate(model, prompt, 1)
    check(p.returncode != 0 and "no model.safetensors" in p.stderr and "--load-format dummy" in p.stderr,
          f"no weights, no flag: exit {p.returncode}, stderr {p.stderr!r}")
    p = generate(model, prompt, 1, "--load-format", "random")
    check(p.returncode != 0 and "--load-format" in p.stderr, f"--load-format random: exit {p.returncode}, {p.stderr!r}")

    runs = {}
    for tp in (1, 1, 2, 4):
        p = generate(model, prompt, tp, "--load-format", "dummy")
        check(p.returncode == 0, f"generate --tp {tp} --load-format dummy: exit {p.returncode}: {p.stderr}")
        if p.returncode == 0:
            out = json.loads(p.stdout)
            check(len(out["token_ids"]) == 32, f"tp {tp}: {len(out['token_ids'])} tokens")
            if tp in runs:
                check(out["token_ids"] == runs[tp]["token_ids"], f"tp {tp}: a second run differs")
            runs.setdefault(tp, out)
    if 1 in runs:
        for tp in (2, 4):
            if tp in runs:
                check(runs[tp]["token_ids"] == runs[1]["token_ids"],
                      f"tp {tp} tokens {runs[tp]['token_ids']} != tp 1 {runs[1]['token_ids']}")
        check(len(set(runs[1]["token_ids"])) > 3, f"tokens barely vary: {runs[1]['token_ids']}")
        # ... and reach past the first rank's vocabulary slice (258 rows at tp 2).
        check(max(runs[1]["token_ids"]) >= 258, f"tokens stay in the first slice: {runs[1]['token_ids']}")

    port = free_port()
    proc = subprocess.Popen([BIN, "--log-level", "info", "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), "--tp", "2",
                             "--load-format", "dummy", "--max-model-len", "256", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, healthy = time.time() + 60, False
        while time.time() < deadline and proc.poll() is None and not healthy:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                healthy = c.getresponse().status == 200
            except OSError:
                time.sleep(0.1)
        check(healthy, "serve --tp 2 --load-format dummy became healthy")
        if healthy and 1 in runs:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("POST", "/v1/completions", json.dumps({"model": model, "prompt": prompt, "max_tokens": 32,
                                                              "temperature": 0, "ignore_eos": True}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read().decode()
            check(r.status == 200, f"completion: {r.status} {body}")
            if r.status == 200:
                got = json.loads(body)["choices"][0]["text"]
                check(got == runs[1]["text"], f"serve --tp 2 text {got!r} != generate --tp 1 {runs[1]['text']!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            failures.append("serve did not exit on SIGTERM")
    check("random weights (--load-format dummy)" in err, f"serve says where its weights came from: {err[-600:]!r}")
    # No --max-num-seqs / --max-num-batched-tokens: the CPU's defaults, named in the log.
    check("scheduler: up to 64 sequences and 2048 tokens a step (defaults for the CPU" in err,
          f"serve names its default batch limits: {err[-600:]!r}")
    check("(max_model_len 256, max_num_seqs 64, max_num_batched_tokens 2048)" in out,
          f"serve's ready line names its batch limits: {out!r}")

if failures:
    sys.exit(1)
print("ok")
