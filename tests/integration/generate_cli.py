#!/usr/bin/env python3
"""Runs the real `llmctl generate` on stories260K and compares with the
transformers greedy reference (ids and text) in ../shared/assets."""
import json
import os
import re
import subprocess
import sys

BIN = os.environ["LLMCTL_BIN"]
MODEL = os.path.join(os.environ["LLMCTL_SHARED_DIR"], "assets", "stories260K")
ref = json.load(open(os.path.join(MODEL, "reference_greedy.json")))["references"]
failures = []

# The last case again with --async-scheduling: the same ids.
for r, extra in [(r, []) for r in ref[:3]] + [(ref[2], ["--async-scheduling"])]:
    n = len(r["greedy_ids"])
    cmd = [BIN, "generate", "--model", MODEL, "--prompt", r["prompt"], "--max-tokens", str(n),
           "--temperature", "0", "--ignore-eos", "--json"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        failures.append(f"{cmd}: exit {p.returncode}: {p.stderr}")
        continue
    out = json.loads(p.stdout)
    if out["token_ids"] != r["greedy_ids"]:
        failures.append(f"{r['prompt']!r}: ids differ: {out['token_ids'][:20]} vs {r['greedy_ids'][:20]}")
    if out["text"] != r["greedy_text"]:
        failures.append(f"{r['prompt']!r}: text differs: {out['text'][:80]!r} vs {r['greedy_text'][:80]!r}")
    if out["finish_reason"] != "length" or out["usage"]["completion_tokens"] != n or \
            out["usage"]["prompt_tokens"] != len(r["prompt_ids"]):
        failures.append(f"{r['prompt']!r}: bad finish_reason/usage {out['finish_reason']} {out['usage']}")

# LLMCTL_STEP_TIMING=1: where the steps' time went, printed at exit. One
# prefill and n - 1 decode steps (no step wasted past the length limit under
# --async-scheduling either), by size, with the engine's own host work.
r = ref[1]
n = 20
for extra in ([], ["--async-scheduling"]):
    p = subprocess.run([BIN, "generate", "--model", MODEL, "--prompt", r["prompt"], "--max-tokens", str(n),
                        "--temperature", "0", "--ignore-eos", "--json"] + extra, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, LLMCTL_STEP_TIMING="1"))
    eager = re.search(r"rank 0: (\d+) eager steps", p.stderr)
    engine = re.search(r"engine: (\d+) steps took ([\d.]+) ms, of which ([\d.]+) ms host work", p.stderr)
    sizes = re.findall(r"(\d+)-(\d*) tokens: (\d+) steps, (\d+) tokens", p.stderr)
    if p.returncode != 0 or not eager or not engine or not sizes:
        failures.append(f"step timing {extra}: exit {p.returncode}, stderr {p.stderr[-600:]!r}")
        continue
    if int(eager.group(1)) != n or int(engine.group(1)) != n or float(engine.group(3)) > float(engine.group(2)):
        failures.append(f"step timing {extra}: {eager.group(0)!r} / {engine.group(0)!r}, expected {n} steps")
    if sum(int(s[2]) for s in sizes) != n or sum(int(s[3]) for s in sizes) != len(r["prompt_ids"]) + n - 1:
        failures.append(f"step timing {extra}: steps by size {sizes} do not add up to {n} steps")

# Streaming mode prints the same text (plus a final newline).
r = ref[0]
p = subprocess.run([BIN, "generate", "--model", MODEL, "--prompt", r["prompt"], "--max-tokens", "64",
                    "--temperature", "0", "--ignore-eos"], capture_output=True, text=True, timeout=120)
js = subprocess.run([BIN, "generate", "--model", MODEL, "--prompt", r["prompt"], "--max-tokens", "64",
                     "--temperature", "0", "--ignore-eos", "--json"], capture_output=True, text=True, timeout=120)
if p.returncode != 0 or p.stdout != json.loads(js.stdout)["text"] + "\n":
    failures.append(f"streamed text differs from --json text: {p.stdout[:80]!r} / {p.stderr}")

# Seeded sampling is reproducible across processes.
runs = [subprocess.run([BIN, "generate", "--model", MODEL, "--prompt", "Lily", "--max-tokens", "30",
                        "--temperature", "1.0", "--top-k", "40", "--seed", "7", "--json"],
                       capture_output=True, text=True, timeout=120).stdout for _ in range(2)]
if runs[0] != runs[1] or not runs[0]:
    failures.append(f"seeded runs differ: {runs}")

# A broken model folder is a clean error, not a crash.
p = subprocess.run([BIN, "generate", "--model", "/nonexistent", "--prompt", "x"], capture_output=True, text=True)
if p.returncode not in (1, 2) or "generate" not in p.stderr:
    failures.append(f"missing model: exit {p.returncode}, stderr {p.stderr!r}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
