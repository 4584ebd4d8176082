"""`llmctl exec` against real OpenSSH servers (label `cluster`, needs root):
each host is a network namespace running /usr/sbin/sshd with a generated host
key that accepts root with one generated user key. llmctl runs from a client
namespace with HOME in a scratch dir (its known_hosts lives there) and is
driven the way a user drives it: a cluster.toml and `llmctl exec ... -- CMD`.

Checks: output prefixed per node; an unknown host key fails until
--accept-new-host-keys records it; a recorded key that differs is a mismatch
naming the fingerprint; a wrong user key is "authentication failed" naming
the key; a host without sshd and an address nobody answers fail precisely
while the other hosts succeed; --json; --node; --timeout; the exit codes; the ssh-agent and
~/.ssh/id_ed25519 when the file names no key.
Skips (77) only without namespaces or sshd. Everything is torn down on exit."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
import ssh_harness  # noqa: E402
from ssh_harness import keygen  # noqa: E402

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")


def main():
    ssh_harness.skip_unless_able()

    with tempfile.TemporaryDirectory() as tmp, netns.NetnsLab() as lab:
        keys = ssh_harness.Keys(tmp)
        user_key, wrong_key = keys.user, keys.wrong

        client = lab.add_host("client")
        a = lab.add_host("node-a")
        b = lab.add_host("node-b")
        c = lab.add_host("node-c")  # up, but no sshd: connection refused
        hosts_lines = [f"{h.address} {h.hostname}" for h in lab.hosts]
        hosts_lines.append(f"{lab.subnet}.200 node-gone")  # nobody has this address
        for h in lab.hosts:
            h.write_hosts(hosts_lines)

        host_pubs = {}
        for h in (a, b):
            host_pubs[h.hostname] = ssh_harness.start_sshd(tmp, h)
            if host_pubs[h.hostname] is None:
                return netns.SKIP

        home = os.path.join(tmp, "home")
        os.makedirs(home)
        env = {"HOME": home, "SSH_AUTH_SOCK": ""}
        known_hosts = os.path.join(home, ".ssh", "known_hosts")

        def write_cluster(name, body):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(body)
            return path

        good = write_cluster("good.toml", f"""
[ssh]
user = "root"
key = "{user_key}"
[head]
host = "node-a"
[[workers]]
host = "node-b"
""")

        def exec_(cfg, *args, timeout=60):
            start = time.time()
            r = client.run([LLMCTL, "exec", cfg, *args], env=env, timeout=timeout)
            return r, time.time() - start

        # 1. Host keys not yet known: refused, nothing recorded, fingerprint shown.
        r, _ = exec_(good, "--", "hostname")
        assert r.returncode == 1, f"unknown host keys accepted: {r.returncode} {r.stdout} {r.stderr}"
        for n in ("node-a", "node-b"):
            assert f"llmctl exec: {n}: root@{n}:22: host key not trusted: ssh-ed25519 SHA256:" in r.stderr, r.stderr
        assert "--accept-new-host-keys" in r.stderr, r.stderr
        assert not os.path.exists(known_hosts) or not open(known_hosts).read().strip()
        assert r.stdout == "", r.stdout

        # 2. Trust on first use records both keys; output is prefixed per node.
        r, _ = exec_(good, "--accept-new-host-keys", "--", "hostname")
        assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
        assert sorted(r.stdout.splitlines()) == ["node-a: node-a", "node-b: node-b"], r.stdout
        recorded = open(known_hosts).read()
        for n in ("node-a", "node-b"):
            assert host_pubs[n].split()[1] in recorded, f"{n}'s key not in known_hosts: {recorded}"

        # 3. Now known: no flag needed; stderr prefixed too; exit code of the remote command counts.
        r, _ = exec_(good, "--", "echo out; echo err >&2; test $(hostname) = node-a")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        assert sorted(r.stdout.splitlines()) == ["node-a: out", "node-b: out"], r.stdout
        assert "node-a: err" in r.stderr and "node-b: err" in r.stderr, r.stderr
        assert "llmctl exec: node-b: command exited with status 1" in r.stderr, r.stderr
        assert "llmctl exec: node-a:" not in r.stderr, r.stderr

        # 4. --json and --node.
        r, _ = exec_(good, "--json", "--node", "node-b", "--", "sh -c 'echo hi; echo oops >&2; exit 3'")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        rep = json.loads(r.stdout)
        assert rep == [{"node": "node-b", "exit_code": 3, "stdout": "hi\n", "stderr": "oops\n", "error": None}], rep
        r, _ = exec_(good, "--node", "node-x", "--", "true")
        assert r.returncode == 2 and "node-x" in r.stderr, f"{r.returncode} {r.stderr}"

        # 5. A recorded key that differs from the server's: mismatch naming the offered fingerprint.
        with open(known_hosts) as f:
            lines = f.read().splitlines()
        forged = keygen(os.path.join(tmp, "forged"), "forged").split()[1]
        with open(known_hosts, "w") as f:
            for line in lines:
                f.write(line if not line.startswith("node-b ") else f"node-b ssh-ed25519 {forged}")
                f.write("\n")
        fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", os.path.join(tmp, "host_node-b.pub")],
                            capture_output=True, text=True, check=True).stdout.split()[1]
        r, _ = exec_(good, "--accept-new-host-keys", "--", "hostname")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        assert r.stdout.splitlines() == ["node-a: node-a"], r.stdout
        assert f"llmctl exec: node-b: root@node-b:22: host key mismatch: the server offers ssh-ed25519 {fp}" in r.stderr, r.stderr
        with open(known_hosts, "w") as f:
            f.write("\n".join(lines) + "\n")

        # 6. A wrong user key for one host: authentication failed, naming the key; the other host runs.
        wrong = write_cluster("wrong.toml", f"""
