#!/bin/bash
# 1,000 ShareGPT-like requests sent at once (bench/make_sharegpt_like.py) to
# `llmctl serve --device cuda --async-scheduling` on the GPU machine, once per
# scheduler limit given as SEQS:TOKENS (--max-num-seqs, --max-num-batched-tokens),
# with the pack from bench/cuda_device_pack.sh. Model: config.json of a real
# shape (SHAPE, default llama-3.1-8b) with `--load-format dummy` weights.
# Results go to $OUT (or ./device-out); the environment reaches serve (e.g.
# LLMCTL_MLP_BF16=0 for the fp32 MLP).
#   SHAPE=llama-3.1-8b bash bench/cuda_device_sharegpt.sh 256:2048 1024:8192
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
shape=${SHAPE:-llama-3.1-8b}
sharegpt_setup
for limits in "${@:-1024:8192}"; do
  seqs=${limits%%:*}
  tokens=${limits#*:}
  serve_run "sharegpt-s$seqs-t$tokens" --concurrency 1000 --dataset "$out/sharegpt.jsonl" --num-prompts 1000 \
    --max-model-len 2048 \
    "--serve-args=--load-format dummy --async-scheduling --max-num-seqs $seqs --max-num-batched-tokens $tokens"
done
