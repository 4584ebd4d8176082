#!/bin/sh
# Installs every build and test dependency of llmctl from Debian 12 packages.
# Nothing is vendored. The one exception to "Debian only": the tests also get a
# venv at /opt/llmctl-test-venv with the `openai` client from PyPI (Debian 12
# does not package it), used by tests/integration/openai_client_check.py only.
# Safe to run repeatedly.
#   packaging/install-deps.sh          build + test dependencies
#   packaging/install-deps.sh --build  build dependencies only
set -eu

build_pkgs="build-essential cmake ninja-build pkg-config git ca-certificates file
  libcli11-dev libasio-dev libtomlplusplus-dev libspdlog-dev libfmt-dev doctest-dev
  libssh-dev nlohmann-json3-dev libopenblas-dev libgloo-dev libssl-dev zlib1g-dev
  libhttp-parser-dev libpcre2-dev curl"
test_pkgs="iproute2 nftables openssh-server openssh-client procps psmisc python3 python3-venv dpkg-dev"
# The bounded fuzzing run of packaging/check.sh (fuzz/run.sh): clang and libFuzzer.
test_pkgs="$test_pkgs clang-14 libclang-rt-14-dev"

pkgs="$build_pkgs"
if [ "${1:-}" != "--build" ]; then pkgs="$pkgs $test_pkgs"; fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ "${1:-}" != "--build" ]; then
  venv=/opt/llmctl-test-venv
  if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
    $SUDO python3 -m venv "$venv"
    $SUDO "$venv/bin/pip" install -q --disable-pip-version-check "openai>=1"
  fi
fi
echo "install-deps: all packages present"
