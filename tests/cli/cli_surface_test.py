"""The command-line surface: help lists every subcommand, each has its own
--help, bad flags are usage errors (exit 2), version reports build and GPUs."""
import json
import re

from llmctl_test_util import SUBCOMMANDS, check, finish, run

top = run("--help")
check(top.returncode == 0, "llmctl --help exits 0")
listed = re.findall(r"^  ([a-z][a-z-]+) {2,}", top.stdout.split("Subcommands:")[1].split("Examples:")[0], re.M)
check(sorted(listed) == sorted(SUBCOMMANDS), f"--help lists exactly the subcommands (got {listed})")
for hidden in ("agent", "head", "worker"):
    check(hidden not in listed, f"internal entry point '{hidden}' is hidden from --help")

bare = run()
check(bare.returncode == 0 and "Subcommands:" in bare.stdout, "llmctl with no arguments prints help")

# Flags each issue requires to be documented already.
required_flags = {
    "doctor": ["--peers", "--listen", "--json", "--model", "--deep"],
    "start": ["--head", "--address", "--token", "--node-ip-address", "--port", "--dashboard-port",
              "--num-gpus", "--num-cpus", "--resources", "--block"],
    "stop": ["--force", "--grace-period"],
    "status": ["--json", "--address"],
    "nodes": ["--json", "--address"],
    "up": ["--yes", "--dry-run", "--accept-new-host-keys"],
    "down": ["--keep-state"],
    "exec": ["--node"],
    "serve": ["--model", "--served-model-name", "--host", "--port", "--api-key", "--max-num-seqs",
              "--max-num-batched-tokens", "--max-model-len", "--gpu-memory-utilization", "--device",
              "--tp", "--pp"],
    "generate": ["--model", "--prompt", "--max-tokens", "--temperature", "--top-p", "--top-k", "--seed",
                 "--ignore-eos", "--json"],
    "tokenize": ["--model", "--text", "--file", "--no-special", "--json", "--decode"],
    "chat-template": ["--model", "--messages", "--add-generation-prompt"],
    "logs": ["--grep", "--node", "--component", "--level", "--since", "--until", "--tail", "--max-lines",
             "--follow", "--json", "--address"],
    "bench": ["--url", "--model", "--concurrency", "--num-prompts", "--input-len", "--output-len",
              "--dataset", "--request-rate", "--json"],
    "version": ["--json"],
}
for cmd in SUBCOMMANDS:
    r = run(cmd, "--help")
    check(r.returncode == 0, f"llmctl {cmd} --help exits 0")
    for flag in required_flags.get(cmd, []):
        check(flag in r.stdout, f"llmctl {cmd} --help documents {flag}")

bad = run("doctor", "--no-such-flag")
check(bad.returncode == 2, f"an unknown flag exits 2 (got {bad.returncode})")
check("--no-such-flag" in bad.stderr, "the error names the unknown flag")
bad = run("no-such-command")
check(bad.returncode == 2, f"an unknown subcommand exits 2 (got {bad.returncode})")

# Commands whose issue has not landed exit 2 with a clear message; commands
# that exist must not claim otherwise.
for cmd, args in [("stop", []), ("status", []), ("nodes", []), ("up", ["x.toml"]), ("down", ["x.toml"]),
                  ("logs", []), ("bench", [])]:
    r = run(cmd, *args)
    if r.returncode == 2 and "not implemented yet" in r.stderr:
        check(re.search(r"issue #\d+", r.stderr) is not None, f"llmctl {cmd}: 'not implemented yet' names its issue")
    else:
        check("not implemented" not in r.stderr, f"llmctl {cmd} is implemented and does not say otherwise")

v = run("version")
check(v.returncode == 0, "llmctl version exits 0")
check(re.match(r"llmctl \d+\.\d+\.\d+ \(", v.stdout) is not None, "version's first line: llmctl X.Y.Z (rev, type)")
for field in ("platform:", "cuda backend:", "driver:", "gpus:"):
    check(field in v.stdout, f"version shows {field}")
vv = run("--version")
check(vv.returncode == 0 and vv.stdout.splitlines()[0] == v.stdout.splitlines()[0], "--version matches version")
vj = run("version", "--json")
check(vj.returncode == 0, "version --json exits 0")
j = json.loads(vj.stdout)
for key in ("version", "git_revision", "build_type", "cuda_backend", "compiled", "driver", "gpus"):
    check(key in j, f"version --json has '{key}'")
check(isinstance(j["gpus"], list), "version --json: gpus is a list")
if not j["cuda_backend"]:
    check(j["compiled"]["nccl"] == "", "a CPU build claims no compiled-in NCCL")
check(len(j["git_revision"]) >= 7, f"git revision recorded ({j['git_revision']})")

finish()
