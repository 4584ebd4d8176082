"""Completion scripts come from the CLI definition: the committed files equal
what the binary generates, list every subcommand, and parse in their shell."""
import os
import shutil
import subprocess

from llmctl_test_util import SOURCE_DIR, SUBCOMMANDS, check, finish, run

files = {"bash": "completions/llmctl.bash", "zsh": "completions/_llmctl", "fish": "completions/llmctl.fish"}
for shell, rel in files.items():
    r = run("completion", shell)
    check(r.returncode == 0, f"llmctl completion {shell} exits 0")
    path = os.path.join(SOURCE_DIR, rel)
    committed = open(path).read() if os.path.exists(path) else ""
    check(committed == r.stdout,
          f"{rel} is up to date (regenerate: llmctl completion {shell} > {rel})")
    # How each shell's script names a subcommand it offers.
    offered = {"bash": lambda c: f"\n    {c})\n" in r.stdout,
               "zsh": lambda c: f"\n    '{c}:" in r.stdout,
               "fish": lambda c: f" -a {c} -d " in r.stdout}[shell]
    for cmd in SUBCOMMANDS:
        check(offered(cmd), f"{shell} completion offers '{cmd}'")
    for hidden in ("agent", "worker", "head"):
        check(not offered(hidden), f"{shell} completion hides '{hidden}'")

# The bash script must define the function and complete subcommands for real.
if shutil.which("bash"):
    script = run("completion", "bash").stdout
    probe = script + '\nCOMP_WORDS=(llmctl do); COMP_CWORD=1; _llmctl; echo "${COMPREPLY[@]}"\n' \
                     'COMP_WORDS=(llmctl serve --ma); COMP_CWORD=2; _llmctl; echo "${COMPREPLY[@]}"\n'
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
    check(len(out) == 2 and out[0].split() == ["doctor", "down"], f"bash completes 'do' to doctor/down (got {out[:1]})")
    check(len(out) == 2 and set(out[1].split()) == {"--max-num-seqs", "--max-num-batched-tokens", "--max-model-len"},
          f"bash completes 'serve --ma' to serve's flags (got {out[1:]})")
if shutil.which("fish"):
    r = subprocess.run(["fish", "--no-execute", os.path.join(SOURCE_DIR, files["fish"])], capture_output=True)
    check(r.returncode == 0, "fish parses the fish completion")
if shutil.which("zsh"):
    r = subprocess.run(["zsh", "-n", os.path.join(SOURCE_DIR, files["zsh"])], capture_output=True)
    check(r.returncode == 0, "zsh parses the zsh completion")

finish()
