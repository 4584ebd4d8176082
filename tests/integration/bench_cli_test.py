#!/usr/bin/env python3
"""llmctl bench against llmctl serve (demo model): every request succeeds and
the token counts add up (num_prompts x output_len generated), greedy and
sampled (--temperature / --top-p); a bad --top-p is a usage error."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

BIN = os.environ["LLMCTL_BIN"]
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
proc = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health").status == 200:
                break
        except OSError:
            time.sleep(0.1)
    out = subprocess.run([BIN, "bench", "--url", f"http://127.0.0.1:{port}", "--model", "demo", "--concurrency", "8",
                          "--num-prompts", "16", "--input-len", "32", "--output-len", "8", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["completed"] == 16 and r["errors"] == 0, r
    assert r["total_output_tokens"] == 16 * 8, r
    assert r["total_input_tokens"] >= 16 * 32, r
    assert r["ttft"]["p50_ms"] > 0 and r["itl"]["mean_ms"] >= 0 and r["output_throughput"] > 0, r
    # The sampling path: every request carries temperature, top_p and a seed the server accepts.
    sampled = subprocess.run([BIN, "bench", "--url", f"http://127.0.0.1:{port}", "--model", "demo", "--concurrency",
                              "4", "--num-prompts", "8", "--input-len", "16", "--output-len", "6", "--temperature",
                              "0.8", "--top-p", "0.9", "--json"], capture_output=True, text=True, timeout=120)
    assert sampled.returncode == 0, sampled.stderr
    r = json.loads(sampled.stdout)
    assert r["completed"] == 8 and r["errors"] == 0 and r["total_output_tokens"] == 8 * 6, r
    wrong = subprocess.run([BIN, "bench", "--url", f"http://127.0.0.1:{port}", "--top-p", "1.5"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--top-p" in wrong.stderr, (wrong.returncode, wrong.stderr)
    bad = subprocess.run([BIN, "bench", "--url", f"http://127.0.0.1:{port}", "--model", "nope", "--num-prompts", "2",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and json.loads(bad.stdout)["errors"] == 2, bad.stdout
    print("ok")
finally:
    proc.terminate()
    proc.wait(timeout=10)
