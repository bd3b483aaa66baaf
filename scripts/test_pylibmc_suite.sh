#!/usr/bin/env bash
# pylibmc 1.6.3's own test suite against our Python client (issue #19).
# Downloads the sdist at test time (nothing of pylibmc's is in the repository),
# starts memcached and runs scripts/pylibmc_suite.py. As root, everything runs
# in a private network namespace, so memcached can take pylibmc's default
# address 127.0.0.1:11211 (one of its tests relies on it) without touching
# anyone else's port 11211.
#   bash scripts/test_pylibmc_suite.sh [--real]   (--real: against the installed pylibmc)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ -z "${PYLIBMC_SUITE_INNER:-}" ]; then
    WORK=$(mktemp -d /tmp/pylibmc-suite.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    $PY -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
        pylibmc==1.6.3 -d "$WORK" >/dev/null
    tar -xzf "$WORK"/pylibmc-1.6.3.tar.gz -C "$WORK"
    export PYLIBMC_SUITE_INNER="$WORK/pylibmc-1.6.3"
    if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
        rc=0
        unshare --net bash "$0" "$@" || rc=$?
        exit $rc
    fi
    if [ "${CI:-}" = true ]; then
        echo "pylibmc suite: needs root and 'unshare --net' (a private network namespace) under CI" >&2
        exit 1
    fi
    echo "pylibmc suite: WARNING: no private network namespace (not root, or unshare refused):" \
        "memcached on a random port, the test that needs 127.0.0.1:11211 is skipped" >&2
    PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    EXTRA=(--no-default-port)
else
    ip link set lo up
    PORT=11211
    EXTRA=()
fi
SDIST=$PYLIBMC_SUITE_INNER

MEMCACHED=$(command -v memcached) || { echo "pylibmc suite: memcached is not installed" >&2; exit 1; }
ARGS=(-l 127.0.0.1 -p "$PORT" -U 0)
[ "$(id -u)" = 0 ] && ARGS+=(-u root)
"$MEMCACHED" "${ARGS[@]}" &
MC_PID=$!
trap 'kill $MC_PID 2>/dev/null || true; wait $MC_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.05
done

export MEMCACHED_HOST=127.0.0.1 MEMCACHED_PORT=$PORT
$PY scripts/pylibmc_suite.py "$SDIST" "${EXTRA[@]}" "$@"
