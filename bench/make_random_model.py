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
}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    shape, out_dir, tokenizers_dir = sys.argv[1:]
    import torch
    import transformers
    family, config_dict = {**hf_greedy_test.SHAPES, **BENCH_SHAPES}[shape]
    os.makedirs(out_dir, exist_ok=True)
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
