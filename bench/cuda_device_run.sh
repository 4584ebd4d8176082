#!/bin/bash
# Everything the GPU machine runs in one call (device time is scarce), from
# the repository root there, with the pack made by bench/cuda_device_pack.sh
# in .device-carry/: the gpu-labelled doctest binary, the stories260K greedy
# comparison (cuda vs cpu vs transformers), and the decode benchmark.
# Results go to $OUT (or ./device-out).
set -u
out=${OUT:-device-out}
mkdir -p "$out"
fresh=1 . bench/cuda_device_env.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } 2>&1 | tee "$out/device.txt"
echo "== kernels_cuda_test"
"$c/kernels_cuda_test" 2>&1 | tee "$out/kernels_cuda_test.log"
echo "kernels_cuda_test exit ${PIPESTATUS[0]}" | tee -a "$out/kernels_cuda_test.log"
echo "== kernels_cuda_engine_test"
LLMCTL_STORIES_DIR="$c/stories260K" "$c/kernels_cuda_engine_test" 2>&1 | tee "$out/kernels_cuda_engine_test.log"
echo "kernels_cuda_engine_test exit ${PIPESTATUS[0]}" | tee -a "$out/kernels_cuda_engine_test.log"
if [ -x "$c/llmctl" ]; then
echo "== stories260K greedy through llmctl generate"
LLMCTL_BIN="$c/llmctl" LLMCTL_STORIES_DIR="$c/stories260K" python3 tests/kernels/cuda/stories_greedy_test.py 2>&1 | tee "$out/stories_greedy.log"
echo "stories exit ${PIPESTATUS[0]}" | tee -a "$out/stories_greedy.log"
echo "== random-weight real shapes vs transformers bf16"
LLMCTL_BIN="$c/llmctl" LLMCTL_TOKENIZERS_DIR="$c/tokenizers" timeout 600 python3 tests/kernels/cuda/hf_greedy_test.py 2>&1 | tee "$out/hf_greedy.log"
echo "hf_greedy exit ${PIPESTATUS[0]}" | tee -a "$out/hf_greedy.log"
"$c/llmctl" generate --model "$c/stories260K" --device auto --prompt "Once upon a time" --max-tokens 40 --temperature 0 2>&1 | tee "$out/generate_auto.txt"
fi
echo "== decode bench"
timeout 420 "$c/cuda_decode_bench" "$@" > "$out/cuda_decode_bench.jsonl" 2> >(tee "$out/cuda_decode_bench.err" >&2)
echo "bench exit $?"
cat "$out/cuda_decode_bench.jsonl"
# Throughput (LLMCTL_BENCH_BATCH=64): decode at that batch as a CUDA graph and
# a 2,048-token prefill, per shape, against the roofline and the FLOP peak.
if [ -n "${LLMCTL_BENCH_BATCH:-}" ]; then
  echo "== throughput bench (batch $LLMCTL_BENCH_BATCH)"
  for shape in llama-1b llama-8b; do
    timeout 150 "$c/cuda_decode_bench" --shape "$shape" --batch "$LLMCTL_BENCH_BATCH" --context 512 --prefill 2048 \
      --steps 32 >> "$out/cuda_throughput.jsonl" 2> >(tee -a "$out/cuda_throughput.err" >&2)
    echo "throughput $shape exit $?"
  done
  cat "$out/cuda_throughput.jsonl"
fi
