#!/usr/bin/env bash
# C++ tests. include/elasticache.hpp must compile with -Werror under g++ and
# clang++, as C++17 and C++20, with and without exceptions; tests/cpp/*.cpp and
# examples/cpp/ecservice run against a real memcached under AddressSanitizer +
# UndefinedBehaviorSanitizer, client_test once under valgrind; then `make
# install` into a scratch prefix, ecservice is built there through CMake's
# find_package (shared and static) and client_test through pkg-config --static,
# and each is run. Under CI=true a missing tool fails, naming it; otherwise it
# is a loud skip.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
export ELASTICACHE_NO_HEADER_WRITE=1
LIB=target/release
OUT=target/cpptests
mkdir -p "$OUT"
WARN=(-Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion)
SAN=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
SHARED=(-L "$LIB" -lelasticache -Wl,-rpath,"$PWD/$LIB")

for tool in c++ clang++ cmake valgrind memcached pkg-config; do
    if ! command -v "$tool" >/dev/null; then
        echo "test_cpp: $tool missing, running scripts/deps.sh"
        bash scripts/deps.sh || true
        break
    fi
done

fail=0
passed=0
skipped=0
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
# A tool the following checks need: a failure naming it under CI, a loud skip otherwise.
need() {
    command -v "$1" >/dev/null && return 0
    if [ "${CI:-}" = true ]; then
        echo "FAIL $2: $1 is not installed"
        fail=$((fail + 1))
    else
        echo "SKIP $2: $1 is not installed !!!"
        skipped=$((skipped + 1))
    fi
    return 1
}
# Without these nothing below can run: CI fails, a developer's machine skips.
for tool in memcached c++; do
    need "$tool" "every C++ test" || { [ "${CI:-}" != true ]; exit; }
done
make -s all >/dev/null

# memcached from the crate's launcher (examples/local_cluster), as every test's.
cargo build --release --quiet --features testkit --example local_cluster
start_cluster 1 --ip 127.0.0.1
prefix=$(mktemp -d)
trap 'stop_cluster "$CLUSTER_PID" "$CLUSTER_IN"; rm -rf "$prefix"' EXIT
read -r _ _ ip port _ <<<"${CLUSTER_NODES[0]}"
export ELASTICACHE_TEST_SERVER="$ip:$port"
# LSan is on: every owning type must have freed its C object by exit.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1

compilers=(c++)
need clang++ "clang++ builds" && compilers+=(clang++)

# The header under every compiler and standard, warnings as errors.
for cxx in "${compilers[@]}"; do
    for std in c++17 c++20; do
        run "$cxx -std=$std: client_test, ecservice" \
            "$cxx" -std="$std" "${WARN[@]}" -I include -fsyntax-only tests/cpp/client_test.cpp examples/cpp/ecservice.cpp
        run "$cxx -std=$std -fno-exceptions: nothrow_test" \
            "$cxx" -std="$std" -fno-exceptions "${WARN[@]}" -I include -fsyntax-only tests/cpp/nothrow_test.cpp
    done
done

# Sanitized runs: g++ as C++17, clang++ as C++20.
std_of() { [ "$1" = clang++ ] && echo c++20 || echo c++17; }
for cxx in "${compilers[@]}"; do
    std=$(std_of "$cxx")
    tag=$(basename "$cxx")
    if "$cxx" -std="$std" "${SAN[@]}" "${WARN[@]}" -I include -o "$OUT/client_test.$tag" tests/cpp/client_test.cpp "${SHARED[@]}"; then
        run "client_test ($cxx $std, ASan+UBSan)" "$OUT/client_test.$tag"
    else
        echo "FAIL client_test ($cxx): compile"
        fail=$((fail + 1))
    fi
    if "$cxx" -std="$std" -fno-exceptions "${SAN[@]}" "${WARN[@]}" -I include -o "$OUT/nothrow_test.$tag" \
        tests/cpp/nothrow_test.cpp "${SHARED[@]}"; then
        run "nothrow_test ($cxx $std -fno-exceptions, ASan+UBSan)" "$OUT/nothrow_test.$tag"
    else
        echo "FAIL nothrow_test ($cxx): compile"
        fail=$((fail + 1))
    fi
done

