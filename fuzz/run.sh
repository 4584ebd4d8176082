#!/bin/sh
# Builds the libFuzzer targets with clang-14 (ASan + UBSan) in their own build
# dir and runs each for a bounded time from its committed seeds (fuzz/seeds/,
# made by fuzz/seeds/make_seeds.py) plus the corpus grown by earlier runs.
#   fuzz/run.sh [BUILD_DIR]      FUZZ_SECONDS=30 per target (default 30)
#   FUZZ_SEED=N fixes libFuzzer's seed so a CI run is repeatable (default 0:
#   a fresh random seed each run, for exploring by hand).
# Exits non-zero when a target finds a crash, leak, sanitizer report or
# timeout; the input is saved as BUILD_DIR/fuzz-artifacts/<target>-crash-*.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build/fuzz}
SECS=${FUZZ_SECONDS:-30}
SEED=${FUZZ_SEED:-0}
cmake -S "$SRC" -B "$BUILD" -G Ninja -DLLMCTL_FUZZ=ON -DLLMCTL_TESTS=OFF -DLLMCTL_CUDA=OFF \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" >/dev/null
TARGETS=$(sed -n 's/^llmctl_fuzz_target(\([A-Za-z0-9_]*\).*/\1/p' "$SRC/fuzz/CMakeLists.txt")
# shellcheck disable=SC2086
ninja -C "$BUILD" $TARGETS
# UBSan only reports by default; halting turns a report into a failing input.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
mkdir -p "$BUILD/fuzz-artifacts"
for t in $TARGETS; do
  corpus="$BUILD/fuzz-corpus/$t"
  mkdir -p "$corpus"
  seeds=""
  [ -d "$SRC/fuzz/seeds/$t" ] && seeds="$SRC/fuzz/seeds/$t"
  echo "== $t ($SECS s)"
  "$BUILD/fuzz/$t" -max_total_time="$SECS" -seed="$SEED" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$BUILD/fuzz-artifacts/$t-" -print_final_stats=1 "$corpus" $seeds
done
echo "fuzz: all targets ran $SECS s without findings"
