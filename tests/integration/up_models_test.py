"""`llmctl up` serving cluster.toml's [[models]] (label `cluster`, needs root):
namespace hosts running real sshd (ssh_harness.py), llmctl driven from a
client namespace. lf001 is the head and gives no CPU to the cluster
(num_cpus = 0), so the rank 1 of a tp = 2 model must land on lf002.

Checks, in order:
1. `up --dry-run` lists both models to start and starts nothing.
2. `up`: both models answer /health 200; the summary names each model's URL
   (ports.api and ports.api + 1); a greedy POST /v1/completions to each from
   the client namespace returns the text `llmctl generate` gives for the same
   prompt; the tp = 2 model's rank 1 runs under lf002's agent.
3. `up` again: nothing changed, same serve pids.
4. A model with pp = 2 in the file: `up --dry-run` exits 1 naming what is not
   supported, and nothing changes.
5. The tp = 2 model dropped and the other's max_num_seqs changed: `up --json`
   stops the first (no worker rank left), restarts the second (new pid,
   still answering the same text). Then a model whose path does not exist:
   `up` exits 1 naming it and the end of its log; the other keeps running;
   dropped again, its files go and `up` says nothing changed.
6. `down`: no serve, worker or daemon process left in any namespace.
Skips (77) without namespaces, sshd or the stories260K model."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
import ssh_harness  # noqa: E402

LLMCTL = os.environ.get("LLMCTL_BIN", "llmctl")
SHARED = os.environ.get("LLMCTL_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
STORIES = os.path.abspath(os.path.join(SHARED, "assets", "stories260K"))
PROMPT = "Once upon a time, there was a"
MAX_TOKENS = 24

POST = """
import json, sys, urllib.request
body = json.dumps({"model": sys.argv[2], "prompt": sys.argv[3], "max_tokens": int(sys.argv[4]),
                   "temperature": 0, "ignore_eos": True}).encode()
