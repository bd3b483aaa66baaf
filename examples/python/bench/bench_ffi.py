"""Per-call overhead of ctypes, cffi ABI mode and cffi API mode over libelasticache.

Run from the repository root after `cargo build --release`:

    python3 examples/python/bench/bench_ffi.py

Three measurements per binding, best of several rounds:
- `noop`: elasticache_get_into with a NULL client (the library rejects it at
  once), i.e. the price of crossing the boundary with get's 8 arguments;
- `get hit`: a real get of a 100-byte value from a local memcached (started by
  the crate's launcher, examples/local_cluster), with the
  output parameters a binding needs (length, flags) and the copy into `bytes`;
- `get via value`: elasticache_get + data/len/flags accessors + free (5 calls).
The numbers are for choosing a binding, not a test: nothing here asserts.
"""

import ctypes
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
LIB = os.environ.get("ELASTICACHE_LIBRARY") or os.path.join(ROOT, "target", "release", "libelasticache.so")
N = 200_000
ROUNDS = 5

PKG = os.path.join(ROOT, "examples", "python")
sys.path.insert(0, PKG)
sys.path.insert(0, os.path.join(PKG, "tests"))
# The package's own declarations (elasticache/_cdef.py, checked against the
# header by tests/test_native.py), read without importing the package.
from _cffi_build import read_cdef  # noqa: E402
from local_cluster import LocalCluster  # noqa: E402

CDEF = read_cdef()


def best(fn, n=N):
    times = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        fn(n)
        times.append(time.perf_counter() - t)
    return min(times) / n * 1e6


def get_into_loops(get_into, client, null, buf, pln, pfl, unpack):
    """(noop, hit) for one binding: the same loop for each, so that only the
    binding's cost differs."""

    def noop(n):
        for _ in range(n):
            get_into(null, b"bench", 5, buf, 16384, pln, pfl, null)

    def hit(n):
        for _ in range(n):
            if get_into(client, b"bench", 5, buf, 16384, pln, pfl, null) == 0:
                unpack(buf, pln[0])

    return noop, hit


def bench_ctypes(addr):
    lib = ctypes.CDLL(LIB)
    P = ctypes.c_void_p
    lib.elasticache_client_new_servers.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t, P, P, ctypes.POINTER(P)]
    lib.elasticache_client_new_servers.restype = ctypes.c_uint32
    lib.elasticache_set.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_int64]
    lib.elasticache_set.restype = ctypes.c_uint32
    lib.elasticache_get_into.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_uint32), P]
    lib.elasticache_get_into.restype = ctypes.c_uint32
    lib.elasticache_get.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(P)]
    lib.elasticache_get.restype = ctypes.c_uint32
    for name, res in (("data", P), ("len", ctypes.c_size_t), ("flags", ctypes.c_uint32)):
        f = getattr(lib, "elasticache_value_" + name)
        f.argtypes = [P]
        f.restype = res
    lib.elasticache_value_free.argtypes = [P]
    lib.elasticache_value_free.restype = None
    servers = (ctypes.c_char_p * 1)(addr.encode())
    client = P()
    assert lib.elasticache_client_new_servers(servers, 1, None, None, ctypes.byref(client)) == 0
    assert lib.elasticache_set(client, b"bench", 5, b"x" * 100, 100, 0, 0) == 0
    buf = ctypes.create_string_buffer(16384)
    # One-element arrays: passed as pointers, read as pln[0] like cffi's.
    pln, pfl = (ctypes.c_size_t * 1)(), (ctypes.c_uint32 * 1)()
    noop, hit = get_into_loops(lib.elasticache_get_into, client, None, buf, pln, pfl, ctypes.string_at)
    val = P()
    pval = ctypes.byref(val)

    def via_value(n):
        for _ in range(n):
            if lib.elasticache_get(client, b"bench", 5, pval) == 0:
                ctypes.string_at(lib.elasticache_value_data(val), lib.elasticache_value_len(val))
                lib.elasticache_value_flags(val)
                lib.elasticache_value_free(val)

    return noop, hit, via_value


