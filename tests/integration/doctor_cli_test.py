"""`llmctl doctor` as a user runs it on this machine: the report is valid JSON
of the documented shape, the exit status matches the failures, the table
groups by node, and usage errors exit 2. (Whether this machine is healthy is
not asserted; the netns test builds healthy and faulty machines.)"""

import json
import os
import subprocess
import sys

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")


def run(*args):
    return subprocess.run([LLMCTL, "doctor", *args], capture_output=True, text=True, timeout=60)


def main():
    r = run("--json")
    report = json.loads(r.stdout)
    assert set(report) == {"checks", "summary"}, report.keys()
    for c in report["checks"]:
        assert set(c) == {"node", "id", "status", "message", "fix"}, c
        assert c["status"] in ("ok", "warn", "fail", "skip"), c
        assert c["message"], c
        if c["status"] == "fail":
            assert c["fix"], f"{c['id']} fails without a fix"
    fails = sum(c["status"] == "fail" for c in report["checks"])
    assert report["summary"]["fail"] == fails
    assert report["summary"]["ok"] == sum(c["status"] == "ok" for c in report["checks"])
    assert r.returncode == (1 if fails else 0), (r.returncode, fails)
    ids = {c["id"] for c in report["checks"]}
    for expected in ["ports.head", "ports.dashboard", "ports.client", "ports.api", "ports.node_range",
                     "hostname.resolve", "interfaces.up", "interfaces.nccl_default", "system.shm", "system.nofile",
                     "system.clock", "gpu.devices", "gpu.infiniband"]:
        assert expected in ids, f"{expected} missing from {sorted(ids)}"

    t = run()
    assert t.returncode == r.returncode, (t.returncode, r.returncode)
    assert "ports.node_range" in t.stdout and " ok, " in t.stdout, t.stdout

    for bad in (["--deep"], ["--listen", "--peers", "x"], ["--peers", "x"], ["--bogus"]):
        u = subprocess.run([LLMCTL, "doctor", *bad], capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items() if k != "LLMCTL_TOKEN"})
        assert u.returncode == 2, f"{bad}: exit {u.returncode}: {u.stderr}"
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
