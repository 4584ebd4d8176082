#!/bin/bash
# `llmctl serve --device cuda` with and without --async-scheduling, one run
# after the other on the same GPU, on the GPU machine with the pack from
# bench/cuda_device_pack.sh. Model: config.json of a real shape (default
# llama-3.1-8b) with `--load-format dummy` weights. Workloads: #7's (2)
# (512-word prompts, 256 new tokens, concurrency 64 / 256) and 1,000
# ShareGPT-like requests sent at once (concurrency 512, max-num-seqs 256).
# LLMCTL_STEP_TIMING=1: serve prints where rank 0's step time went, with the
# engine's host work outside the model runner and how much of it overlapped
# the device. Results go to $OUT (or ./device-out).
#   bash bench/cuda_device_async.sh [SHAPE]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
shape=${1:-llama-3.1-8b}
sharegpt_setup
for mode in plain async; do
  flags="--load-format dummy --max-num-seqs 256"
  [ "$mode" = async ] && flags="$flags --async-scheduling"
  serve_run "issue-$mode" --concurrency 64,256 --prompts-per-client 2 --input-len 512 --output-len 256 \
    --max-model-len 2048 "--serve-args=$flags"
  serve_run "sharegpt-$mode" --concurrency 512 --dataset "$out/sharegpt.jsonl" --num-prompts 1000 --max-model-len 2048 \
    "--serve-args=$flags"
done