def bench_cffi(lib, ffi, addr):
    out = ffi.new("elasticache_client **")
    assert lib.elasticache_client_new_servers([ffi.new("char[]", addr.encode())], 1, ffi.NULL, ffi.NULL, out) == 0
    client = out[0]
    assert lib.elasticache_set(client, b"bench", 5, b"x" * 100, 100, 0, 0) == 0
    buf = ffi.new("char[]", 16384)
    pln, pfl = ffi.new("size_t *"), ffi.new("uint32_t *")
    unpack = ffi.unpack
    noop, hit = get_into_loops(lib.elasticache_get_into, client, ffi.NULL, buf, pln, pfl, unpack)
    pval = ffi.new("elasticache_value **")

    def via_value(n):
        for _ in range(n):
            if lib.elasticache_get(client, b"bench", 5, pval) == 0:
                v = pval[0]
                unpack(lib.elasticache_value_data(v), lib.elasticache_value_len(v))
                lib.elasticache_value_flags(v)
                lib.elasticache_value_free(v)

    return noop, hit, via_value


def cffi_abi():
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi.dlopen(LIB), ffi


def cffi_api(tmp):
    """Build an API-mode module (needs a C compiler, as `pip install` would)."""
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    libdir = os.path.dirname(LIB)
    # Compiled against the header as the wheel's module is (_cffi_build.py),
    # with uint8_t spelled char as the declarations spell it.
    ffi.set_source(
        "_ec_bench_api",
        '#include <stdint.h>\n#define uint8_t char\n#include "elasticache.h"\n#undef uint8_t\n',
        include_dirs=[os.path.join(ROOT, "include")],
        library_dirs=[libdir],
        libraries=["elasticache"],
        extra_link_args=["-Wl,-rpath," + libdir],
    )
    t = time.perf_counter()
    ffi.compile(tmpdir=tmp, verbose=False)
    build_s = time.perf_counter() - t
    sys.path.insert(0, tmp)
    import _ec_bench_api  # noqa: E402

    return _ec_bench_api.lib, _ec_bench_api.ffi, build_s


def main():
    lc = LocalCluster.start(1)
    addr = lc.nodes[0].addr
    tmp = tempfile.mkdtemp()
    try:
        rows = [("ctypes", bench_ctypes(addr))]
        lib, ffi = cffi_abi()
        rows.append(("cffi ABI", bench_cffi(lib, ffi, addr)))
        try:
            lib, ffi, build_s = cffi_api(tmp)
            rows.append((f"cffi API (built in {build_s:.1f} s)", bench_cffi(lib, ffi, addr)))
        except Exception as e:  # no compiler: report and go on
            print(f"cffi API mode not measured: {e}")
        print(f"{'binding':28} {'noop us':>9} {'get hit us':>11} {'get via value us':>17}")
        for name, (noop, hit, via) in rows:
            print(f"{name:28} {best(noop):9.3f} {best(hit, N // 10):11.2f} {best(via, N // 10):17.2f}")
    finally:
        lc.close()
        shutil.rmtree(tmp, ignore_errors=True)


def client_level():
    """elasticache.Client against pylibmc.Client, whole Python calls."""
    import elasticache
    import pylibmc

    with LocalCluster.start(1) as lc:
        addr = lc.nodes[0].addr
        keys = [f"k{i}" for i in range(100)]
        print(f"\n{'client':12} {'get us':>8} {'set us':>8} {'get_multi(100) us':>18} {'set_multi(100) us':>18}")
        for name, c in (("pylibmc", pylibmc.Client([addr])), ("elasticache", elasticache.Client([addr]))):
            c.set("bench", "x" * 100)
            c.set_multi({k: "v" for k in keys})

            def get(n, c=c):
                for _ in range(n):
                    c.get("bench")

            def set_(n, c=c):
                for _ in range(n):
                    c.set("bench", "x" * 100)

            def gm(n, c=c):
                for _ in range(n):
                    c.get_multi(keys)

            def sm(n, c=c, d={k: "v" for k in keys}):
                for _ in range(n):
                    c.set_multi(d)

            print(f"{name:12} {best(get, 20000):8.2f} {best(set_, 20000):8.2f} "
                  f"{best(gm, 2000):18.1f} {best(sm, 2000):18.1f}")


if __name__ == "__main__":
    main()
    client_level()
