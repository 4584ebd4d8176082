#!/bin/bash
# `llmctl serve --device cuda` under `llmctl bench` load next to transformers'
# generate() on the same GPU and model, on the GPU machine, with the pack from
# bench/cuda_device_pack.sh. The model is a random-weight model of a real
# shape (bench/make_random_model.py; default llama-3.1-8b). Workloads:
#   decode: short prompts, 128 new tokens, concurrency 1 / 16 / 64, with the
#           decode steps as CUDA graphs and again with --enforce-eager;
#   issue:  512-word prompts, 256 new tokens, concurrency 64 / 256 (#7's (2));
#   peer:   transformers generate() at batch 1 / 16 / 64, 256 in / 128 out.
# Results go to $OUT (or ./device-out).
#   bash bench/cuda_device_serve.sh [SHAPE]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
shape=${1:-llama-3.1-8b}
model=/tmp/llmctl-bench-$shape
random_model "$shape" "$model"
serve_run decode-graphs --concurrency 1,16,64 --prompts-per-client 2 --input-len 16 --output-len 128 --max-model-len 1024
serve_run decode-eager --concurrency 1,16,64 --prompts-per-client 2 --input-len 16 --output-len 128 --max-model-len 1024 \
  --serve-args=--enforce-eager
serve_run issue --concurrency 64,256 --prompts-per-client 2 --input-len 512 --output-len 256 --max-model-len 2048 \
  "--serve-args=--max-num-seqs 256"
echo "== transformers generate (bf16, same GPU)"
timeout 240 python3 bench/hf_generate_peer.py "$model" --batch 1,16,64 --input-len 256 --output-len 128 \
  2>&1 | grep -v Warning | tee "$out/hf_peer_$shape.jsonl"
