"""The installed package's two bindings side by side: cffi's API mode (the
wheel's compiled module) and ABI mode (the same bundled library, dlopened, as
ELASTICACHE_LIBRARY selects), whole calls through `elasticache.Client`.

    pip install dist/elasticache-*.whl
    python examples/python/bench/bench_modes.py      # from outside examples/python

Each mode runs in its own processes (alternating, three each) on one local
memcached (started by the crate's launcher, examples/local_cluster, which this
builds from the checkout it is in); microseconds per call, best of all rounds. For choosing, not a test: nothing here asserts.
"""

import json
import os
import subprocess
import sys

# The checkout's launcher (not the package: that is the installed wheel's).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from local_cluster import LocalCluster  # noqa: E402

ROUNDS = 5
PROCESSES = 3
N = 20_000
KEYS = 100

CHILD = r"""
import json, sys, time
import elasticache
from elasticache import _native

ffi, lib = _native.ffi, _native.lib
ROUNDS, N, KEYS = map(int, sys.argv[2:5])
mc = elasticache.Client([sys.argv[1]])
value = b"x" * 100
keys = ["bench:%d" % i for i in range(KEYS)]
mc.set_multi({k: value for k in keys})
buf = ffi.new("char[]", 64)
ln, fl = ffi.new("size_t *"), ffi.new("uint32_t *")
NULL = ffi.NULL


def best(fn, n):
    out = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        fn(n)
        out.append(time.perf_counter() - t)
    return min(out) / n * 1e6


def noop(n):
    f = lib.elasticache_get_into
    for _ in range(n):
        f(NULL, b"k", 1, buf, 64, ln, fl, NULL)


def get(n):
    g = mc.get
    for _ in range(n):
        g("bench:1")


def set_(n):
    s = mc.set
    for _ in range(n):
        s("bench:1", value)


def get_multi(n):
    g = mc.get_multi
    for _ in range(n):
        g(keys)


print(json.dumps({"mode": _native.mode, "noop": best(noop, N * 10), "get": best(get, N),
                  "set": best(set_, N), "get_multi(100)": best(get_multi, N // 20)}))
"""


def main():
    with LocalCluster.start(1) as lc:
        addr = lc.nodes[0].addr
        find = [sys.executable, "-c", "import elasticache; print(elasticache.library_path)"]
        bundled = subprocess.run(find, capture_output=True, text=True, check=True).stdout.strip()
        rows = [None, None]
        # Alternating processes, best of each: the machine's load moves between runs.
        for _ in range(PROCESSES):
            for i, env in enumerate(({}, {"ELASTICACHE_LIBRARY": bundled})):
                full = {k: v for k, v in os.environ.items() if k != "ELASTICACHE_LIBRARY"}
                full.update(env)
                out = subprocess.run([sys.executable, "-c", CHILD, addr, str(ROUNDS), str(N),
                                      str(KEYS)], env=full, capture_output=True, text=True, check=True).stdout
                r = json.loads(out)
                rows[i] = r if rows[i] is None else {k: min(v, r[k]) if k != "mode" else v
                                                     for k, v in rows[i].items()}
        cols = [c for c in rows[0] if c != "mode"]
        print(f"library: {bundled}")
        print("| mode | " + " | ".join(f"{c} (us)" for c in cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for r in rows:
            print(f"| {r['mode'].upper()} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
        api, abi = rows
        print("| API/ABI | " + " | ".join(f"{api[c] / abi[c]:.2f}x" for c in cols) + " |")


if __name__ == "__main__":
    main()
