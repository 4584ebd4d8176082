#!/usr/bin/env python3
"""Drives `llmctl logs` (the real binary) over a node's state dir with real log
files: the formats head/agent write, captured child output, rotation, follow."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ["LLMCTL_BIN"]
failures = []
HOST = socket.gethostname()


def check(cond, what):
    if not cond:
        failures.append(what)


def logs(state, *args, expect_rc=0):
    p = subprocess.run([BIN, "--state-dir", state, "logs", *args], capture_output=True, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    check(p.returncode == expect_rc, "logs %s: rc %d (want %d): %s" % (args, p.returncode, expect_rc, err))
    return out, err


def line(ts, level, comp, msg):
    return "%s %-5s [%s] node=%s pid=77 %s\n" % (ts, level, comp, HOST, msg)


def now_ts(offset_s=0.0):
    t = time.time() + offset_s
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


with tempfile.TemporaryDirectory() as state:
    os.makedirs(os.path.join(state, "logs"))
    os.makedirs(os.path.join(state, "bundles"))
    old = now_ts(-7200)  # two hours ago
    with open(os.path.join(state, "logs", "head.log"), "w") as f:
        f.write(line(old, "info", "head", "head listening on 0.0.0.0:6379"))
        f.write(line(now_ts(-30), "warn", "head", "node lf002 missed 3 heartbeats"))
    with open(os.path.join(state, "logs", "agent.log"), "w") as f:
        f.write(line(now_ts(-20), "info", "agent", "bundle tp-0 started: pid 4242"))
    with open(os.path.join(state, "bundles", "tp-0.err"), "w") as f:
        f.write(line(now_ts(-10), "info", "job/tp-0", "[Gloo] Connection refused: 10.0.0.3:30007"))
        f.write("Traceback (most recent call last):\n")

    # --grep finds the child's stderr line, with node and component.
    out, _ = logs(state, "--grep", "Gloo", "--json")
    recs = [json.loads(l) for l in out.splitlines()]
    check(len(recs) == 1, "one Gloo line: %r" % out)
    if recs:
        check(recs[0]["node"] == HOST and recs[0]["component"] == "job/tp-0", "node/component: %r" % recs[0])
        check(recs[0]["file"] == "bundles/tp-0.err", "file: %r" % recs[0])
    out, _ = logs(state, "--grep", "Gloo")
    check(out.startswith("%s job/tp-0 | " % HOST) and "Connection refused" in out, "text line: %r" % out)

    # Filters.
    out, _ = logs(state, "--since", "1h", "--json")
    msgs = [json.loads(l)["message"] for l in out.splitlines()]
    check("head listening on 0.0.0.0:6379" not in msgs and len(msgs) == 4, "--since 1h: %r" % msgs)
    out, _ = logs(state, "--level", "warn", "--json")
    check([json.loads(l)["message"] for l in out.splitlines()] == ["node lf002 missed 3 heartbeats"],
          "--level warn: %r" % out)
    out, _ = logs(state, "--component", "agent", "--json")
    check([json.loads(l)["component"] for l in out.splitlines()] == ["agent"], "--component agent: %r" % out)
    out, _ = logs(state, "--component", "job", "--json")
    check(len(out.splitlines()) == 2, "--component job keeps the traceback line: %r" % out)
    out, _ = logs(state, "--node", HOST, "--tail", "1", "--json")
    check([json.loads(l)["message"] for l in out.splitlines()] == ["Traceback (most recent call last):"],
          "--tail 1: %r" % out)
    out, err = logs(state, "--max-lines", "2")
    check(len(out.splitlines()) == 2 and "--max-lines 2" in err, "--max-lines 2: %r %r" % (out, err))
    out, err = logs(state, "--grep", "nothing matches this")
    check(out == "" and "no matching lines" in err, "no match: %r" % err)

    # Bad input: exit 2 and a message naming what was wrong.
    _, err = logs(state, "--grep", "Gloo(", expect_rc=2)
    check("--grep 'Gloo('" in err, "bad regex named: %r" % err)
    _, err = logs(state, "--since", "yesterday-ish", expect_rc=2)
    check("--since 'yesterday-ish'" in err, "bad --since named: %r" % err)
    _, err = logs(state, "--level", "loud", expect_rc=2)
    check("--level 'loud'" in err, "bad --level named: %r" % err)
    _, err = logs(state, "--node", "no-such-node", expect_rc=1)
    check("no-such-node" in err, "unknown node named: %r" % err)

    # --follow sees a line written after it started, in a file created after it started.
    p = subprocess.Popen([BIN, "--state-dir", state, "logs", "--grep", "NCCL", "--follow", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        with open(os.path.join(state, "bundles", "tp-1.out"), "w") as f:
            f.write(line(now_ts(), "info", "job/tp-1", "NCCL INFO Bootstrap : Using eth0"))
        got = None
        deadline = time.time() + 10
        os.set_blocking(p.stdout.fileno(), False)
        buf = b""
        while time.time() < deadline and got is None:
            chunk = p.stdout.read()
            if chunk:
                buf += chunk
                if b"\n" in buf:
                    got = json.loads(buf.split(b"\n")[0])
            time.sleep(0.05)
        check(got is not None and got["component"] == "job/tp-1", "--follow saw the new line: %r" % buf)
    finally:
        p.kill()
        p.wait(timeout=10)

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("logs_cli: all checks passed")