req = urllib.request.Request(sys.argv[1] + "/completions", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=60))["choices"][0]["text"], end="")
"""


def cmdlines():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            out[int(d)] = (argv, int(stat[stat.rindex(")") + 2:].split()[1]))
    return out


def pids_under(root):
    """Live processes whose command line names a path under `root`: pid -> (argv, ppid)."""
    needle = root.encode()
    return {p: v for p, v in cmdlines().items() if any(needle in a for a in v[0])}


def main():
    ssh_harness.skip_unless_able()
    if not os.path.isdir(STORIES):
        print(f"SKIP: no {STORIES}")
        return netns.SKIP
    return ssh_harness.run_in_lab(run, pids_under)


def run(tmp, lab, nodes_root):
    t_start = time.time()
    ref = lab_free_generate()
    keys = ssh_harness.Keys(tmp)
    client = lab.add_host("client")
    hosts = {n: lab.add_host(n) for n in ("lf001", "lf002")}
    lines = [f"{h.address} {h.hostname}" for h in lab.hosts]
    for h in lab.hosts:
        h.write_hosts(lines)
    for h in hosts.values():
        if ssh_harness.start_sshd(tmp, h) is None:
            return netns.SKIP
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    env = {"HOME": home, "SSH_AUTH_SOCK": "", "LLMCTL_STATE_DIR": os.path.join(tmp, "launcher")}
    head_ip = hosts["lf001"].address

    def state(n):
        return os.path.join(nodes_root, n, "state")

    def write(models):
        body = f'[cluster]\nname = "models"\n[ssh]\nkey = "{keys.user}"\n'
        for role, n, extra in (("[head]", "lf001", "num_cpus = 0\n"), ("[[workers]]", "lf002", "")):
            body += (f'{role}\nhost = "{n}"\nstate_dir = "{state(n)}"\n'
                     f'install_dir = "{os.path.join(nodes_root, n, "install")}"\n{extra}')
        for m in models:
            body += "[[models]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in m.items())
        path = os.path.join(tmp, "cluster.toml")
        with open(path, "w") as f:
            f.write(body)
        return path

    def llmctl(*args, timeout=120):
        start = time.time()
        r = client.run([LLMCTL, *args], env=env, timeout=timeout)
        print(f"$ llmctl {' '.join(args)}  -> {r.returncode} in {time.time() - start:.1f}s")
        return r

    def serve_pid(name):
        try:
            with open(os.path.join(state("lf001"), "serve", f"{name}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def complete(url, name):
        r = client.run(["python3", "-c", POST, url, name, PROMPT, str(MAX_TOKENS)], timeout=90)
        assert r.returncode == 0, f"POST {url}/completions: {r.stderr}"
        return r.stdout

    def workers():
        return {p: v for p, v in pids_under(nodes_root).items() if b"worker" in v[0] and b"--rendezvous" in v[0]}

    tp1 = {"name": "stories", "path": STORIES, "tp": 1, "max_num_seqs": 4, "max_model_len": 256}
    tp2 = {"name": "stories-tp2", "path": STORIES, "tp": 2, "max_num_seqs": 4, "max_model_len": 256}
    cfg = write([tp1, tp2])
    common = ["--yes", "--accept-new-host-keys", "--skip-doctor", "--timeout", "60"]

    # 1. --dry-run: both models listed, nothing started.
    r = llmctl("up", cfg, "--dry-run", "--accept-new-host-keys")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert f"model stories    tp 1   http://{head_ip}:8000/v1 start" in r.stdout, r.stdout
    assert f"model stories-tp2 tp 2   http://{head_ip}:8001/v1 start" in r.stdout, r.stdout
    assert not pids_under(nodes_root), pids_under(nodes_root)
    print("ok: --dry-run lists the models to start and starts nothing")

    # 2. up: both served, same text as generate, rank 1 of tp 2 on lf002.
    r = llmctl(*(["up", cfg] + common))
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    out = r.stdout
    print(out[out.index("Cluster \""):])
    for name, port in (("stories", 8000), ("stories-tp2", 8001)):
        assert f"lf001: model {name}: /health answers 200 on port {port}" in out, out
        assert f"  {name:<16} http://{head_ip}:{port}/v1 (tp " in out, out
        assert serve_pid(name), name
        log = os.path.join(state("lf001"), "logs", f"serve-{name}.log")
        assert "ready at" in open(log).read(), log
    assert "OpenAI API:    one port per model" in out, out
    for name, port in (("stories", 8000), ("stories-tp2", 8001)):
        text = complete(f"http://{head_ip}:{port}/v1", name)
        assert text == ref, f"{name}: {text!r} != generate's {ref!r}"
    with open(os.path.join(state("lf002"), "agent.pid")) as f:
        lf002_agent = int(f.read().strip())
    ranks = workers()
    assert len(ranks) == 1 and all(v[1] == lf002_agent for v in ranks.values()), (ranks, lf002_agent)
    print("ok: up serves both models; each answers generate's text; rank 1 runs on lf002")

    # 3. Again: nothing changes.
    pids = {n: serve_pid(n) for n in ("stories", "stories-tp2")}
    r = llmctl(*(["up", cfg] + common))
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert 'Cluster "models" is up; nothing changed: 2 node(s) Active.' in r.stdout, r.stdout
    assert "starting" not in r.stdout and "stopped" not in r.stdout, r.stdout
    assert {n: serve_pid(n) for n in pids} == pids
    print("ok: up again changes nothing")

    # 4. pp = 2 is refused precisely, nothing changes.
    bad = write([tp1, tp2, {"name": "piped", "path": STORIES, "pp": 2}])
    r = llmctl("up", bad, "--dry-run")
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    assert ("llmctl up: lf001: model piped is not served: pipeline parallel (pp = 2) is not supported yet; "
            "use pp = 1") in r.stderr, r.stderr
    assert {n: serve_pid(n) for n in pids} == pids
    print("ok: a pp = 2 model is refused, naming why")

    # 5. tp 2 dropped, tp 1 changed: one stopped, one restarted.
    changed = write([dict(tp1, max_num_seqs=8)])
    r = llmctl(*(["up", changed, "--json"] + common))
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    rep = json.loads(r.stdout)
    acts = {m["name"]: m["action"] for m in rep["models"]}
    assert acts == {"stories": "restarted", "stories-tp2": "stopped"}, rep["models"]
    assert rep["changed"] and rep["models"][0]["url"] == f"http://{head_ip}:8000/v1", rep
    assert "restarting `llmctl serve` (tp 1) on port 8000 (its settings in the file changed)" in r.stderr, r.stderr
    assert serve_pid("stories") not in (0, pids["stories"]) and serve_pid("stories-tp2") == 0
    for pid in pids.values():
        assert pid not in cmdlines(), f"serve pid {pid} still runs"
    deadline = time.time() + 20
    while workers() and time.time() < deadline:
        time.sleep(0.2)
    assert not workers(), workers()
    assert complete(f"http://{head_ip}:8000/v1", "stories") == ref
    print("ok: a dropped model is stopped (its rank too), a changed one restarted")

    # 5b. A model whose serve cannot start: up fails naming it and its log; the other keeps running.
    kept = serve_pid("stories")
    broken = write([dict(tp1, max_num_seqs=8), {"name": "broken", "path": os.path.join(tmp, "no-such-model")}])
    r = llmctl(*(["up", broken] + common))
    assert r.returncode == 1, f"{r.returncode} {r.stdout} {r.stderr}"
    log = os.path.join(state("lf001"), "logs", "serve-broken.log")
    assert f"llmctl up: lf001: model broken: llmctl serve exited; its log {log} ends: " in r.stderr, r.stderr
    assert "no-such-model" in r.stderr, r.stderr
    assert serve_pid("stories") == kept and "  broken           failed" in r.stdout, r.stdout
    print("ok: a model whose serve exits fails up with its log's last lines; the others keep serving")

    # 5c. The broken model dropped again: its leftover files go quietly; nothing else changes.
    assert os.path.exists(os.path.join(state("lf001"), "serve", "broken.pid"))
    changed = write([dict(tp1, max_num_seqs=8)])
    r = llmctl(*(["up", changed] + common))
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert 'Cluster "models" is up; nothing changed: 2 node(s) Active.' in r.stdout, r.stdout
    assert "broken" not in r.stdout and serve_pid("stories") == kept, r.stdout
    assert not os.path.exists(os.path.join(state("lf001"), "serve", "broken.pid"))
    print("ok: an exited serve no longer in the file is cleaned up without a change")

    # 6. down: nothing left anywhere.
    r = llmctl("down", changed, "--yes")
    assert r.returncode == 0, f"{r.returncode} {r.stdout} {r.stderr}"
    assert "lf001: model stories: stopped its serve" in r.stdout, r.stdout
    assert r.stdout.index("model stories: stopped") < r.stdout.index("lf002: stopped"), r.stdout
    left = pids_under(nodes_root)
    assert not left, f"processes left after down: {left}"
    print(f"up_models: all cases passed in {time.time() - t_start:.1f}s")
    return 0


def lab_free_generate():
    import subprocess
    r = subprocess.run([LLMCTL, "generate", "--model", STORIES, "--prompt", PROMPT, "--max-tokens", str(MAX_TOKENS),
                        "--temperature", "0", "--ignore-eos", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"generate: {r.stderr}"
    return json.loads(r.stdout)["text"]


if __name__ == "__main__":
    sys.exit(main())
