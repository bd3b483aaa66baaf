#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, when it is missing.
# Safe to run again; does nothing on a machine that has everything.
set -euo pipefail

need_apt=()
command -v memcached >/dev/null 2>&1 || need_apt+=(memcached)
[ -f /usr/include/libmemcached/memcached.h ] || need_apt+=(libmemcached-dev)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if ((${#need_apt[@]})); then
    echo "deps: installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
missing_py=()
for mod in pylibmc pymemcache django cffi pytest; do
    $PY -c "import $mod" >/dev/null 2>&1 || missing_py+=("$mod")
done
if ((${#missing_py[@]})); then
    echo "deps: pip installing ${missing_py[*]}"
    $PY -m pip install -q --disable-pip-version-check "${missing_py[@]}"
fi

rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt >/dev/null 2>&1 || true
