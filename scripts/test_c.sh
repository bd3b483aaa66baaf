#!/usr/bin/env bash
# C tests: each tests/c/*.c is compiled with -Werror against the header and run
# twice, linked to the shared library and to the static one.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-cc}
LIB=target/release
OUT=target/ctests
mkdir -p "$OUT"
WARN="-std=c11 -Wall -Wextra -Wpedantic -Werror -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L"
fail=0
passed=0
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    $CC -O1 -g $WARN -I include -o "$OUT/$name.shared" "$src" -L "$LIB" -lelasticache -Wl,-rpath,"$PWD/$LIB"
    $CC -O1 -g $WARN -I include -o "$OUT/$name.static" "$src" "$LIB/libelasticache.a" -lpthread -ldl -lm
    for kind in shared static; do
        if "$OUT/$name.$kind"; then
            echo "PASS $name ($kind)"
            passed=$((passed + 1))
        else
            echo "FAIL $name ($kind)"
            fail=$((fail + 1))
        fi
    done
done
echo "C tests: $passed passed, $fail failed"
[ "$fail" = 0 ]
