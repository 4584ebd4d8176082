#!/usr/bin/env python3
"""transformers (torch CPU, fp32) decode throughput for the same setup as
engine_decode_bench: B sequences, prompt [1, 5+i, 7, 9], N greedy tokens.
Usage: cpu_decode_transformers.py MODEL_DIR [BATCH] [NEW_TOKENS]"""
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
new = int(sys.argv[3]) if len(sys.argv) > 3 else 128
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
ids = torch.tensor([[1, 5 + i, 7, 9] for i in range(batch)])
with torch.no_grad():
    model.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=0)  # warm-up / prefill cost
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=0)
    prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0)
    total = time.perf_counter() - t0
decode_s = total - prefill
print({"batch": batch, "decode_tokens": batch * (new - 1), "seconds": round(decode_s, 4),
       "tokens_per_s": round(batch * (new - 1) / decode_s, 1)})
