#!/usr/bin/env bash
# Builds the release library and bench/ring.c, then runs the ring benchmark
# (our lookup through the C API against libmemcached's memcached_generate_hash).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p target/bench
${CC:-cc} -O2 -g -std=c11 -Wall -Wextra -Wpedantic -Werror -I include -o target/bench/ring bench/ring.c \
    -L target/release -lelasticache -lmemcached -Wl,-rpath,"$PWD/target/release"
exec target/bench/ring
