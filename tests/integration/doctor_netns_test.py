"""`llmctl doctor` against real faulty set-ups in network namespaces (label
`cluster`, needs root): each fault must be a `fail` with the right check id,
and the healthy two-node set-up must pass. Uses netns.py; everything is torn
down even when a case fails."""

import json
import os
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")
TOKEN = "doctor-test-token"


def doctor(host, *args, env=None, timeout=60):
    r = host.run([LLMCTL, "doctor", "--json", *args], env=env, timeout=timeout)
    try:
        report = json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"doctor on {host.hostname} printed no JSON (rc {r.returncode}): {r.stdout}\n{r.stderr}")
    fails = [c for c in report["checks"] if c["status"] == "fail"]
    assert r.returncode == (1 if fails else 0), f"exit {r.returncode} with {len(fails)} failures"
    assert report["summary"]["fail"] == len(fails)
    return report


def find(report, check_id, node=None):
    hits = [c for c in report["checks"] if c["id"] == check_id and (node is None or c["node"] == node)]
    assert hits, f"no check {check_id} (node {node}) in {[(c['node'], c['id']) for c in report['checks']]}"
    return hits[0]


def expect_fail(report, check_id, node=None, text=None):
    c = find(report, check_id, node)
    assert c["status"] == "fail", f"{check_id} on {c['node']} is {c['status']}: {c['message']}"
    assert c["fix"], f"{check_id} has no fix"
    if text:
        assert text in c["message"], f"{check_id}: {text!r} not in {c['message']!r}"
    return c


def listen(host, env=None, token=TOKEN):
    p = host.spawn([LLMCTL, "doctor", "--listen", "--token", token], env=env)
    netns.wait_for_line(p, "listening on", timeout=20)
    return p


def two_nodes(lab, omit=()):
    a = lab.add_host("node-a")
    b = lab.add_host("node-b")
    lab.write_hosts(omit=omit)
    return a, b


def case_healthy():
    with netns.NetnsLab() as lab, tempfile.TemporaryDirectory() as model:
        for name, size in [("config.json", 10), ("model.safetensors", 1000)]:
            with open(os.path.join(model, name), "wb") as f:
                f.write(b"x" * size)
        a, b = two_nodes(lab)
        listen(b)
        report = doctor(a, "--peers", "node-b", "--token", TOKEN, "--model", model, "--deep")
        fails = [f"{c['node']} {c['id']}: {c['message']}" for c in report["checks"] if c["status"] == "fail"]
        assert not fails, "healthy set-up has failures:\n" + "\n".join(fails)
        for check_id in ["ports.node_range", "hostname.loopback", "peer.connect", "reach.head", "reach.node_range",
                         "reach_back.head", "reach_back.node_range", "names.resolve", "versions.llmctl",
                         "clock.offset", "model.files"]:
            assert find(report, check_id)["status"] == "ok", find(report, check_id)
        assert find(report, "names.resolve", node="node-b")["status"] == "ok"
        assert "2001 of 2001" in find(report, "reach.node_range")["message"]


def case_port_taken():
    with netns.NetnsLab() as lab:
        a, _ = two_nodes(lab)
        holder = a.spawn([sys.executable, "-c",
                          "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8265))\ns.listen()\n"
                          "print('bound',flush=True)\ntime.sleep(120)"])
        netns.wait_for_line(holder, "bound", timeout=10)
        report = doctor(a)
        c = expect_fail(report, "ports.dashboard", text="8265")
        assert "pid" in c["message"] and "python" in c["message"], c["message"]


def case_hostname_loopback():
    with netns.NetnsLab() as lab:
        a, _ = two_nodes(lab)
        a.write_hosts(["127.0.1.1 node-a"])
        expect_fail(doctor(a), "hostname.loopback", text="127.0.1.1")


def case_peer_missing_from_hosts():
    with netns.NetnsLab() as lab:
        a, b = two_nodes(lab, omit={("node-a", "node-b")})
        listen(b)
        report = doctor(a, "--peers", b.address, "--token", TOKEN)
        expect_fail(report, "names.resolve", node="node-a", text="node-b does not resolve")
        assert find(report, "names.resolve", node="node-b")["status"] == "ok"


def case_range_dropped():
    with netns.NetnsLab() as lab:
        a, b = two_nodes(lab)
        b.nft("table inet llmctltest {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
              "  tcp dport 30000-32000 drop\n }\n}\n")
        listen(b)
        report = doctor(a, "--peers", "node-b", "--token", TOKEN)
        expect_fail(report, "reach.node_range", node="node-b", text="2001 timeout")
        assert find(report, "reach.head", node="node-b")["status"] == "ok"


def case_bad_nccl_ifname():
    with netns.NetnsLab() as lab:
        a, _ = two_nodes(lab)
        expect_fail(doctor(a, env={"NCCL_SOCKET_IFNAME": "nosuch0"}), "interfaces.nccl_ifname", text="nosuch0")


def case_version_mismatch():
    with netns.NetnsLab() as lab:
        a, b = two_nodes(lab)
        listen(b, env={"LLMCTL_FAKE_VERSION": "0.0.0-other"})
        report = doctor(a, "--peers", "node-b", "--token", TOKEN)
        expect_fail(report, "versions.llmctl", node="node-b", text="0.0.0-other")


def case_wrong_token():
    with netns.NetnsLab() as lab:
        a, b = two_nodes(lab)
        listen(b, token="another-token")
        expect_fail(doctor(a, "--peers", "node-b", "--token", TOKEN), "peer.auth")


CASES = [case_healthy, case_port_taken, case_hostname_loopback, case_peer_missing_from_hosts, case_range_dropped,
         case_bad_nccl_ifname, case_version_mismatch, case_wrong_token]


def main():
    netns.skip_unless_able()
    only = sys.argv[1:]
    failed = []
    for case in CASES:
        if only and case.__name__ not in only:
            continue
        try:
            case()
            print(f"ok   {case.__name__}", flush=True)
        except Exception:
            failed.append(case.__name__)
            print(f"FAIL {case.__name__}\n{traceback.format_exc()}", flush=True)
    if failed:
        print(f"{len(failed)} case(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
