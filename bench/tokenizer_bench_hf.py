#!/usr/bin/env python3
"""The peer for tokenizer_bench: HF `tokenizers` encode throughput, one thread.

    RAYON_NUM_THREADS=1 python3 bench/tokenizer_bench_hf.py MODEL_DIR TEXT_FILE [SECONDS]
"""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402

tok = tokenizers.Tokenizer.from_file(os.path.join(sys.argv[1], "tokenizer.json"))
text = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
size = len(text.encode("utf-8"))
t0 = time.perf_counter()
n = len(tok.encode(text, add_special_tokens=False).ids)
cold = time.perf_counter() - t0
passes, t0, c0 = 0, time.perf_counter(), time.thread_time()
while time.perf_counter() - t0 < seconds:
    n = len(tok.encode(text, add_special_tokens=False).ids)
    passes += 1
elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
print("hf tokenizers %s model=%s bytes=%d tokens=%d first_pass=%.1f MB/s warm=%.1f MB/s (wall) warm=%.1f MB/s "
      "(thread cpu, %d passes)" % (tokenizers.__version__, sys.argv[1], size, n, size / 1e6 / cold,
                                   size / 1e6 * passes / elapsed, size / 1e6 * passes / cpu, passes))
