#!/usr/bin/env bash
# ecctl end to end against a local emulated cluster (real memcached nodes behind
# the emulated configuration endpoint): discover's output, the operations' exit
# codes, route --endpoint agreeing with where set really put a key, and errors.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
E=./examples/c/ecctl
cargo build --release --quiet --features testkit --example local_cluster --example make_certs || exit 1

start_cluster 3 || exit 1
stop=("stop_cluster $CLUSTER_PID $CLUSTER_IN")
trap 'for s in "${stop[@]}"; do $s; done' EXIT
EP=$CLUSTER_ENDPOINT

passed=0
failed=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        passed=$((passed + 1))
    else
        echo "FAIL $1: expected [$2], got [$3]"
        failed=$((failed + 1))
    fi
}

out=$($E discover "$EP")
check "discover version line" "version 1" "$(head -n1 <<<"$out")"
check "discover lists 3 nodes" 3 "$(tail -n +2 <<<"$out" | grep -cE '^node[0-9]+\.localcluster\.invalid 127\.0\.0\.[0-9]+ [0-9]+$')"

$E set greeting hello --endpoint "$EP" --flags 7; check "set exit" 0 $?
check "get value" hello "$($E get greeting --endpoint "$EP")"
$E get nothing-here --endpoint "$EP" >/dev/null; check "get miss exit" 1 $?
$E set counter 41 --endpoint "$EP" >/dev/null
check "incr" 42 "$($E incr counter --endpoint "$EP")"
check "incr delta" 52 "$($E incr counter 10 --endpoint "$EP")"
$E delete counter --endpoint "$EP"; check "delete exit" 0 $?
$E delete counter --endpoint "$EP"; check "delete miss exit" 1 $?

# route --endpoint names the node that really holds the key.
for key in alpha beta gamma delta epsilon; do
    $E set "$key" "v-$key" --endpoint "$EP"
    node=$($E route --endpoint "$EP" "$key" | awk '{print $2}')
    check "route $key holds value" "v-$key" "$($E get "$key" --servers "$node")"
done
check "route reads keys from stdin" 3 "$(printf 'a\nb\nc\n' | $E route --endpoint "$EP" | wc -l | tr -d ' ')"

check "stats lists every node" 3 "$($E stats --endpoint "$EP" | grep -c '^127\.0\.0\.')"

err=$($E get "bad key" --endpoint "$EP" 2>&1 >/dev/null); rc=$?
check "bad key exit" 2 "$rc"
check "bad key message" 1 "$(grep -c 'bad key' <<<"$err")"
err=$($E get k --endpoint 127.0.0.1:1 --timeout-ms 300 2>&1 >/dev/null); rc=$?
check "refused endpoint exit" 2 "$rc"
check "refused endpoint message names it" 1 "$(grep -c '127.0.0.1:1' <<<"$err")"
$E discover 127.0.0.1:1 >/dev/null 2>&1; check "discover failure exit" 1 $?

# TLS: a real `memcached -Z` (the launcher's --tls) with a CA and a certificate
# for localhost made by the crate's certificate maker (examples/make_certs, the
# Rust TLS tests' own), and a plain listener on the same cache to check what
# went over TLS.
mc_help=$(memcached -h 2>/dev/null || true)
[[ $mc_help == *--enable-ssl* ]]
mc_tls_ok=$?
if require_that $mc_tls_ok "TLS support in memcached (-Z, --enable-ssl)"; then
    T=$(mktemp -d)
    target/release/examples/make_certs "$T" >/dev/null
    check "certificates made" 0 $?
    start_cluster 1 --ip 127.0.0.1 --tls "$T/node.crt" "$T/node.key" || check "TLS memcached started" 0 1
    stop+=("stop_cluster $CLUSTER_PID $CLUSTER_IN")
    read -r _ _ _ tport pport <<<"${CLUSTER_NODES[0]:-}"
    pport=${pport#plain=}
    TLS=(--servers "localhost:$tport" --tls --tls-ca "$T/ca.pem")
    $E set tls-key over-tls "${TLS[@]}"; check "tls set exit" 0 $?
    check "tls get" over-tls "$($E get tls-key "${TLS[@]}")"
    check "plain listener sees the tls write" over-tls "$($E get tls-key --servers "127.0.0.1:$pport")"
    err=$($E get tls-key --servers "127.0.0.1:$tport" --tls --tls-ca "$T/ca.pem" 2>&1 >/dev/null); rc=$?
    check "tls name mismatch exit" 2 "$rc"
    check "tls name mismatch message" 1 "$(grep -c 'TLS' <<<"$err")"
    check "tls server name" over-tls "$($E get tls-key --servers "127.0.0.1:$tport" --tls --tls-ca "$T/ca.pem" --tls-server-name localhost)"
    out=$($E discover "localhost:$tport" --serverless --tls-ca "$T/ca.pem")
    check "serverless discover" serverless "$(head -n1 <<<"$out")"
    check "serverless get" over-tls "$($E get tls-key --endpoint "localhost:$tport" --serverless --tls-ca "$T/ca.pem")"
    rm -rf "$T"
fi
failed=$((failed + require_failed))

echo "ecctl: $passed passed, $failed failed"
[ "$failed" = 0 ]
