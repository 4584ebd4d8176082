#!/usr/bin/env python3
"""Writes a random-weight model of a real shape (the shapes of
tests/kernels/cuda/hf_greedy_test.py: llama-3.2-1b, qwen2.5-0.5b, qwen3-0.6b)
as bf16 safetensors next to the real tokenizer of its family, for benchmarks
on the GPU machine (speed does not depend on the weights' values).

  bench/make_random_model.py SHAPE OUT_DIR TOKENIZERS_DIR [--config-only]
--config-only writes config.json and the tokenizer without weights, for
`llmctl serve --load-format dummy` (random weights made at start-up; needs
no torch, and a 70B shape costs no 140 GB of files).
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "kernels", "cuda"))
import hf_greedy_test  # noqa: E402


# Shapes only benchmarked (too large for the transformers comparison test).
BENCH_SHAPES = {
    "llama-3.1-8b": ("llama3.1", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu"}),
    "llama-3.1-70b": ("llama3.1", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
        "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
        "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu"}),
}


def main():
    args = [a for a in sys.argv[1:] if a != "--config-only"]
    if len(args) != 3:
        sys.exit(__doc__)
    shape, out_dir, tokenizers_dir = args
    family, config_dict = {**hf_greedy_test.SHAPES, **BENCH_SHAPES}[shape]
    os.makedirs(out_dir, exist_ok=True)
    if "--config-only" in sys.argv:
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(dict(config_dict, torch_dtype="bfloat16"), f, indent=1)
        for f in os.listdir(os.path.join(tokenizers_dir, family)):
            shutil.copy(os.path.join(tokenizers_dir, family, f), out_dir)
        print(out_dir)
        return
    import torch
    import transformers
    config = transformers.AutoConfig.for_model(**config_dict)
    # Initialised on the GPU when there is one: an 8B init on the CPU takes minutes.
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in os.listdir(os.path.join(tokenizers_dir, family)):
        shutil.copy(os.path.join(tokenizers_dir, family, f), out_dir)
    print(out_dir)


if __name__ == "__main__":
    main()
