#!/usr/bin/env bash
# C tests: each tests/c/*.c is compiled with -Werror against the header and run
# linked to the shared library and to the static one, then once more built with
# AddressSanitizer and UndefinedBehaviorSanitizer; client_api also runs under
# valgrind (no leaks, no invalid accesses). A real memcached serves them,
# started by the crate's own launcher (examples/local_cluster, readiness by pid).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
CC=${CC:-cc}
LIB=target/release
OUT=target/ctests
mkdir -p "$OUT"
WARN="-std=c11 -Wall -Wextra -Wpedantic -Werror -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L"

cargo build --release --quiet --features testkit --example local_cluster
start_cluster 1 || { echo "FAIL local_cluster did not start"; exit 1; }
trap 'stop_cluster "$CLUSTER_PID" "$CLUSTER_IN"' EXIT
read -r _ _host ip port _ <<<"${CLUSTER_NODES[0]}"
export ELASTICACHE_TEST_SERVER="$ip:$port"

fail=0
passed=0
run() {
    local label=$1
    shift
    if "$@"; then
        echo "PASS $label"
        passed=$((passed + 1))
    else
        echo "FAIL $label"
        fail=$((fail + 1))
    fi
}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    $CC -O1 -g $WARN -I include -o "$OUT/$name.shared" "$src" -L "$LIB" -lelasticache -Wl,-rpath,"$PWD/$LIB"
    $CC -O1 -g $WARN -I include -o "$OUT/$name.static" "$src" "$LIB/libelasticache.a" -lpthread -ldl -lm
    # shellcheck disable=SC2086
    $CC -O1 -g $WARN $SAN -I include -o "$OUT/$name.asan" "$src" "$LIB/libelasticache.a" -lpthread -ldl -lm
    run "$name (shared)" "$OUT/$name.shared"
    run "$name (static)" "$OUT/$name.static"
    run "$name (ASan+UBSan)" "$OUT/$name.asan"
done
if require valgrind; then
    run "client_api (valgrind)" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$OUT/client_api.shared"
    run "events (valgrind)" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$OUT/events.shared"
fi
fail=$((fail + require_failed))
# `make install` into a scratch prefix, then build against it through pkg-config
# alone, as a C user would.
prefix=$(mktemp -d)
if make -s install PREFIX="$prefix" >/dev/null; then
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    # shellcheck disable=SC2046
    if $CC $WARN -o "$OUT/installed_fork" tests/c/fork_generation.c $(pkg-config --cflags --libs elasticache) \
        -Wl,-rpath,"$prefix/lib"; then
        run "make install + pkg-config (shared)" "$OUT/installed_fork"
    else
        echo "FAIL make install + pkg-config: compile"
        fail=$((fail + 1))
    fi
    run "installed header equals include/elasticache.h" cmp -s include/elasticache.h "$prefix/include/elasticache.h"
else
    echo "FAIL make install"
    fail=$((fail + 1))
fi
rm -rf "$prefix"

echo "C tests: $passed passed, $fail failed"
[ "$fail" = 0 ]
