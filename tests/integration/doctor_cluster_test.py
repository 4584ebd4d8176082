"""`llmctl doctor cluster.toml` against real OpenSSH servers (label `cluster`,
needs root): every host is a network namespace running sshd (ssh_harness.py);
llmctl runs from a client namespace the way a user runs it.

The file names lf001 (head), lf002, lf003 and `gone` (no host answers there).
lf002's dashboard port 8265 is held by another process; lf003's /etc/hosts
maps lf001 to a wrong address. Checks:
1. `doctor FILE --json`: exit 1; `gone` fails ssh.connect as unreachable, the
   others pass it and get the uploaded bundle; ports.dashboard fails on lf002
   naming the process; names.resolve fails on lf003 naming lf001 and both
   addresses; every ordered pair of reachable hosts has reach.head and
   reach.node_range ok (so the listeners ran on every host); no listener is
   left running.
2. With a listener left over on lf001 (an interrupted run): `up` names it
   as what holds the head port; the next doctor run stops it first; the table (no --json) has a line per host for those
   findings.
3. `up` on the file without `gone`, lf002's name now on 127.0.1.1 there: the
   doctor's pre-flight fails on lf002 (its taken dashboard port is only a
   notice on a worker) and nothing starts; `up --skip-doctor` starts the
   cluster; `down` stops it.
Skips (77) only without namespaces or sshd. Everything is torn down on exit."""

