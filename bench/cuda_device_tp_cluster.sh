#!/bin/bash
# `serve --device cuda --tp 2 --address HEAD` on the GPU machine (2 GPUs),
# with the pack from bench/cuda_device_pack.sh (issue #9). Two clusters on
# this one host, each with its own state dirs and ports:
#   pack:   one node (the head's) started with --num-gpus 2; PACK puts rank 1
#           beside rank 0's reserved GPU, so the head must give them indices 0 and 1;
#   spread: the head's node sees GPU 0 only, a second node (own state dir,
#           its agent started with CUDA_VISIBLE_DEVICES=1) GPU 1; SPREAD puts
#           rank 1 there, its index 0 mapped through that agent's list to device 1.
#           (`start --address` returns once that agent is registered; the case
#           still waits for both nodes in `status --json` before serve submits.)
# Each case: one greedy /v1/completions must equal `llmctl generate --device
# cuda` (tp 1); `llmctl status --json` must show the two ranks' GPU indices;
# then serve, the agents and the head are stopped. Exit 0 only when both pass.
# Results go to $OUT (or ./device-out).
#   bash bench/cuda_device_tp_cluster.sh
set -u
out=${OUT:-device-out}
mkdir -p "$out"
. bench/cuda_device_env.sh
L="$c/llmctl"
model="$c/stories260K"
prompt="Once upon a time, in a small village"
root=$(mktemp -d /tmp/llmctl-tp-cluster-XXXXXX)
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  for d in "$root"/*/; do
    [ -d "$d" ] && LLMCTL_TOKEN= "$L" --state-dir "$d" stop >/dev/null 2>&1
  done
  serve_pid=""
}
trap 'cleanup; rm -rf "$root"' EXIT
export LLMCTL_TOKEN= LLMCTL_ADDRESS=

nvidia-smi -L | tee "$out/tp_cluster_gpus.txt"
if [ "$(nvidia-smi -L | wc -l)" -lt 2 ]; then echo "SKIP: needs 2 GPUs"; exit 77; fi
timeout 120 "$L" generate --model "$model" --device cuda --prompt "$prompt" --max-tokens 32 --temperature 0 \
  --ignore-eos --json > "$out/tp_cluster_ref.json" 2> "$out/tp_cluster_ref.err" || { echo "FAIL: generate"; exit 1; }

# run_case NAME PORT API PLACEMENT HEAD_GPUS HEAD_CVD [SECOND_CVD]
run_case() {
  local name=$1 port=$2 api=$3 placement=$4 head_gpus=$5 head_cvd=$6 second_cvd=${7:-}
  local a="$root/$name-a" b="$root/$name-b" log="$out/tp_cluster_${name}_serve.log"
  echo "== $name: head --num-gpus $head_gpus (CUDA_VISIBLE_DEVICES=$head_cvd)${second_cvd:+, second node CUDA_VISIBLE_DEVICES=$second_cvd}, --placement $placement"
  CUDA_VISIBLE_DEVICES=$head_cvd "$L" --state-dir "$a" start --head --port "$port" --node-ip-address 127.0.0.1 \
    --num-gpus "$head_gpus" --node-name "$name-a" > "$out/tp_cluster_${name}_start.txt" 2>&1 || {
    echo "FAIL: start --head"; cat "$out/tp_cluster_${name}_start.txt"; return 1; }
  local token
  token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$a/cluster.json")
  if [ -n "$second_cvd" ]; then
    CUDA_VISIBLE_DEVICES=$second_cvd "$L" --state-dir "$b" start --address "127.0.0.1:$port" --token "$token" \
      --node-ip-address 127.0.0.1 --num-gpus 1 --node-name "$name-b" >> "$out/tp_cluster_${name}_start.txt" 2>&1 || {
      echo "FAIL: start --address"; cat "$out/tp_cluster_${name}_start.txt"; return 1; }
  fi
  # Every node of the case Active with its GPU before serve submits its group
  # (serve fails at once on a group the head cannot place yet).
  python3 - "$L" "$a" "${second_cvd:+2}" "$out/tp_cluster_${name}_nodes.json" <<'PY' || { echo "FAIL: nodes"; return 1; }
import json, subprocess, sys, time
llmctl, state, want, nodes_out = sys.argv[1], sys.argv[2], int(sys.argv[3] or 1), sys.argv[4]
deadline = time.time() + 30
while True:
    r = subprocess.run([llmctl, "--state-dir", state, "status", "--json"], capture_output=True, text=True)
    nodes = json.loads(r.stdout)["nodes"] if r.returncode == 0 else []
    alive = [n for n in nodes if n["state"] == "Active" and n["resources"].get("GPU", 0) >= 1]
    if len(alive) >= want:
        json.dump(nodes, open(nodes_out, "w"), indent=2)
        print("nodes:", [(n["name"], n["node_id"], n["resources"].get("GPU")) for n in alive])
        break
    if time.time() > deadline:
        sys.exit(f"only {len(alive)} of {want} nodes Active with a GPU within 30 s: {r.stdout or r.stderr}")
    time.sleep(0.2)
PY
  local t0
  t0=$(date +%s.%N)
  # serve sees the devices its node's agent sees (rank 0 drives the index the head gave it).
  CUDA_VISIBLE_DEVICES=$head_cvd "$L" --state-dir "$a" serve --model "$model" --device cuda --tp 2 \
    --address "127.0.0.1:$port" --placement "$placement" --port "$api" --max-model-len 256 > "$log" 2>&1 &
  serve_pid=$!
  python3 - "$api" "$serve_pid" "$out/tp_cluster_ref.json" "$prompt" "$t0" "$L" "$a" "$out/tp_cluster_${name}_status.json" "$model" <<'PY'
import json, os, subprocess, sys, time, urllib.request
api, pid, ref, prompt, t0, llmctl, state, status_out, model = sys.argv[1:10]
want = json.load(open(ref))["text"]
deadline = time.time() + 240
while True:
    try:
        os.kill(int(pid), 0)
    except OSError:
        sys.exit("FAIL: serve exited before it was healthy (see its log)")
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=5).status == 200:
            break
    except Exception:  # noqa: BLE001
        pass
    if time.time() > deadline:
        sys.exit("FAIL: serve not healthy within 240 s")
    time.sleep(0.5)
print(f"healthy {time.time() - float(t0):.1f} s after serve started")
body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 32, "temperature": 0, "ignore_eos": True}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{api}/v1/completions", body, {"Content-Type": "application/json"})
got = json.load(urllib.request.urlopen(req, timeout=120))["choices"][0]["text"]
print(f"tp 2 across the cluster: {got!r}")
print(f"generate tp 1:           {want!r}")
status = json.loads(subprocess.run([llmctl, "--state-dir", state, "status", "--json"], capture_output=True, text=True,
                                   check=True).stdout)
json.dump(status, open(status_out, "w"), indent=2)
groups = [g for g in status["groups"] if g["name"].startswith("serve ") and g["state"] == "placed"]
nodes = {n["node_id"]: n["name"] for n in status["nodes"]}
ranks = [(nodes.get(b["node_id"]), b["state"], b["gpu_indices"]) for b in groups[0]["bundles"]] if len(groups) == 1 else []
print(f"ranks (node, state, GPU indices): {ranks}")
ok = got == want and len(ranks) == 2 and ranks[0][1] == "reserved" and ranks[1][1] == "running"
ok = ok and (ranks[0][0] != ranks[1][0] or ranks[0][2] != ranks[1][2])
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
  local rc=$?
  [ $rc -ne 0 ] && tail -5 "$log"
  cleanup
  return $rc
}

run_case pack 16379 18001 pack 2 0,1
pack_rc=$?
run_case spread 16479 18002 spread 1 0 1
spread_rc=$?
echo "tp_cluster: pack exit $pack_rc, spread exit $spread_rc"
[ $pack_rc -eq 0 ] && [ $spread_rc -eq 0 ]
