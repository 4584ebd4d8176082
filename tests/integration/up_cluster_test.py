"""`llmctl up` / `llmctl down` against real OpenSSH servers (label `cluster`,
needs root): every host is a network namespace running sshd (ssh_harness.py);
llmctl runs from a client namespace, driven the way a user drives it, with a
cluster.toml whose nodes each have their own install and state dir (the
namespaces share one filesystem and one pid namespace, so /proc shows every
host's processes).

Checks, in order:
1. A file whose head port is taken, with a worker whose key is refused, a
   worker nobody answers and a worker whose `uname` and `df` (first on the
   PATH its sshd sets) claim another architecture and a full disk: exit 1,
   each host's error precise, and nothing installed or started anywhere.
2. `up` brings lf001 (head), lf002, lf003 to Active as the head lists them;
   the uploaded binary has this binary's SHA-256; the summary names the URLs.
3. `up` again: nothing changed, nothing uploaded, same daemon pids.
4. lf004 added to the file: only lf004 is started.
5. lf003 dropped from the file: --dry-run changes nothing; `up --json`
   stops lf003 and removes its state dir.
6. `down --keep-state` keeps state dirs and token; `up` brings it back.
6b. `up` from a changed llmctl (this binary with bytes appended): uploads it
   and restarts every daemon that runs the old one, the head first, each now
   running the new bytes; `up` again changes nothing.
7. `down`: no llmctl process left for any node, state dirs removed.
Skips (77) only without namespaces or sshd. Everything is torn down on exit."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
import ssh_harness  # noqa: E402

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")


sha256 = ssh_harness.sha256
pids_under = ssh_harness.pids_under


def main():
    ssh_harness.skip_unless_able()
    return ssh_harness.run_in_lab(run, pids_under)


def run(tmp, lab, nodes_root):
    keys = ssh_harness.Keys(tmp)
    client = lab.add_host("client")
    hosts = {n: lab.add_host(n) for n in ("lf001", "lf002", "lf003", "lf004", "odd")}
    lines = [f"{h.address} {h.hostname}" for h in lab.hosts] + [f"{lab.subnet}.200 gone"]
    for h in lab.hosts:
        h.write_hosts(lines)
    fakebin = os.path.join(tmp, "fakebin")
    os.makedirs(fakebin)
    for name, text in (("uname", "Linux aarch64"),
                       ("df", "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 1000 999 1 99% /")):
        with open(os.path.join(fakebin, name), "w") as f:
            f.write(f"#!/bin/sh\nprintf '%s\\n' '{text}'\n")
        os.chmod(os.path.join(fakebin, name), 0o755)
    for h in hosts.values():
        extra = f"SetEnv PATH={fakebin}:/usr/sbin:/usr/bin:/sbin:/bin\n" if h.hostname == "odd" else ""
        if ssh_harness.start_sshd(tmp, h, extra) is None:
            return netns.SKIP

    home = os.path.join(tmp, "home")
    os.makedirs(home)
    env = {"HOME": home, "SSH_AUTH_SOCK": "", "LLMCTL_STATE_DIR": os.path.join(tmp, "launcher")}

    def state(n):
        return os.path.join(nodes_root, n, "state")

    def install(n):
        return os.path.join(nodes_root, n, "install")

    def node_toml(n, extra=""):
        return f'state_dir = "{state(n)}"\ninstall_dir = "{install(n)}"\nnum_gpus = 0\n{extra}'

    def write(name, workers, head="lf001", worker_extra=None):
        path = os.path.join(tmp, name)
        body = f'[cluster]\nname = "uptest"\n[ssh]\nkey = "{keys.user}"\n[head]\nhost = "{head}"\n{node_toml(head)}'
        for w in workers:
            body += f'[[workers]]\nhost = "{w}"\n{node_toml(w, (worker_extra or {}).get(w, ""))}'
        with open(path, "w") as f:
            f.write(body)
        return path

    def llmctl(*args, timeout=120):
        start = time.time()
        r = client.run([LLMCTL, *args], env=env, timeout=timeout)
        print(f"$ llmctl {' '.join(args)}  -> {r.returncode} in {time.time() - start:.1f}s")
        return r

    def pid_of(n, daemon):
        try:
            with open(os.path.join(state(n), f"{daemon}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"

    def active_nodes(cfg):
        r = llmctl("nodes", "--config", cfg, "--json", timeout=30)
        assert r.returncode == 0, f"nodes: {r.stdout} {r.stderr}"
        return sorted(n["name"] for n in json.loads(r.stdout) if n["state"] == "Active")

    # 1. Pre-flight failures: each precise, nothing installed or started anywhere.
    listener = hosts["lf001"].spawn(["python3", "-c", (
        "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        "s.bind(('0.0.0.0', 6379)); s.listen(); print('listening', flush=True); time.sleep(300)")])
    netns.wait_for_line(listener, "listening", timeout=15)
    bad = write("bad.toml", ["lf002", "lf003", "gone", "odd"], worker_extra={"lf002": f'ssh = {{ key = "{keys.wrong}" }}\n'})
    r = llmctl("up", bad, "--yes", "--accept-new-host-keys", "--connect-timeout", "2")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    err = r.stderr
    assert ("llmctl up: lf001: root@lf001:22: port 6379 ([ports] head, the control plane) is in use by another "
            "process") in err, err
    assert (f"llmctl up: lf002: root@lf002:22: authentication failed; tried: key {keys.wrong} (refused by the server)"
            in err), err
    assert f"llmctl up: gone: root@gone:22: unreachable: {lab.subnet}.200 port 22: " in err, err
    local = f"{os.uname().sysname} {os.uname().machine}"
    assert (f"llmctl up: odd: root@odd:22: wrong OS/architecture: the host is Linux aarch64, this llmctl is built "
            f"for {local}; no disk space: the bundle needs ") in err, err
    assert f"in {install('odd')}, but {tmp} has 0.0 MiB free" in err, err
    assert "llmctl up: lf003" not in err, err
    assert "pre-flight failed on 4 host(s); nothing was started or changed anywhere" in err, err
    assert not os.path.exists(nodes_root), f"pre-flight changed a host: {os.listdir(nodes_root)}"
    assert not pids_under(nodes_root), pids_under(nodes_root)
    listener.kill()
    listener.wait()
    print("ok: pre-flight failures are precise and start nothing")

    # 2. A head and two workers to Active.
    good = write("good.toml", ["lf002", "lf003"])
    r = llmctl("up", good, "--yes", "--accept-new-host-keys", "--timeout", "60")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    out = r.stdout
    for n in ("lf001", "lf002", "lf003"):
        assert f"{n}: uploading llmctl (" in out and f"{n}: llmctl uploaded, SHA-256 checked" in out, out
        assert sha256(os.path.join(install(n), "llmctl")) == sha256(LLMCTL), n
    head_ip = hosts["lf001"].address
    assert 'Cluster "uptest" is up: 3 node(s) Active.' in out, out
    assert f"Dashboard:     http://{head_ip}:8265" in out and f"OpenAI API:    http://{head_ip}:8000/v1" in out, out
    record = os.path.join(tmp, "launcher", "clusters", "uptest.json")
    assert f"Token: kept in {record} (0600)" in out, out
    assert os.stat(record).st_mode & 0o777 == 0o600
    assert active_nodes(good) == ["lf001", "lf002", "lf003"]
    pids = {n: (pid_of(n, "head"), pid_of(n, "agent")) for n in ("lf001", "lf002", "lf003")}
    assert pids["lf001"][0] and all(p[1] for p in pids.values()), pids
    print("ok: up brings a head and two workers to Active")

    # 3. Again: a no-op.
    r = llmctl("up", good, "--yes")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert 'Cluster "uptest" is up; nothing changed: 3 node(s) Active.' in r.stdout, r.stdout
    assert "uploading" not in r.stdout and "starting" not in r.stdout, r.stdout
    assert {n: (pid_of(n, "head"), pid_of(n, "agent")) for n in pids} == pids
    print("ok: up on a running cluster changes nothing")

    # 4. A worker added to the file: only it is started.
    grown = write("good.toml", ["lf002", "lf003", "lf004"])
    r = llmctl("up", grown, "--yes", "--accept-new-host-keys", "--timeout", "60")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert "lf004: starting the agent" in r.stdout and "lf004: uploading llmctl" in r.stdout, r.stdout
    for n in ("lf001", "lf002", "lf003"):
        assert f"{n}: starting" not in r.stdout and f"{n}: uploading" not in r.stdout, r.stdout
    assert {n: (pid_of(n, "head"), pid_of(n, "agent")) for n in pids} == pids
    assert active_nodes(grown) == ["lf001", "lf002", "lf003", "lf004"]
    print("ok: a worker added to the file is started by the next up")

    # 5. A worker dropped from the file: --dry-run only tells; up stops it.
    lf003_agent = pid_of("lf003", "agent")
    shrunk = write("good.toml", ["lf002", "lf004"])
    r = llmctl("up", shrunk, "--dry-run")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert "stop (no longer in the file)" in r.stdout and "Dry run: nothing was changed." in r.stdout, r.stdout
    assert alive(lf003_agent) and active_nodes(shrunk) == ["lf001", "lf002", "lf003", "lf004"]
    r = llmctl("up", shrunk, "--yes", "--json")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    rep = json.loads(r.stdout)
    acts = {n["host"]: n["action"] for n in rep["nodes"]}
    assert acts == {"lf001": "running", "lf002": "running", "lf004": "running",
                    "lf003": "stopped (removed from the file)"}, acts
    assert rep["ok"] and rep["changed"] and rep["head_address"] == f"{head_ip}:6379", rep
    assert all(n["state"] == "Active" for n in rep["nodes"] if n["host"] != "lf003"), rep
    assert not alive(lf003_agent) and not os.path.exists(state("lf003"))
    assert active_nodes(shrunk) == ["lf001", "lf002", "lf004"]
    print("ok: a worker removed from the file is stopped by the next up")

    # 6. down --keep-state: no llmctl process left, state dirs and the token kept; the next up
    #    brings the same cluster back (same token, nothing uploaded).
    before = pids_under(nodes_root)
    assert len(before) >= 4, before
    with open(record) as f:
        token = json.load(f)["token"]
    r = llmctl("down", shrunk, "--yes", "--keep-state")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert not pids_under(nodes_root), f"llmctl processes left after down --keep-state: {pids_under(nodes_root)}"
    for n in ("lf001", "lf002", "lf004"):
        assert os.path.isdir(os.path.join(state(n), "logs")), n
    r = llmctl("up", shrunk, "--yes", "--timeout", "60")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert "uploading" not in r.stdout and "lf002: starting the agent" in r.stdout, r.stdout
    with open(record) as f:
        assert json.load(f)["token"] == token
    assert active_nodes(shrunk) == ["lf001", "lf002", "lf004"]
    print("ok: down --keep-state keeps state and token; up brings the cluster back")

    # 6b. A changed binary: uploaded, and every daemon running the old one restarted, the head first.
    v2 = os.path.join(tmp, "v2", "llmctl")
    os.makedirs(os.path.dirname(v2))
    shutil.copy2(LLMCTL, v2)
    with open(v2, "ab") as f:
        f.write(b"\0llmctl up_cluster test: another build\0")
    old = {n: (pid_of(n, "head"), pid_of(n, "agent")) for n in ("lf001", "lf002", "lf004")}
    start = time.time()
    r = client.run([v2, "up", shrunk, "--yes", "--timeout", "60"], env=env, timeout=120)
    print(f"$ v2/llmctl up {shrunk} --yes  -> {r.returncode} in {time.time() - start:.1f}s")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    out = r.stdout
    reason = "(it runs another llmctl than this one)"
    assert f"lf001: restarting the head at {head_ip}:6379 {reason}" in out, out
    for n in ("lf002", "lf004"):
        assert f"{n}: uploading llmctl" in out and f"{n}: restarting the agent, joining {head_ip}:6379 {reason}" in out, out
        assert out.index("lf001: restarting the head") < out.index(f"{n}: restarting the agent"), out
    assert 'Cluster "uptest" is up: 3 node(s) Active.' in out, out
    for n in ("lf001", "lf002", "lf004"):
        assert sha256(os.path.join(install(n), "llmctl")) == sha256(v2), n
        daemons = ("head", "agent") if n == "lf001" else ("agent",)
        for i, d in enumerate(("head", "agent")):
            if d not in daemons:
                continue
            pid = pid_of(n, d)
            assert pid and pid != old[n][i] and not alive(old[n][i]), (n, d, pid, old[n])
            assert sha256(f"/proc/{pid}/exe") == sha256(v2), f"{n}'s {d} does not run the new binary"
    with open(record) as f:
        assert json.load(f)["token"] == token
    assert active_nodes(shrunk) == ["lf001", "lf002", "lf004"]
    r = client.run([v2, "up", shrunk, "--yes"], env=env, timeout=120)
    assert r.returncode == 0 and 'is up; nothing changed' in r.stdout, f"{r.returncode} {r.stdout} {r.stderr}"
    print("ok: a changed binary is uploaded and every daemon restarted on it, the head first")

    # 7. down: no llmctl process left for any node; state dirs gone, binaries kept.
    r = llmctl("down", shrunk, "--yes")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert 'Cluster "uptest" is down' in r.stdout, r.stdout
    left = pids_under(nodes_root)
    assert not left, f"llmctl processes left after down: {left}"
    for n in ("lf001", "lf002", "lf003", "lf004"):
        assert not os.path.exists(state(n)), n
    assert os.path.exists(os.path.join(install("lf001"), "llmctl"))
    assert not os.path.exists(record)
    print("ok: down leaves no llmctl process and removes the state dirs")
    print("up_cluster: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
