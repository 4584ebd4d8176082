"""`llmctl generate --device cuda` against transformers in bf16 on the same GPU,
on random-weight models of real shapes (Llama 3.2 1B, Qwen2.5 0.5B, Qwen3
0.6B: their config.json with seeded random weights, saved as bf16
safetensors next to the real tokenizer of that family).

Greedy tokens must be identical, except that a first divergence is allowed
where transformers' own top-2 logits at that step are within bf16 noise
(NOISE_BOUND, in logits); every divergence is reported with its gap. Also
prints transformers' batch-1 decode speed as the peer figure for
docs/performance.md, next to llmctl's own tokens/s from --json usage timing.

Needs torch with CUDA and transformers (the GPU machine has both); exits 77
(skip) without them, without a GPU, or without the tokenizers in
LLMCTL_TOKENIZERS_DIR (default $LLMCTL_SHARED_DIR/assets/tokenizers).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village"]
NEW_TOKENS = 48
# bf16 keeps 8 bits of mantissa: logits of magnitude ~10 carry ~0.04 of
# rounding noise per op; a reduction of a few thousand of them and a
# different summation order move a logit by a few tenths at most.
NOISE_BOUND = 0.5

SHAPES = {
    "llama-3.2-1b": ("llama3.1", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
        "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu"}),
    "qwen2.5-0.5b": ("qwen2.5", {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
        "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
        "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "use_sliding_window": False}),
    "qwen3-0.6b": ("qwen3", {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
        "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
        "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu", "attention_bias": False}),
}


def make_model(torch, transformers, name, family, config_dict, tokenizers_dir, out_dir):
    config = transformers.AutoConfig.for_model(**config_dict)
    # A larger init than the default 0.02 makes the random model's logits
    # peaked enough that greedy decoding is a meaningful comparison.
    config.initializer_range = 0.05
    torch.manual_seed(sum(map(ord, name)))
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in os.listdir(os.path.join(tokenizers_dir, family)):
        shutil.copy(os.path.join(tokenizers_dir, family, f), out_dir)
    return model.cuda().eval()


def hf_greedy(torch, model, ids):
    """Greedy ids and, per step, the logits transformers saw."""
    with torch.no_grad():
        out = model.generate(torch.tensor([ids], device="cuda"), max_new_tokens=NEW_TOKENS,
                             min_new_tokens=NEW_TOKENS, do_sample=False, output_scores=True,
                             return_dict_in_generate=True, pad_token_id=0)
    new = out.sequences[0, len(ids):].tolist()
    return new, [s[0].float() for s in out.scores]


def hf_decode_tokens_per_s(torch, model, ids, steps=64):
    with torch.no_grad():
        x = torch.tensor([ids], device="cuda")
        model.generate(x, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(x, max_new_tokens=steps, min_new_tokens=steps, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        return steps / (time.perf_counter() - t0)


def llmctl_generate(binary, model_dir, prompt):
    cmd = [binary, "generate", "--model", model_dir, "--device", "cuda", "--prompt", prompt,
           "--max-tokens", str(NEW_TOKENS), "--temperature", "0", "--ignore-eos", "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def main():
    try:
        import torch
        import transformers
    except ImportError as e:
        print(f"skip: {e}")
        return 77
    if not torch.cuda.is_available():
        print("skip: no CUDA device")
        return 77
    binary = os.environ["LLMCTL_BIN"]
    tokenizers_dir = os.environ.get("LLMCTL_TOKENIZERS_DIR") or os.path.join(
        os.environ.get("LLMCTL_SHARED_DIR", ""), "assets", "tokenizers")
    if not os.path.isdir(tokenizers_dir):
        print(f"skip: {tokenizers_dir} not found")
        return 77
    only = [s for s in os.environ.get("HF_GREEDY_SHAPES", "").split(",") if s]
    failures = 0
    report = []
    for name, (family, config_dict) in SHAPES.items():
        if only and name not in only:
            continue
        work = tempfile.mkdtemp(prefix=f"llmctl-{name}-")
        try:
            model = make_model(torch, transformers, name, family, config_dict, tokenizers_dir, work)
            tok = transformers.AutoTokenizer.from_pretrained(work)
            for prompt in PROMPTS:
                ids = tok(prompt, add_special_tokens=True)["input_ids"]
                ref, scores = hf_greedy(torch, model, ids)
                got, wall = llmctl_generate(binary, work, prompt)
                ours = got["token_ids"]
                first = next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), None)
                line = {"shape": name, "prompt": prompt, "tokens": len(ref), "llmctl_tokens": len(ours),
                        "first_divergence": first, "llmctl_wall_s": round(wall, 2)}
                ok = len(ours) == len(ref)
                if first is not None:
                    logits = scores[first]
                    top2 = torch.topk(logits, 2).values.tolist()
                    gap = logits[ref[first]].item() - logits[ours[first]].item()
                    line.update({"hf_top2_gap": round(top2[0] - top2[1], 4), "gap_to_llmctl_token": round(gap, 4)})
                    ok = ok and gap <= NOISE_BOUND
                line["ok"] = ok
                failures += not ok
                print(json.dumps(line), flush=True)
                report.append(line)
            tps = hf_decode_tokens_per_s(torch, model, tok(PROMPTS[0])["input_ids"])
            print(json.dumps({"shape": name, "transformers_bf16_decode_tokens_per_s": round(tps, 1)}), flush=True)
            del model
            torch.cuda.empty_cache()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(report) - failures}/{len(report)} generations match transformers (bf16, same GPU)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
