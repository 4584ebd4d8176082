"""The bundle runs on a host without the -dev packages: every library the
binary needs is either inside the bundle or one the host must provide (glibc,
the NVIDIA driver, cuBLAS, NCCL), and the bundled binary runs with a bare
environment."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from llmctl_test_util import BIN, SOURCE_DIR, check, finish  # noqa: E402

HOST_LIBS = re.compile(r"^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|"
                       r"libcuda\.so|libnvidia-|libcublas\.so|libcublasLt\.so|libnccl\.so|libstdc\+\+\.so|libgcc_s\.so)")

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "llmctl-bundle")
    r = subprocess.run([os.path.join(SOURCE_DIR, "packaging", "bundle.sh"), BIN, out], capture_output=True, text=True)
    check(r.returncode == 0, f"bundle.sh succeeds ({r.stderr.strip()})")
    bundled = os.path.join(out, "llmctl")
    check(os.access(bundled, os.X_OK), "the bundle holds an executable llmctl")
    tarballs = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")]
    check(len(tarballs) == 1 and re.match(r"llmctl-\d+\.\d+\.\d+-linux-\w+\.tar\.gz", tarballs[0]) is not None,
          f"a versioned tarball is written ({tarballs})")

    env = {"PATH": "/usr/bin:/bin"}  # no LD_LIBRARY_PATH: only rpath and the system
    ldd = subprocess.run(["ldd", bundled], capture_output=True, text=True, env=env).stdout
    for line in ldd.splitlines():
        parts = line.split()
        if not parts:
            continue
        name = parts[0]
        where = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0]
        if HOST_LIBS.match(os.path.basename(name)):
            continue
        check(where.startswith(out + "/lib/"), f"{name} resolves inside the bundle (-> {where})")
    check("not found" not in ldd, "ldd finds every library")
    # libstdc++ and libgcc are linked in statically so old or new hosts both work
    # (NCCL, on GPU hosts, may still pull the host's own libstdc++ for itself).
    needed = subprocess.run(["readelf", "-d", bundled], capture_output=True, text=True).stdout
    check("libstdc++" not in needed and "libgcc_s" not in needed, "llmctl itself does not need libstdc++/libgcc_s")

    v = subprocess.run([bundled, "version"], capture_output=True, text=True, env=env)
    check(v.returncode == 0 and v.stdout.startswith("llmctl "), "the bundled binary runs `version` with a bare env")
    h = subprocess.run([bundled, "--help"], capture_output=True, text=True, env=env)
    check(h.returncode == 0 and "doctor" in h.stdout, "the bundled binary prints help")
finish()
