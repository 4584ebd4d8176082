# Sourced by the bench/cuda_device_*.sh scripts on the GPU machine: unpacks
# .device-carry/pack.tar.xz (from bench/cuda_device_pack.sh) into $c when
# `fresh` is set or nothing is unpacked yet, and points the loader at the
# pack's lib/ and at the host's cuBLAS and NCCL (the CUDA toolkit's, else
# PyTorch's wheels), as on any GPU host. serve_run is the serving
# benchmarks' one run; sharegpt_setup their dummy-weight model and prompts.
c=.device-carry/pack
if [ -f .device-carry/pack.tar.xz ] && { [ -n "${fresh:-}" ] || [ ! -d "$c" ]; }; then
  rm -rf "$c"
  mkdir -p "$c"
  tar -C "$c" -xJf .device-carry/pack.tar.xz
fi
extra=/usr/local/cuda/lib64
for lib in libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  [ -e "/usr/local/cuda/lib64/$lib" ] && continue
  found=$(find / -xdev -name "$lib" 2>/dev/null | head -1)
  [ -n "$found" ] && extra="$extra:$(dirname "$found")"
done
export LD_LIBRARY_PATH="$c/lib:$extra:${LD_LIBRARY_PATH:-}"

# serve_run NAME [serve_bench.py arguments]: `llmctl serve --device cuda` on
# $model (named $shape) under serve_bench.py, its table in $out/serve_NAME.md,
# the server's log in $out/serve_NAME.log, and the log's step timing, KV
# cache and start-up lines echoed.
serve_run() {
  local name=$1
  shift
  echo "== $name"
  LLMCTL_STEP_TIMING=1 timeout 300 python3 bench/serve_bench.py "$c/llmctl" --model "$model" --name "$shape" \
    --device cuda --start-timeout 240 --server-log "$out/serve_$name.log" "$@" 2>&1 | tee "$out/serve_$name.md"
  grep -h "step timing\|KV cache\|start-up\|weights:" "$out/serve_$name.log"
}

# random_model SHAPE DIR [--config-only]: the random-weight model of SHAPE
# (bench/make_random_model.py, the real tokenizer of its family) in DIR,
# made once.
random_model() {
  [ -f "$2/config.json" ] || python3 bench/make_random_model.py "$1" "$2" "$c/tokenizers" "${@:3}" >/dev/null
}

# sharegpt_setup: $model = config.json of $shape only (serve with
# --load-format dummy) and $out/sharegpt.jsonl = 1,000 ShareGPT-like prompts,
# each made once.
sharegpt_setup() {
  model=/tmp/llmctl-bench-$shape-config-only
  random_model "$shape" "$model" --config-only
  [ -f "$out/sharegpt.jsonl" ] || python3 bench/make_sharegpt_like.py "$out/sharegpt.jsonl" --num 1000 >/dev/null
}
