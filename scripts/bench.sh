#!/usr/bin/env bash
# Benchmarks (`make bench`): elasticache against libmemcached, pylibmc,
# pymemcache and the raw wire, side by side in one run, on 16 local memcached
# processes (started by the crate's launcher, examples/local_cluster, as in
# every test). Prints every figure with its ratio and writes
#   bench/results/latest.md     the table the README quotes (date, machine, versions)
#   bench/results/latest.jsonl  every record it was made from
#   docs/bench.png              multi-get latency against keys per call
#   docs/stampede.png           Django get_or_set on a hot key (bench/stampede.py)
# Benchmarks print figures and never fail on them; the script fails only when
# something cannot run at all. About 2 minutes on a 2-core box (plus the
# first build). BENCH_SCALE=0.3 makes every timed loop shorter (a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
ROOT=$PWD
START=$(date +%s)
PY=${PYTHON:-python3}
CC=${CC:-cc}
export BENCH_SCALE=${BENCH_SCALE:-1}
NODES=16

echo "bench: dependencies"
bash scripts/deps.sh
need_apt=()
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "bench: installing ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
$PY -c "import matplotlib" >/dev/null 2>&1 ||
    $PY -m pip install -q --disable-pip-version-check matplotlib ||
    echo "bench: matplotlib could not be installed; the plot will be skipped"
$PY -c "import gunicorn" >/dev/null 2>&1 ||
    $PY -m pip install -q --disable-pip-version-check gunicorn ||
    echo "bench: gunicorn could not be installed; the Django end-to-end figures will be skipped"

echo "bench: building"
cargo build --release --quiet
# The launcher; building it leaves target/release/libelasticache.so as the
# line above built it (without the testkit feature).
cargo build --release --quiet --features testkit --example local_cluster
mkdir -p target/bench bench/results docs
LMC_LIBS=$(pkg-config --libs libmemcached 2>/dev/null || echo "-lmemcached -lmemcachedutil")
$CC -O2 -g -std=c11 -Wall -Wextra -I include -o target/bench/bench_c bench/c/bench.c \
    -L target/release -lelasticache -Wl,-rpath,"$ROOT/target/release" $LMC_LIBS -lpthread
BENCH_C=$ROOT/target/bench/bench_c

WORK=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

NODE_ARGS=(--ip 127.0.0.1 -- -t 1 -c 4096 -m 64)
LAUNCHER="examples/local_cluster --nodes $NODES ${NODE_ARGS[*]}"
echo "bench: starting $NODES memcached processes on 127.0.0.1 ($LAUNCHER)"
start_cluster "$NODES" "${NODE_ARGS[@]}"
pids+=("$CLUSTER_PID")
servers=()
for line in "${CLUSTER_NODES[@]}"; do
    read -r _ _ ip port _ <<<"$line"
    servers+=("$ip:$port")
done
export BENCH_SERVERS
BENCH_SERVERS=$(IFS=,; echo "${servers[*]}")
REC=$WORK/records.jsonl
: >"$REC"

echo "bench: C latency, multi-get, threads, ring build"
"$BENCH_C" all | tee -a "$REC" | cut -c1-160

echo "bench: syscalls per operation (strace)"
$PY bench/syscalls.py "$BENCH_C" | tee -a "$REC"

echo "bench: instructions per operation (valgrind callgrind)"
PROFILE=$WORK/profile.md
: >"$PROFILE"
if command -v valgrind >/dev/null 2>&1; then
    $PY bench/instructions.py "$BENCH_C" "$PROFILE" | tee -a "$REC"
fi

echo "bench: memory"
for impl in ours libmemcached; do "$BENCH_C" memory "$impl" | tee -a "$REC"; done

echo "bench: discovery cold start"
# The project's own emulated configuration endpoint (elasticache::testkit, run
# by examples/local_cluster, as in every test) in front of 3 memcached nodes.
start_cluster 3
pids+=("$CLUSTER_PID")
EP=$CLUSTER_ENDPOINT
EMULATOR="elasticache::testkit ConfigEndpoint (examples/local_cluster --nodes 3)"
DISC_RUNS=10
for _ in $(seq $DISC_RUNS); do "$BENCH_C" discovery "$EP" | tee -a "$REC"; done
$PY bench/discovery_trace.py "$BENCH_C" "$EP" | tee -a "$REC"
stop_cluster "$CLUSTER_PID" "$CLUSTER_IN"

