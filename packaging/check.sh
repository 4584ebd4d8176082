#!/bin/sh
# Everything CI checks, in order: dependencies, the CPU build with warnings as
# errors and all its tests, a bounded fuzzing run, then (where nvcc exists) the
# CUDA build, compile and link only. Run from anywhere; exits non-zero on the
# first failure.
set -eu
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake --workflow --preset ci-cpu
# Bounded fuzzing (libFuzzer, clang-14, ASan + UBSan, own build dir) of the
# parsers that take untrusted bytes: tokenizer.json, text to encode,
# safetensors headers, control-plane frames. 30 s per target; see fuzz/run.sh.
FUZZ_SECONDS=30 FUZZ_SEED=1 sh fuzz/run.sh build/fuzz
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
  cmake --workflow --preset ci-cuda
else
  echo "check: no nvcc found; skipping the CUDA build"
fi
echo "check: all passed"
