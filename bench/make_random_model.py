#!/usr/bin/env python3
"""Writes a random-weight model of a real shape (the shapes of
tests/kernels/cuda/hf_greedy_test.py: llama-3.2-1b, qwen2.5-0.5b, qwen3-0.6b)
as bf16 safetensors next to the real tokenizer of its family, for benchmarks
on the GPU machine (speed does not depend on the weights' values).

  bench/make_random_model.py SHAPE OUT_DIR TOKENIZERS_DIR
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "kernels", "cuda"))
import hf_greedy_test  # noqa: E402


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    shape, out_dir, tokenizers_dir = sys.argv[1:]
    import torch
    import transformers
    family, config_dict = hf_greedy_test.SHAPES[shape]
    os.makedirs(out_dir, exist_ok=True)
    config = transformers.AutoConfig.for_model(**config_dict)
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in os.listdir(os.path.join(tokenizers_dir, family)):
        shutil.copy(os.path.join(tokenizers_dir, family, f), out_dir)
    print(out_dir)


if __name__ == "__main__":
    main()
