#!/usr/bin/env bash
# Every test: Rust unit and integration tests (real memcached), the header drift
# check, lint, the C tests against the shared and static library, and the Python
# tests. Run by `make test` and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# The build must not rewrite the committed header: tests/header.rs compares it.
export ELASTICACHE_NO_HEADER_WRITE=1
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s\n' "$*"; }

step "format and lint"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings

step "build"
make all

step "cargo test"
cargo test --release

step "C tests"
bash scripts/test_c.sh

step "ecctl against a local emulated cluster"
bash scripts/test_ecctl.sh

if [ -d examples/python/tests ]; then
    step "Python tests"
    python3 -m pytest -q examples/python/tests
    step "Python wheel, installed, on the oldest and newest CPython"; bash scripts/test_wheel.sh
fi
