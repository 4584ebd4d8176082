#!/usr/bin/env python3
"""llmctl serve, driven over real sockets with the stdlib only: the demo model
(no --model) and the stories260K model: completions, chat, streaming, n,
stop, logprobs, errors, --api-key, 64 concurrent streams, a client that leaves
mid-stream, and garbage / oversized / slow clients that must not disturb
others. Greedy output equals `llmctl generate`."""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_ports import free_port  # noqa: E402

BIN = os.environ["LLMCTL_BIN"]
SHARED = os.environ.get("LLMCTL_SHARED_DIR", "")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


class Server:
    def __init__(self, args):
        self.port = free_port()
        self.proc = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port)] + args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = self.get("/health")
                if status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit("serve exited: " + self.proc.stderr.read())
            time.sleep(0.1)
        raise SystemExit("serve did not become healthy")

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(self, path):
        c = self.conn()
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()

    def post(self, path, body, headers=None):
        c = self.conn()
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        data = r.read().decode()
        return r.status, json.loads(data) if data else None

    def stream(self, path, body):
        c = self.conn()
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        events = []
        for line in r:
            line = line.decode().strip()
            if line.startswith("data: "):
                events.append(line[6:])
        return r.status, events

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith("llmctl:" + name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_demo():
    s = Server([])
    try:
        st, out = s.post("/v1/completions", {"prompt": "The meaning of life is", "max_tokens": 16, "temperature": 0})
        check(st == 200 and out["model"] == "demo", f"demo completion: {st} {out}")
        text = out["choices"][0]["text"]
        check(len(text.strip()) > 0, "demo model produced text")
        st, out = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Tell me a fortune."}],
                                                   "max_tokens": 24, "temperature": 0})
        check(st == 200 and out["choices"][0]["message"]["role"] == "assistant", f"demo chat: {out}")
    finally:
        s.stop()


def test_stories():
    model = os.path.join(SHARED, "assets", "stories260K")
    if not os.path.isdir(model):
        print("skip stories260K part: no", model)
        return
    prompt = "Once upon a time"
    gen = subprocess.run([BIN, "generate", "--model", model, "--prompt", prompt, "--max-tokens", "20",
                          "--temperature", "0", "--json"], capture_output=True, text=True, timeout=120)
    ref = json.loads(gen.stdout)
    s = Server(["--model", model, "--served-model-name", "stories", "--api-key", "k3y", "--max-model-len", "256"])
    auth = {"Authorization": "Bearer k3y"}
    try:
        st, out = s.post("/v1/completions", {"model": "stories", "prompt": prompt, "max_tokens": 20,
                                              "temperature": 0}, auth)
        check(st == 200, f"stories completion {st} {out}")
        check(out["choices"][0]["text"] == ref["text"], f"greedy equals llmctl generate: {out['choices'][0]['text']!r} vs {ref['text']!r}")
        check(out["usage"]["completion_tokens"] == ref["usage"]["completion_tokens"], "usage equals generate")
        # --api-key guards /v1 only
        st, out = s.post("/v1/completions", {"prompt": prompt})
        check(st == 401 and "error" in out, f"401 without key: {st}")
        check(s.get("/health")[0] == 200, "health is open")
        # errors
        st, out = s.post("/v1/completions", {"prompt": prompt, "top_p": 7}, auth)
        check(st == 400 and out["error"]["param"] == "top_p", f"400 names top_p: {out}")
        st, out = s.post("/v1/completions", {"model": "nope", "prompt": prompt}, auth)
        check(st == 404, "404 unknown model")
        st, out = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 1000}, auth)
        check(st == 400 and "maximum context length" in out["error"]["message"], f"context length: {out}")
        # n, stop, logprobs
        st, out = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 20, "n": 3, "temperature": 0,
                                              "logprobs": 2}, auth)
        check(st == 200 and len(out["choices"]) == 3, "n=3")
        check(all(c["text"] == ref["text"] for c in out["choices"]), "greedy n=3 all equal")
        lp = out["choices"][0]["logprobs"]
        check(len(lp["token_logprobs"]) == 20 and all(x <= 0 for x in lp["token_logprobs"]), "logprobs")
        words = ref["text"].split()
        if len(words) > 3:
            stop = " " + words[2]
            st, out = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 20, "temperature": 0,
                                                  "stop": [stop]}, auth)
            check(out["choices"][0]["text"] == ref["text"][:ref["text"].find(stop)], f"stop: {out}")
            check(out["choices"][0]["finish_reason"] == "stop", "stop reason")
        # 64 concurrent streaming clients all get the full greedy text
        results = [None] * 64

        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
            c.request("POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 20, "temperature": 0,
                                                             "stream": True}), {**auth})
            r = c.getresponse()
            text, done = "", False
            for line in r:
                line = line.decode().strip()
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    text += json.loads(line[6:])["choices"][0]["text"]
            results[i] = (text, done)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        # garbage, oversized and slow clients at the same time
        g = socket.create_connection(("127.0.0.1", s.port))
        g.sendall(b"\x00\x01garbage\r\n\r\n")
        check(g.recv(100).startswith(b"HTTP/1.1 400"), "garbage gets 400")
        big = socket.create_connection(("127.0.0.1", s.port))
        big.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        check(big.recv(100).startswith(b"HTTP/1.1 413"), "oversized body gets 413")
        slow = socket.create_connection(("127.0.0.1", s.port))
        slow.sendall(b"POST /v1/comp")
        # A slow-drip client: a valid request, one byte every 5 ms, is served
        # correctly (within the request timeout) while the streams run.
        drip_result = []

        def drip():
            body = json.dumps({"prompt": prompt, "max_tokens": 20, "temperature": 0}).encode()
            raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\n"
                   b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
            d = socket.create_connection(("127.0.0.1", s.port), timeout=60)
            for i in range(len(raw)):
                d.sendall(raw[i:i + 1])
                time.sleep(0.005)
            resp = b""
            while True:
                chunk = d.recv(65536)
                if not chunk:
                    break
                resp += chunk
            d.close()
            head, _, payload = resp.partition(b"\r\n\r\n")
            drip_result.append((head.split(b" ")[1] if head else b"", payload))

        drip_thread = threading.Thread(target=drip)
        drip_thread.start()
        for t in threads:
            t.join()
        check(all(r == (ref["text"], True) for r in results), "64 concurrent streams complete and correct")
        drip_thread.join()
        check(len(drip_result) == 1 and drip_result[0][0] == b"200", f"slow-drip client answered: {drip_result}")
        if drip_result and drip_result[0][0] == b"200":
            check(json.loads(drip_result[0][1])["choices"][0]["text"] == ref["text"], "slow-drip client: greedy text")
        # The half-sent request is still pending; the other clients were served meanwhile.
        slow.close()
        # a client that leaves mid-stream frees its blocks
        c = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps({"prompt": prompt, "max_tokens": 200, "ignore_eos": True, "stream": True}).encode()
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        seen = b""
        while b"data: " not in seen:
            seen += c.recv(4096)
        c.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            m = s.get("/metrics")[1]
            if metric(m, "num_requests_running") == 0 and metric(m, "kv_cache_usage_perc") == 0:
                break
            time.sleep(0.1)
        m = s.get("/metrics")[1]
        check(metric(m, "num_requests_running") == 0, "disconnect: nothing running")
        check(metric(m, "kv_cache_usage_perc") == 0, f"disconnect: blocks freed ({metric(m, 'kv_cache_usage_perc')})")
    finally:
        s.stop()


if __name__ == "__main__":
    test_demo()
    test_stories()
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        sys.exit(1)
    print("ok")
