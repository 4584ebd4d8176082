"""`llmctl generate --device cuda` on stories260K gives the same greedy tokens
as --device cpu and as transformers' fp32 references (reference_greedy.json).

The model folder is LLMCTL_STORIES_DIR when set (the GPU machine gets a copy),
else $LLMCTL_SHARED_DIR/assets/stories260K. Exit 77 (skip) without it.
"""
import json
import os
import subprocess
import sys


def generate(binary, model, device, prompt, max_tokens):
    cmd = [binary, "generate", "--model", model, "--device", device, "--prompt", prompt,
           "--max-tokens", str(max_tokens), "--temperature", "0", "--ignore-eos", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["token_ids"]


def main():
    binary = os.environ["LLMCTL_BIN"]
    model = os.environ.get("LLMCTL_STORIES_DIR") or os.path.join(
        os.environ.get("LLMCTL_SHARED_DIR", ""), "assets", "stories260K")
    ref_path = os.path.join(model, "reference_greedy.json")
    if not os.path.exists(ref_path):
        print(f"skip: {ref_path} not found")
        return 77
    with open(ref_path) as f:
        refs = json.load(f)["references"]
    failures = 0
    for ref in refs:
        n = len(ref["greedy_ids"])
        cpu = generate(binary, model, "cpu", ref["prompt"], n)
        gpu = generate(binary, model, "cuda", ref["prompt"], n)
        same_cpu = gpu == cpu
        same_ref = gpu == ref["greedy_ids"]
        first = next((i for i, (a, b) in enumerate(zip(gpu, cpu)) if a != b), None)
        print(f"{ref['prompt']!r}: {n} tokens; cuda == cpu: {same_cpu} (first divergence: {first}); "
              f"cuda == transformers: {same_ref}")
        failures += (not same_cpu) + (not same_ref)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
