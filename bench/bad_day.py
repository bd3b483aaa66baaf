#!/usr/bin/env python3
"""A bad day, drawn: steady load on a local emulated cluster (4 nodes,
examples/local_cluster.rs) while one node is killed and restarted in place
and another is replaced (new port, same name); node_metrics() is sampled
every 100 ms and requests/s, errors/s and each node's state are drawn to
docs/node-events.png. The client runs with ignore_exc (errors as misses),
refresh_interval 1 s, remove_failed (an ejected node's keys move).

usage: bench/bad_day.py [OUT.png]   (the library from `cargo build --release`;
local_cluster is built on the way, by examples/python/tests/local_cluster.py;
matplotlib from PyPI)
"""

import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "python", "tests"))
import elasticache  # noqa: E402
from local_cluster import LocalCluster  # noqa: E402

LOAD_THREADS = 2
SAMPLE_EVERY = 0.1
# (seconds from start, command, which node, label)
SCRIPT = [(2.0, "kill", 0, "node A killed"), (5.0, "restart", 0, "node A restarted"),
          (8.0, "replace", 1, "node B replaced"), (12.0, None, None, "end")]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "node-events.png")
    lc = LocalCluster(["--nodes", "4"], nodes=4)
    endpoint, ports = lc.addr, [m.port for m in lc.nodes]
    events = []
    t0 = time.monotonic()
    elasticache.events.add_listener(lambda e: events.append((time.monotonic() - t0, e)))
    c = elasticache.Client.from_endpoint(
        endpoint, behaviors={"ketama": True, "remove_failed": 1, "retry_timeout": 2},
        ignore_exc=True, options={"refresh_interval_ms": 1000, "connect_timeout": 200, "io_timeout": 200})
    stop = threading.Event()

    def load(seed):
        i = seed
        while not stop.is_set():
            k = f"page:{i % 5000}"
            if c.get(k) is None:
                c.set(k, "x" * 100)
            i += 7

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    samples = []
    actions = []
    step = 0
    try:
        while True:
            now = time.monotonic() - t0
            if step < len(SCRIPT) and now >= SCRIPT[step][0]:
                at, cmd, which, label = SCRIPT[step]
                step += 1
                if cmd is None:
                    break
                reply = lc.command(f"{cmd} {ports[which]}")
                actions.append((now, label))
                print(f"{now:6.2f}s {label}: {reply}")
            samples.append((now, c.node_metrics()))
            time.sleep(SAMPLE_EVERY)
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        lc.close()
    for at, e in events:
        print(f"{at:6.2f}s event {elasticache.events.message(e)}")
    draw(samples, actions, out)
    total = {k: v for k, v in samples[-1][1].items()}
    print("final counts:", {k: (v["requests"], v["errors"], v["state"]) for k, v in total.items()})
    print(f"wrote {out}")


def draw(samples, actions, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = []
    for _, m in samples:
        for k in m:
            if k not in nodes:
                nodes.append(k)
    fig, (ax_r, ax_e, ax_s) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 2, 1.6]})
    for node in nodes:
        ts, req, err = [], [], []
        prev = None
        for t, m in samples:
            d = m.get(node)
            if d is None:
                prev = None
                continue
            if prev is not None and t > prev[0]:
                ts.append(t)
                req.append((d["requests"] - prev[1]) / (t - prev[0]))
                err.append((d["errors"] - prev[2]) / (t - prev[0]))
            prev = (t, d["requests"], d["errors"])
        ax_r.plot(ts, req, label=node, linewidth=1.2)
        ax_e.plot(ts, err, label=node, linewidth=1.2)
    for i, node in enumerate(nodes):
        for t, m in samples:
            d = m.get(node)
            if d is not None:
                ax_s.broken_barh([(t, SAMPLE_EVERY)], (i - 0.35, 0.7),
                                 color="tab:green" if d["state"] == "up" else "tab:red", linewidth=0)
    ax_s.set_yticks(range(len(nodes)))
    ax_s.set_yticklabels(nodes, fontsize=7)
    ax_s.set_title("node state (green up, red ejected, blank: not in the node list)", fontsize=9)
    ax_r.set_ylabel("requests/s")
    ax_e.set_ylabel("errors/s")
    ax_r.legend(fontsize=7, loc="lower left", ncol=3)
    for ax in (ax_r, ax_e, ax_s):
        for t, label in actions:
            ax.axvline(t, color="grey", linestyle="--", linewidth=0.8)
    for t, label in actions:
        ax_r.annotate(label, (t, 1), xycoords=("data", "axes fraction"), fontsize=8, rotation=0,
                      xytext=(3, -12), textcoords="offset points")
    ax_s.set_xlabel("seconds")
    fig.suptitle("A bad day on a 4-node local cluster: client-side node_metrics() every 100 ms", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
