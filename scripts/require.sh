# Sourced by the test scripts: one rule for a missing tool. Under CI=true it
# is a failure naming what is missing; elsewhere a loud skip.
#   require TOOL [WHAT]   -> 0 if TOOL is on the PATH; else fails (CI) or returns 1
#   require_that OK WHAT  -> the same for any condition (OK: 0 = present)
# Scripts count the failures in $require_failed and exit non-zero at the end.
require_failed=${require_failed:-0}

require_that() {
    local ok=$1 what=$2
    [ "$ok" = 0 ] && return 0
    if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
        echo "FAIL missing under CI=true: $what (scripts/deps.sh installs what it can)" >&2
        require_failed=$((require_failed + 1))
    else
        echo "SKIPPED: $what is missing (under CI=true this fails)" >&2
    fi
    return 1
}

require() {
    local tool=$1 what=${2:-the \`$1\` program}
    command -v "$tool" >/dev/null 2>&1
    require_that $? "$what"
}

# Start the crate's memcached launcher (examples/local_cluster, built by the
# caller: real memcached nodes, started and checked for readiness the one way
# every test does, behind the emulated configuration endpoint) as
#   start_cluster N [ARGS...]   -> local_cluster --nodes N ARGS...
# and wait for its endpoint and N node lines. Sets CLUSTER_ENDPOINT (IP:PORT),
# CLUSTER_NODES (its `node HOST IP PORT [plain=PORT]` lines), CLUSTER_PID, and
# CLUSTER_IN and CLUSTER_OUT (file descriptors of its stdin and stdout:
# commands, one a line, each answered by one line). stop_cluster PID FD_IN
# stops it and its nodes, as its end of input or SIGTERM do.
start_cluster() {
    local n=$1 dir line
    shift
    dir=$(mktemp -d)
    mkfifo "$dir/in" "$dir/out"
    target/release/examples/local_cluster --nodes "$n" "$@" <"$dir/in" >"$dir/out" 2>&1 &
    CLUSTER_PID=$!
    exec {CLUSTER_IN}>"$dir/in" {CLUSTER_OUT}<"$dir/out"
    rm -rf "$dir" # both ends are open: the fifos need no names any more
    CLUSTER_NODES=()
    CLUSTER_ENDPOINT=
    while ((${#CLUSTER_NODES[@]} < n)) || [ -z "$CLUSTER_ENDPOINT" ]; do
        IFS= read -r -t 30 -u "$CLUSTER_OUT" line || { echo "local_cluster stopped or stayed silent" >&2; return 1; }
        case $line in
        "endpoint "*) CLUSTER_ENDPOINT=${line#endpoint } ;;
        "node "*) CLUSTER_NODES+=("$line") ;;
        *) echo "local_cluster did not start: $line" >&2; return 1 ;;
        esac
    done
}

stop_cluster() {
    # In a subshell: writing to a cluster that is gone already is a SIGPIPE,
    # which would end the caller.
    (printf 'quit\n' >&"$2") 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
