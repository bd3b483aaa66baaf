#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, when it is missing.
# Safe to run again; does nothing on a machine that has everything.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need_apt=()
command -v memcached >/dev/null 2>&1 || need_apt+=(memcached)
[ -f /usr/include/libmemcached/memcached.h ] || need_apt+=(libmemcached-dev)
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v strip >/dev/null 2>&1 || need_apt+=(binutils)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v clang++ >/dev/null 2>&1 || need_apt+=(clang)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# `ip` brings up the loopback of the private network namespace of scripts/test_pylibmc_suite.sh.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip python3-dev)
if ((${#need_apt[@]})); then
    echo "deps: installing ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi
# The wheel's build tools live in a virtual environment (Debian splits venv out).
if ! $PY -c "import ensurepip, venv" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
missing_py=()
for mod in pylibmc pymemcache django cffi pytest; do
    $PY -c "import $mod" >/dev/null 2>&1 || missing_py+=("$mod")
done
$PY -c "import dogpile.cache" >/dev/null 2>&1 || missing_py+=(dogpile.cache)
# Runs the Python tests in a random order (scripts/test.sh): proves they do not
# depend on one another.
$PY -c "import pytest_randomly" >/dev/null 2>&1 || missing_py+=(pytest-randomly)
if ((${#missing_py[@]})); then
    echo "deps: pip installing ${missing_py[*]}"
    # Debian's own Python refuses system-wide pip installs (PEP 668); these
    # test-only packages go there anyway, as CI's throwaway machine allows.
    $PY -m pip install -q --disable-pip-version-check "${missing_py[@]}" 2>/dev/null ||
        $PY -m pip install -q --disable-pip-version-check --break-system-packages "${missing_py[@]}"
fi

if command -v rustup >/dev/null 2>&1; then
    for comp in clippy rustfmt; do
        rustup component list --installed 2>/dev/null | grep -q "^$comp" || rustup component add "$comp" >/dev/null 2>&1 || true
    done
fi