echo "bench: Python (the installed wheel: what a user runs, compiled cffi module and bundled library)"
# A virtual environment that sees the system's pylibmc, pymemcache, Django and
# gunicorn, with our wheel installed in it (no ELASTICACHE_LIBRARY, no source tree).
make wheel >/dev/null
$PY -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall dist/elasticache-*.whl
BPY="$WORK/venv/bin/python"
(cd "$WORK" && "$BPY" -c "import elasticache._native as n; assert n.mode == 'api', n.mode") ||
    echo "bench: WARNING: the installed wheel did not load its compiled module" >&2
env -u ELASTICACHE_LIBRARY -u PYTHONPATH "$BPY" bench/bench_py.py | tee -a "$REC" | cut -c1-160
echo "bench: Django end to end (gunicorn + wrk, bench/django_e2e.py)"
env -u ELASTICACHE_LIBRARY -u PYTHONPATH PATH="$WORK/venv/bin:$PATH" "$BPY" bench/django_e2e.py | tee -a "$REC" | cut -c1-160

RING=$WORK/ring.txt
if [ -f bench/ring.sh ]; then
    echo "bench: ring lookup (bench/ring.sh)"
    bash bench/ring.sh 2>&1 | tee "$RING" || echo "bench: bench/ring.sh failed" | tee -a "$RING"
else
    : >"$RING"
fi

echo "bench: TLS against plain TCP on the same server (bench/tls_bench.rs)"
TLS_OUT=$WORK/tls.txt
rounds=$($PY -c "print(max(1000, int(20000 * float('$BENCH_SCALE'))))")
cargo run --release --quiet --features testkit --example tls_bench "$rounds" 2>&1 | tee "$TLS_OUT" ||
    echo "bench: tls_bench failed" | tee -a "$TLS_OUT"

echo "bench: stampede protection, Django get_or_set on a hot key (bench/stampede.py)"
STAMPEDE_MD=$WORK/stampede.md
$PY bench/stampede.py --jsonl "$REC" --md "$STAMPEDE_MD" --plot docs/stampede.png ||
    echo "bench: bench/stampede.py failed" | tee -a "$STAMPEDE_MD"

END=$(date +%s)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src bench include ':!bench/results' 2>/dev/null || commit="$commit (with uncommitted changes)"
META=$WORK/meta.json
$PY - "$META" <<EOF
import json, platform, subprocess, sys, datetime, os
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
mem_kb = int(sh("awk '/MemTotal/ {print \$2}' /proc/meminfo") or 0)
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": "$commit",
    "elapsed_s": $END - $START,
    "cpu": cpu,
    "cores": os.cpu_count(),
    "mem": f"{mem_kb / 1048576:.0f} GiB RAM",
    "kernel": platform.release(),
    "memcached": sh("memcached -V").replace("memcached ", ""),
    "libmemcached": sh("pkg-config --modversion libmemcached") or "?",
    "cc": sh("$CC --version | head -n1"),
    "rustc": sh("rustc --version").replace("rustc ", ""),
    "discovery": {"runs": $DISC_RUNS, "emulator": "$EMULATOR"},
    "servers": "$LAUNCHER",
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF

cp "$REC" bench/results/latest.jsonl
echo
$PY bench/report.py "$REC" "$META" "$RING" bench/results/latest.md docs/bench.png "$PROFILE"
{
    printf '\n## TLS against plain TCP (one memcached, a TLS and a plain listener)\n\n```\n'
    cat "$TLS_OUT"
    printf '```\n'
} >>bench/results/latest.md
cat "$STAMPEDE_MD" >>bench/results/latest.md
echo "bench: done in $(($(date +%s) - START)) s; results in bench/results/latest.md, plot in docs/bench.png"
