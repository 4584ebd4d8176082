#!/usr/bin/env python3
"""Writes a JSONL prompt set for `llmctl bench --dataset` whose lengths look
like the ShareGPT sample that vLLM's and SGLang's published throughput numbers
use (#7's target), without the dataset itself (nothing outside Debian and PyPI
is reachable here). Prompt and output lengths are drawn from log-normal
distributions whose means match that sample's (about 215 prompt tokens and 198
output tokens per request for Llama 3 over 1,000 requests), clipped the way
vLLM's benchmark filters ShareGPT: 4..1024 prompt tokens, and prompt +
output within 1,800 words (2,048 tokens there; a word is not always one
token). Prompts are common one-token words, so the word count is about the
token count; each line is {"prompt": str, "output_len": int}.

  bench/make_sharegpt_like.py OUT.jsonl [--num 1000] [--seed 0]"""
import argparse
import json
import math
import random

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "it", "ran", "away", "home", "to", "see", "her",
         "dog", "in", "park", "with", "his", "friend", "who", "was", "very", "happy", "today"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--num", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mean-input", type=float, default=215)
    ap.add_argument("--mean-output", type=float, default=198)
    ap.add_argument("--sigma", type=float, default=1.0, help="log-normal shape (spread of the lengths)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    # mean = exp(mu + sigma^2 / 2), so mu follows from the wanted mean.
    mu_in = math.log(a.mean_input) - a.sigma ** 2 / 2
    mu_out = math.log(a.mean_output) - a.sigma ** 2 / 2
    n_in = n_out = 0
    with open(a.out, "w") as f:
        for _ in range(a.num):
            p = min(1024, max(4, round(rng.lognormvariate(mu_in, a.sigma))))
            # Words are about one token each, not exactly: leave a margin below 2,048.
            o = min(1800 - p, max(4, round(rng.lognormvariate(mu_out, a.sigma))))
            n_in += p
            n_out += o
            text = " ".join(rng.choice(WORDS) for _ in range(p))
            f.write(json.dumps({"prompt": text, "output_len": o}) + "\n")
    print(f"{a.out}: {a.num} prompts, mean {n_in / a.num:.0f} prompt words, mean {n_out / a.num:.0f} output tokens")


if __name__ == "__main__":
    main()
