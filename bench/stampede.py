#!/usr/bin/env python3
"""Cache stampede benchmark: N worker processes call Django's
`cache.get_or_set("hot", default, 1)` on one hot key that expires every
second, `default` taking 50 ms (a slow query). Counted: how many times
`default` runs per expiry, and the latency of get_or_set (p50, p99, max).
Ours (leases, and leases with LEASE_GRACE=1 to serve the old value while one
worker recomputes) against Django's PyLibMCCache and PyMemcacheCache, in the
same run on the same memcached.

usage: stampede.py [--servers host:port] [--workers 16] [--seconds 8]
                   [--jsonl FILE] [--md FILE] [--plot FILE]

Without --servers (or BENCH_SERVERS) it starts its own memcached (through
the crate's launcher, examples/local_cluster). Records
(one JSON line per backend, suite "stampede") are appended to --jsonl, a
markdown section to --md, the plot written to --plot. BENCH_SCALE scales the
duration. Figures are printed, never judged: nothing here fails on them.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "examples", "python", "tests"))
from local_cluster import LocalCluster  # noqa: E402

BACKENDS = [
    ("elasticache (leases)", "elasticache.django.PyLibMCCache", {}),
    ("elasticache (leases, LEASE_GRACE=1)", "elasticache.django.PyLibMCCache", {"LEASE_GRACE": 1}),
    ("Django PyLibMCCache (pylibmc)", "django.core.cache.backends.memcached.PyLibMCCache", {}),
    ("Django PyMemcacheCache (pymemcache)", "django.core.cache.backends.memcached.PyMemcacheCache", {}),
]
COMPUTE_S = 0.05
THINK_S = 0.005  # between two requests of one worker
WARM_S = 1.5  # run, unrecorded, before the timed window: the key's first (cold) miss is not an expiry


def worker(backend, options, location, prefix, out):
    import django
    from django.conf import settings

    settings.configure(CACHES={"default": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": prefix,
                                           **({"OPTIONS": options} if options else {})}})
    django.setup()
    from django.core.cache import cache

    recomputes = []

    recording = [False]

    def default():
        if recording[0]:
            recomputes.append(time.time())
        time.sleep(COMPUTE_S)
        return {"report": "x" * 200, "at": time.time()}

    lat = []
    errors = 0
    cache.get("warm-up")  # connect before the clock starts
    print("ready", flush=True)
    start_at, stop_at = map(float, sys.stdin.readline().split())
    while time.time() < start_at:
        time.sleep(0.001)
    record_from = start_at + WARM_S
    while True:
        now = time.time()
        if now >= stop_at:
            break
        recording[0] = now >= record_from
        t = time.perf_counter()
        try:
            cache.get_or_set("hot", default, 1)
        except Exception:  # noqa: BLE001 - counted, the run goes on
            errors += recording[0]
        if recording[0]:
            lat.append(time.perf_counter() - t)
        time.sleep(THINK_S)
    with open(out, "w") as f:
        json.dump({"recomputes": recomputes, "lat": lat, "errors": errors}, f)


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def expiries(times, gap=0.2):
    """Recomputations grouped into expiries: a new group after `gap` s without one
    (an expiry's burst lasts about one `default`; expiries are up to 1 s apart)."""
    groups = []
    for t in sorted(times):
        if groups and t - groups[-1][-1] < gap:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def run_one(name, backend, options, location, workers, seconds, tmp, idx):
    outs = [os.path.join(tmp, f"{idx}-{i}.json") for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", backend, json.dumps(options), location,
                               f"stampede{idx}", out], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for out in outs]
    for p in procs:  # every worker imported and connected before the clock starts
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"stampede: a {name} worker did not start")
    start_at = time.time() + 0.2
    for p in procs:
        p.stdin.write(f"{start_at} {start_at + WARM_S + seconds}\n")
        p.stdin.flush()
    for p in procs:
        p.wait(WARM_S + seconds + 60)
    recomputes, lat, errors = [], [], 0
    for out in outs:
        with open(out) as f:
            d = json.load(f)
        recomputes += d["recomputes"]
        lat += d["lat"]
        errors += d["errors"]
    groups = expiries(recomputes)
    per = [len(g) for g in groups]
    rec = {
        "suite": "stampede", "bench": "get_or_set_hot_key", "impl": name,
        "params": {"workers": workers, "seconds": seconds, "compute_ms": COMPUTE_S * 1000, "timeout_s": 1,
                   "backend": backend, "options": options},
        "calls": len(lat), "errors": errors, "recomputes": len(recomputes), "expiries": len(groups),
        "recomputes_per_expiry": (len(recomputes) / len(groups)) if groups else None,
        "max_recomputes_per_expiry": max(per) if per else None,
        "median_us": percentile(lat, 50) * 1e6, "p99_us": percentile(lat, 99) * 1e6,
        "max_us": max(lat) * 1e6,
        "slow_calls": sum(1 for x in lat if x >= COMPUTE_S),
    }
    print(json.dumps(rec), flush=True)
    return rec


