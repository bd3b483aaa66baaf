#!/usr/bin/env python3
"""Python benchmarks: our Client against pylibmc and pymemcache's HashClient,
and Django's cache through our backend, PyLibMCCache and PyMemcacheCache.

Prints one JSON object per line (suite "py"); bench/report.py makes the table.
Servers come from BENCH_SERVERS ("127.0.0.1:p1,127.0.0.1:p2,..."): the single
operations and Django use the first one (as the figures we compare with were
taken on one node); the multi-get scale uses four.

Method as in the C benchmarks: implementations run in interleaved rounds (the
order rotates every round), every call is timed alone, the median is reported.
When `import elasticache` fails, our column is skipped with a note: nothing
here fails on a figure.
"""

import json
import os
import sys
import threading
import time

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SERVERS = [s for s in os.environ.get("BENCH_SERVERS", "").split(",") if s]
if not SERVERS:
    sys.exit("bench_py: BENCH_SERVERS is not set")
VALUE = b"v" * 100
perf_ns = time.perf_counter_ns


def emit(**rec):
    rec.setdefault("suite", "py")
    print(json.dumps(rec), flush=True)


def note(text):
    emit(bench="note", impl="-", note=text)


def make_clients(servers):
    """Each client by name, or a note saying why it is missing."""
    out = {}
    try:
        import elasticache

        out["ours"] = elasticache.Client(list(servers), behaviors={"ketama": True})
    except Exception as e:  # ImportError before the binding is merged; anything else is reported too
        out["ours"] = f"our binding is not available: {type(e).__name__}: {e}"
    try:
        import pylibmc

        out["pylibmc"] = pylibmc.Client(list(servers), behaviors={"ketama": True, "tcp_nodelay": True})
    except Exception as e:
        out["pylibmc"] = f"pylibmc is not available: {e}"
    try:
        from pymemcache.client.hash import HashClient

        hosts = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in servers]
        # default_noreply=False: pymemcache would otherwise not wait for the reply to a set.
        out["pymemcache"] = HashClient(hosts, no_delay=True, default_noreply=False)
    except Exception as e:
        out["pymemcache"] = f"pymemcache is not available: {e}"
    return out


