"""Shared set-up for the cluster_*.py tests: a head host and agent hosts in
network namespaces (netns.py), each node with its own state dir, plus
clean-up that kills every llmctl daemon started under this run's state root
(daemons detach with setsid, so the lab's process list does not hold them).
Standard library only."""

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")
PORT = 6379


def wait_for(pred, timeout, what):
    """Polls pred until it returns something true (returned), or fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def fail(msg):
    print(f"FAIL: {msg}")
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}")


class Cluster:
    def __init__(self, num_agents=3, gpus_per_node=1):
        self.root = tempfile.mkdtemp(prefix="llmctl-cluster-")
        self.num_agents = num_agents
        self.gpus = gpus_per_node
        self.lab = netns.NetnsLab()
        self.head = None
        self.agents = []
        self.token = None

    def __enter__(self):
        self.lab.__enter__()
        try:
            self.head = self.lab.add_host("lf001")
            for i in range(self.num_agents):
                self.agents.append(self.lab.add_host(f"lf00{i + 2}"))
            self.lab.write_hosts()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def state_dir(self, host):
        return os.path.join(self.root, host.hostname)

    def llmctl(self, host, args, timeout=30, check_rc=None, env=None):
        r = host.run([LLMCTL, "--state-dir", self.state_dir(host)] + list(args), timeout=timeout,
                     env=dict({"LLMCTL_ADDRESS": "", "LLMCTL_TOKEN": ""}, **(env or {})))
        if check_rc is not None and r.returncode != check_rc:
            fail(f"llmctl {' '.join(args)} on {host.hostname}: exit {r.returncode}, want {check_rc}\n"
                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def start_head(self, extra=()):
        r = self.llmctl(self.head, ["start", "--head", "--node-ip-address", self.head.address, "--port", str(PORT),
                                    "--num-gpus", str(self.gpus), "--num-cpus", "4",
                                    "--resources", json.dumps({"node:lf001": 1})] + list(extra), check_rc=0)
        return r

    def join(self, host):
        return self.llmctl(host, ["start", "--address", f"{self.head.address}:{PORT}", "--token", self.token,
                                  "--node-ip-address", host.address, "--num-gpus", str(self.gpus), "--num-cpus", "4",
                                  "--resources", json.dumps({f"node:{host.hostname}": 1})], check_rc=0)

    def nodes_json(self, host=None, extra=()):
        r = self.llmctl(host or self.head, ["nodes", "--json"] + list(extra), check_rc=0)
        return json.loads(r.stdout)

    def status_json(self, host=None):
        r = self.llmctl(host or self.head, ["status", "--json"], check_rc=0)
        return json.loads(r.stdout)

    def node_by_address(self, address, host=None):
        for n in self.nodes_json(host):
            if n["address"] == address:
                return n
        return None

    def wait_state(self, address, state, timeout, host=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            n = self.node_by_address(address, host)
            if n and n["state"] == state:
                return n
            time.sleep(0.05)
        fail(f"node {address} not {state} within {timeout}s: {self.nodes_json(host)}")

    def pid(self, host, daemon):
        try:
            with open(os.path.join(self.state_dir(host), f"{daemon}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def our_pids(self):
        """Every process whose command line names this run's state root."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if self.root.encode() in f.read():
                        pids.append(int(d))
            except OSError:
                pass
        return [p for p in pids if p != os.getpid()]

    def log_text(self, host, name):
        try:
            with open(os.path.join(self.state_dir(host), "logs", name)) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        for p in self.our_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Bundle processes run in their own process groups under the agents;
        # PDEATHSIG takes them down with the agent, but a sleep may linger briefly.
        time.sleep(0.1)
        for p in self.our_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.lab.close()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(c):
    r = c.start_head()
    line = [l for l in r.stdout.splitlines() if "llmctl start --address" in l]
    check(len(line) == 1, "start --head prints the join command")
    c.token = line[0].split("--token")[1].strip()
    for a in c.agents:
        c.join(a)
    return r


def raw_connect(host, address, port, payload=None, keep_open=False):
    """Opens a TCP connection from inside `host`'s namespace via a tiny Python helper."""
    code = ("import socket,sys,time\n"
            f"s=socket.create_connection(('{address}',{port}),timeout=5)\n")
    if payload is not None:
        code += f"s.sendall(bytes.fromhex('{payload.hex()}'))\n"
    code += "time.sleep(30)\n" if keep_open else "time.sleep(0.2)\ns.close()\n"
    return host.spawn([sys.executable, "-c", code])
