#!/usr/bin/env bash
# Every test: Rust unit and integration tests (real memcached), the header drift
# check, lint, the C tests against the shared and static library, and the Python
# tests. Run by `make test` and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never

step() { printf '\n=== %s\n' "$*"; }

step "format and lint"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
# The Rust API's documentation: no broken or private links.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

step "build"
make all

# Timing-bound tests live in tests/timing_*.rs: they run after the rest, each
# binary alone with one test thread, so no heavy test shares the CPUs with them.
untimed=()
for f in tests/*.rs; do
    name=$(basename "$f" .rs)
    case $name in timing_*) ;; *) untimed+=(--test "$name") ;; esac
done
step "cargo test (all but tests/timing_*.rs)"
cargo test --release --lib "${untimed[@]}"
cargo test --release --doc
step "cargo test tests/timing_*.rs, one test thread"
cargo test --release --test 'timing_*' -- --test-threads=1

step "C tests"
bash scripts/test_c.sh
step "C++ tests" && bash scripts/test_cpp.sh

step "ecctl against a local emulated cluster"
bash scripts/test_ecctl.sh

step "pylibmc 1.6.3's own test suite against the Python client"
bash scripts/test_pylibmc_suite.sh

if [ -d examples/python/tests ]; then
    step "Python tests"
    # Random order (pytest-randomly; the seed is printed) proves the tests do not
    # depend on one another; -rs prints why anything was skipped.
    python3 -m pytest -q -rs -m "not timing" -p randomly examples/python/tests
    step "Python timing tests, serially, in file order"
    python3 -m pytest -q -rs -m timing -p no:randomly examples/python/tests
    step "Python wheel, installed, on the oldest and newest CPython"
    bash scripts/test_wheel.sh
fi
