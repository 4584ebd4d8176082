#!/bin/bash
# Tensor parallel on the GPU machine (2, 4 or 8 GPUs), with the pack from
# bench/cuda_device_pack.sh: (1) `generate --device cuda --tp N` gives the
# tp=1 greedy tokens on stories260K and a random-weight Llama-3.2-1B shape;
# (2) `serve --device cuda --tp N` under `llmctl bench` at concurrency 64 for
# a random-weight model (TP_SHAPE, default llama-3.1-8b), with
# LLMCTL_STEP_TIMING=1 so every rank prints its all-reduce GPU time and
# rank 0 its step time at exit: the all-reduce share of the step (decode
# steps replayed as CUDA graphs are not in the all-reduce figure; add
# TP_SERVE_ARGS=--enforce-eager for it). Every generate runs twice, with
# decode graphs and with --enforce-eager, and both must equal tp=1's tokens.
# TP_LOAD_FORMAT=dummy serves seeded random weights made at start-up from
# config.json alone (`--load-format dummy`): the way to run a 70B shape
# (TP_SHAPE=llama-3.1-70b TP_LIST="4 8") without writing 140 GB of files.
# Results go to $OUT (or ./device-out).
#   [TP_LIST="2 4"] [TP_SERVE_ARGS="--enforce-eager"] [TP_CONCURRENCY=64] \
#   [TP_SHAPE=llama-3.1-8b] [TP_LOAD_FORMAT=auto|dummy] bash bench/cuda_device_tp.sh [tokens|throughput|all]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
what=${1:-all}
gpus=$(nvidia-smi -L | wc -l)
tps="1 2"
[ "$gpus" -ge 4 ] && tps="1 2 4"
[ "$gpus" -ge 8 ] && tps="1 2 4 8"
echo "GPUs: $gpus; tp: $tps"

if [ "$what" != throughput ]; then
  small=/tmp/llmctl-bench-llama-3.2-1b
  random_model llama-3.2-1b "$small"
  for model in "$c/stories260K" "$small"; do
    name=$(basename "$model")
    for tp in $tps; do
      # stories260K's intermediate_size 172 does not split 8 ways.
      [ "$name" = stories260K ] && [ "$tp" -gt 4 ] && continue
      for mode in graphs eager; do
        flag=""
        [ "$mode" = eager ] && flag=--enforce-eager
        timeout 180 "$c/llmctl" generate --model "$model" --device cuda --tp "$tp" --max-tokens 48 --temperature 0 \
          --ignore-eos --json $flag --prompt "Once upon a time, in a small village" \
          > "$out/tp_tokens_${name}_${tp}_$mode.json" 2> "$out/tp_tokens_${name}_${tp}_$mode.err"
        echo "generate $name tp=$tp $mode: exit $?"
      done
    done
  done
  python3 - "$out" $tps <<'PY'
import json, os, sys
out, tps = sys.argv[1], sys.argv[2:]
for name in ("stories260K", "llmctl-bench-llama-3.2-1b"):
    runs = {}
    for tp in tps:
        for mode in ("graphs", "eager"):
            key = tp if mode == "graphs" else f"{tp} (eager)"
            try:
                runs[key] = json.load(open(os.path.join(out, f"tp_tokens_{name}_{tp}_{mode}.json")))["token_ids"]
            except Exception as e:  # noqa: BLE001
                print(f"{name} tp={key}: no output ({e})")
    base = runs.get("1")
    for tp, ids in runs.items():
        if base is None or tp == "1":
            continue
        first = next((i for i, (a, b) in enumerate(zip(base, ids)) if a != b), None)
        verdict = "identical" if first is None and len(ids) == len(base) else f"first divergence at token {first}"
        print(f"{name}: tp={tp} vs tp=1 over {len(base)} tokens: {verdict}")
PY
fi

if [ "$what" != tokens ]; then
  shape=${TP_SHAPE:-llama-3.1-8b}
  fmt=${TP_LOAD_FORMAT:-auto}
  model=/tmp/llmctl-bench-$shape
  only=""
  [ "$fmt" = dummy ] && model=$model-config-only && only=--config-only
  t0=$(date +%s)
  random_model "$shape" "$model" $only
  echo "made $shape ($fmt weights) in $(( $(date +%s) - t0 )) s"
  for tp in ${TP_LIST:-$tps}; do
    # 141 GB of bf16 weights need at least four 141 GB GPUs.
    [ "$shape" = llama-3.1-70b ] && [ "$tp" -lt 4 ] && continue
    echo "== serve --device cuda --tp $tp ($shape, random weights)"
    LLMCTL_STEP_TIMING=1 timeout 400 python3 bench/serve_bench.py "$c/llmctl" --model "$model" --name "$shape" \
      --device cuda --tp "$tp" --concurrency ${TP_CONCURRENCY:-64} --prompts-per-client 2 --input-len 512 \
      --output-len 128 --max-model-len 1024 --start-timeout 300 --server-log "$out/serve_tp$tp.log" \
      "--serve-args=--load-format $fmt ${TP_SERVE_ARGS:-}" \
      2>&1 | tee "$out/serve_tp${tp}_$shape.md"
    grep "step timing" "$out/serve_tp$tp.log"
  done
fi
