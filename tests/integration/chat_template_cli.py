#!/usr/bin/env python3
"""Drives `llmctl chat-template` as a user would: real model folders from
../shared/assets, messages/tools files on disk, and checks the printed prompt
byte for byte against transformers' renderings committed in
tests/fixtures/chat_template/cases.json, plus the error paths."""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ["LLMCTL_BIN"]
SRC = os.environ["LLMCTL_SOURCE_DIR"]
ASSETS = os.path.join(os.environ["LLMCTL_SHARED_DIR"], "assets")
FIXTURES = os.path.join(SRC, "tests", "fixtures", "chat_template", "cases.json")

failures = []


def run(*args, stdin=None):
    p = subprocess.run([BIN, "chat-template", *args], input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def write(tmp, name, value):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(value, str):
            f.write(value)
        else:
            json.dump(value, f, ensure_ascii=False)
    return path


def main():
    with open(FIXTURES, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    with tempfile.TemporaryDirectory() as tmp:
        # A representative case per model, including tools and kwargs; skip
        # llama3.1 cases that read today's date unless a date_string is given.
        picked = {}
        for c in cases:
            if "error" in c:
                continue
            if c["model"] == "llama3.1" and "date_string" not in c["kwargs"]:
                continue
            key = (c["model"], bool(c["tools"]), bool(c["kwargs"]))
            picked.setdefault(key, c)
        for c in picked.values():
            model_dir = os.path.join(ASSETS, "tokenizers", c["model"])
            args = ["--model", model_dir, "--messages", write(tmp, "m.json", c["messages"])]
            if c["template_file"]:
                args += ["--template", os.path.join(model_dir, c["template_file"])]
            if c["tools"]:
                args += ["--tools", write(tmp, "t.json", c["tools"])]
            if c["kwargs"]:
                args += ["--kwargs", json.dumps(c["kwargs"])]
            if c["add_generation_prompt"]:
                args.append("--add-generation-prompt")
            rc, out, err = run(*args)
            label = f"{c['model']}/{c['name']}"
            check(rc == 0, f"{label}: exit {rc}: {err}")
            check(out == c["expected"], f"{label}: prompt differs:\n{out!r}\nexpected\n{c['expected']!r}")
        check(len(picked) >= 7, f"only {len(picked)} cases picked")

        qwen3 = os.path.join(ASSETS, "tokenizers", "qwen3")
        msgs = write(tmp, "q.json", [{"role": "user", "content": "hi"}])
        # An OpenAI request body on stdin works as well.
        rc, out, _ = run("--model", qwen3, "--messages", "-", "--add-generation-prompt",
                         "--kwargs", '{"enable_thinking": false}',
                         stdin=json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode())
        check(rc == 0 and out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
              f"stdin request body: {rc} {out!r}")

        # Errors: clear messages naming the file, non-zero exit, nothing on stdout.
        bad = write(tmp, "bad.json", '[{"role": "user", "content": "hi"')
        rc, out, err = run("--model", qwen3, "--messages", bad)
        check(rc != 0 and out == "" and "bad.json" in err and "not valid JSON" in err, f"bad JSON: {rc} {err!r}")
        rc, out, err = run("--model", qwen3, "--messages", os.path.join(tmp, "absent.json"))
        check(rc != 0 and "absent.json" in err, f"missing file: {rc} {err!r}")
        rc, out, err = run("--model", qwen3, "--messages", write(tmp, "obj.json", {"role": "user"}))
        check(rc != 0 and "JSON array" in err, f"not an array: {rc} {err!r}")
        rc, out, err = run("--model", qwen3, "--messages", msgs, "--kwargs", "[1]")
        check(rc != 0 and "--kwargs" in err, f"bad kwargs: {rc} {err!r}")
        rc, out, err = run("--model", os.path.join(ASSETS, "tokenizers", "gpt2"), "--messages", msgs)
        check(rc != 0 and "has no chat template" in err, f"gpt2: {rc} {err!r}")
        mistral = os.path.join(ASSETS, "tokenizers", "mistral")
        rc, out, err = run("--model", mistral, "--template",
                           os.path.join(mistral, "chat_template.mistral-instruct-v0.1.json"),
                           "--messages", write(tmp, "uu.json", [{"role": "user", "content": "a"}] * 2))
        check(rc != 0 and out == "" and "Conversation roles must alternate user/assistant/user/assistant/..." in err,
              f"mistral raise: {rc} {err!r}")
        broken = write(tmp, "broken.jinja", "{% for m in messages %}\n{{ m.content }")
        rc, out, err = run("--model", qwen3, "--template", broken, "--messages", msgs)
        check(rc != 0 and "broken.jinja:2:" in err, f"syntax error position: {rc} {err!r}")

    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("chat-template CLI: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
