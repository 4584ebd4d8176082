#!/usr/bin/env python3
"""Thousands of connections: `llmctl serve` (stories260K) started with a soft
open-file limit of 1024 raises its own limit, holds 2,000 idle keep-alive
connections at once while /health and a completion still answer promptly and
correctly, stays within a memory bound, and lets them all go when they close."""
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time

BIN = os.environ["LLMCTL_BIN"]
SHARED = os.environ.get("LLMCTL_SHARED_DIR", "")
MODEL = os.path.join(SHARED, "assets", "stories260K")
NUM_CONNECTIONS = 2000
# Generous on a loaded 2-core CI box; an io thread blocked behind the idle
# connections would take the request timeout (30 s) or forever.
PROMPT_S = 5.0
# Measured ~ 12 MiB (6 KiB each) for 2,000 connections; a per-connection leak of
# tens of KiB (a buffer per read, say) would exceed this.
MAX_RSS_GROWTH_MIB = 64

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def num_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def read_response(sock):
    """One HTTP response (Content-Length framed) from a raw socket: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for h in lines[1:]:
        name, _, value = h.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return int(lines[0].split()[1]), body


def main():
    if not os.path.isdir(MODEL):
        print("FAIL: no", MODEL, file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NUM_CONNECTIONS + 200:
        print(f"skip: the hard open-file limit ({hard}) is below {NUM_CONNECTIONS + 200}")
        return 77
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    def low_limit():
        # What most distributions give a process: the server must raise it itself.
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    proc = subprocess.Popen([BIN, "serve", "--model", MODEL, "--served-model-name", "stories", "--host", "127.0.0.1",
                             "--port", str(port), "--max-model-len", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=low_limit)
    conns = []
    try:
        def request(method, path, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request(method, path, json.dumps(body) if body is not None else None,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, data

        deadline = time.time() + 60
        while True:
            try:
                if request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                print("serve exited:", proc.stderr.read(), file=sys.stderr)
                return 1
            if time.time() > deadline:
                print("serve did not become healthy", file=sys.stderr)
                return 1
            time.sleep(0.1)

        limit = soft_nofile(proc.pid)
        check(hard == resource.RLIM_INFINITY or limit == hard,
              f"serve raised its soft open-file limit from 1024 to the hard limit {hard} (has {limit})")

        body = {"model": "stories", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}
        status, data = request("POST", "/v1/completions", body)
        check(status == 200, f"completion before: {status} {data[:200]}")
        alone = json.loads(data)["choices"][0]["text"]
        base_rss = proc_status(proc.pid, "VmRSS")
        base_fds = num_fds(proc.pid)

        # Open them all, then send one keep-alive request on each, then read the answers:
        # the server holds NUM_CONNECTIONS sockets at once.
        t0 = time.time()
        for _ in range(NUM_CONNECTIONS):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        for c in conns:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = 0
        for c in conns:
            try:
                ok += read_response(c)[0] == 200
            except OSError as e:  # a server stuck at its descriptor limit: fail once, not 2,000 times
                print("FAIL: reading /health:", e, file=sys.stderr)
                break
        print(f"{NUM_CONNECTIONS} connections opened and answered in {time.time() - t0:.2f} s")
        check(ok == NUM_CONNECTIONS, f"every connection got /health 200 ({ok} of {NUM_CONNECTIONS})")
        fds = num_fds(proc.pid)
        # A few descriptors of the server's own come and go (model files, /proc reads): allow them.
        check(fds >= base_fds + NUM_CONNECTIONS - 8, f"serve holds every connection ({fds} fds, {base_fds} before)")

        t0 = time.time()
        status, _ = request("GET", "/health")
        health_s = time.time() - t0
        t0 = time.time()
        status2, data = request("POST", "/v1/completions", body)
        completion_s = time.time() - t0
        print(f"with {NUM_CONNECTIONS} idle connections: /health {health_s * 1000:.1f} ms, "
              f"completion {completion_s * 1000:.1f} ms")
        check(status == 200 and health_s < PROMPT_S, f"/health answers promptly ({status}, {health_s:.2f} s)")
        check(status2 == 200 and completion_s < PROMPT_S, f"completion answers promptly ({status2}, {completion_s:.2f} s)")
        check(status2 == 200 and json.loads(data)["choices"][0]["text"] == alone,
              "completion under load equals the one without")

        # The idle connections are still alive and usable (keep-alive).
        reused = 0
        for c in conns[::100]:
            c.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            st, _ = read_response(c)
            reused += st == 200
        check(reused == len(conns[::100]), f"idle keep-alive connections answer again ({reused})")

        rss = proc_status(proc.pid, "VmRSS")
        growth_mib = (rss - base_rss) / 1024
        print(f"serve RSS: {base_rss / 1024:.1f} MiB before, {rss / 1024:.1f} MiB with {NUM_CONNECTIONS} connections "
              f"({growth_mib * 1024 / NUM_CONNECTIONS:.1f} KiB each)")
        check(growth_mib < MAX_RSS_GROWTH_MIB, f"memory stays bounded: +{growth_mib:.1f} MiB")

        for c in conns:
            c.close()
        conns = []
        deadline = time.time() + 15
        while time.time() < deadline and num_fds(proc.pid) > base_fds + 2:
            time.sleep(0.1)
        fds = num_fds(proc.pid)
        check(fds <= base_fds + 2, f"serve released the closed connections ({fds} fds, {base_fds} before)")
        status, data = request("POST", "/v1/completions", body)
        check(status == 200 and json.loads(data)["choices"][0]["text"] == alone, "serves normally afterwards")

        proc.terminate()
        rc = proc.wait(timeout=15)
        check(rc == 0, f"serve exits cleanly on SIGTERM (rc {rc})")
    finally:
        for c in conns:
            c.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
