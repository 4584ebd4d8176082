#!/bin/bash
# Where `llmctl serve --device cuda` spends its start-up, on the GPU machine,
# with the pack from bench/cuda_device_pack.sh: #7's cold start (process
# start to first token, weights in the page cache, target <= 10 s for the
# 8B shape). Writes the random-weight model of SHAPE (bench/make_random_model.py,
# real safetensors files), reads them once into the page cache, then starts
# serve RUNS times with one request each (serve_bench.py's "serve ready
# after" plus that request's TTFT is the first token), and once with
# --load-format dummy. Each server log's start-up lines (weights, KV cache
# sizing with its profiling step, decode graphs) are echoed.
# Results go to $OUT (or ./device-out).
#   RUNS=2 bash bench/cuda_device_startup.sh [SHAPE]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
shape=${1:-llama-3.1-8b}
real=/tmp/llmctl-bench-$shape
SECONDS=0
random_model "$shape" "$real"
echo "model $real ($(du -sh "$real" | cut -f1)) ready after $SECONDS s"
SECONDS=0
cat "$real"/*.safetensors >/dev/null
echo "read into the page cache in $SECONDS s"
model=$real
for i in $(seq 1 "${RUNS:-2}"); do
  serve_run "start-$i" --concurrency 1 --prompts-per-client 1 --input-len 16 --output-len 16 --max-model-len 2048
done
sharegpt_setup
serve_run start-dummy --concurrency 1 --prompts-per-client 1 --input-len 16 --output-len 16 --max-model-len 2048 \
  "--serve-args=--load-format dummy"
