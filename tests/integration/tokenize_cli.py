#!/usr/bin/env python3
"""Drives `llmctl tokenize` (the real binary) against the committed HF fixtures."""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ["LLMCTL_BIN"]
SRC = os.environ["LLMCTL_SOURCE_DIR"]
SHARED = os.environ["LLMCTL_SHARED_DIR"]
FIXTURES = os.path.join(SRC, "tests", "fixtures", "tokenizer")
failures = []


def run(*args, expect_rc=0):
    p = subprocess.run([BIN, "tokenize", *args], capture_output=True, timeout=60)
    if p.returncode != expect_rc:
        failures.append("%s: rc %d (want %d): %s" % (args, p.returncode, expect_rc, p.stderr.decode(errors="replace")))
    return p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def check(cond, what):
    if not cond:
        failures.append(what)


for name in ["qwen3", "mistral", "llama3.1", "stories260K"]:
    fixture = json.load(open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8"))
    model = os.path.join(SHARED, "assets", fixture["tokenizer"])
    for case in fixture["cases"][:12]:
        if "text" not in case or case["text"] == "":
            continue
        out, _ = run("--model", model, "--text", case["text"])
        check(out.split() == [str(i) for i in case["ids"]], "%s ids of %r: %s" % (name, case["text"], out))
        out, _ = run("--model", model, "--text", case["text"], "--no-special", "--json")
        check(json.loads(out)["ids"] == case["ids_no_special"], "%s --no-special --json of %r" % (name, case["text"]))
        out, _ = run("--model", model, "--decode", ",".join(str(i) for i in case["ids"]))
        check(out == case["decoded"] + "\n", "%s decode of %r: %r" % (name, case["text"], out))
        out, _ = run("--model", model, "--decode", ",".join(str(i) for i in case["ids"]), "--no-special")
        check(out == case["decoded_skip_special"] + "\n", "%s decode --no-special of %r" % (name, case["text"]))
    # --file with invalid UTF-8 bytes: same ids as HF on the lossily decoded text.
    case = next(c for c in fixture["cases"] if "bytes_hex" in c)
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(bytes.fromhex(case["bytes_hex"]))
    out, _ = run("--model", model, "--file", f.name)
    os.unlink(f.name)
    check(out.split() == [str(i) for i in case["ids"]], "%s --file invalid utf-8: %s" % (name, out))

# Errors are messages and exit codes, never crashes.
_, err = run("--model", "/nonexistent/model", "--text", "x", expect_rc=2)
check("tokenizer.json" in err, "missing model error names the file: " + err)
qwen = os.path.join(SHARED, "assets", "tokenizers", "qwen3")
_, err = run("--model", qwen, "--decode", "1,x,3", expect_rc=2)
check("'x'" in err, "bad id is named: " + err)
_, err = run("--model", qwen, "--decode", "999999999", expect_rc=2)
check("outside the vocabulary" in err, "out-of-range id: " + err)
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        f.write('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", 1]]}}')
    _, err = run("--model", d, "--text", "a", expect_rc=2)
    check("model.merges[0][1]" in err, "malformed tokenizer.json names the JSON path: " + err)

if failures:
    print("\n".join(failures[:30]))
    print("%d failures" % len(failures))
    sys.exit(1)
print("tokenize CLI: ok")
