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

# Wait until the memcached with process id PID answers on 127.0.0.1:PORT
# itself (its `stats` name its pid: not someone else on a reused port);
# fails when it exits or stays silent for 5 seconds.
wait_memcached() {
    local pid=$1 port=$2 reply
    for _ in $(seq 250); do
        kill -0 "$pid" 2>/dev/null || { echo "memcached $pid exited" >&2; return 1; }
        reply=$( { exec 3<>/dev/tcp/127.0.0.1/"$port" && printf 'stats\r\nquit\r\n' >&3 && timeout 2 cat <&3; } 2>/dev/null)
        [[ $reply == *"STAT pid $pid"$'\r'* ]] && return 0
        sleep 0.02
    done
    echo "memcached $pid did not answer on port $port" >&2
    return 1
}
