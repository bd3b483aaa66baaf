#!/usr/bin/env python3
"""Django end to end: a view doing cache.get_many() of 10 keys and one
cache.set(), served by gunicorn (--preload -w 4) and driven by wrk, with our
backend (elasticache.django.ElastiCache, through a configuration endpoint
listing the nodes) against Django's PyLibMCCache (the same nodes listed), on
the first four servers of BENCH_SERVERS. Both servers run side by side and
wrk alternates between them (the order rotates every round), so both see the
same machine. Then, in this process, what Django's cache.get_many(10) costs
with each backend (interleaved rounds, per-call medians, as bench_py.py).

Prints one JSON object per line (suite "e2e" and "py"); bench/report.py makes
the table. Needs gunicorn and wrk (scripts/bench.sh installs them); without
them the requests/s part is skipped with a note. Nothing here fails on a figure.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples", "python", "tests"))
from local_cluster import ConfigEndpoint  # noqa: E402
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SERVERS = [s for s in os.environ.get("BENCH_SERVERS", "").split(",") if s][:4]
if not SERVERS:
    sys.exit("django_e2e: BENCH_SERVERS is not set")
NKEYS = 10
WORKERS = 4
CONNECTIONS = 32
SECONDS = max(2.0, 4.0 * SCALE)
ROUNDS = 5
VALUE = "v" * 100

APP = '''
"""The benchmark's whole Django site: settings, one view, the WSGI app."""
import os

from django.conf import settings

if os.environ["E2E_BACKEND"] == "ours":
    CACHE = {"BACKEND": "elasticache.django.ElastiCache", "LOCATION": os.environ["E2E_ENDPOINT"]}
else:
    CACHE = {
        "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
        "LOCATION": os.environ["E2E_SERVERS"].split(","),
        # As django-elasticache configures pylibmc.
        "OPTIONS": {"behaviors": {"ketama": True, "tcp_nodelay": True}},
    }
settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="bench",
                   CACHES={"default": CACHE}, MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True)

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

KEYS = [f"e2e:{i}" for i in range(%(nkeys)d)]


def view(request):
    got = cache.get_many(KEYS)
    cache.set("e2e:last", len(got))
    return HttpResponse(b"%%d" %% len(got))


urlpatterns = [path("", view)]
application = get_wsgi_application()
'''


def emit(**rec):
    rec.setdefault("suite", "e2e")
    print(json.dumps(rec), flush=True)


def note(text):
    emit(bench="note", impl="-", note=text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_endpoint():
    """The emulated configuration endpoint (examples/local_cluster --external,
    the one the tests use) listing SERVERS."""
    return ConfigEndpoint([("localhost", *s.rsplit(":", 1)) for s in SERVERS])


def prefill():
    import pylibmc

    c = pylibmc.Client(SERVERS, behaviors={"ketama": True})
    # Django's key function: ":<version>:<key>"; str values, stored alike by both clients.
    c.set_multi({f":1:e2e:{i}": VALUE for i in range(NKEYS)})


def start_gunicorn(work, impl, env):
    port = free_port()
    env = dict(env, E2E_BACKEND=impl)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--preload", "-w", str(WORKERS),
                             "-b", f"127.0.0.1:{port}", "--chdir", work, "--log-level", "warning",
                             "e2e_app:application"], env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn ({impl}) exited with {proc.returncode}")
        try:
            body = urllib.request.urlopen(url, timeout=2).read()
            if body != str(NKEYS).encode():
                raise RuntimeError(f"the view ({impl}) found {body!r} of {NKEYS} keys")
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn ({impl}) did not answer")


def wrk(url, seconds):
    """(requests/s, errors) from one wrk run."""
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = errors = None
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            errors = int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            errors = (errors or 0) + sum(int(p.rstrip(",")) for p in parts if p.rstrip(",").isdigit())
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return rps, errors or 0


def served(work, env):
    missing = [t for t in ("wrk",) if shutil.which(t) is None]
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        missing.append("gunicorn")
    if missing:
        note(f"Django end to end skipped: {' and '.join(missing)} not installed")
        return
    with open(os.path.join(work, "e2e_app.py"), "w") as f:
        f.write(APP % {"nkeys": NKEYS})
    procs, urls = [], {}
    try:
        for impl in ("ours", "pylibmc"):
            proc, urls[impl] = start_gunicorn(work, impl, env)
            procs.append(proc)
        for url in urls.values():
            wrk(url, 1)  # warm: every worker connected
        runs = {impl: [] for impl in urls}
        errors = {impl: 0 for impl in urls}
        names = list(urls)
        for r in range(ROUNDS):
            for impl in names[r % 2:] + names[:r % 2]:
                rps, err = wrk(urls[impl], SECONDS)
                runs[impl].append(rps)
                errors[impl] += err
        for impl in names:
            emit(bench="django_wrk", impl=impl,
                 params={"nodes": len(SERVERS), "keys": NKEYS, "workers": WORKERS,
                         "connections": CONNECTIONS, "seconds": SECONDS},
                 rps=statistics.median(runs[impl]), runs=runs[impl], errors=errors[impl])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def in_process(endpoint):
    """Django's cache.get_many(10) and cache.set, both backends in one process."""
    import django
    from django.conf import settings

    sys.path.insert(0, HERE)
    from bench_py import run_bench

    settings.configure(USE_TZ=True, CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ours": {"BACKEND": "elasticache.django.ElastiCache", "LOCATION": endpoint},
        "pylibmc": {"BACKEND": "django.core.cache.backends.memcached.PyLibMCCache", "LOCATION": SERVERS,
                    "OPTIONS": {"behaviors": {"ketama": True, "tcp_nodelay": True}}},
    })
    django.setup()
    from django.core.cache import caches

    keys = [f"e2e:{i}" for i in range(NKEYS)]
    backends = {name: caches[name] for name in ("ours", "pylibmc")}
    for name, c in backends.items():
        if len(c.get_many(keys)) != NKEYS:
            note(f"Django backend {name}: get_many found fewer than {NKEYS} keys")
    params = {"nodes": len(SERVERS), "keys": NKEYS}
    run_bench("django_get_many_e2e", params,
              {n: (lambda i, c=c: len(c.get_many(keys)) == NKEYS) for n, c in backends.items()})
    run_bench("django_set_e2e", params,
              {n: (lambda i, c=c: c.set("e2e:last", i) is None) for n, c in backends.items()})


def main():
    work = tempfile.mkdtemp(prefix="django_e2e.")
    ep = None
    try:
        ep = start_endpoint()
        endpoint = ep.addr
        prefill()
        env = dict(os.environ, E2E_ENDPOINT=endpoint, E2E_SERVERS=",".join(SERVERS))
        only = sys.argv[1:] or ["served", "in_process"]
        if "served" in only:
            served(work, env)
        if "in_process" in only:
            in_process(endpoint)
    finally:
        if ep is not None:
            ep.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
