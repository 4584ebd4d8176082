#!/bin/bash
# Prefill time of one binary with and without an environment setting (an
# opt-in kernel path), alternating on one card, on the GPU machine with the
# pack from bench/cuda_device_pack.sh; first the paged-attention doctests.
# Each line: which side, prompt length, median prefill ms and its fraction
# of the bf16 FLOP peak (cuda_decode_bench's JSON).
# Results go to $OUT (or ./device-out).
#   AB=LLMCTL_FLASH_WIDE_MIN_QUERIES=512 ROUNDS=2 bash bench/cuda_device_prefill_ab.sh 8192 2048 512
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
ab=${AB:?set AB=NAME=VALUE, the setting to compare}
echo "== paged attention doctests, without and with $ab"
timeout 200 "$c/kernels_cuda_test" -tc="*paged_attention*" 2>&1 | tail -3
env "$ab" timeout 200 "$c/kernels_cuda_test" -tc="*paged_attention*" 2>&1 | tail -3
echo "== prefill, ${SHAPE:-llama-8b}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for p in "${@:-8192}"; do
    for side in off on; do
      line=$( ( [ "$side" = on ] && export "${ab?}"; timeout 120 "$c/cuda_decode_bench" --shape "${SHAPE:-llama-8b}" \
        --batch 1 --context 128 --prefill "$p" --steps 4 2>>"$out/prefill_ab.err" | tail -1 ) )
      echo "$line" >> "$out/prefill_ab.jsonl"
      echo "round $round $side ($ab): prefill $p: $(echo "$line" | grep -o '"prefill_ms":[0-9.]*\|"prefill_of_peak":[0-9.]*' | tr '\n' ' ')"
    done
  done
done
