#!/usr/bin/env bash
# `make demo`: a local emulated ElastiCache cluster (real memcached nodes behind an
# emulated configuration endpoint) and ecctl discovering it as the cluster changes.
#
#   scripts/demo.sh [--legacy] [--variant NAME]     (NODES=3 by default)
#
# Each ecctl run is a new process, so each one discovers afresh: the process-global
# node cache lives only as long as the process.
set -euo pipefail
cd "$(dirname "$0")/.."

ECCTL=./examples/c/ecctl
NODES=${NODES:-3}
[ -x "$ECCTL" ] || { echo "demo: $ECCTL is missing: run 'make all' first" >&2; exit 1; }

cargo build --release --quiet --features testkit --example local_cluster
BIN=target/release/examples/local_cluster

step() { printf '\n== %s\n' "$*"; }

CLUSTER_PID=
cleanup() {
    local rc=$?
    if [ -n "$CLUSTER_PID" ]; then
        # End of input makes the cluster quit and stop its memcached nodes;
        # SIGTERM does the same if it does not go within 5 s.
        exec {LC_IN}>&- 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$CLUSTER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$CLUSTER_PID" 2>/dev/null; then
            kill -TERM "$CLUSTER_PID" 2>/dev/null || true
        fi
        wait "$CLUSTER_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

coproc LC { exec "$BIN" --nodes "$NODES" "$@" 2>&1; }
CLUSTER_PID=$LC_PID
# Our own copies of the coprocess's pipes: bash forgets LC[*] once it exits.
exec {LC_IN}>&"${LC[1]}" {LC_OUT}<&"${LC[0]}"

# Read one line from the cluster into LINE, failing after 30 s (memcached start-up
# included). Read in this shell, not in $(...), so a signal's trap runs at once.
cluster_line() {
    if ! IFS= read -r -t 30 -u "$LC_OUT" LINE; then
        echo "demo: no answer from the local cluster" >&2
        return 1
    fi
}

# Send a command and print the cluster's one-line answer; fail on "error:".
cluster_cmd() {
    printf '%s\n' "$*" >&"$LC_IN"
    cluster_line
    echo "cluster: $LINE"
    case "$LINE" in error:*) return 1 ;; esac
}

# Discover and check that the listed nodes include (or exclude) a port.
discover() {
    echo "\$ ecctl discover $ENDPOINT"
    DISCOVERED=$("$ECCTL" discover "$ENDPOINT" --timeout-ms 2000)
    printf '%s\n' "$DISCOVERED"
}

has_port() { printf '%s\n' "$DISCOVERED" | awk -v p="$1" '$3 == p { f = 1 } END { exit !f }'; }

step "starting a local cluster of $NODES nodes $*"
cluster_line
case "$LINE" in
    "endpoint "*) ENDPOINT=${LINE#endpoint } ;;
    *) echo "demo: unexpected first line from the cluster: $LINE" >&2; exit 1 ;;
esac
echo "configuration endpoint: $ENDPOINT"
PORTS=()
for _ in $(seq "$NODES"); do
    cluster_line
    echo "  $LINE"
    PORTS+=("${LINE##* }")
done

step "discover"
discover
[ "$(printf '%s\n' "$DISCOVERED" | head -n1)" = "version 1" ] || { echo "demo: expected version 1" >&2; exit 1; }

step "set and get through the discovered cluster"
echo "\$ ecctl set demo-key hello --endpoint $ENDPOINT"
"$ECCTL" set demo-key hello --endpoint "$ENDPOINT"
echo "\$ ecctl get demo-key --endpoint $ENDPOINT"
"$ECCTL" get demo-key --endpoint "$ENDPOINT"

step "add a node, discover again"
cluster_cmd add
added_port=$(printf '%s\n' "$LINE" | awk '{ print $4 }')
discover
has_port "$added_port" || { echo "demo: the added node (port $added_port) was not discovered" >&2; exit 1; }

step "replace node ${PORTS[0]} (same host name, new address), discover again"
cluster_cmd replace "${PORTS[0]}"
discover
if has_port "${PORTS[0]}"; then echo "demo: the replaced node is still listed" >&2; exit 1; fi

step "remove node ${PORTS[1]}, discover again"
cluster_cmd remove "${PORTS[1]}"
discover
if has_port "${PORTS[1]}"; then echo "demo: the removed node is still listed" >&2; exit 1; fi

step "quit"
printf 'quit\n' >&"$LC_IN"
cluster_line || true
wait "$CLUSTER_PID" || true
CLUSTER_PID=
echo "local cluster stopped; demo done"
