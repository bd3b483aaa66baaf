#!/usr/bin/env bash
# C tests: each tests/c/*.c is compiled with -Werror against the header and run
# linked to the shared library and to the static one; client_api also runs once
# under valgrind (no leaks, no invalid accesses). A real memcached serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-cc}
LIB=target/release
OUT=target/ctests
mkdir -p "$OUT"
WARN="-std=c11 -Wall -Wextra -Wpedantic -Werror -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=()
[ "$(id -u)" = 0 ] && user=(-u root)
memcached -l 127.0.0.1 -p "$port" -U 0 "${user[@]}" &
mc_pid=$!
trap 'kill $mc_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
done
export ELASTICACHE_TEST_SERVER="127.0.0.1:$port"

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
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    $CC -O1 -g $WARN -I include -o "$OUT/$name.shared" "$src" -L "$LIB" -lelasticache -Wl,-rpath,"$PWD/$LIB"
    $CC -O1 -g $WARN -I include -o "$OUT/$name.static" "$src" "$LIB/libelasticache.a" -lpthread -ldl -lm
    run "$name (shared)" "$OUT/$name.shared"
    run "$name (static)" "$OUT/$name.static"
done
if command -v valgrind >/dev/null; then
    run "client_api (valgrind)" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$OUT/client_api.shared"
    run "events (valgrind)" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$OUT/events.shared"
fi
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