def run_bench(bench, params, impls, rounds=100, round_ms=3.0):
    """impls: {name: callable(i) -> bool ok}. Interleaved rounds, per-call timing."""
    names = list(impls)
    est = 0.0
    errors = {n: 0 for n in names}
    for n in names:
        t0 = perf_ns()
        for i in range(10):
            if not impls[n](i):
                errors[n] += 1
        est = max(est, (perf_ns() - t0) / 10)
    per_round = int(max(5, min(20000, round_ms * SCALE * 1e6 / max(est, 1))))
    samples = {n: [] for n in names}
    cpu = {n: 0.0 for n in names}
    for r in range(rounds):
        for j in range(len(names)):
            n = names[(r + j) % len(names)]
            f = impls[n]
            s = samples[n]
            c0 = time.thread_time()
            for i in range(per_round):
                t0 = perf_ns()
                ok = f(i)
                s.append(perf_ns() - t0)
                if not ok:
                    errors[n] += 1
            cpu[n] += time.thread_time() - c0
    for n in names:
        s = sorted(samples[n])
        k = len(s)
        emit(
            bench=bench,
            params=params,
            impl=n,
            median_us=s[k // 2] / 1e3,
            p10_us=s[k // 10] / 1e3,
            p90_us=s[(k * 9) // 10] / 1e3,
            ops=k,
            cpu_us_per_op=cpu[n] * 1e6 / k,
            errors=errors[n],
        )


def usable(clients):
    ok = {}
    for name, c in clients.items():
        if isinstance(c, str):
            note(c)
        else:
            ok[name] = c
    return ok


def single_ops():
    clients = usable(make_clients(SERVERS[:1]))
    keys = [f"pyb:hit:{i}" for i in range(100)]
    setkeys = [f"pyb:set:{i}" for i in range(100)]
    for c in clients.values():
        for k in keys:
            c.set(k, VALUE)
    params = {"nodes": 1, "value_bytes": 100}

    def getter(c):
        return lambda i: c.get(keys[i % 100]) == VALUE

    def setter(c):
        return lambda i: c.set(setkeys[i % 100], VALUE) is not False

    run_bench("get", params, {n: getter(c) for n, c in clients.items()})
    run_bench("set", params, {n: setter(c) for n, c in clients.items()})

    mapping = {k: VALUE for k in setkeys}

    def gm(c):
        return lambda i: len(c.get_multi(keys)) == 100

    def sm(c):
        # pylibmc and pymemcache return the keys that failed; an empty list is success.
        return lambda i: not c.set_multi(mapping)

    run_bench("get_multi", dict(params, keys=100), {n: gm(c) for n, c in clients.items()})
    run_bench("set_multi", dict(params, keys=100), {n: sm(c) for n, c in clients.items()})
    return clients


def multi_scale():
    clients = usable(make_clients(SERVERS[:4]))
    for nkeys in (10, 100, 1000):
        keys = [f"pym:{nkeys}:{i}" for i in range(nkeys)]
        for c in clients.values():
            c.set_multi({k: VALUE for k in keys})

        def gm(c, keys=keys, nkeys=nkeys):
            return lambda i: len(c.get_multi(keys)) == nkeys

        run_bench(
            "get_multi_scale",
            {"nodes": min(4, len(SERVERS)), "keys": nkeys},
            {n: gm(c) for n, c in clients.items()},
            rounds=40,
        )


def django_ops():
    try:
        import django
        from django.conf import settings
    except Exception as e:
        note(f"django is not available: {e}")
        return
    loc = SERVERS[0]
    caches_conf = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "pylibmc": {"BACKEND": "django.core.cache.backends.memcached.PyLibMCCache", "LOCATION": loc},
        "pymemcache": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "LOCATION": loc},
        # A plain memcached is its own only node (django-elasticache's IGNORE_CLUSTER_ERRORS).
        "ours": {
            "BACKEND": "elasticache.django.ElastiCache",
            "LOCATION": loc,
            "OPTIONS": {"IGNORE_CLUSTER_ERRORS": True},
        },
    }
    settings.configure(CACHES=caches_conf, USE_TZ=True)
    django.setup()
    from django.core.cache import caches

    backends = {}
    for name in ("ours", "pylibmc", "pymemcache"):
        try:
            c = caches[name]
            c.set("pyd:probe", VALUE)
            if c.get("pyd:probe") != VALUE:
                raise RuntimeError("read back a different value")
            backends[name] = c
        except Exception as e:
            note(f"Django backend {caches_conf[name]['BACKEND']} is not usable: {type(e).__name__}: {e}")
    keys = [f"pyd:{i}" for i in range(100)]
    for c in backends.values():
        c.set_many({k: VALUE for k in keys})
    params = {"nodes": 1, "value_bytes": 100}

    def get(c):
        return lambda i: c.get(keys[i % 100]) == VALUE

    def get_many(c):
        return lambda i: len(c.get_many(keys)) == 100

    run_bench("django_get", params, {n: get(c) for n, c in backends.items()})
    run_bench("django_get_many", dict(params, keys=100), {n: get_many(c) for n, c in backends.items()})


def threads():
    """get throughput with 1, 2, 4 threads: our one shared Client against pylibmc's ClientPool."""
    servers = SERVERS[:4]
    clients = usable(make_clients(servers))
    keys = [f"pyt:{i}" for i in range(100)]
    impls = {}
    if "ours" in clients:
        shared = clients["ours"]
        for k in keys:
            shared.set(k, VALUE)

        def ours_worker(stop, count, errs, tid):
            i = tid * 37
            n = e = 0
            while not stop.is_set():
                if shared.get(keys[i % 100]) != VALUE:
                    e += 1
                n += 1
                i += 1
            count.append(n)
            errs.append(e)

        impls["ours"] = lambda nthreads: ours_worker
    if "pylibmc" in clients:
        import pylibmc

        master = clients["pylibmc"]
        for k in keys:
            master.set(k, VALUE)

        def pylibmc_factory(nthreads):
            pool = pylibmc.ClientPool(master, nthreads)

            def worker(stop, count, errs, tid):
                i = tid * 37
                n = e = 0
                while not stop.is_set():
                    with pool.reserve() as mc:
                        if mc.get(keys[i % 100]) != VALUE:
                            e += 1
                    n += 1
                    i += 1
                count.append(n)
                errs.append(e)

            return worker

        impls["pylibmc"] = pylibmc_factory
    secs = 0.12 * SCALE
    rounds = 6
    results = {}
    for r in range(rounds):
        names = list(impls)
        for nthreads in (1, 2, 4):
            for j in range(len(names)):
                name = names[(r + j) % len(names)]
                worker = impls[name](nthreads)
                stop = threading.Event()
                count, errs = [], []
                ths = [threading.Thread(target=worker, args=(stop, count, errs, t)) for t in range(nthreads)]
                t0 = time.perf_counter()
                for t in ths:
                    t.start()
                time.sleep(secs)
                stop.set()
                for t in ths:
                    t.join()
                el = time.perf_counter() - t0
                acc = results.setdefault((name, nthreads), [0.0, 0])
                acc[0] += sum(count) / el / rounds
                acc[1] += sum(errs)
    for (name, nthreads), (ops, err) in sorted(results.items()):
        emit(bench="threads_get", params={"nodes": len(servers), "threads": nthreads}, impl=name, ops_per_s=ops, errors=err)


def versions():
    info = {"python": sys.version.split()[0]}
    for mod in ("pylibmc", "pymemcache", "django", "elasticache"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
            if mod == "pylibmc":
                info["pylibmc_libmemcached"] = getattr(m, "libmemcached_version", "?")
        except Exception:
            info[mod] = None
    emit(bench="versions", impl="-", info=info)


def main():
    only = sys.argv[1:] or ["versions", "single", "scale", "django", "threads"]
    table = {"versions": versions, "single": single_ops, "scale": multi_scale, "django": django_ops, "threads": threads}
    for part in only:
        table[part]()


if __name__ == "__main__":
    main()
