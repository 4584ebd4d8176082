"""The control plane as users drive it, in network namespaces: a head host
(lf001) and three agent hosts. Joining, status/nodes (text and JSON), a
second head refused, wrong token refused and logged, garbage and half-open
connections harmless, kill -9 of an agent detected within 2 s, graceful stop
shown at once, kill -9 of the head recovered with agents and KV intact."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check, fail  # noqa: E402


def main():
    netns.skip_unless_able()
    with h.Cluster(num_agents=3) as c:
        t0 = time.time()
        out = h.start_cluster(c)
        print(f"cluster of 4 up in {time.time() - t0:.2f}s")
        head, a1, a2, a3 = c.head, c.agents[0], c.agents[1], c.agents[2]

        # --- joined, Active, right resources: JSON and text, from any node ---
        nodes = c.nodes_json()
        check(len(nodes) == 4, "4 nodes listed")
        check(all(n["state"] == "Active" for n in nodes), "all nodes Active")
        by_addr = {n["address"]: n for n in nodes}
        check(by_addr[head.address]["role"] == "head", "head node has role head")
        for a in c.agents:
            n = by_addr[a.address]
            check(n["role"] == "worker" and n["name"] == a.hostname, f"{a.hostname} is a worker named by its hostname")
            check(n["resources"]["GPU"] == 1 and n["resources"]["CPU"] == 4, f"{a.hostname} offers GPU 1, CPU 4")
            check(n["resources"].get(f"node:{a.hostname}") == 1, f"{a.hostname} has its custom resource")
            check(n["heartbeat_age_ms"] is not None and n["heartbeat_age_ms"] < 1000, f"{a.hostname} heartbeat is fresh")
        st = c.status_json(a2)
        check(st["resources"]["total"]["GPU"] == 4, "status (asked on a worker) totals 4 GPUs")
        text = c.llmctl(a3, ["status"], check_rc=0).stdout
        print(text)
        check("Active:\n 4 nodes" in text and "0.0/4.0 GPU" in text and "0.0/16.0 CPU" in text,
              "status text shows 4 Active nodes and GPU/CPU used/total")
        check("1.0 node:lf002" in text, "status text shows custom resources")
        table = c.llmctl(a1, ["nodes"], check_rc=0).stdout
        print(table)
        check(table.startswith("NODE_ID") and table.count("Active") == 4, "nodes text lists 4 Active nodes")
        outside = c.llmctl(a1, ["nodes", "--json", "--address", f"{head.address}:{h.PORT}", "--token", c.token],
                           check_rc=0)
        check(len(json.loads(outside.stdout)) == 4, "nodes works with explicit --address/--token")
        check(all("gpus" not in n["usage"] for n in json.loads(outside.stdout)),
              "no GPU usage is reported on GPU-less hosts (NVML absent)")
        check("no GPUs reported" in text, "status text says when a node reports no GPUs")

        # --- --config cluster.toml names the head; the token from --token or what `up` kept ---
        toml = os.path.join(c.root, "lf.toml")
        with open(toml, "w") as f:
            f.write(f'[cluster]\nname = "lf"\n[ports]\nhead = {h.PORT}\n'
                    f'[head]\nhost = "lf001"\nnode_ip = "{head.address}"\n')
        r = c.llmctl(a1, ["status", "--config", toml, "--token", c.token], check_rc=0)
        check("Active:\n 4 nodes" in r.stdout, "status --config cluster.toml --token reaches the head")
        # A machine outside the cluster (no cluster.json of its own): no token anywhere is an error that says so.
        outside_dir = os.path.join(c.root, "outside")
        r = a1.run([h.LLMCTL, "--state-dir", outside_dir, "nodes", "--config", toml],
                   env={"LLMCTL_ADDRESS": "", "LLMCTL_TOKEN": ""})
        check(r.returncode != 0 and "no token" in r.stderr and "llmctl up" in r.stderr,
              f"nodes --config without a token says how to get one: {r.stderr.strip()}")
        os.makedirs(os.path.join(outside_dir, "clusters"))
        with open(os.path.join(outside_dir, "clusters", "lf.json"), "w") as f:
            json.dump({"address": f"{head.address}:{h.PORT}", "token": c.token}, f)
        r = a1.run([h.LLMCTL, "--state-dir", outside_dir, "nodes", "--json", "--config", toml],
                   env={"LLMCTL_ADDRESS": "", "LLMCTL_TOKEN": ""})
        check(r.returncode == 0 and len(json.loads(r.stdout)) == 4,
              "nodes --config uses the token `up` keeps in <state>/clusters/<name>.json")

        # --- a second head on the same node is refused ---
        r = c.llmctl(head, ["start", "--head", "--node-ip-address", head.address, "--port", str(h.PORT)])
        check(r.returncode != 0 and "already running" in r.stderr, "second start --head says so and fails")

        # --- wrong token: refused, logged with the peer address ---
        r = c.llmctl(a1, ["nodes", "--address", f"{head.address}:{h.PORT}", "--token", "0" * 64])
        check(r.returncode != 0 and "token" in r.stderr, f"wrong token refused: {r.stderr.strip()}")
        time.sleep(0.2)
        lines = [l for l in c.log_text(head, "head.log").splitlines()
                 if a1.address in l and "refused" in l and "token" in l]
        check(len(lines) >= 1, f"head log names the peer that used a wrong token: {lines[:1]}")

        # --- random bytes, an oversized header and a half-open connection ---
        junk = [h.raw_connect(a2, head.address, h.PORT, os.urandom(64)),
                h.raw_connect(a2, head.address, h.PORT, b"\xff\xff\xff\xff" + b"x" * 16),
                h.raw_connect(a2, head.address, h.PORT, b"\x00\x00\x00\x05{bad}"),
                h.raw_connect(a3, head.address, h.PORT, None, keep_open=True)]
        time.sleep(1.5)
        nodes = c.nodes_json(a1)
        check(all(n["state"] == "Active" for n in nodes), "garbage and a half-open connection disturb nobody")
        for p in junk:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)

        # --- KV before the head restart ---
        c.llmctl(a1, ["kv", "put", "rdv/nccl", "10.0.0.1:29500"], check_rc=0)
        check(c.llmctl(a2, ["kv", "get", "rdv/nccl"], check_rc=0).stdout.strip() == "10.0.0.1:29500",
              "KV value put on one node is read on another")

        # --- kill -9 an agent: Dead within 2 s ---
        pid = c.pid(a3, "agent")
        check(pid > 0, "agent pid file exists")
        t_kill = time.time()
        os.kill(pid, signal.SIGKILL)
        n = c.wait_state(a3.address, "Dead", timeout=5)
        detected = time.time() - t_kill
        print(f"MEASURED: kill -9 of an agent detected as Dead after {detected:.3f}s (reason: {n['reason']})")
        check(detected < 2.0, f"agent death detected within 2 s ({detected:.3f}s)")
        check("heartbeat" in n["reason"], "reason says heartbeats were missed")
        text = c.llmctl(head, ["status"], check_rc=0).stdout
        check("Recent failures" in text and a3.address in text.split("Recent failures")[1],
              "status lists the death under recent failures")

        # --- the same node comes back as the same node ---
        c.join(a3)
        n2 = c.wait_state(a3.address, "Active", timeout=5)
        check(n2["node_id"] == n["node_id"], "a restarted agent rejoins with the same node id")
        check(len(c.nodes_json()) == 4, "still 4 nodes, no duplicate")

        # --- graceful stop: left at once ---
        t_stop = time.time()
        r = c.llmctl(a2, ["stop"], check_rc=0)
        n = c.node_by_address(a2.address)
        elapsed = time.time() - t_stop
        check(n["state"] == "Dead" and n["reason"] == "stopped",
              f"graceful stop shows the node Dead/stopped right after `stop` returns ({elapsed:.3f}s)")

        # --- kill -9 the head, start it again: same nodes, KV intact, agents untouched ---
        agent_pids = {a.hostname: c.pid(a, "agent") for a in (a1, a3)}
        os.kill(c.pid(head, "head"), signal.SIGKILL)
        time.sleep(0.5)
        c.start_head()
        deadline = time.time() + 10
        while time.time() < deadline:
            by_addr = {n["address"]: n for n in c.nodes_json()}
            if all(by_addr[a.address]["state"] == "Active" and by_addr[a.address]["heartbeat_age_ms"] is not None
                   for a in (a1, a3)):
                break
            time.sleep(0.1)
        print(f"agents re-attached {time.time() - (deadline - 10):.2f}s after the head restart returned")
        nodes = c.nodes_json()
        by_addr = {n["address"]: n for n in nodes}
        check(len(nodes) == 4, "the restarted head knows the same 4 nodes")
        check(by_addr[a2.address]["state"] == "Dead", "the stopped node stays Dead after the restart")
        check(all(by_addr[a.address]["heartbeat_age_ms"] is not None for a in (a1, a3)),
              "agents re-attached and heartbeat again")
        check({a.hostname: c.pid(a, "agent") for a in (a1, a3)} == agent_pids, "agents were not restarted")
        check(c.llmctl(a1, ["kv", "get", "rdv/nccl"], check_rc=0).stdout.strip() == "10.0.0.1:29500",
              "KV contents survived kill -9 of the head")

        # --- stop everything ---
        for a in (a1, a3):
            c.llmctl(a, ["stop"], check_rc=0)
        r = c.llmctl(head, ["stop"], check_rc=0)
        check("Stopped the head" in r.stdout, "stop on the head node stops the head")
        check(c.pid(head, "head") == 0 or not os.path.exists(f"/proc/{c.pid(head, 'head')}"), "head process gone")
    print("PASS")


if __name__ == "__main__":
    main()