import json
import os
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
    hosts = {n: lab.add_host(n) for n in ("lf001", "lf002", "lf003")}
    lines = [f"{h.address} {h.hostname}" for h in lab.hosts] + [f"{lab.subnet}.200 gone"]
    wrong_lf001 = f"{lab.subnet}.201"
    for h in lab.hosts:
        h.write_hosts([f"{wrong_lf001} lf001" if (h.hostname == "lf003" and line.endswith(" lf001")) else line
                       for line in lines])
    for h in hosts.values():
        if ssh_harness.start_sshd(tmp, h) is None:
            return netns.SKIP
    holder = hosts["lf002"].spawn(["python3", "-c", (
        "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        "s.bind(('0.0.0.0', 8265)); s.listen(); print('listening', flush=True); time.sleep(300)")])
    netns.wait_for_line(holder, "listening", timeout=15)

    home = os.path.join(tmp, "home")
    os.makedirs(home)
    env = {"HOME": home, "SSH_AUTH_SOCK": "", "LLMCTL_STATE_DIR": os.path.join(tmp, "launcher")}

    def state(n):
        return os.path.join(nodes_root, n, "state")

    def install(n):
        return os.path.join(nodes_root, n, "install")

    def write(name, workers):
        path = os.path.join(tmp, name)
        body = f'[cluster]\nname = "doctortest"\n[ssh]\nkey = "{keys.user}"\n'
        for i, n in enumerate(["lf001"] + workers):
            body += "[head]\n" if i == 0 else "[[workers]]\n"
            body += f'host = "{n}"\nstate_dir = "{state(n)}"\ninstall_dir = "{install(n)}"\nnum_gpus = 0\n'
        with open(path, "w") as f:
            f.write(body)
        return path

    def llmctl(*args, timeout=120):
        start = time.time()
        r = client.run([LLMCTL, *args], env=env, timeout=timeout)
        print(f"$ llmctl {' '.join(args)}  -> {r.returncode} in {time.time() - start:.1f}s", flush=True)
        return r

    def checks(report, check_id, node):
        return [c for c in report["checks"] if c["id"] == check_id and c["node"] == node]

    def one(report, check_id, node, status, text=""):
        found = checks(report, check_id, node)
        assert found, f"no {check_id} on {node}: {[(c['node'], c['id']) for c in report['checks']]}"
        assert any(c["status"] == status and text in c["message"] for c in found), (check_id, node, found)

    # 1. The merged report.
    full = write("cluster.toml", ["lf002", "lf003", "gone"])
    r = llmctl("doctor", full, "--json", "--accept-new-host-keys", "--connect-timeout", "2")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    report = json.loads(r.stdout)
    assert report["summary"]["fail"] == sum(c["status"] == "fail" for c in report["checks"]) > 0
    one(report, "ssh.connect", "gone", "fail", f"root@gone:22: unreachable: {lab.subnet}.200 port 22: ")
    assert not [c for c in report["checks"] if c["node"] == "gone" and c["id"] != "ssh.connect" and c["status"] == "ok"]
    for n in ("lf001", "lf002", "lf003"):
        one(report, "ssh.connect", n, "ok", f"root@{n}:22: ")
        assert sha256(os.path.join(install(n), "llmctl")) == sha256(LLMCTL), n
    dash = [c for c in checks(report, "ports.dashboard", "lf002") if c["status"] == "fail"]
    assert dash and "8265" in dash[0]["message"] and "python" in dash[0]["message"], checks(report, "ports.dashboard", "lf002")
    for n in ("lf001", "lf003"):
        assert all(c["status"] == "ok" for c in checks(report, "ports.dashboard", n)), checks(report, "ports.dashboard", n)
    one(report, "names.resolve", "lf003", "fail", f"lf001 resolves to {wrong_lf001} but lf001 reports {hosts['lf001'].address}")
    for n in ("lf001", "lf002"):
        one(report, "names.resolve", n, "ok")
    for n in ("lf001", "lf002", "lf003"):
        # One from each other reachable host: the listeners ran everywhere and every pair was checked.
        for check_id in ("reach.head", "reach.node_range"):
            found = checks(report, check_id, n)
            assert len(found) == 2 and all(c["status"] == "ok" for c in found), (n, check_id, found)
        assert all(c["status"] == "ok" for c in checks(report, "versions.llmctl", n)), n
    assert not checks(report, "doctor.listen", "lf001"), report
    left = {p: c for p, c in pids_under(nodes_root).items() if "doctor" in c}
    assert not left, f"doctor listeners left running: {left}"
    print("ok: doctor cluster.toml checks every host over SSH and every pair through its listeners")

    # 2. The table: one line per host and finding. Before it, a listener left over on lf001 from an
    #    interrupted run, holding its ports: the run stops it first (else lf001 fails doctor.listen).
    ddir = os.path.join(state("lf001"), "doctor")
    stale = hosts["lf001"].spawn(["timeout", "900", os.path.join(install("lf001"), "llmctl"), "--state-dir",
                                  state("lf001"), "doctor", os.path.join(ddir, "cluster.toml"), "--listen", "--token",
                                  "leftover-listener"])
    netns.wait_for_line(stale, "listening on", timeout=20)
    stale_pid = [p for p, c in pids_under(nodes_root).items() if c.startswith("timeout ") and "leftover-listener" in c]
    assert len(stale_pid) == 1, pids_under(nodes_root)
    with open(os.path.join(ddir, "listen.pid"), "w") as f:
        f.write(f"{stale_pid[0]}\n")
    cfg = write("up.toml", ["lf002", "lf003"])
    r = llmctl("up", cfg, "--yes")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    assert (f"llmctl up: lf001: root@lf001:22: port 6379 ([ports] head) is held by a `llmctl doctor` listener left "
            f"running (pid {stale_pid[0]};") in r.stderr, r.stderr
    r = llmctl("doctor", full, "--connect-timeout", "2")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    sections, current = {}, None
    for line in r.stdout.splitlines():
        if line and not line.startswith(" "):
            current = line.strip()
            sections.setdefault(current, [])
        elif current:
            sections[current].append(line.split())
    for node, check_id in (("gone", "ssh.connect"), ("lf002", "ports.dashboard"), ("lf003", "names.resolve")):
        assert ["fail", check_id] in [words[:2] for words in sections.get(node, [])], (node, check_id, r.stdout)
    assert ["ok", "ssh.connect"] in [words[:2] for words in sections["lf001"]], r.stdout
    assert "doctor.listen" not in r.stdout and ["ok", "reach.head"] in [w[:2] for w in sections["lf001"]], r.stdout
    assert "fail" not in [w[0] for w in sections["lf001"] if w], r.stdout
    stale.wait(timeout=10)
    assert not [c for c in pids_under(nodes_root).values() if "doctor" in c], pids_under(nodes_root)
    assert ": uploading llmctl" not in r.stderr, r.stderr
    print("ok: the table names each failing host")

    # 3. up runs the doctor's local checks first: lf002's name on 127.0.1.1 stops it; its taken
    #    dashboard port is only a notice (only the head binds it); --skip-doctor goes ahead anyway.
    hosts["lf002"].write_hosts(["127.0.1.1 lf002"] + [line for line in lines if not line.endswith(" lf002")])
    r = llmctl("up", cfg, "--yes", "--timeout", "60")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    assert "llmctl up: lf002: doctor hostname.loopback " in r.stderr and "127.0.1.1" in r.stderr, r.stderr
    assert "llmctl up: notice: lf002: doctor ports.dashboard " in r.stderr, r.stderr
    assert "only the head binds it" in r.stderr and "python" in r.stderr, r.stderr
    assert "llmctl up: lf001: doctor" not in r.stderr and "llmctl up: lf003: doctor" not in r.stderr, r.stderr
    assert "nothing was started" in r.stderr, r.stderr
    assert not [c for c in pids_under(nodes_root).values() if " head" in c or " agent" in c], pids_under(nodes_root)
    r = llmctl("up", cfg, "--yes", "--timeout", "60", "--skip-doctor")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert 'Cluster "doctortest" is up: 3 node(s) Active.' in r.stdout, r.stdout
    r = llmctl("down", cfg, "--yes")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert not pids_under(nodes_root), pids_under(nodes_root)
    print("ok: up stops on the doctor's failures before starting anything; --skip-doctor starts anyway")
    print("doctor_cluster: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
