#!/bin/bash
# `llmctl serve --device cuda` under `llmctl bench` load next to transformers'
# generate() on the same GPU and model, on the GPU machine, with the pack from
# bench/cuda_device_pack.sh. The model is a random-weight Llama-3.2-1B shape
# (bench/make_random_model.py). Results go to $OUT (or ./device-out).
#   bash bench/cuda_device_serve.sh [SHAPE]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
shape=${1:-llama-3.2-1b}
model=/tmp/llmctl-bench-$shape
[ -f "$model/config.json" ] || python3 bench/make_random_model.py "$shape" "$model" "$c/tokenizers" >/dev/null
echo "== llmctl serve --device cuda ($shape, random weights)"
timeout 300 python3 bench/serve_bench.py "$c/llmctl" --model "$model" --name "$shape" --device cuda \
  --concurrency 1,16,64 --prompts-per-client 2 --input-len 256 --output-len 128 --max-model-len 1024 \
  2>&1 | tee "$out/serve_bench_$shape.md"
echo "== transformers generate (bf16, same GPU)"
timeout 240 python3 bench/hf_generate_peer.py "$model" --batch 1,16,64 --input-len 256 --output-len 128 \
  2>&1 | grep -v Warning | tee "$out/hf_peer_$shape.jsonl"
