#!/usr/bin/env python3
"""`llmctl serve --tp 4` on stories260K: a greedy completion equals
`llmctl generate --tp 1`; then one worker rank is killed with SIGKILL while a
streaming and a plain completion are running: both fail with an error naming
the rank and its node (the stream with an SSE error event, the other with a
500), /health turns 503 within a few seconds naming the rank, a new completion
fails with an error, the other ranks are reaped (none left running), and serve
still stops cleanly. Then `serve --tp 2 --restart`: a killed rank turns
/health 503, a new rank process replaces it, /health is 200 again and the
greedy text is unchanged."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_ports import free_port  # noqa: E402

BIN = os.environ["LLMCTL_BIN"]
SHARED = os.environ["LLMCTL_SHARED_DIR"]
STORIES = os.path.join(SHARED, "assets", "stories260K")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read().decode()
    return r.status, data


def stop(proc, what):
    """SIGTERM, then its output; a process still there after 20 s is killed and counted as a failure."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        failures.append(f"{what} did not exit on SIGTERM")
        return proc.communicate()


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return kids


with tempfile.TemporaryDirectory() as tmp:
    # A path of its own, so other tests' processes on stories260K are not counted here.
    model = os.path.join(tmp, "stories")
    os.mkdir(model)
    for name in os.listdir(STORIES):
        os.symlink(os.path.join(STORIES, name), os.path.join(model, name))
    prompt = "Once upon a time, there was a"
    single = subprocess.run([BIN, "generate", "--model", model, "--prompt", prompt, "--max-tokens", "48",
                             "--temperature", "0", "--ignore-eos", "--json"], capture_output=True, text=True,
                            timeout=120)
    check(single.returncode == 0, f"generate: {single.stderr}")
    want = json.loads(single.stdout)["text"] if single.returncode == 0 else None

    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), "--tp", "4",
                             "--max-model-len", "256"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        healthy = False
        while time.time() < deadline and proc.poll() is None:
            try:
                if request(port, "GET", "/health")[0] == 200:
                    healthy = True
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not healthy:
            proc.kill()
            raise SystemExit("serve --tp 4 did not become healthy: " + proc.communicate()[1])
        workers = children_of(proc.pid)
        check(len(workers) == 3, f"expected 3 worker ranks as children of serve, found {workers}")

        status, body = request(port, "POST", "/v1/completions",
                               {"model": model, "prompt": prompt, "max_tokens": 48, "temperature": 0,
                                "ignore_eos": True})
        check(status == 200, f"completion: {status} {body}")
        if status == 200 and want is not None:
            got = json.loads(body)["choices"][0]["text"]
            check(got == want, f"serve --tp 4 text {got!r} != generate --tp 1 {want!r}")

        # Kill one rank mid-request: the engine must stop serving, quickly and visibly.
        if workers:
            long_body = {"model": model, "prompt": prompt, "max_tokens": 240, "temperature": 0, "ignore_eos": True}
            plain = {}

            def plain_request():
                try:
                    plain["result"] = request(port, "POST", "/v1/completions", long_body)
                except OSError as e:
                    plain["result"] = (0, str(e))
            stream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            stream.request("POST", "/v1/completions", json.dumps(dict(long_body, stream=True)),
                           {"Content-Type": "application/json"})
            sresp = stream.getresponse()
            check(sresp.status == 200, f"streaming completion starts: {sresp.status}")
            first = sresp.readline().decode()
            check(first.startswith("data: {"), f"a first stream chunk before the kill: {first!r}")
            plain_thread = threading.Thread(target=plain_request)
            plain_thread.start()
            time.sleep(0.2)
            victim = workers[len(workers) // 2]
            os.kill(victim, signal.SIGKILL)
            events = []
            t_stream = time.time()
            while time.time() - t_stream < 20:
                line = sresp.readline().decode()
                if not line:
                    break
                if line.startswith("data: "):
                    events.append(line[6:].strip())
                    if events[-1] == "[DONE]":
                        break
            errors = [json.loads(e)["error"] for e in events if e.startswith("{") and '"error"' in e]
            check(len(errors) == 1 and "rank" in errors[0]["message"] and socket.gethostname() in errors[0]["message"],
                  f"the stream in flight ends with an error event naming the rank and node: {events[-3:]}")
            check(events and events[-1] == "[DONE]", f"the failed stream still ends with [DONE]: {events[-2:]}")
            plain_thread.join(30)
            pstatus, pbody = plain.get("result", (0, "no answer"))
            check(pstatus in (500, 503) and "rank" in pbody, f"the plain completion in flight fails naming the rank: "
                  f"{pstatus} {pbody[:300]}")
            print("stream error:", errors[0]["message"] if errors else None)
            t0 = time.time()
            status = 200
            while time.time() - t0 < 10:
                status = request(port, "GET", "/health")[0]
                if status == 503:
                    break
                time.sleep(0.05)
            elapsed = time.time() - t0
            check(status == 503, f"/health still {status} 10 s after a rank was killed")
            hbody = request(port, "GET", "/health")[1]
            check("rank" in hbody, f"/health says which rank died: {hbody}")
            print(f"/health 503 after {elapsed:.2f} s")
            check(elapsed < 5, f"/health took {elapsed:.1f} s to turn 503")
            status, body = request(port, "POST", "/v1/completions",
                                   {"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0})
            check(status >= 500 and "error" in body, f"completion after the rank died: {status} {body}")
            deadline = time.time() + 5
            while time.time() < deadline and children_of(proc.pid):
                time.sleep(0.05)
            check(not children_of(proc.pid), f"ranks left running after one died: {children_of(proc.pid)}")
    finally:
        out, err = stop(proc, "serve")
    # The ranks left behind fail their collectives too and may be reaped first;
    # the engine's error names the killed one by pid (its liveness port refuses).
    check(workers and f"pid {victim})" in err and "exited (its liveness port" in err, f"serve's stderr does not name the dead rank: {err[-600:]}")

    # With --restart a local group comes back: a killed rank is replaced by a
    # new process and the engine serves the same greedy text again.
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), "--tp", "2",
                             "--max-model-len", "256", "--restart"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    body = {"model": model, "prompt": prompt, "max_tokens": 48, "temperature": 0, "ignore_eos": True}

    def health():
        try:
            return request(port, "GET", "/health")[0]
        except OSError:
            return None

    def wait_until(done, seconds, interval=0.05):
        """True once done() holds, polled while serve runs; False after `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline and proc.poll() is None:
            if done():
                return True
            time.sleep(interval)
        return False

    def wait_health(want_status, seconds):
        return wait_until(lambda: health() == want_status, seconds)

    try:
        check(wait_health(200, 60), "serve --tp 2 --restart did not become healthy")
        first_workers = children_of(proc.pid)
        check(len(first_workers) == 1, f"expected 1 worker rank, found {first_workers}")
        if first_workers:
            os.kill(first_workers[0], signal.SIGKILL)
            # The 503 window is as long as a reload of the tiny model: on a
            # busy machine the restart can finish between two polls, so a
            # replacement rank also counts as having left the healthy state.
            seen = {}

            def left_healthy():
                seen["503"] = health() == 503
                seen["replaced"] = any(w != first_workers[0] for w in children_of(proc.pid))
                return seen["503"] or seen["replaced"]
            check(wait_until(left_healthy, 10, interval=0.02), "/health did not turn 503 (nor was the rank replaced) after the rank was killed "
                                       "(--restart)")
            t0 = time.time()
            check(wait_health(200, 60), "/health did not come back to 200 with --restart")
            print(f"--restart: healthy again {time.time() - t0:.1f} s after the kill was seen "
                  f"({'/health 503' if seen.get('503') else 'rank replaced before a poll saw 503'})")
            new_workers = children_of(proc.pid)
            check(len(new_workers) == 1 and new_workers[0] != first_workers[0],
                  f"a new worker rank replaces the killed one: {first_workers} -> {new_workers}")
            status, text = request(port, "POST", "/v1/completions", body)
            check(status == 200, f"completion after the restart: {status} {text}")
            if status == 200 and want is not None:
                got = json.loads(text)["choices"][0]["text"]
                check(got == want, f"after --restart the text {got!r} != generate --tp 1 {want!r}")
    finally:
        out, err = stop(proc, "serve --restart")
    check("serves again" in err, f"serve's stderr says the engine serves again: {err[-600:]}")

if failures:
    sys.exit(1)
print("ok")