def ms(us):
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:.0f} us"


def markdown(recs, meta):
    lines = ["", "## Stampede protection (bench/stampede.py)", "", f"Run {meta['date']}, {meta['cores']} cores.", "",
             f"{meta['workers']} worker processes call Django's `cache.get_or_set(\"hot\", default, 1)` "
             f"for {meta['seconds']:g} s after {WARM_S:g} s of warm-up (a {THINK_S * 1000:g} ms pause between calls); the key expires every "
             f"second and `default` takes {COMPUTE_S * 1000:g} ms. Same memcached ({meta['memcached']}), "
             "same run. Recomputations are `default` calls; an expiry is a burst of them (none 200 ms "
             "apart); max is the largest burst. Calls >= 50 ms waited for a recomputation (their own or "
             "another's).", "",
             "| backend | calls | recomputations | per expiry (max) | calls >= 50 ms | p50 | p99 | max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in recs:
        per = "n/a" if r["recomputes_per_expiry"] is None else \
            f"{r['recomputes_per_expiry']:.2f} ({r['max_recomputes_per_expiry']})"
        err = f" ({r['errors']} errors)" if r["errors"] else ""
        lines.append(f"| {r['impl']} | {r['calls']}{err} | {r['recomputes']} | {per} | {r['slow_calls']} | "
                     f"{ms(r['median_us'])} | "
                     f"{ms(r['p99_us'])} | {ms(r['max_us'])} |")
    return "\n".join(lines) + "\n"


def plot(recs, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("stampede: matplotlib missing, no plot", file=sys.stderr)
        return
    names = [r["impl"].replace(" (", "\n(").replace("Django ", "Django\n").replace(", ", ",\n") for r in recs]
    colors = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e"][: len(recs)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    panels = [
        ([r["recomputes_per_expiry"] or 0 for r in recs], "default() calls per expiry",
         "Recomputations per expiry"),
        ([r["slow_calls"] / max(1, r["expiries"]) for r in recs], f"calls >= {COMPUTE_S * 1000:g} ms per expiry",
         "Callers held up per expiry"),
        ([r["p99_us"] / 1000 for r in recs], "ms", "get_or_set p99 latency"),
    ]
    for ax, (values, ylabel, title) in zip(axes, panels):
        ax.bar(range(len(recs)), values, color=colors)
        ax.set_xticks(range(len(recs)), names, fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} (lower is better)", fontsize=10)
        for i, v in enumerate(values):
            ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom", fontsize=8)
    w = recs[0]["params"]["workers"] if recs else 0
    fig.suptitle(f"Django get_or_set on a hot key expiring every second: {w} worker processes, "
                 f"default() = {COMPUTE_S * 1000:g} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"stampede: plot in {path}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        b, o, loc, prefix, out = sys.argv[2:7]
        return worker(b, json.loads(o), loc, prefix, out)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", ""))
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=max(4.0, 8 * float(os.environ.get("BENCH_SCALE", "1"))))
    ap.add_argument("--jsonl")
    ap.add_argument("--md")
    ap.add_argument("--plot")
    ap.add_argument("--replot", metavar="JSONL", help="only redraw --plot from these records")
    a = ap.parse_args()
    if a.replot:
        with open(a.replot) as f:
            recs = [r for r in map(json.loads, f) if r.get("suite") == "stampede"]
        return plot(recs, a.plot)
    own = None
    location = a.servers.split(",")[0] if a.servers else ""
    if not location:
        own = LocalCluster.start(1)
        location = own.nodes[0].addr
    sys.path.insert(0, os.path.join(REPO, "examples", "python"))
    os.environ.setdefault("ELASTICACHE_LIBRARY", os.path.join(REPO, "target", "release", "libelasticache.so"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.join(REPO, "examples", "python"),
                                                           os.environ.get("PYTHONPATH", "")] if p)
    try:
        version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.split()[-1]
    except (OSError, IndexError):
        version = "?"
    recs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, (name, backend, options) in enumerate(BACKENDS):
                recs.append(run_one(name, backend, options, location, a.workers, a.seconds, tmp, i))
    finally:
        if own:
            own.close()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = markdown(recs, {"workers": a.workers, "seconds": a.seconds, "memcached": version, "date": date,
                         "cores": os.cpu_count()})
    print(md)
    if a.jsonl:
        with open(a.jsonl, "a") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
    if a.md:
        with open(a.md, "a") as f:
            f.write(md)
    if a.plot:
        plot(recs, a.plot)


if __name__ == "__main__":
    sys.exit(main())
