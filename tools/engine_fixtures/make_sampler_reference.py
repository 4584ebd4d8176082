#!/usr/bin/env python3
"""Writes tests/runtime/engine/sampler_reference.json: what the Sampler must
compute, taken from transformers' logits processors and the OpenAI definition
of presence / frequency penalties, never from llmctl's own code.

Run by hand (torch + transformers from PyPI; CI only reads the output):
    python3 tools/engine_fixtures/make_sampler_reference.py

Each case has raw logits, the sequence's prompt and output ids, sampling
parameters and eos ids, and expects
  processed:     logits after repetition penalty (transformers
                 RepetitionPenaltyLogitsProcessor over prompt + output), then
                 logit[j] -= frequency * count[j] + presence * (count[j] > 0)
                 over the output ids (OpenAI's formula), then eos masked while
                 fewer than min_tokens are out (MinNewTokensLengthLogitsProcessor);
  probs:         the distribution sampling draws from: softmax after
                 Temperature, TopK, TopP, MinP warpers (transformers' order);
                 absent for greedy;
  log_softmax:   log_softmax of the raw logits (what logprobs report).
"""
import json
import os

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (MinNewTokensLengthLogitsProcessor, MinPLogitsWarper,
                                                    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "runtime", "engine", "sampler_reference.json")
VOCAB = 40
EOS = [2, 3]

CASES = [
    # name, params, prompt, output
    ("repetition_only", dict(repetition_penalty=1.7), [1, 5, 9, 9, 30], [7, 5, 12]),
    ("repetition_below_one", dict(repetition_penalty=0.6), [1, 4, 11], [11, 20, 20]),
    ("presence_frequency", dict(presence_penalty=0.8, frequency_penalty=0.5), [1, 6, 6, 8], [8, 8, 8, 13, 6, 21]),
    ("negative_presence_frequency", dict(presence_penalty=-1.1, frequency_penalty=-0.3), [1, 2], [17, 17, 4]),
    ("all_penalties", dict(repetition_penalty=1.3, presence_penalty=0.4, frequency_penalty=0.9),
     [1, 10, 11, 12], [10, 25, 25, 25, 31]),
    ("min_tokens_masks_eos", dict(min_tokens=4), [1, 8], [9, 10]),
    ("min_tokens_reached", dict(min_tokens=2), [1, 8], [9, 10]),
    ("temperature", dict(temperature=0.7), [1], []),
    ("top_k", dict(temperature=1.0, top_k=6), [1], []),
    ("top_p", dict(temperature=1.3, top_p=0.6), [1], []),
    ("min_p", dict(temperature=1.0, min_p=0.08), [1], []),
    ("min_p_hot", dict(temperature=2.5, min_p=0.3), [1], []),
    ("top_k_top_p_min_p", dict(temperature=0.9, top_k=12, top_p=0.9, min_p=0.05), [1, 3], [14]),
    ("penalties_then_top_p", dict(temperature=1.1, top_p=0.8, repetition_penalty=1.5, frequency_penalty=0.7),
     [1, 22, 23], [22, 24, 24]),
]


def main():
    gen = torch.Generator().manual_seed(20261128)
    cases = []
    for name, params, prompt, output in CASES:
        # Peaked but not degenerate logits: a few large values over noise.
        raw = torch.randn(VOCAB, generator=gen) * 2.0
        raw[torch.randint(0, VOCAB, (4,), generator=gen)] += 3.0
        raw = raw.to(torch.float32)
        ids = torch.tensor([prompt + output])
        scores = raw.clone().unsqueeze(0)
        rp = params.get("repetition_penalty", 1.0)
        if rp != 1.0:
            scores = RepetitionPenaltyLogitsProcessor(rp)(ids, scores)
        counts = np.bincount(np.array(output, dtype=np.int64), minlength=VOCAB)
        pen = params.get("frequency_penalty", 0.0) * counts + params.get("presence_penalty", 0.0) * (counts > 0)
        scores = (scores.double() - torch.from_numpy(pen).unsqueeze(0)).float()
        if params.get("min_tokens", 0) > 0:
            scores = MinNewTokensLengthLogitsProcessor(len(prompt), params["min_tokens"], EOS)(ids, scores)
        processed = scores[0].clone()
        case = {"name": name, "params": params, "prompt_ids": prompt, "output_ids": output, "eos_ids": EOS,
                "logits": raw.tolist(),
                "processed": [x if np.isfinite(x) else "-inf" for x in processed.tolist()],
                "log_softmax": torch.log_softmax(raw.double(), -1).tolist()}
        t = params.get("temperature", 0.0)
        if t > 0:
            warped = TemperatureLogitsWarper(t)(ids, scores)
            if params.get("top_k", 0) > 0:
                warped = TopKLogitsWarper(params["top_k"])(ids, warped)
            if params.get("top_p", 1.0) < 1.0:
                warped = TopPLogitsWarper(params["top_p"])(ids, warped)
            if params.get("min_p", 0.0) > 0:
                warped = MinPLogitsWarper(params["min_p"])(ids, warped)
            case["probs"] = torch.softmax(warped[0].double(), -1).tolist()
        cases.append(case)
    json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "vocab": VOCAB,
               "cases": cases}, open(OUT, "w"), indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