[ssh]
key = "{user_key}"
[head]
host = "node-a"
[[workers]]
host = "node-b"
ssh = {{ key = "{wrong_key}" }}
""")
        r, _ = exec_(wrong, "--", "hostname")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        assert r.stdout.splitlines() == ["node-a: node-a"], r.stdout
        assert (f"llmctl exec: node-b: root@node-b:22: authentication failed; tried: key {wrong_key} "
                "(refused by the server), ssh-agent (none: SSH_AUTH_SOCK is not set)") in r.stderr, r.stderr

        # 7. Unreachable hosts fail precisely while the reachable ones succeed.
        mixed = write_cluster("mixed.toml", f"""
[ssh]
key = "{user_key}"
[head]
host = "node-a"
[[workers]]
host = "node-b"
[[workers]]
host = "node-c"
[[workers]]
host = "node-gone"
[[workers]]
host = "no-such-host.invalid"
""")
        r, took = exec_(mixed, "--connect-timeout", "2", "--json", "--", "hostname")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        rep = {h["node"]: h for h in json.loads(r.stdout)}
        assert rep["node-a"]["stdout"] == "node-a\n" and rep["node-a"]["exit_code"] == 0, rep
        assert rep["node-b"]["stdout"] == "node-b\n" and rep["node-b"]["error"] is None, rep
        assert rep["node-c"]["exit_code"] is None
        assert rep["node-c"]["error"] == f"root@node-c:22: unreachable: {c.address} port 22: Connection refused", rep["node-c"]
        gone = rep["node-gone"]["error"]
        assert gone.startswith(f"root@node-gone:22: unreachable: {lab.subnet}.200 port 22: "), gone
        assert "no answer (connect timed out)" in gone or "No route to host" in gone, gone
        assert rep["no-such-host.invalid"]["error"].startswith(
            "root@no-such-host.invalid:22: cannot resolve host 'no-such-host.invalid'"), rep["no-such-host.invalid"]
        assert took < 15, f"hosts were not tried in parallel / connect timeout ignored: {took:.1f}s"

        # 8. --timeout bounds a command that hangs, and the command does not outlive it on the host
        #    (the namespaces share this pid namespace, so pgrep sees the host's processes).
        r, took = exec_(good, "--node", "node-a", "--timeout", "1", "--", "sleep 31.713")
        assert r.returncode == 1, f"{r.returncode} {r.stderr}"
        assert "llmctl exec: node-a: root@node-a:22: command did not finish within 1 s" in r.stderr, r.stderr
        assert took < 10, took
        deadline = time.time() + 5
        while subprocess.run(["pgrep", "-f", "sleep 31.713"], capture_output=True).returncode == 0:
            assert time.time() < deadline, "the timed-out command still runs on the host"
            time.sleep(0.1)

        # 9. No key in the file: ~/.ssh/id_ed25519 is used when present, else the ssh-agent.
        nokey = write_cluster("nokey.toml", """
[head]
host = "node-a"
""")
        r, _ = exec_(nokey, "--", "hostname")
        assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
        assert ("llmctl exec: node-a: root@node-a:22: authentication failed; tried: "
                "ssh-agent (none: SSH_AUTH_SOCK is not set)") in r.stderr, r.stderr
        sock = os.path.join(tmp, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
            subprocess.run(["ssh-add", user_key], env=dict(os.environ, SSH_AUTH_SOCK=sock), check=True,
                           capture_output=True, timeout=10)
            r = client.run([LLMCTL, "exec", nokey, "--", "hostname"], env=dict(env, SSH_AUTH_SOCK=sock), timeout=60)
            assert r.returncode == 0 and r.stdout == "node-a: node-a\n", f"agent: {r.returncode} {r.stdout} {r.stderr}"
        finally:
            agent.terminate()
            agent.wait(timeout=10)
        os.makedirs(os.path.join(home, ".ssh"), exist_ok=True)
        shutil.copy(user_key, os.path.join(home, ".ssh", "id_ed25519"))
        r, _ = exec_(nokey, "--", "hostname")
        assert r.returncode == 0 and r.stdout == "node-a: node-a\n", f"default key: {r.returncode} {r.stdout} {r.stderr}"

    print("ssh_exec: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
