"""Namespace hosts for cluster tests: each a network namespace with its own
veth address on a shared bridge, its own hostname (a UTS namespace entered on
every command) and its own /etc/hosts (/etc/netns/NAME/hosts, which
`ip netns exec` bind-mounts over /etc/hosts).

    with NetnsLab() as lab:
        a = lab.add_host("node-a")
        b = lab.add_host("node-b")
        lab.write_hosts()                    # every host knows every other
        srv = b.spawn(["llmctl", "doctor", "--listen"])
        out = a.run(["llmctl", "doctor", "--peers", "node-b"])

Everything a lab creates (processes, namespaces, veths, the bridge,
/etc/netns dirs, nftables rules) is removed on exit, also when the test fails.
Names carry the pid so concurrent runs never collide; addresses are private
(10.213.X.0/24, X from the pid). Needs root and iproute2; `skip_unless_able()`
exits with code 77 (ctest's skip) otherwise. Standard library only.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77


def skip_unless_able():
    """Exit 77 with a reason unless we are root and `ip netns` works."""
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        sys.exit(SKIP)
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        print("SKIP: needs iproute2 (ip) and util-linux (unshare)")
        sys.exit(SKIP)
    probe = f"lltprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: `ip netns add` does not work here: {r.stderr.strip()}")
        sys.exit(SKIP)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def _sh(args, check=True, timeout=20, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Host:
    """One namespace host. Commands run as: ip netns exec NS unshare --uts sh -c 'hostname H; exec ...'."""

    def __init__(self, lab, index, hostname, address):
        self.lab = lab
        self.hostname = hostname
        self.address = address
        self.netns = f"{lab.tag}h{index}"
        self.veth = f"{lab.tag}v{index}"  # root side; the namespace side is renamed eth0
        self.hosts_lines = []

    def _wrap(self, cmd):
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hostname] + list(cmd)

    def run(self, cmd, env=None, timeout=60, check=False):
        """Runs cmd inside the host; returns CompletedProcess (text)."""
        full_env = dict(os.environ, **(env or {}))
        r = subprocess.run(self._wrap(cmd), capture_output=True, text=True, env=full_env, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{cmd} on {self.hostname} failed ({r.returncode}): {r.stderr}")
        return r

    def spawn(self, cmd, env=None):
        """Starts cmd inside the host in the background; the lab stops it on exit."""
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.Popen(self._wrap(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=full_env, start_new_session=True)
        self.lab._procs.append(p)
        return p

    def nft(self, ruleset):
        """Loads an nftables ruleset into this host's namespace (gone with the namespace)."""
        if shutil.which("nft") is None:
            raise RuntimeError("nft is not installed")
        _sh(["ip", "netns", "exec", self.netns, "nft", "-f", "-"], input=ruleset)
        self.lab._nft_hosts.add(self.netns)

    def write_hosts(self, lines):
        """Replaces this host's /etc/hosts (seen by its commands) with `lines`."""
        self.hosts_lines = list(lines)
        d = f"/etc/netns/{self.netns}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
            f.write("".join(line + "\n" for line in lines))


class NetnsLab:
    def __init__(self):
        pid = os.getpid()
        NetnsLab._count = getattr(NetnsLab, "_count", 0) + 1
        # Short: interface names are limited to 15 characters.
        self.tag = f"l{pid % 100000}{NetnsLab._count % 10}"
        self.subnet = f"10.213.{20 + pid % 200}"
        self.bridge = f"{self.tag}br"
        self.hosts = []
        self._procs = []
        self._nft_hosts = set()
        self._bridge_up = False

    def __enter__(self):
        try:
            _sh(["ip", "link", "add", "name", self.bridge, "type", "bridge"])
            self._bridge_up = True
            _sh(["ip", "link", "set", self.bridge, "up"])
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def add_host(self, hostname):
        index = len(self.hosts) + 1
        h = Host(self, index, hostname, f"{self.subnet}.{index + 1}")
        self.hosts.append(h)  # before creating, so close() removes partial set-ups
        _sh(["ip", "netns", "add", h.netns])
        _sh(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", h.veth + "p"])
        _sh(["ip", "link", "set", h.veth, "master", self.bridge, "up"])
        _sh(["ip", "link", "set", h.veth + "p", "netns", h.netns])
        ns = ["ip", "netns", "exec", h.netns]
        _sh(ns + ["ip", "link", "set", h.veth + "p", "name", "eth0"])
        _sh(ns + ["ip", "addr", "add", f"{h.address}/24", "dev", "eth0"])
        _sh(ns + ["ip", "link", "set", "eth0", "up"])
        _sh(ns + ["ip", "link", "set", "lo", "up"])
        h.write_hosts([])
        return h

    def write_hosts(self, omit=()):
        """Every host's /etc/hosts lists every host, except pairs in `omit` ((on, missing) names)."""
        for h in self.hosts:
            lines = [f"{o.address} {o.hostname}" for o in self.hosts if (h.hostname, o.hostname) not in omit]
            h.write_hosts(lines)

    def close(self):
        for p in self._procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for p in self._procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self._procs = []
        for netns in self._nft_hosts:
            _sh(["ip", "netns", "exec", netns, "nft", "flush", "ruleset"], check=False)
        for h in self.hosts:
            _sh(["ip", "link", "del", h.veth], check=False)
            _sh(["ip", "netns", "del", h.netns], check=False)
            shutil.rmtree(f"/etc/netns/{h.netns}", ignore_errors=True)
        self.hosts = []
        if self._bridge_up:
            _sh(["ip", "link", "del", self.bridge], check=False)
            self._bridge_up = False


def wait_for_line(proc, needle, timeout):
    """Reads proc's stdout until a line containing `needle`; raises on timeout or exit."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        if not sel.select(timeout=max(0.05, deadline - time.time())):
            continue
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"process exited ({proc.wait()}): {''.join(seen)} {proc.stderr.read()}")
        seen.append(line)
        if needle in line:
            return line
    raise RuntimeError(f"no line with {needle!r} within {timeout}s: {''.join(seen)}")
