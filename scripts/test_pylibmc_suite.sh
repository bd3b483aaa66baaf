#!/usr/bin/env bash
# pylibmc 1.6.3's own test suite against our Python client (issue #19).
# Downloads the sdist at test time (nothing of pylibmc's is in the repository),
# starts memcached (the crate's launcher, examples/local_cluster, as every
# test's) and runs scripts/pylibmc_suite.py. As root, everything runs
# in a private network namespace, so memcached can take pylibmc's default
# address 127.0.0.1:11211 (three of its tests rely on it) without touching
# anyone else's port 11211.
#   bash scripts/test_pylibmc_suite.sh [--real]   (--real: against the installed pylibmc)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# shellcheck source=scripts/require.sh
source scripts/require.sh
# Without memcached nothing here can run: a loud skip, a failure under CI=true.
require memcached || exit "$((require_failed > 0))"

if [ -z "${PYLIBMC_SUITE_INNER:-}" ]; then
    WORK=$(mktemp -d /tmp/pylibmc-suite.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    $PY -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
        pylibmc==1.6.3 -d "$WORK" >/dev/null
    tar -xzf "$WORK"/pylibmc-1.6.3.tar.gz -C "$WORK"
    export PYLIBMC_SUITE_INNER="$WORK/pylibmc-1.6.3"
    # Built out here: the namespace below has no network.
    cargo build --release --quiet --features testkit --example local_cluster
    # The namespace needs root, `unshare --net` permitted, and `ip` to bring its loopback up.
    if [ "$(id -u)" != 0 ]; then
        why="root"
    elif ! command -v ip >/dev/null 2>&1; then
        why="the \`ip\` program (iproute2)"
    elif ! unshare --net true 2>/dev/null; then
        why="a permitted \`unshare --net\` (it was refused)"
    else
        rc=0
        unshare --net bash "$0" "$@" || rc=$?
        exit $rc
    fi
    require_that 1 "$why, for a private network namespace where pylibmc's tests of 127.0.0.1:11211 run" || true
    [ "$require_failed" = 0 ] || exit 1
    echo "pylibmc suite: memcached on a random port instead, the tests that need 127.0.0.1:11211 are skipped" >&2
    AT=()
    EXTRA=(--no-default-port)
else
    ip link set lo up
    AT=(--port 11211)
    EXTRA=()
fi
SDIST=$PYLIBMC_SUITE_INNER

start_cluster 1 --ip 127.0.0.1 "${AT[@]}"
trap 'stop_cluster "$CLUSTER_PID" "$CLUSTER_IN"; rm -rf "${WORK:-}"' EXIT
read -r _ _ _ PORT _ <<<"${CLUSTER_NODES[0]}"

export MEMCACHED_HOST=127.0.0.1 MEMCACHED_PORT=$PORT
$PY scripts/pylibmc_suite.py "$SDIST" "${EXTRA[@]}" "$@"
