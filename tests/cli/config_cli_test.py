"""`llmctl config show|check` on the example configs and on broken files:
errors name the file, line, column and key, and the exit status is 2."""
import glob
import os
import tempfile

from llmctl_test_util import SOURCE_DIR, check, finish, run

examples = sorted(glob.glob(os.path.join(SOURCE_DIR, "configs", "*.toml")))
check(len(examples) >= 3, f"configs/ holds the example configs ({[os.path.basename(e) for e in examples]})")
for path in examples:
    r = run("config", "check", path)
    check(r.returncode == 0, f"config check {os.path.basename(path)} passes ({r.stderr.strip()})")
    s = run("config", "show", path)
    check(s.returncode == 0 and "[ports]" in s.stdout and "node_range" in s.stdout,
          f"config show {os.path.basename(path)} prints ports with defaults")
    # The effective config is itself a valid config that shows the same.
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(s.stdout)
    again = run("config", "show", f.name)
    check(again.stdout.split("\n", 1)[1] == s.stdout.split("\n", 1)[1],
          f"config show of the shown {os.path.basename(path)} is a fixed point")
    os.unlink(f.name)

two = run("config", "show", os.path.join(SOURCE_DIR, "configs", "two-node.toml")).stdout
for line in ('host = "lf001"', 'node_ip = "10.60.182.20"', 'NCCL_SOCKET_IFNAME = "eth0"', "tp = 2",
             '"node:lf002" = 1'):
    check(line in two, f"two-node.toml shows {line}")

cases = [
    ("[head]\nhost = \"a\"\nnum_gpus = \"two\"\n", 3, "head.num_gpus", "expected an integer"),
    ("[head]\nhost = \"a\"\n[ports]\nhead = 99999\n", 4, "ports.head", "1..65535"),
    ("[head]\nhost = \"a\"\n[[workers]]\nhots = \"b\"\n", 4, "workers[0].hots", "did you mean 'host'"),
    ("[head\nhost = \"a\"\n", 1, "", "TOML syntax error"),
    ("[head]\nhost = \"a\"\n[[models]]\npath = \"/m\"\ntp = 0\n", 5, "models[0].tp", "expected an integer in 1..1024"),
]
for text, line, key, what in cases:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    r = run("config", "check", f.name)
    check(r.returncode == 2, f"broken config ({what}) exits 2, got {r.returncode}")
    check(f"{f.name}:{line}:" in r.stderr, f"error names {os.path.basename(f.name)}:{line} ({r.stderr.strip()})")
    check(key in r.stderr and what in r.stderr, f"error names '{key}' and says '{what}'")
    os.unlink(f.name)

missing = run("config", "check", "/nonexistent/cluster.toml")
check(missing.returncode != 0 and "/nonexistent/cluster.toml" in missing.stderr, "a missing file is named")

finish()
