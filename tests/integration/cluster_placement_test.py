"""Placement and supervision across namespace hosts: a 2-GPU SPREAD request
over nodes with one GPU each lands on two nodes and starts a process on each
(seen through the files those processes write and the bundle logs); an
impossible request stays pending with its reason in `status`; a bundle that
fails is restarted by policy and its exit code reported."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check, fail, wait_for  # noqa: E402




def main():
    netns.skip_unless_able()
    with h.Cluster(num_agents=3) as c:
        h.start_cluster(c)
        marks = os.path.join(c.root, "marks")
        os.makedirs(marks)
        # Each rank writes where it runs: its hostname comes from the UTS namespace of its node.
        script = f'echo "$LLMCTL_BUNDLE_INDEX $(hostname)" > {marks}/rank$LLMCTL_BUNDLE_INDEX; echo started; exec sleep 60'
        r = c.llmctl(c.agents[0], ["submit", "--name", "tp2", "--strategy", "SPREAD",
                                   "--bundles", json.dumps([{"GPU": 1}, {"GPU": 1}]), "--", "sh", "-c", script],
                     check_rc=0)
        group = json.loads(r.stdout)
        check(group["state"] == "placed", "2-GPU SPREAD request placed")
        nodes = {b["node_id"] for b in group["bundles"]}
        check(len(nodes) == 2, "the two bundles are on two different nodes")
        files = wait_for(lambda: sorted(os.listdir(marks)) if len(os.listdir(marks)) == 2 else None, 10,
                         "both ranks to start")
        hosts = set()
        for f in files:
            with open(os.path.join(marks, f)) as fh:
                hosts.add(fh.read().split()[1])
        check(len(hosts) == 2, f"one process runs on each of two hosts: {sorted(hosts)}")
        st = wait_for(lambda: (lambda s: s if all(b["state"] == "running" for g in s["groups"] for b in g["bundles"])
                               else None)(c.status_json()), 10, "bundles reported running")
        check(st["resources"]["used"]["GPU"] == 2, "status shows 2 GPUs used")
        by_id = {n["node_id"]: n for n in c.nodes_json()}
        for b in group["bundles"]:
            host = next(x for x in [c.head] + c.agents if x.address == by_id[b["node_id"]]["address"])
            out = os.path.join(c.state_dir(host), "agent", "bundles", f"{group['group_id']}-{group['bundles'].index(b)}.out")
            check(os.path.exists(out) and "started" in open(out).read(), f"bundle stdout logged in {host.hostname}'s state dir")

        # --- kill -9 a node running a bundle: the bundle is placed again on a free GPU elsewhere ---
        by_id = {n["node_id"]: n for n in c.nodes_json()}
        hosts_by_addr = {x.address: x for x in [c.head] + c.agents}
        victim_index, victim = next((i, hosts_by_addr[by_id[b["node_id"]]["address"]])
                                    for i, b in enumerate(group["bundles"])
                                    if hosts_by_addr[by_id[b["node_id"]]["address"]] is not c.head)
        mark = os.path.join(marks, f"rank{victim_index}")
        os.remove(mark)
        t_kill = time.time()
        os.kill(c.pid(victim, "agent"), 9)

        def moved():
            try:
                with open(mark) as fh:
                    host = fh.read().split()[1]
            except (OSError, IndexError):
                return None
            return host if host != victim.hostname else None
        new_host = wait_for(moved, 10, "the lost bundle to start on another node")
        print(f"MEASURED: bundle {victim_index} restarted on {new_host} {time.time() - t_kill:.2f}s after kill -9 of "
              f"{victim.hostname}")
        check(new_host not in hosts, f"the lost bundle runs on a node that had none of the group ({new_host})")
        g = next(g for g in c.status_json()["groups"] if g["group_id"] == group["group_id"])
        check(by_id[g["bundles"][victim_index]["node_id"]]["address"] != victim.address
              and g["bundles"][1 - victim_index]["node_id"] == group["bundles"][1 - victim_index]["node_id"],
              "status shows the bundle on its new node and the other one where it was")
        check(len({b["node_id"] for b in g["bundles"]}) == 2, "SPREAD still holds: two different nodes")

        # --- impossible: pending, with the reason in status ---
        r = c.llmctl(c.head, ["submit", "--name", "huge", "--strategy", "STRICT_SPREAD",
                              "--bundles", json.dumps([{"GPU": 1}] * 5), "--", "true"], check_rc=0)
        check(json.loads(r.stdout)["state"] == "pending", "a 5-node STRICT_SPREAD request on 4 nodes stays pending")
        text = c.llmctl(c.agents[1], ["status"], check_rc=0).stdout
        print(text)
        pend = text.split("Pending demands:")[1]
        check("huge" in pend and "STRICT_SPREAD" in pend and "reason:" in pend, "status shows the pending demand and why")

        # --- restart policy and exit codes ---
        r = c.llmctl(c.head, ["submit", "--name", "flaky", "--strategy", "PACK", "--restart", "on_failure",
                              "--max-restarts", "2", "--bundles", json.dumps([{"CPU": 1}]), "--", "sh", "-c", "exit 3"],
                     check_rc=0)
        gid = json.loads(r.stdout)["group_id"]

        def flaky_done():
            s = c.status_json()
            for g in s["groups"]:
                if g["group_id"] == gid and g["bundles"][0]["state"] == "failed":
                    return g
            return None
        g = wait_for(flaky_done, 15, "the flaky bundle to fail for good")
        check(g["bundles"][0]["exit_code"] == 3 and g["bundles"][0]["num_restarts"] == 2,
              "a failing bundle is restarted twice, then reported failed with exit code 3")
        failures = " ".join(f["what"] for f in c.status_json()["failures"])
        check("exited with code 3" in failures, "bundle failures show under recent failures")
    print("PASS")


if __name__ == "__main__":
    main()
