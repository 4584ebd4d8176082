"""The .deb: built by cpack from the build tree, holds the binary, completions,
example configs and systemd units, and installs with dpkg into a scratch root
where `llmctl --version` then runs."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from llmctl_test_util import check, finish  # noqa: E402

build_dir = os.environ["LLMCTL_BUILD_DIR"]
for tool in ("cpack", "dpkg", "dpkg-deb"):
    if not shutil.which(tool):
        print(f"skip: {tool} not found")
        sys.exit(77)

with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run(["cpack", "-G", "DEB", "-B", tmp, "--config", os.path.join(build_dir, "CPackConfig.cmake")],
                       capture_output=True, text=True, cwd=build_dir, timeout=500)
    check(r.returncode == 0, f"cpack -G DEB succeeds\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    check(len(debs) == 1, f"one .deb is produced ({debs})")
    if not debs:
        finish()
    deb = os.path.join(tmp, debs[0])
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    for path in ("./usr/bin/llmctl",
                 "./usr/share/bash-completion/completions/llmctl",
                 "./usr/share/zsh/vendor-completions/_llmctl",
                 "./usr/share/fish/vendor_completions.d/llmctl.fish",
                 "./usr/share/doc/llmctl/examples/two-node.toml",
                 "./usr/share/doc/llmctl/examples/local.toml",
                 "./usr/share/doc/llmctl/examples/multi-model.toml",
                 "./usr/lib/systemd/system/llmctl-head.service",
                 "./lib/systemd/system/llmctl-head.service"):
        if path.startswith("./lib/") and "./usr/lib/systemd" in listing:
            continue
        if path.startswith("./usr/lib/systemd") and "./usr/lib/systemd" not in listing:
            continue
        check(path in listing, f"the .deb holds {path}")
    check("llmctl-agent.service" in listing, "the .deb holds llmctl-agent.service")
    info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"], capture_output=True,
                          text=True).stdout
    check("Package: llmctl" in info, f"package metadata ({info.strip()})")
    # up / exec / doctor cluster.toml talk SSH through libssh: installing the
    # .deb must pull it in.
    check("libssh-4" in info, f"the .deb depends on libssh-4 ({info.strip()})")

    # A real dpkg install into a scratch root with its own database.
    root = os.path.join(tmp, "root")
    admin = os.path.join(root, "var", "lib", "dpkg")
    os.makedirs(os.path.join(admin, "updates"))
    os.makedirs(os.path.join(admin, "info"))
    open(os.path.join(admin, "status"), "w").close()
    r = subprocess.run(["dpkg", "--force-not-root", "--force-depends", "--force-script-chrootless",
                        f"--instdir={root}", f"--admindir={admin}", "--log=/dev/null", "-i", deb],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"dpkg -i installs the package\n{r.stderr[-1500:]}")
    installed = os.path.join(root, "usr", "bin", "llmctl")
    v = subprocess.run([installed, "--version"], capture_output=True, text=True)
    check(v.returncode == 0 and v.stdout.startswith("llmctl "), f"the installed llmctl --version runs ({v.stderr})")
    q = subprocess.run(["dpkg", f"--admindir={admin}", "-s", "llmctl"], capture_output=True, text=True)
    check("Status: install ok installed" in q.stdout, "dpkg records the package as installed")
finish()