# ecservice's output: every request served, every profile cached once the pool
# is done, the bad id answered 400 with the library's message.
check_service() {
    local out
    out=$("$@" --servers "$ELASTICACHE_TEST_SERVER" --threads 4 --requests 200) || return 1
    grep -q '^served 200/200 requests on 4 threads: [0-9]* hits, [0-9]* misses$' <<<"$out" &&
        grep -q '^batch of 21: 20 hits, 1 missing$' <<<"$out" &&
        grep -q '^error path: 400 bad user id: .*key' <<<"$out" || {
        echo "$out"
        return 1
    }
}
if c++ -std=c++17 "${SAN[@]}" "${WARN[@]}" -pthread -I include -o "$OUT/ecservice.asan" examples/cpp/ecservice.cpp "${SHARED[@]}"; then
    run "ecservice, 4 threads (ASan+UBSan)" check_service "$OUT/ecservice.asan"
else
    echo "FAIL ecservice: compile"
    fail=$((fail + 1))
fi
run "ecservice as built by make" check_service examples/cpp/ecservice

if need valgrind "client_test under valgrind"; then
    c++ -std=c++17 -O1 -g "${WARN[@]}" -I include -o "$OUT/client_test.plain" tests/cpp/client_test.cpp "${SHARED[@]}"
    run "client_test (valgrind)" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$OUT/client_test.plain"
fi

# `make install` into a scratch prefix, then build the way a CMake user does.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
# find_package(elasticache ARGS...) in an empty project: 0 when found.
finds() {
    local dir
    dir=$(mktemp -d -p "$prefix")
    printf 'cmake_minimum_required(VERSION 3.16)\nproject(probe NONE)\nfind_package(elasticache %s REQUIRED)\n' "$*" >"$dir/CMakeLists.txt"
    cmake -S "$dir" -B "$dir/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1
}
refuses() { ! finds "$@"; }
if ! make -s install PREFIX="$prefix" >/dev/null; then
    echo "FAIL make install"
    fail=$((fail + 1))
else
    for h in elasticache.hpp elasticache_base.hpp; do
        run "installed $h equals include/$h" cmp -s "include/$h" "$prefix/include/$h"
    done
    run "Libs.private lists the static library's system libraries" \
        grep -qx 'Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl' "$prefix/lib/pkgconfig/elasticache.pc"
    if need cmake "CMake package"; then
        for kind in shared static; do
            static=OFF
            [ $kind = static ] && static=ON
            b="$prefix/build-$kind"
            if cmake -S examples/cpp -B "$b" -DCMAKE_PREFIX_PATH="$prefix" -DELASTICACHE_STATIC=$static >"$b.log" 2>&1 &&
                cmake --build "$b" >>"$b.log" 2>&1; then
                run "find_package + elasticache::elasticache$([ $kind = static ] && echo _static): ecservice runs" \
                    check_service "$b/ecservice"
            else
                cat "$b.log"
                echo "FAIL find_package build ($kind)"
                fail=$((fail + 1))
            fi
        done
        run "shared build needs libelasticache.so by name" \
            bash -c "readelf -d '$prefix/build-shared/ecservice' | grep -q 'NEEDED.*\[libelasticache.so\]'"
        run "static build does not need libelasticache.so" \
            bash -c "! readelf -d '$prefix/build-static/ecservice' | grep -q libelasticache"
        run "find_package(elasticache 0.1)" finds 0.1
        run "find_package(elasticache 0.1.0...0.3)" finds 0.1.0...0.3
        run "find_package(elasticache COMPONENTS shared static)" finds COMPONENTS shared static
        run "find_package(elasticache 0.2) is refused" refuses 0.2
        run "find_package(elasticache 1.0) is refused" refuses 1.0
        run "find_package(elasticache COMPONENTS nosuch) is refused" refuses COMPONENTS nosuch
    fi
    # A static-only install: pkg-config --static must bring every system library.
    rm "$prefix/lib/libelasticache.so"
    # shellcheck disable=SC2046
    if c++ -std=c++17 -O1 -g "${WARN[@]}" -o "$OUT/client_test.pcstatic" tests/cpp/client_test.cpp \
        $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --static --cflags --libs elasticache); then
        run "pkg-config --static build: client_test runs" "$OUT/client_test.pcstatic"
        run "pkg-config --static build does not need libelasticache.so" \
            bash -c "! readelf -d '$OUT/client_test.pcstatic' | grep -q libelasticache"
    else
        echo "FAIL pkg-config --static build: compile"
        fail=$((fail + 1))
    fi
    if command -v cmake >/dev/null; then
        run "static-only install: find_package(COMPONENTS static)" finds COMPONENTS static
        run "static-only install: find_package(COMPONENTS shared) is refused" refuses COMPONENTS shared
    fi
fi

echo "C++ tests: $passed passed, $fail failed, $skipped skipped"
[ "$fail" = 0 ]
