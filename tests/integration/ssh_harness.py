"""Real OpenSSH servers on namespace hosts (netns.py) for the ssh_* and up_*
tests: generated ed25519 keys, one sshd per host on port 22 of its own
address, accepting root with the keys in one authorized_keys file.

    with tempfile.TemporaryDirectory() as tmp, netns.NetnsLab() as lab:
        ssh_harness.skip_unless_able()
        keys = ssh_harness.Keys(tmp)              # keys.user: authorized; keys.wrong: not
        a = lab.add_host("node-a")
        host_pub = ssh_harness.start_sshd(tmp, a)  # None: sshd rejects the config here (skip)

Standard library only."""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile

import netns

SSHD = "/usr/sbin/sshd"


def skip_unless_able():
    """Exit 77 unless namespaces work and OpenSSH's server and keygen are installed."""
    netns.skip_unless_able()
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        print("SKIP: needs OpenSSH's sshd and ssh-keygen (openssh-server, openssh-client)")
        raise SystemExit(netns.SKIP)
    # sshd's privilege separation needs this directory; Debian creates it only at service start.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def run_in_lab(run, pids_under_root):
    """Calls run(tmp, lab, nodes_root) in a fresh temporary directory and
    namespace lab; whatever process still names a path under nodes_root is
    killed afterwards, pass or fail. pids_under_root(root) -> {pid: ...}."""
    with tempfile.TemporaryDirectory() as tmp, netns.NetnsLab() as lab:
        nodes_root = os.path.join(tmp, "nodes")
        try:
            return run(tmp, lab, nodes_root)
        finally:
            for pid in pids_under_root(nodes_root):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def pids_under(root):
    """Processes whose command line names a path under `root`: pid -> the command line as text."""
    out = {}
    needle = root.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd:
            out[int(d)] = cmd.replace(b"\0", b" ").decode(errors="replace")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def keygen(path, comment):
    """A fresh ed25519 key pair without passphrase; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True,
                   capture_output=True, timeout=20)
    with open(path + ".pub") as f:
        return f.read().strip()


class Keys:
    """`user` is authorized on every host started with start_sshd(tmp, ...); `wrong` is not."""

    def __init__(self, tmp):
        os.chmod(tmp, 0o755)
        self.user = os.path.join(tmp, "id_user")
        self.wrong = os.path.join(tmp, "id_wrong")
        with open(os.path.join(tmp, "authorized_keys"), "w") as f:
            f.write(keygen(self.user, "llmctl-test") + "\n")
        keygen(self.wrong, "not-authorized")


def sshd_config(tmp, name, host_key, extra=""):
    path = os.path.join(tmp, f"sshd_{name}.conf")
    with open(path, "w") as f:
        f.write(f"""Port 22
ListenAddress 0.0.0.0
HostKey {host_key}
PidFile {tmp}/sshd_{name}.pid
AuthorizedKeysFile {tmp}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
{extra}""")
    return path


def start_sshd(tmp, host, extra_config=""):
    """Starts sshd on `host` with a generated host key (and `extra_config` lines, e.g.
    "SetEnv PATH=..."); returns its public key line, or None when `sshd -t` rejects the
    generated configuration here (the caller skips)."""
    hk = os.path.join(tmp, f"host_{host.hostname}")
    pub = keygen(hk, host.hostname)
    conf = sshd_config(tmp, host.hostname, hk, extra_config)
    t = subprocess.run([SSHD, "-t", "-f", conf], capture_output=True, text=True, timeout=20)
    if t.returncode != 0:
        print(f"SKIP: sshd -t rejects the generated configuration here: {t.stderr.strip()}")
        return None
    p = host.spawn(["sh", "-c", f'exec {SSHD} -D -e -f "{conf}" 2>&1'])
    netns.wait_for_line(p, "Server listening", timeout=15)
    return pub
