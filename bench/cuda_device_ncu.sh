#!/bin/bash
# Per-kernel GPU time of decode steps under Nsight Compute, on the GPU
# machine, with the pack from bench/cuda_device_pack.sh: one window of
# consecutive kernel launches inside the eager decode loop of
# cuda_decode_bench (clocks left as found). Output: $OUT/ncu.csv (or ./device-out).
# Usage: bench/cuda_device_ncu.sh [--shape llama-8b] [SKIP [COUNT]]
set -u
out=${OUT:-device-out}
mkdir -p "$out"
shape=${1:-llama-8b}
skip=${2:-3400}
count=${3:-40}
. bench/cuda_device_env.sh
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
"$ncu" --clock-control none --launch-skip "$skip" --launch-count "$count" --csv --print-units base \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,launch__block_size \
  "$c/cuda_decode_bench" --shape "$shape" --steps 8 > "$out/ncu.csv" 2> "$out/ncu.err"
echo "ncu exit $?"
python3 - "$out/ncu.csv" <<'PY'
import csv, re, sys
rows = list(csv.reader(line for line in open(sys.argv[1]) if line.startswith('"')))
head = rows[0]
ki, mi, vi = head.index("Kernel Name"), head.index("Metric Name"), head.index("Metric Value")
ii = head.index("ID")
by = {}
for r in rows[1:]:
    by.setdefault(r[ii], {"k": r[ki]})[r[mi]] = r[vi]
for i, d in sorted(by.items(), key=lambda x: int(x[0])):  # ns and bytes (--print-units base)
    t = float(d.get("gpu__time_duration.sum", "0").replace(",", ""))
    b = float(d.get("dram__bytes_read.sum", "0").replace(",", ""))
    name = d["k"].replace("(anonymous namespace)::", "").split("(")[0][-40:]
    print(f"{i:>4} {name:45s} {t/1000:8.2f} us  dram read {b/1e6:8.2f} MB  {b/t if t else 0:7.1f} GB/s  "
          f"grid={d.get('launch__grid_size')} block={d.get('launch__block_size')}")
PY
