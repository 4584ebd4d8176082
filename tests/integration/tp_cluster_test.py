#!/usr/bin/env python3
"""`llmctl serve --tp 2 --address HEAD:6379` across namespace hosts: a head
with no CPUs to give (so the worker rank must go to another node) and two
agents. Rank 0 serves the API on the head host; rank 1 is placed by the
cluster on an agent and meets rank 0 through the head's KV store.

Checked: with no free CPU in the cluster serve fails at once naming it; the
greedy completion equals `llmctl generate` at tp 1; `llmctl
status` shows the engine's placement group and the node rank 1 runs on; the
worker got GLOO_SOCKET_IFNAME from serve's environment and no token in its
argv; serve stopped with SIGTERM removes the group and leaves no worker on any
node; a second serve whose remote worker is killed turns /health 503 with an
error naming that node, and again leaves no worker behind; with --restart the
killed rank is placed again and the same text comes back; a SIGKILLed serve's
leftover group is removed by the next serve on its host; a worker that dies
before the rendezvous (its node's GLOO_SOCKET_IFNAME names no NIC) fails serve
at once with the rank, its node and its log named."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check, fail, wait_for  # noqa: E402

SHARED = os.environ.get("LLMCTL_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
STORIES = os.path.join(SHARED, "assets", "stories260K")
PROMPT = "Once upon a time, there was a"
API_PORT = 8000


def request(address, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection(address, API_PORT, timeout=timeout)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()


def health(address):
    try:
        return request(address, "GET", "/health", timeout=5)
    except OSError as e:
        return 0, str(e)


def worker_pids(c):
    """Every `llmctl worker` of this run (their argv names the model under c.root)."""
    pids = []
    for p in c.our_pids():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if b"worker" in argv and b"--rendezvous" in argv and stat[stat.rindex(")") + 2] != "Z":
            pids.append(p)
    return pids


def start_serve(c, model, log_path, extra=()):
    argv = [h.LLMCTL, "--state-dir", c.state_dir(c.head), "serve", "--model", model, "--tp", "2",
            "--address", f"{c.head.address}:{h.PORT}", "--placement", "spread", "--host", "0.0.0.0",
            "--port", str(API_PORT), "--max-model-len", "256"] + list(extra)
    env = dict(os.environ, GLOO_SOCKET_IFNAME="eth0", LLMCTL_TOKEN="", LLMCTL_ADDRESS="")
    log = open(log_path, "w")
    proc = subprocess.Popen(c.head._wrap(argv), stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    c.lab._procs.append(proc)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"serve exited with {proc.returncode}: {open(log_path).read()}")
        if health(c.head.address)[0] == 200:
            return proc
        time.sleep(0.2)
    fail(f"serve --tp 2 --address did not become healthy: {open(log_path).read()}")


def stop_serve(proc, log_path):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail(f"serve did not exit on SIGTERM: {open(log_path).read()[-2000:]}")
    return open(log_path).read()


def engine_group(c):
    groups = [g for g in c.status_json()["groups"] if g["name"].startswith("serve ") and g["state"] == "placed"]
    return groups[0] if len(groups) == 1 else None


def main():
    netns.skip_unless_able()
    if not os.path.isdir(STORIES):
        print(f"SKIP: no {STORIES}")
        sys.exit(77)
    ref = subprocess.run([h.LLMCTL, "generate", "--model", STORIES, "--prompt", PROMPT, "--max-tokens", "32",
                          "--temperature", "0", "--ignore-eos", "--json"], capture_output=True, text=True, timeout=60)
    check(ref.returncode == 0, f"generate --tp 1 runs ({ref.stderr.strip()[-300:]})")
    want = json.loads(ref.stdout)["text"]

    with h.Cluster(num_agents=2) as c:
        # The test process reaches the namespace hosts through the bridge.
        netns._sh(["ip", "addr", "add", f"{c.lab.subnet}.1/24", "dev", c.lab.bridge])
        # A path under this run's root: its workers are found (and cleaned up) by it.
        model = os.path.join(c.root, "stories")
        os.mkdir(model)
        for name in os.listdir(STORIES):
            os.symlink(os.path.join(STORIES, name), os.path.join(model, name))
        c.llmctl(c.head, ["start", "--head", "--node-ip-address", c.head.address, "--port", str(h.PORT),
                          "--num-gpus", "0", "--num-cpus", "0", "--resources", json.dumps({"node:lf001": 1})],
                 check_rc=0)
        c.token = json.load(open(os.path.join(c.state_dir(c.head), "cluster.json")))["token"]
        # --- no node can take rank 1 yet: serve fails at once, saying why ---
        r = c.head.run([h.LLMCTL, "--state-dir", c.state_dir(c.head), "serve", "--model", model, "--tp", "2",
                        "--address", f"{c.head.address}:{h.PORT}", "--port", str(API_PORT)], timeout=30,
                       env={"LLMCTL_TOKEN": "", "LLMCTL_ADDRESS": ""})
        check(r.returncode != 0 and "cannot place 1 rank" in r.stderr and "CPU" in r.stderr,
              f"serve on a cluster without a free CPU fails naming what is missing: {r.stderr.strip()[-300:]}")
        check(engine_group(c) is None, "the unplaceable group is not left behind")

        for a in c.agents:
            c.join(a)
        agent_names = {a.hostname for a in c.agents}

        # --- serve across the cluster: same text as tp 1, ranks in status, clean stop ---
        log1 = os.path.join(c.root, "serve1.log")
        t0 = time.time()
        proc = start_serve(c, model, log1)
        print(f"MEASURED: serve --tp 2 --address healthy {time.time() - t0:.2f}s after start")
        status, body = request(c.head.address, "POST", "/v1/completions",
                               {"model": model, "prompt": PROMPT, "max_tokens": 32, "temperature": 0,
                                "ignore_eos": True})
        check(status == 200, f"completion through the cluster engine: {status} {body[:300]}")
        got = json.loads(body)["choices"][0]["text"]
        check(got == want, f"tp 2 across nodes gives the tp 1 text ({got!r} vs {want!r})")

        g = wait_for(lambda: engine_group(c), 10, "the engine's placement group in status")
        check(len(g["bundles"]) == 1 and g["bundles"][0]["state"] == "running", "one worker rank, running")
        nodes = {n["node_id"]: n for n in c.nodes_json()}
        rank1_node = nodes[g["bundles"][0]["node_id"]]
        check(rank1_node["name"] in agent_names or rank1_node["address"] in {a.address for a in c.agents},
              f"rank 1 runs on an agent node ({rank1_node['name']})")
        text = c.llmctl(c.head, ["status"], check_rc=0).stdout
        print(text)
        check(g["name"] in text and "rank 0 on lf001" in text, "status names the engine and where rank 0 runs")
        check(rank1_node["name"] in text.split("Placement groups:")[1], "status names rank 1's node")
        wpid = g["bundles"][0]["pid"]
        with open(f"/proc/{wpid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace")
        with open(f"/proc/{wpid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
        check("worker" in argv and "--rendezvous\0head:" in argv, "the bundle is `llmctl worker` meeting at the head")
        check(c.token not in argv, "the cluster token is not in the worker's argv")
        check(b"GLOO_SOCKET_IFNAME=eth0" in environ, "serve's GLOO_SOCKET_IFNAME reached the remote rank")

        keys = c.llmctl(c.head, ["kv", "list", "dist/"], check_rc=0).stdout
        check("engine-" in keys, f"the ranks met under dist/engine-... in the head's KV ({keys.strip()[:200]})")

        out = stop_serve(proc, log1)
        check(proc.returncode == 0, f"serve exits 0 on SIGTERM ({proc.returncode})")
        wait_for(lambda: not worker_pids(c) or None, 10, "no worker left on any node after serve stopped")
        check(engine_group(c) is None, "the placement group is removed when serve stops")
        keys = c.llmctl(c.head, ["kv", "list", "dist/"], check_rc=0).stdout
        check("engine-" not in keys, f"the rendezvous keys are deleted ({keys.strip()[:200]})")

        # --- a remote rank killed: 503 naming its node, and no worker left ---
        log2 = os.path.join(c.root, "serve2.log")
        proc = start_serve(c, model, log2)
        g = wait_for(lambda: engine_group(c), 10, "the second engine's placement group")
        victim = nodes[g["bundles"][0]["node_id"]]
        os.kill(g["bundles"][0]["pid"], signal.SIGKILL)
        t_kill = time.time()
        code, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(health(c.head.address)), 10,
                              "/health to turn 503 after the remote rank was killed")
        print(f"MEASURED: /health 503 {time.time() - t_kill:.2f}s after kill -9 of rank 1 on {victim['name']}")
        print(body)
        check(victim["name"] in body and "rank 1" in body, f"/health names the dead rank and its node: {body}")
        status, body = request(c.head.address, "POST", "/v1/completions",
                               {"model": model, "prompt": PROMPT, "max_tokens": 4})
        check(status == 503 and victim["name"] in body, f"a new request fails naming the node: {status} {body}")
        out = stop_serve(proc, log2)
        check(f"on node {victim['name']}" in out, "serve's output names the dead rank's node")
        wait_for(lambda: not worker_pids(c) or None, 10, "no worker left after the engine died and serve stopped")
        check(engine_group(c) is None, "the dead engine's placement group is removed")

        # --- --restart: the killed rank is placed again and the engine serves the same text ---
        log3 = os.path.join(c.root, "serve3.log")
        proc = start_serve(c, model, log3, extra=["--restart"])
        g = wait_for(lambda: engine_group(c), 10, "the --restart engine's placement group")
        os.kill(g["bundles"][0]["pid"], signal.SIGKILL)
        t_kill = time.time()

        def serving_again():
            g2 = engine_group(c)
            if g2 and g2["group_id"] != g["group_id"] and g2["bundles"][0]["state"] == "running" \
                    and health(c.head.address)[0] == 200:
                return g2
            return None
        g2 = wait_for(serving_again, 40, "the engine to be placed again and healthy")
        print(f"MEASURED: --restart serves again {time.time() - t_kill:.2f}s after kill -9 of rank 1 "
              f"(new group {g2['group_id']} on {nodes[g2['bundles'][0]['node_id']]['name']})")
        status, body = request(c.head.address, "POST", "/v1/completions",
                               {"model": model, "prompt": PROMPT, "max_tokens": 32, "temperature": 0,
                                "ignore_eos": True})
        check(status == 200 and json.loads(body)["choices"][0]["text"] == want,
              f"the restarted engine gives the tp 1 text: {status} {body[:200]}")
        out = stop_serve(proc, log3)
        check("serves again" in out, "serve says the engine serves again")
        wait_for(lambda: not worker_pids(c) or None, 10, "no worker left after the restarted engine stopped")
        check(engine_group(c) is None, "the restarted engine's group is removed when serve stops")

        # --- serve killed outright: its worker ends, and the next serve removes the leftover group ---
        log4 = os.path.join(c.root, "serve4.log")
        proc = start_serve(c, model, log4)
        g = wait_for(lambda: engine_group(c), 10, "the engine's placement group before serve is killed")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not worker_pids(c) or None, 10, "the worker to end without its rank 0")
        left = [x for x in c.status_json()["groups"] if x["group_id"] == g["group_id"]]
        check(left and left[0]["state"] == "placed", "a SIGKILLed serve leaves its group placed")
        log5 = os.path.join(c.root, "serve5.log")
        proc = start_serve(c, model, log5)
        old = [x for x in c.status_json()["groups"] if x["group_id"] == g["group_id"]]
        check(not old or old[0]["state"] == "removed", f"the next serve on the host removed the leftover group ({old})")
        stop_serve(proc, log5)
        wait_for(lambda: not worker_pids(c) or None, 10, "no worker left")

        # --- a worker that dies before the group meets (its node names a NIC it does not have) ---
        for a in c.agents:
            c.llmctl(a, ["stop"], check_rc=0)
        bad = c.agents[0]
        c.llmctl(bad, ["start", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token, "--node-ip-address",
                       bad.address, "--num-gpus", "0", "--num-cpus", "4"], check_rc=0,
                 env={"GLOO_SOCKET_IFNAME": "bogus0"})
        t0 = time.time()
        r = c.head.run([h.LLMCTL, "--state-dir", c.state_dir(c.head), "serve", "--model", model, "--tp", "2",
                        "--address", f"{c.head.address}:{h.PORT}", "--port", str(API_PORT)], timeout=60,
                       env={"LLMCTL_TOKEN": "", "LLMCTL_ADDRESS": ""})
        took = time.time() - t0
        print(f"MEASURED: serve failed {took:.2f}s after start when rank 1 died before the rendezvous")
        print(r.stderr.strip()[-800:])
        check(r.returncode != 0 and f"rank 1 on node {bad.hostname}" in r.stderr and "rendezvous" in r.stderr
              and "bundles/" in r.stderr, "serve's error names the rank, its node and its log")
        check(took < 20, f"the rendezvous fails at once, not after its time-out ({took:.1f}s)")
        logs = os.path.join(c.state_dir(bad), "agent", "bundles")
        errs = "".join(open(os.path.join(logs, f)).read() for f in os.listdir(logs) if f.endswith(".err"))
        check("bogus0" in errs, "the worker's own error (the missing NIC) is in its node's bundle log")
        wait_for(lambda: not worker_pids(c) or None, 10, "no worker left after the failed start")
    print("PASS")


if __name__ == "__main__":
    main()
