#!/usr/bin/env python3
"""`llmctl bench` against `llmctl serve` at several concurrencies; prints one
Markdown table row per run (the serve section of docs/performance.md).

  bench/serve_bench.py BUILD/llmctl [--model DIR] [--name N] [--concurrency 1,16,64]
                       [--prompts-per-client 4] [--input-len 128] [--output-len 128] [--device cuda]

Without --model it serves the embedded demo model. Each concurrency C sends
C x prompts-per-client requests (at least 16), all at once (no request rate).
`llmctl bench` makes synthetic prompts of --input-len words, or reads them
from --dataset (JSONL, per-prompt output_len); the table shows the prompt
tokens the server counted."""
import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("llmctl")
    ap.add_argument("--model", default="")
    ap.add_argument("--name", default="bench")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--prompts-per-client", type=int, default=4)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--device", default="", help="cpu or cuda (default: serve's auto)")
    ap.add_argument("--tp", type=int, default=1, help="serve --tp (ranks on this machine's GPUs)")
    ap.add_argument("--server-log", default="", help="file for serve's stderr (default: discarded)")
    ap.add_argument("--serve-args", default="", help="more serve flags, e.g. \"--enforce-eager --max-num-seqs 256\"")
    ap.add_argument("--start-timeout", type=float, default=120, help="seconds to wait for /health")
    ap.add_argument("--log-level", default="info",
                    help="serve's --log-level (info: the server log times the start-up phases: weights, KV cache, graphs)")
    ap.add_argument("--dataset", default="", help="JSONL prompts for llmctl bench (bench/make_sharegpt_like.py); "
                    "each concurrency then sends --num-prompts of them")
    ap.add_argument("--num-prompts", type=int, default=0, help="with --dataset: requests per concurrency")
    ap.add_argument("--bench-args", default="", help="more llmctl bench flags, e.g. \"--temperature 0.8 --top-p 0.95\"")
    a = ap.parse_args()

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    args = [a.llmctl, "--log-level", a.log_level, "serve", "--host", "127.0.0.1", "--port", str(port), "--served-model-name", a.name,
            "--max-model-len", str(a.max_model_len)]
    if a.model:
        args += ["--model", a.model]
    if a.device:
        args += ["--device", a.device]
    if a.tp > 1:
        args += ["--tp", str(a.tp)]
    args += a.serve_args.split()
    log = open(a.server_log, "w") if a.server_log else subprocess.DEVNULL
    started = time.time()
    server = subprocess.Popen(args, stdout=log, stderr=log)  # the ready line names the batch limits
    try:
        deadline = time.time() + a.start_timeout
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                sys.exit("serve did not start")
            time.sleep(0.2)
        print(f"serve ready after {time.time() - started:.1f} s (process start to /health 200)", flush=True)
        print("| concurrency | requests | prompt tokens (mean) | req/s | output tok/s | TTFT p50 / p99 ms "
              "| TPOT p50 / p99 ms | ITL p50 / p99 ms | errors |")
        print("|---|---|---|---|---|---|---|---|---|")
        for c in [int(x) for x in a.concurrency.split(",")]:
            n = a.num_prompts if a.dataset and a.num_prompts > 0 else max(16, c * a.prompts_per_client)
            cmd = [a.llmctl, "bench", "--url", f"http://127.0.0.1:{port}", "--model", a.name, "--concurrency", str(c),
                   "--num-prompts", str(n), "--input-len", str(a.input_len), "--output-len", str(a.output_len),
                   "--json"]
            if a.dataset:
                cmd += ["--dataset", a.dataset]
            cmd += a.bench_args.split()
            out = subprocess.run(cmd, capture_output=True, text=True)
            r = json.loads(out.stdout)
            prompt_tokens = r["total_input_tokens"] / max(1, r["completed"])
            print(f"| {c} | {r['completed']} | {prompt_tokens:.0f} | {r['request_throughput']:.2f} | {r['output_throughput']:.0f} "
                  f"| {r['ttft']['p50_ms']:.1f} / {r['ttft']['p99_ms']:.1f} "
                  f"| {r['tpot']['p50_ms']:.2f} / {r['tpot']['p99_ms']:.2f} "
                  f"| {r['itl']['p50_ms']:.2f} / {r['itl']['p99_ms']:.2f} | {r['errors']} |", flush=True)
            if r["errors"]:
                print(f"first error: {r.get('first_error', '?')}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
