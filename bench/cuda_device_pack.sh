#!/bin/sh
# Packs what bench/cuda_device_run.sh needs on the GPU machine into
# .device-carry/pack.tar.xz (git-ignored; pass .device-carry in `carry`):
# the llmctl bundle (packaging/bundle.sh) when built, the gpu test binaries and the bench
# with the same libraries, and copies of stories260K and the real tokenizers
# (never committed).
# Usage: bench/cuda_device_pack.sh BUILD_DIR SHARED_DIR
set -eu
build=${1:?usage: cuda_device_pack.sh BUILD_DIR SHARED_DIR}
shared=${2:?usage: cuda_device_pack.sh BUILD_DIR SHARED_DIR}
stage=.device-carry/stage
rm -rf "$stage" .device-carry/pack .device-carry/pack.tar.xz
mkdir -p .device-carry
# An llmctl older than the kernels library would test another backend than
# the test binaries do: leave it out (the run script then skips its checks).
if [ -x "$build/llmctl" ] && [ ! "$build/src/kernels/libllmctl_kernels.a" -nt "$build/llmctl" ]; then
  sh packaging/bundle.sh "$build/llmctl" "$stage"
  rm -f "$(dirname "$stage")"/llmctl-*-linux-*.tar.gz
  strip "$stage/llmctl"
else
  echo "pack: no current $build/llmctl; packing the test binaries alone" >&2
  mkdir -p "$stage/lib"
fi
for bin in "$build/tests/kernels/cuda/kernels_cuda_test" "$build/tests/kernels/cuda/kernels_cuda_engine_test" \
           "$build/bench/cuda_decode_bench" "$build/tests/runtime/dist/dist_nccl_test"; do
  [ -x "$bin" ] || continue
  cp "$bin" "$stage/"
  strip "$stage/$(basename "$bin")"
  ldd "$bin" | while read -r name arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    case "$name" in
      linux-vdso.so.*|ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*) continue ;;
      libcuda.so.*|libnvidia-*|libcublas.so.*|libcublasLt.so.*|libnccl.so.*|libstdc++.so.*|libgcc_s.so.*) continue ;;
    esac
    [ -e "$stage/lib/$name" ] || cp -L "$path" "$stage/lib/$name"
  done
done
cp -r "$shared/assets/stories260K" "$stage/stories260K"
cp -r "$shared/assets/tokenizers" "$stage/tokenizers"
tar -C "$stage" -cf - . | xz -T2 -3 > .device-carry/pack.tar.xz
rm -rf "$stage"
ls -la .device-carry/pack.tar.xz
