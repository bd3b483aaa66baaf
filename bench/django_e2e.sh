#!/usr/bin/env bash
# End to end, where users feel it: a Django view doing cache.get_many of 10 keys
# and one cache.set, served by gunicorn (--preload -w 4) and driven by wrk over
# 4 real memcached nodes on loopback (the crate's launcher, examples/local_cluster), with our elasticache.django.PyLibMCCache
# (the installed wheel) against Django's own PyLibMCCache (pylibmc 1.6.3), same
# LOCATION and OPTIONS. Runs alternate between the two; requests/s per run and
# the ratio of the medians. Not yet part of `make bench`.
#
#   bash bench/django_e2e.sh            # RUNS=3 DURATION=10 CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/require.sh
source scripts/require.sh
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PY=${PYTHON:-python3}

command -v memcached >/dev/null || { echo "django_e2e: memcached is not installed" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

make -s wheel
cargo build --release --quiet --features testkit --example local_cluster
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check dist/elasticache-*.whl \
    gunicorn pylibmc==1.6.3 "Django>=4.2,<7"

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        "$PY" -c "import socket, sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "django_e2e: nothing listens on port $1" >&2
    exit 1
}

start_cluster 4 --ip 127.0.0.1
pids+=("$CLUSTER_PID")
servers=()
for line in "${CLUSTER_NODES[@]}"; do
    read -r _ _ ip port _ <<<"$line"
    servers+=("$ip:$port")
done

mkdir -p "$tmp/app"
cat >"$tmp/app/e2e.py" <<'EOF'
"""The benchmark's whole Django project: settings, one URL, one view."""
import itertools
import os

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES={"default": {
        "BACKEND": os.environ["E2E_BACKEND"],
        "LOCATION": os.environ["E2E_SERVERS"].split(","),
        "OPTIONS": {"behaviors": {"ketama": True, "tcp_nodelay": True}},
    }},
)

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

KEYS = [f"e2e:{i}" for i in range(10)]
VALUE = "v" * 100
counter = itertools.count()


def view(request):
    found = cache.get_many(KEYS)
    cache.set(KEYS[next(counter) % len(KEYS)], VALUE)
    return HttpResponse(str(len(found)))


urlpatterns = [path("", view)]
application = get_wsgi_application()
EOF

declare -A results
run() {
    local name=$1 backend=$2 port
    port=$(free_port)
    (cd "$tmp/app" && E2E_BACKEND=$backend E2E_SERVERS=$(IFS=,; echo "${servers[*]}") \
        exec "$tmp/venv/bin/gunicorn" --preload -w 4 --bind "127.0.0.1:$port" --log-level warning e2e:application) &
    local gpid=$!
    wait_port "$port"
    # Warm up: every key stored, every worker connected.
    wrk -t2 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port/" >/dev/null
    local hits
    hits=$("$PY" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/').read().decode())")
    [ "$hits" = 10 ] || { echo "django_e2e: $name: get_many found $hits of 10 keys" >&2; exit 1; }
    local rps
    rps=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    kill "$gpid"
    wait "$gpid" 2>/dev/null || true
    echo "  $name: $rps requests/s"
    results[$name]="${results[$name]:-} $rps"
}

echo "django_e2e: $RUNS runs of ${DURATION}s, $CONNECTIONS connections, gunicorn -w 4, 4 memcached nodes"
for _ in $(seq "$RUNS"); do
    run elasticache elasticache.django.PyLibMCCache
    run pylibmc django.core.cache.backends.memcached.PyLibMCCache
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ours=$(echo "${results[elasticache]}" | median)
theirs=$(echo "${results[pylibmc]}" | median)
echo "median requests/s: elasticache $ours, Django's PyLibMCCache $theirs, ratio $(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.2f", a / b}')x"
