#!/usr/bin/env python3
"""Turns the benchmark records (JSON lines) into the results table
(markdown, quoted by the README) and the plot of multi-get latency against
keys per call (docs/bench.png).

usage: report.py RECORDS.jsonl META.json RING.txt OUT.md PLOT.png [PROFILE.md]

Ratios are ours / theirs of medians measured in the same run; below 1.0 we
are faster. Goals are checked and reported as met or missed with the margin;
nothing here fails on a figure.
"""

import json
import sys


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return recs


class R:
    def __init__(self, recs):
        self.recs = recs

    def find(self, suite, bench, impl, **params):
        for r in self.recs:
            if r.get("suite") != suite or r.get("bench") != bench or r.get("impl") != impl:
                continue
            p = r.get("params", {})
            if all(p.get(k) == v for k, v in params.items()):
                return r
        return None

    def med(self, *a, **k):
        r = self.find(*a, **k)
        return r.get("median_us") if r else None


def us(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    if v >= 100:
        return f"{v:.0f} us"
    return f"{v:.1f} us"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rx(v):
    return "n/a" if v is None else f"{v:.2f}x"


def lat(r):
    """median (p10-p90)"""
    if not r:
        return "n/a"
    s = f"{us(r['median_us'])} ({r['p10_us']:.0f}-{r['p90_us']:.0f})"
    if r.get("errors"):
        s += f" **{r['errors']} errors**"
    return s


def main():
    recs_path, meta_path, ring_path, out_md, out_png = sys.argv[1:6]
    profile_text = ""
    if len(sys.argv) > 6:
        try:
            profile_text = open(sys.argv[6]).read().strip()
        except OSError:
            pass
    R_ = R(load(recs_path))
    try:
        meta = json.load(open(meta_path))
    except (OSError, ValueError):
        meta = {}
    try:
        ring_text = open(ring_path).read().strip()
    except OSError:
        ring_text = ""
    L = []
    add = L.append
    goals = []  # (goal, measured, met)

    add("# Benchmarks")
    add("")
    add(f"Run on {meta.get('date')} by `make bench` (`bash scripts/bench.sh`, {meta.get('elapsed_s', '?')} s), "
        f"commit `{meta.get('commit')}`.")
    add("")
    add(f"- Machine: {meta.get('cpu')}, {meta.get('cores')} cores, {meta.get('mem')}, Linux {meta.get('kernel')}")
    launcher = meta.get("servers", "examples/local_cluster --nodes 16 --ip 127.0.0.1 -- -t 1 -c 4096 -m 64")
    add(f"- Servers: memcached {meta.get('memcached')} on 127.0.0.1, one process per node, 16 nodes, "
        f"started by the crate's launcher (`{launcher}`)")
    add(f"- C: libmemcached {meta.get('libmemcached')} (Debian), {meta.get('cc')}, rustc {meta.get('rustc')}")
    pv = next((r.get("info") for r in R_.recs if r.get("suite") == "py" and r.get("bench") == "versions"), {}) or {}
    add(f"- Python {pv.get('python')}: pylibmc {pv.get('pylibmc')} (bundles libmemcached {pv.get('pylibmc_libmemcached')}), "
        f"pymemcache {pv.get('pymemcache')}, Django {pv.get('django')}, elasticache binding: "
        f"{pv.get('elasticache') or 'not available in this run'}")
    add("")
    add("Method: every implementation runs the same operation on the same servers and keys, in interleaved "
        "rounds (the order rotates each round), each call timed alone; figures are medians, with the 10th-90th "
        "percentile range in brackets. Loopback latency on this box is bimodal (about 6-10 us when the server "
        "thread is awake, about 50 us when it has to be woken), so only ratios measured in the same run mean "
        "anything. Ratios are ours / theirs: below 1.00x we are faster. The raw floor is hand-written C on "
        "blocking sockets: one `send` and one `recv` per get; for a multi-get one request line per node, all "
        "sent before any reply is read, replies drained with `poll` (it does no hashing and no parsing beyond "
        "looking for `END`). CPU is user+system time of the calling thread per operation (getrusage).")
    add("")

    for r in R_.recs:
        if r.get("bench") == "note":
            add(f"> Note ({r.get('suite')}): {r.get('note')}")
    pc = R_.find("c", "placement_check", "libmemcached")
    if pc and pc.get("disagree"):
        add(f"> Note: libmemcached placed {pc['disagree']} of {pc['keys']} keys on another node than our ring "
            "(keys are stored through both clients, so both measure hits; the raw floor follows our ring).")
    add("")

    # ---------------------------------------------------------------- C
    add("## C: against the wire and libmemcached (4 nodes, ketama, 100 B values unless said)")
    add("")
    add("| operation | raw floor | ours | ours / floor | libmemcached | ours / libmemcached | same ratios at p10 (floor, libmemcached) | CPU/op ours | CPU/op libmemcached | CPU ours / libmemcached |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    rows = [("get hit", "get_hit", "ours", {}), ("get hit (`get_into`)", "get_hit", "ours_get_into", {}),
            ("get miss", "get_miss", "ours", {}), ("set 100 B", "set_100B", "ours", {}),
            ("set 10 KB", "set_10KB", "ours", {}), ("multi-get 100 keys / 4 nodes", "mget", "ours", {"nodes": 4, "keys": 100})]
    cfig = {}
    for label, bench, impl, params in rows:
        raw = R_.find("c", bench, "raw", **params)
        ours = R_.find("c", bench, impl, **params)
        lmc = R_.find("c", bench, "libmemcached", **params)
        rf = ratio(ours and ours["median_us"], raw and raw["median_us"])
        rl = ratio(ours and ours["median_us"], lmc and lmc["median_us"])
        rc = ratio(ours and ours["cpu_us_per_op"], lmc and lmc["cpu_us_per_op"])
        cfig[(bench, impl)] = (rf, rl, rc)
        pf = ratio(ours and ours["p10_us"], raw and raw["p10_us"])
        pl = ratio(ours and ours["p10_us"], lmc and lmc["p10_us"])
        add(f"| {label} | {lat(raw)} | {lat(ours)} | {rx(rf)} | {lat(lmc)} | {rx(rl)} | {rx(pf)}, {rx(pl)} | "
            f"{(ours or {}).get('cpu_us_per_op', 0):.1f} us | {(lmc or {}).get('cpu_us_per_op', 0):.1f} us | {rx(rc)} |")
    add("")

    ins = {(r["bench"], r["impl"]): r.get("instructions_per_op") for r in R_.recs if r.get("suite") == "ins"}
    if ins:
        add("User-space instructions per operation (valgrind callgrind, deterministic; kernel time not included):")
        add("")
        add("| operation | raw floor | ours | libmemcached | ours / libmemcached |")
        add("|---|---|---|---|---|")
        for label, op in (("get hit", "get"), ("set 100 B", "set"), ("multi-get 100 keys / 4 nodes", "mget100")):
            f_, o_, l_ = ins.get((op, "raw")), ins.get((op, "ours")), ins.get((op, "libmemcached"))
            add(f"| {label} | {f_ if f_ is not None else 'n/a'} | {o_ if o_ is not None else 'n/a'} | "
                f"{l_ if l_ is not None else 'n/a'} | {rx(ratio(o_, l_))} |")
        add("")

    add("### Multi-get: keys per call x nodes (C)")
    add("")
    add("| keys | nodes (used) | raw floor | ours | libmemcached | ours / floor | ours / libmemcached | CPU/op ours / libmemcached |")
    add("|---|---|---|---|---|---|---|---|")
    for nodes in (1, 4, 16):
        for keys in (10, 100, 1000):
            raw = R_.find("c", "mget", "raw", nodes=nodes, keys=keys)
            ours = R_.find("c", "mget", "ours", nodes=nodes, keys=keys)
            lmc = R_.find("c", "mget", "libmemcached", nodes=nodes, keys=keys)
            if not ours:
                continue
            used = ours["params"].get("nodes_used")
            add(f"| {keys} | {nodes} ({used}) | {lat(raw)} | {lat(ours)} | {lat(lmc)} | "
                f"{rx(ratio(ours['median_us'], raw and raw['median_us']))} | "
                f"{rx(ratio(ours['median_us'], lmc and lmc['median_us']))} | "
                f"{rx(ratio(ours['cpu_us_per_op'], lmc and lmc['cpu_us_per_op']))} |")
    add("")

    add("### Syscalls per operation (strace -c -f, difference of two run lengths)")
    add("")
    add("libmemcached reads without blocking and polls only when a reply is not there yet, so its counts move "
        "from run to run (strace's own delay decides); ours and the floor block in `recv` and never poll.")
    add("")
    add("| operation | implementation | sends | receives | polls | all | by name |")
    add("|---|---|---|---|---|---|---|")
    sysrec = {}
    for r in R_.recs:
        if r.get("suite") == "sys" and isinstance(r.get("per_op"), dict):
            sysrec[(r["bench"], r["impl"])] = r
            detail = ", ".join(f"{k} {v:g}" for k, v in r["per_op"].items())
            add(f"| {r['bench']} | {r['impl']} | {r['sends']:g} | {r['recvs']:g} | {r['polls']:g} | {r['total']:g} | {detail} |")
    add("")

    add("### Threads: get throughput (C, 4 nodes)")
    add("")
    add("| threads | raw floor (sockets per thread) | ours (one shared client) | ours (a client per thread) | libmemcached (memcached_pool) | ours shared / libmemcached |")
    add("|---|---|---|---|---|---|")
    tput = {}
    for t in (1, 2, 4):
        cells = []
        for impl in ("raw", "ours", "ours_client_per_thread", "libmemcached"):
            r = R_.find("c", "threads_get", impl, threads=t)
            base = R_.find("c", "threads_get", impl, threads=1)
            if r:
                tput[("c", impl, t)] = r["ops_per_s"]
                sc = r["ops_per_s"] / base["ops_per_s"] if base and base["ops_per_s"] else 0
                err = f" **{r['errors']} errors**" if r.get("errors") else ""
                cells.append(f"{r['ops_per_s'] / 1000:.1f} k/s ({sc:.2f}x of 1){err}")
            else:
                cells.append("n/a")
        o, l_ = tput.get(("c", "ours", t)), tput.get(("c", "libmemcached", t))
        add(f"| {t} | " + " | ".join(cells) + f" | {rx(ratio(o, l_))} |")
    add("")
    fx = [r for r in R_.recs if r.get("bench") == "futex" and "futex_calls" in r]
    if fx:
        add("Lock waits with 2 threads on one client (strace, futex calls only): " + "; ".join(
            f"{r['impl']}: {r['futex_calls']} futex calls in {r['ops']:.0f} gets" for r in fx) + ".")
        add("")
    cpu1 = R_.find("c", "threads_get", "raw", threads=1)
    add("Each get also costs the server CPU on the same 2 cores (the client thread alone spends "
        f"{cpu1['cpu_us_per_op']:.1f} us of CPU per raw get, most of it in the kernel's loopback path), so "
        "the raw floor's own scaling is the ceiling this box allows; a client per thread shows what sharing "
        "one client costs." if cpu1 else "")
    add("")

    # ---------------------------------------------------------------- Python
    add("## Python (one node, 100 B values)")
    add("")
    add("| operation | ours | pylibmc | pymemcache | ours / pylibmc | ours / pymemcache |")
    add("|---|---|---|---|---|---|")
    prow = [("get", "get", {}), ("set", "set", {}), ("get_multi(100)", "get_multi", {}), ("set_multi(100)", "set_multi", {}),
            ("Django cache.get", "django_get", {}), ("Django cache.get_many(100)", "django_get_many", {})]
    pyr = {}
    for label, bench, params in prow:
        o = R_.find("py", bench, "ours", **params)
        p = R_.find("py", bench, "pylibmc", **params)
        m = R_.find("py", bench, "pymemcache", **params)
        a, b = ratio(o and o["median_us"], p and p["median_us"]), ratio(o and o["median_us"], m and m["median_us"])
        pyr[bench] = (a, b)
        add(f"| {label} | {lat(o)} | {lat(p)} | {lat(m)} | {rx(a)} | {rx(b)} |")
    add("")
    add("Django backends: ours is `elasticache.django.ElastiCache` (a plain memcached as its own only node), "
        "pylibmc is Django's `PyLibMCCache`, pymemcache is Django's `PyMemcacheCache`. pymemcache is its "
        "`HashClient` with `default_noreply=False` (else its set does not wait for the reply).")
    add("")
    add("### Multi-get over 4 nodes (Python)")
    add("")
    add("| keys | ours | pylibmc | pymemcache | ours / pylibmc | ours / pymemcache |")
    add("|---|---|---|---|---|---|")
    for keys in (10, 100, 1000):
        o = R_.find("py", "get_multi_scale", "ours", keys=keys)
        p = R_.find("py", "get_multi_scale", "pylibmc", keys=keys)
        m = R_.find("py", "get_multi_scale", "pymemcache", keys=keys)
        add(f"| {keys} | {lat(o)} | {lat(p)} | {lat(m)} | {rx(ratio(o and o['median_us'], p and p['median_us']))} | "
            f"{rx(ratio(o and o['median_us'], m and m['median_us']))} |")
    add("")
    add("### Threads (Python, 4 nodes): get throughput")
    add("")
    add("| threads | ours (one shared Client) | pylibmc (ClientPool) | ours / pylibmc |")
    add("|---|---|---|---|")
    for t in (1, 2, 4):
        cells = []
        for impl in ("ours", "pylibmc"):
            r = R_.find("py", "threads_get", impl, threads=t)
            base = R_.find("py", "threads_get", impl, threads=1)
            if r:
                tput[("py", impl, t)] = r["ops_per_s"]
                sc = r["ops_per_s"] / base["ops_per_s"] if base and base["ops_per_s"] else 0
                cells.append(f"{r['ops_per_s'] / 1000:.1f} k/s ({sc:.2f}x of 1)")
            else:
                cells.append("n/a")
        add(f"| {t} | " + " | ".join(cells) + f" | {rx(ratio(tput.get(('py', 'ours', t)), tput.get(('py', 'pylibmc', t))))} |")
    add("")

    # ------------------------------------------------- Django end to end
    e2e = {}
    wrk_recs = {impl: R_.find("e2e", "django_wrk", impl) for impl in ("ours", "pylibmc")}
    if any(wrk_recs.values()):
        add("### Django end to end (gunicorn + wrk, 4 nodes)")
        add("")
        w = next(r for r in wrk_recs.values() if r)["params"]
        add(f"A view doing `cache.get_many()` of {w['keys']} keys and one `cache.set()`, served by gunicorn "
            f"(`--preload -w {w['workers']}`, sync workers) and driven by wrk ({w['connections']} connections, "
            f"{w['seconds']:g} s per run, the two servers alternating; bench/django_e2e.py). Ours is "
            "`elasticache.django.ElastiCache` through an emulated configuration endpoint listing the 4 nodes, "
            "pylibmc is Django's `PyLibMCCache` with the 4 nodes listed.")
        add("")
        add("| | ours | PyLibMCCache | ours / PyLibMCCache |")
        add("|---|---|---|---|")
        o, p = wrk_recs["ours"], wrk_recs["pylibmc"]

        def runs(r):
            if not r:
                return "n/a"
            s = f"{r['rps']:,.0f} ({min(r['runs']):,.0f}-{max(r['runs']):,.0f})"
            return s + (f" **{r['errors']} errors**" if r.get("errors") else "")

        e2e["wrk"] = ratio(o and o["rps"], p and p["rps"])
        add(f"| requests/s, median of {len((o or p)['runs'])} runs (range) | {runs(o)} | {runs(p)} | {rx(e2e['wrk'])} |")
        for label, bench in (("in-process `cache.get_many(10)`", "django_get_many_e2e"),
                             ("in-process `cache.set()`", "django_set_e2e")):
            o, p = R_.find("py", bench, "ours"), R_.find("py", bench, "pylibmc")
            e2e[bench] = ratio(o and o["median_us"], p and p["median_us"])
            add(f"| {label} | {lat(o)} | {lat(p)} | {rx(e2e[bench])} |")
        add("")

    # ---------------------------------------------------------------- other
    add("## Discovery cold start (emulated configuration endpoint on loopback)")
    add("")
    disc = [r for r in R_.recs if r.get("bench") == "discovery" and "client_new_us" in r]
    dmeta = meta.get("discovery", {})
    if disc:
        cn = sorted(r["client_new_us"] for r in disc)
        fg = sorted(r["first_get_us"] for r in disc)
        add(f"- `elasticache_client_new(endpoint)` in a fresh process: median {us(cn[len(cn) // 2])} "
            f"(min {us(cn[0])}, {len(cn)} processes); first get after it (connects to the node): median {us(fg[len(fg) // 2])}.")
        tr = next((r for r in R_.recs if r.get("bench") == "discovery_trace"), None)
        if tr:
            reqs = ", ".join(f"`{q}`" for q in tr.get("request_lines", []))
            add(f"- One cold start (strace of the client): {tr['connects']} connect(s) to the endpoint and "
                f"{tr['requests']} request(s), i.e. round trip(s): {reqs}.")
        add(f"- Endpoint: {dmeta.get('emulator', '?')}.")
    else:
        add("- not measured in this run")
    add("")

    add("## Ring")
    add("")
    add("Build (a client over N servers; no connection is made; best of several):")
    add("")
    add("| servers | ours | libmemcached (memcached_server_push) | ours / libmemcached |")
    add("|---|---|---|---|")
    for n in (3, 30, 100, 300):
        o = R_.find("c", "ring_build", "ours", servers=n)
        l_ = R_.find("c", "ring_build", "libmemcached", servers=n)
        lo = l_.get("best_us") if l_ else None
        add(f"| {n} | {us(o and o.get('best_us'))} | {us(lo) if lo else (l_ or {}).get('na', 'n/a')} | "
            f"{rx(ratio(o and o.get('best_us'), lo))} |")
    add("")
    add("Lookup alone (bench/ring.sh):")
    add("")
    if ring_text:
        add("```")
        add(ring_text)
        add("```")
    else:
        add("- bench/ring.sh is not in this tree yet")
    add("")

    add("## Resident memory (C, 16 nodes, 40 clients)")
    add("")
    add("| | per client (heap / RSS) | per open node connection (heap / RSS) | one client with 16 connections (heap) |")
    add("|---|---|---|---|")
    for impl in ("ours", "libmemcached"):
        r = R_.find("c", "memory", impl)
        if r:
            add(f"| {impl} | {r['client_heap_kb']:.1f} KB / {r['client_rss_kb']:.1f} KB | "
                f"{r['conn_heap_kb']:.1f} KB / {r['conn_rss_kb']:.1f} KB | "
                f"{r['client_heap_kb'] + 16 * r['conn_heap_kb']:.0f} KB |")
    add("")
    add("Kernel socket buffers are not counted. libmemcached allocates its per-server buffers with the client; "
        "we allocate ours when a connection opens.")
    add("")

    # ---------------------------------------------------------------- goals
    def goal(text, value, limit, higher_is_better=False, fmt=rx):
        if value is None:
            goals.append((text, "not measured", "n/a"))
            return
        met = value >= limit if higher_is_better else value <= limit
        by = (value / limit - 1) * 100
        goals.append((text, fmt(value), "met" if met else f"**missed** by {abs(by):.1f}%"))

    goal("C get hit: at most 1.05x the raw floor", cfig.get(("get_hit", "ours"), (None,))[0], 1.05)
    goal("C set 100 B: at most 1.05x the raw floor", cfig.get(("set_100B", "ours"), (None,))[0], 1.05)
    for op in ("get", "set"):
        r = sysrec.get((op, "ours"))
        if r:
            ok = abs(r["sends"] - 1) < 0.02 and abs(r["recvs"] - 1) < 0.02 and r["total"] < 2.02
            goals.append((f"C {op}: one send and one receive", f"{r['sends']:g} send, {r['recvs']:g} recv, {r['total']:g} syscalls",
                          "met" if ok else "**missed**"))
    goal("C get hit CPU/op: no more than libmemcached", cfig.get(("get_hit", "ours"), (None, None, None))[2], 1.0)
    goal("C set 100 B CPU/op: no more than libmemcached", cfig.get(("set_100B", "ours"), (None, None, None))[2], 1.0)
    mg = cfig.get(("mget", "ours"), (None, None, None))
    goal("C multi-get 100 keys / 4 nodes: at most 1.0x libmemcached", mg[1], 1.0)
    goal("C multi-get 100 keys / 4 nodes: at most 1.1x the raw pipelined floor", mg[0], 1.1)
    r = sysrec.get(("mget100", "ours"))
    if r:
        goals.append(("C multi-get: one send per node (4) plus the receives needed",
                      f"{r['sends']:g} sends, {r['recvs']:g} recvs, {r['polls']:g} polls", "met" if abs(r["sends"] - 4) < 0.02 else "**missed**"))
    goal("Python get: at most 1.0x pylibmc", pyr.get("get", (None,))[0], 1.0)
    goal("Python set: at most 1.0x pylibmc", pyr.get("set", (None,))[0], 1.0)
    goal("Python get_multi(100): at most 0.8x pylibmc", pyr.get("get_multi", (None,))[0], 0.8)
    goal("Python get_multi(100): at most 0.4x pymemcache", pyr.get("get_multi", (None, None))[1], 0.4)
    o, p = R_.find("py", "get_multi_scale", "ours", keys=100), R_.find("py", "get_multi_scale", "pylibmc", keys=100)
    goal("Python get_multi(100) over 4 nodes: at most 1.0x pylibmc",
         ratio(o and o["median_us"], p and p["median_us"]), 1.0)
    goal("Django end to end (gunicorn + wrk): at least 1.0x PyLibMCCache's requests/s", e2e.get("wrk"), 1.0,
         higher_is_better=True)
    goal("Django cache.get_many(10) over 4 nodes: at most 1.0x PyLibMCCache", e2e.get("django_get_many_e2e"), 1.0)
    for suite, name, floor in (("c", "C", "raw"), ("py", "Python", None)):
        one, two = tput.get((suite, "ours", 1)), tput.get((suite, "ours", 2))
        goal(f"{name}: 2 threads on one shared client at least 1.8x the throughput of 1",
             ratio(two, one), 1.8, higher_is_better=True)
        if floor:
            f1, f2 = tput.get((suite, floor, 1)), tput.get((suite, floor, 2))
            if f1 and f2:
                goals[-1] = (goals[-1][0], goals[-1][1] + f" (the raw floor itself: {f2 / f1:.2f}x)", goals[-1][2])
    if profile_text:
        add("## Where our instructions go (callgrind, inside the timed call)")
        add("")
        add(profile_text)
        add("")
    add("## Goals")
    add("")
    add("| goal | measured | verdict |")
    add("|---|---|---|")
    for g, v, m in goals:
        add(f"| {g} | {v} | {m} |")
    add("")

    text = "\n".join(L) + "\n"
    with open(out_md, "w") as f:
        f.write(text)
    print(text)
    plot(R_, out_png, meta)


def plot(R_, out_png, meta):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:
        print(f"report: no plot ({e})", file=sys.stderr)
        return
    keys = [10, 100, 1000]
    series = [
        ("raw floor (C)", "c", "mget", "raw", "k:", "o"),
        ("ours (C)", "c", "mget", "ours", "C0-", "o"),
        ("libmemcached (C)", "c", "mget", "libmemcached", "C1-", "s"),
        ("ours (Python)", "py", "get_multi_scale", "ours", "C0--", "^"),
        ("pylibmc (Python)", "py", "get_multi_scale", "pylibmc", "C1--", "v"),
        ("pymemcache (Python)", "py", "get_multi_scale", "pymemcache", "C2--", "d"),
    ]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for label, suite, bench, impl, style, marker in series:
        xs, ys = [], []
        for k in keys:
            v = R_.med(suite, bench, impl, nodes=4, keys=k)
            if v is not None:
                xs.append(k)
                ys.append(v)
        if xs:
            ax.plot(xs, ys, style, marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(keys)
    ax.set_xticklabels([str(k) for k in keys])
    ax.set_xlabel("keys per multi-get (4 memcached nodes, 100 B values)")
    ax.set_ylabel("median latency per call (us)")
    ax.set_title(f"Multi-get latency, loopback, {meta.get('date', '')[:10]}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png)
    print(f"report: plot written to {out_png}", file=sys.stderr)


if __name__ == "__main__":
    main()
