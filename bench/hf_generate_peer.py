#!/usr/bin/env python3
"""The peer for `llmctl serve --device cuda` throughput: transformers'
generate() in bf16 on the same GPU, static batches of B prompts of
--input-len random token ids, --output-len new tokens each (no early stop).
Prints one JSON line per batch size with output tokens per second.

  bench/hf_generate_peer.py MODEL_DIR [--batch 1,16,64] [--input-len 256] [--output-len 128]
"""
import argparse
import json
import time

import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", default="1,16,64")
    ap.add_argument("--input-len", type=int, default=256)
    ap.add_argument("--output-len", type=int, default=128)
    a = ap.parse_args()
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16).cuda().eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    for b in [int(x) for x in a.batch.split(",")]:
        ids = torch.randint(1000, min(vocab, 30000), (b, a.input_len), generator=g).cuda()
        kw = dict(max_new_tokens=a.output_len, min_new_tokens=a.output_len, do_sample=False, pad_token_id=0)
        with torch.no_grad():
            model.generate(ids[:, :16], max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(ids, **kw)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
        print(json.dumps({"peer": "transformers", "version": transformers.__version__, "torch": torch.__version__,
                          "batch": b, "input_len": a.input_len, "output_len": a.output_len, "seconds": round(dt, 3),
                          "output_tokens_per_s": round(b * a.output_len / dt, 1)}), flush=True)


if __name__ == "__main__":
    main()
