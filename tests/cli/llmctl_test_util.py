"""Helpers for tests that run the real llmctl binary (stdlib only)."""
import os
import subprocess
import sys

BIN = os.environ.get("LLMCTL_BIN", "llmctl")
SOURCE_DIR = os.environ.get("LLMCTL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

# Every user-facing subcommand. The issue list fixes it; a test fails when the
# binary drifts from it in either direction.
SUBCOMMANDS = [
    "doctor", "start", "stop", "status", "nodes", "up", "down", "exec", "serve", "generate",
    "tokenize", "chat-template", "logs", "bench", "version", "config", "completion",
]

failures = []


def run(*args, input=None, env=None, timeout=30):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([BIN, *args], input=input, capture_output=True, text=True, env=e, timeout=timeout)


def check(cond, what):
    if cond:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}")
        failures.append(what)


def finish():
    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for f in failures:
            print("  -", f)
        sys.exit(1)
    print("\nall checks passed")
