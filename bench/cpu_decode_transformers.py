#!/usr/bin/env python3
"""transformers (torch CPU, fp32) decode throughput for the same setup as
engine_decode_bench: B sequences, prompt [1, 5+i, 7, 9], N greedy tokens,
decode time only (a 1-token generate is timed and subtracted). Prints one
line per batch size: the best of REPEATS runs (the box is shared, so the
best run is the least disturbed one).
Usage: cpu_decode_transformers.py MODEL_DIR [BATCH[,BATCH...]] [NEW_TOKENS] [REPEATS] [THREADS]"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir = sys.argv[1]
batches = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1").split(",")]
new = int(sys.argv[3]) if len(sys.argv) > 3 else 128
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 1
torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def timed(ids, n):
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    return time.perf_counter() - t0


with torch.no_grad():
    for batch in batches:
        ids = torch.tensor([[1, 5 + i, 7, 9] for i in range(batch)])
        timed(ids, 2)  # warm-up
        best = None
        for _ in range(repeats):
            decode_s = timed(ids, new) - timed(ids, 1)
            best = decode_s if best is None else min(best, decode_s)
        print(json.dumps({"model": model_dir, "batch": batch, "decode_tokens": batch * (new - 1),
                          "seconds": round(best, 4), "tokens_per_s": round(batch * (new - 1) / best, 1)}),
              flush=True)
