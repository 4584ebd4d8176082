#!/bin/sh
# Grep throughput of `llmctl logs` against `grep -E` on the same generated
# files (issue #11). Generates SIZE_MB of llmctl-format log lines in a scratch
# state dir (4 files, like a head, an agent and two jobs), then times:
#   full scan, rare pattern:   llmctl logs --grep P --max-lines 1000000000  vs  grep -E P
#   full scan, common pattern: the same with a pattern on ~1 % of the lines
#   first lines:               llmctl logs --grep COMMON (default --max-lines 1000)
# Usage: bench/logs_grep_bench.sh LLMCTL_BIN [SIZE_MB=1024] [WORK_DIR=/tmp/llmctl-logs-bench]
set -eu
bin=${1:?usage: logs_grep_bench.sh LLMCTL_BIN [SIZE_MB] [WORK_DIR]}
size_mb=${2:-1024}
work=${3:-/tmp/llmctl-logs-bench}
state="$work/state"
if [ ! -f "$work/.done-$size_mb" ]; then
  rm -rf "$work"
  mkdir -p "$state/logs" "$state/bundles"
  python3 - "$state" "$size_mb" <<'PY'
import os, random, sys, time
state, size_mb = sys.argv[1], int(sys.argv[2])
files = [("logs/head.log", "head"), ("logs/agent.log", "agent"), ("bundles/tp-0.err", "job/tp-0"), ("bundles/tp-1.err", "job/tp-1")]
words = ("heartbeat from lf002 usage cpu=0.31 mem=0.42 step batch=64 tokens=512 kv_blocks=1833 "
         "scheduler decode prefill allocated freed preempted request finished latency ms").split()
rng = random.Random(7)
t0 = time.mktime((2026, 11, 28, 0, 0, 0, 0, 0, -1))
per_file = size_mb * (1 << 20) // len(files)
for path, comp in files:
    with open(os.path.join(state, path), "w") as f:
        written, i, t = 0, 0, t0
        chunk = []
        while written < per_file:
            t += 0.0007
            ms = int((t % 1) * 1000)
            msg = " ".join(rng.choice(words) for _ in range(12))
            if i % 100 == 7:
                msg = "NCCL WARN connection closed by peer " + msg
            if i % 1_000_000 == 500_000:
                msg = "[Gloo] Connection refused: 10.0.0.3:30007"
            line = "%s.%03d info  [%s] node=lf001 pid=77 %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)), ms, comp, msg)
            chunk.append(line)
            written += len(line)
            i += 1
            if len(chunk) >= 10000:
                f.write("".join(chunk)); chunk = []
        f.write("".join(chunk))
PY
  touch "$work/.done-$size_mb"
fi
files="$state/logs/head.log $state/logs/agent.log $state/bundles/tp-0.err $state/bundles/tp-1.err"
total=$(cat $files | wc -c)
cat $files > /dev/null  # page cache: both tools read from memory
secs() { python3 -c 'import sys,time,subprocess; t=time.time(); subprocess.run(sys.argv[1], shell=True, check=False); print("%.3f" % (time.time()-t))' "$1"; }
for pat in 'Gloo.*refused' 'NCCL WARN'; do
  n_llmctl=$("$bin" --state-dir "$state" logs --grep "$pat" --max-lines 1000000000 2>/dev/null | wc -l)
  n_grep=$(grep -E -h "$pat" $files | wc -l)
  t_llmctl=$(secs "'$bin' --state-dir '$state' logs --grep '$pat' --max-lines 1000000000 > $work/out.txt 2>/dev/null")
  t_grep=$(secs "grep -E -h '$pat' $files > $work/out.txt")  # not /dev/null: GNU grep stops at the first match then
  python3 -c 'import sys; tot,tl,tg=float(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print("{\"pattern\": \"%s\", \"bytes\": %d, \"matches_llmctl\": %s, \"matches_grep\": %s, \"llmctl_s\": %.3f, \"grep_s\": %.3f, \"llmctl_MBps\": %.0f, \"grep_MBps\": %.0f}" % (sys.argv[4], tot, sys.argv[5], sys.argv[6], tl, tg, tot/1e6/tl, tot/1e6/tg))' "$total" "$t_llmctl" "$t_grep" "$pat" "$n_llmctl" "$n_grep"
done
t_first=$(secs "'$bin' --state-dir '$state' logs --grep 'NCCL WARN' > /dev/null 2>&1")
echo "{\"first_1000_lines_s\": $t_first, \"pattern\": \"NCCL WARN\"}"
