#!/usr/bin/env python3
"""GPU indices across real daemons in namespace hosts (issue #9): a head node
started with `--num-gpus 2` gives two 1-GPU bundles the indices 0 and 1 (each
process sees its own CUDA_VISIBLE_DEVICES), a third 1-GPU request waits with
its reason, `llmctl status` (JSON and text) shows the indices, a removed
group's index goes to the waiting one, a restarted head keeps the indices,
an agent started with its own CUDA_VISIBLE_DEVICES hands its bundles
the devices that list names, and a second agent on the head's own address
(own state dir) is registered by the time `start` returns. No GPU is needed: the processes only print
what they were given."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check, wait_for  # noqa: E402


def seen(marks, prefix):
    """CUDA_VISIBLE_DEVICES of every process that wrote marks/PREFIX.PID, by pid."""
    out = {}
    for name in os.listdir(marks):
        if name.startswith(prefix + "."):
            with open(os.path.join(marks, name)) as f:
                text = f.read()
            if text.endswith("\n"):
                out[name] = text.strip()
    return out


def submit(c, host, name, bundles, marks, strategy="PACK"):
    script = f'echo "$CUDA_VISIBLE_DEVICES" > {marks}/{name}.$$; exec sleep 60'
    r = c.llmctl(host, ["submit", "--name", name, "--strategy", strategy, "--bundles", json.dumps(bundles),
                        "--", "sh", "-c", script], check_rc=0)
    return json.loads(r.stdout)


def group_of(c, group_id):
    return next((g for g in c.status_json()["groups"] if g["group_id"] == group_id), None)


def main():
    netns.skip_unless_able()
    with h.Cluster(num_agents=1, gpus_per_node=2) as c:
        c.agents, spare = [], c.agents  # lf002 joins later, with its own CUDA_VISIBLE_DEVICES
        h.start_cluster(c)
        marks = os.path.join(c.root, "marks")
        os.makedirs(marks)

        # --- two 1-GPU bundles on the 2-GPU head node: indices 0 and 1, one each ---
        first = submit(c, c.head, "pair", [{"GPU": 1}, {"GPU": 1}], marks)
        check(first["state"] == "placed", "two 1-GPU bundles placed on the 2-GPU node")
        check(sorted(b["gpu_indices"] for b in first["bundles"]) == [[0], [1]],
              f"the head gave them GPU indices 0 and 1: {[b['gpu_indices'] for b in first['bundles']]}")
        got = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(seen(marks, "pair")), 10, "both processes")
        check(sorted(got.values()) == ["0", "1"],
              f"the two processes saw CUDA_VISIBLE_DEVICES 0 and 1: {sorted(got.values())}")

        # --- a third waits: no GPU left ---
        third = submit(c, c.head, "third", [{"GPU": 1}], marks)
        check(third["state"] == "pending" and "GPU" in third.get("reason", ""),
              f"a third 1-GPU request waits, saying why: {third['state']} {third.get('reason')!r}")
        time.sleep(0.5)
        check(not seen(marks, "third"), "nothing runs for the waiting request")

        # --- status shows the indices, per bundle ---
        st = c.status_json()
        g = next(g for g in st["groups"] if g["group_id"] == first["group_id"])
        check([b["gpu_indices"] for b in g["bundles"]] == [b["gpu_indices"] for b in first["bundles"]],
              "status --json shows each bundle's GPU indices")
        check(any(p["group_id"] == third["group_id"] for p in st["pending"]), "status --json lists the waiting request")
        text = c.llmctl(c.head, ["status"], check_rc=0).stdout
        check(" gpus 0 " in text and " gpus 1 " in text, "the status text shows the indices")

        # --- the pair goes: the waiting request is placed on a freed index ---
        c.llmctl(c.head, ["submit", "--remove", first["group_id"]], check_rc=0)
        t = wait_for(lambda: (lambda s: s if s else None)(seen(marks, "third")), 10, "the waiting request to start")
        check(list(t.values()) == ["0"], f"it runs on the lowest freed index: {list(t.values())}")
        check(group_of(c, third["group_id"])["bundles"][0]["gpu_indices"] == [0], "status says index 0")

        # --- a head killed and started again keeps the indices (its agent runs on) ---
        os.kill(c.pid(c.head, "head"), signal.SIGKILL)
        h.start_cluster(c)
        g = wait_for(lambda: (lambda g: g if g and g["bundles"][0]["state"] == "running" else None)(
            group_of(c, third["group_id"])), 15, "the group running after the restart")
        check(g["bundles"][0]["gpu_indices"] == [0], "after kill -9 and `start --head`, the group still holds index 0")
        check(len(seen(marks, "third")) == 1, "and its process was not started again")
        again = submit(c, c.head, "after", [{"GPU": 1}], marks)
        check(again["state"] == "placed" and again["bundles"][0]["gpu_indices"] == [1],
              f"the next request gets index 1, not the held 0: {again['bundles'][0]['gpu_indices']}")

        # --- an agent with its own CUDA_VISIBLE_DEVICES: indices map through it ---
        c.agents = spare
        c.llmctl(spare[0], ["start", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token,
                            "--node-ip-address", spare[0].address, "--num-gpus", "2", "--num-cpus", "4",
                            "--resources", json.dumps({"node:lf002": 1})],
                 env={"CUDA_VISIBLE_DEVICES": "GPU-bbb,GPU-aaa"}, check_rc=0)
        remote = submit(c, c.head, "remote", [{"GPU": 1, "node:lf002": 1}], marks)
        check(remote["state"] == "placed" and remote["bundles"][0]["gpu_indices"] == [0], "placed on lf002, index 0")
        r = wait_for(lambda: (lambda s: s if s else None)(seen(marks, "remote")), 10, "the lf002 process")
        check(list(r.values()) == ["GPU-bbb"],
              f"index 0 is the first device the agent's CUDA_VISIBLE_DEVICES names: {list(r.values())}")

        # --- a second agent on the head's host and address (its own state dir, as
        # bench/cuda_device_tp_cluster.sh's spread case): `start --address` returns
        # only once that agent is registered, not when the head's node (same address)
        # is, so a request submitted right after is placed on it, not left pending ---
        second = os.path.join(c.root, "lf001-second")
        env = dict(LLMCTL_ADDRESS="", LLMCTL_TOKEN="", CUDA_VISIBLE_DEVICES="GPU-ccc")
        r = c.head.run([h.LLMCTL, "--state-dir", second, "start", "--address", f"{c.head.address}:{h.PORT}",
                        "--token", c.token, "--node-ip-address", c.head.address, "--num-gpus", "1", "--num-cpus", "2",
                        "--node-name", "lf001-second", "--resources", json.dumps({"node:lf001b": 1})], env=env, timeout=30)
        check(r.returncode == 0, f"a second agent on the head's address starts: {r.returncode} {r.stderr.strip()}")
        try:
            with open(os.path.join(second, "logs", "agent.log")) as f:
                log = f.read()
        except FileNotFoundError:
            log = ""
        check("registered with the head" in log, "its agent had registered when `start` returned")
        late = submit(c, c.head, "late", [{"GPU": 1, "node:lf001b": 1}], marks, strategy="SPREAD")
        check(late["state"] == "placed" and late["bundles"][0]["gpu_indices"] == [0],
              f"a request right after `start` returns is placed on the new node: {late['state']} {late.get('reason')!r}")
        nodes = {n["name"]: n for n in c.status_json()["nodes"]}
        check("lf001-second" in nodes and nodes["lf001-second"]["state"] == "Active"
              and nodes["lf001-second"]["address"] == c.head.address,
              "status --json lists it Active at the head's address")
        r = wait_for(lambda: (lambda s: s if s else None)(seen(marks, "late")), 10, "the second agent's process")
        check(list(r.values()) == ["GPU-ccc"], f"it runs with the second agent's device: {list(r.values())}")
        c.head.run([h.LLMCTL, "--state-dir", second, "stop"], env=env, timeout=30)
    print("PASS")


if __name__ == "__main__":
    main()
