#!/bin/sh
# Makes the self-contained llmctl bundle that `llmctl up` ships to hosts:
#   OUT/llmctl          the binary (rpath $ORIGIN/lib)
#   OUT/lib/*.so*       every shared library it needs that a bare host lacks
#   OUT/../llmctl-VERSION-linux-ARCH.tar.gz
# Left to the host: glibc, and on GPU hosts the NVIDIA driver (libcuda,
# libnvidia-ml), cuBLAS and NCCL, which must match the host's driver.
# Usage: packaging/bundle.sh BUILD_DIR/llmctl OUT_DIR
set -eu
bin=${1:?usage: bundle.sh path/to/llmctl OUT_DIR}
out=${2:?usage: bundle.sh path/to/llmctl OUT_DIR}
[ -x "$bin" ] || { echo "bundle: $bin is not an executable" >&2; exit 2; }

host_provided() {
  case "$1" in
    linux-vdso.so.*|ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*) return 0 ;;
    libcuda.so.*|libnvidia-*|libcublas.so.*|libcublasLt.so.*|libnccl.so.*) return 0 ;;
    # Every Linux host has these; llmctl links its own copies statically, and
    # host libraries (NCCL) must get the host's newer ones, not ours.
    libstdc++.so.*|libgcc_s.so.*) return 0 ;;
    *) return 1 ;;
  esac
}

rm -rf "$out"
mkdir -p "$out/lib"
cp "$bin" "$out/llmctl"
# ldd lists the whole closure; copy each non-host library once.
ldd "$bin" | while read -r name arrow path rest; do
  [ "$arrow" = "=>" ] || continue
  host_provided "$name" && continue
  if [ "$path" = "not" ]; then echo "bundle: $name not found by ldd" >&2; exit 1; fi
  cp -L "$path" "$out/lib/$name"
done
version=$("$out/llmctl" version --no-gpu | sed -n '1s/^llmctl \([^ ]*\).*/\1/p')
arch=$(uname -m)
tarball="$(dirname "$out")/llmctl-$version-linux-$arch.tar.gz"
tar -C "$(dirname "$out")" -czf "$tarball" "$(basename "$out")"
echo "bundle: $out ($(ls "$out/lib" | wc -l) libraries) and $tarball"
