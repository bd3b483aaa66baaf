#!/usr/bin/env python3
"""Calling libelasticache's C API directly from Python with ctypes (standard
library only: no cffi, no compiler, no elasticache package).

    cargo build --release
    python3 examples/python/ctypes_example.py mycluster.abc123.cfg.use1.cache.amazonaws.com:11211

ctypes costs 2-3x cffi's ABI mode per call (bench/bench_ffi.py); it is here
for programs that cannot add a dependency.
"""

import ctypes
import os
import sys
from ctypes import POINTER, byref, c_bool, c_char, c_char_p, c_int64, c_size_t, c_uint16, c_uint32, c_void_p

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.environ.get("ELASTICACHE_LIBRARY") or os.path.join(HERE, "..", "..", "target", "release",
                                                             "libelasticache.so")
lib = ctypes.CDLL(LIB)

# Opaque handles are void pointers; every signature is copied from
# include/elasticache.h (uint8_t* buffers as char*, so bytes pass directly).
# Without argtypes ctypes would pass size_t and int64_t as C ints.
Handle = c_void_p
SIGNATURES = {
    "elasticache_last_error_message": (c_uint32, [c_char_p, c_size_t, POINTER(c_size_t)]),
    "elasticache_discover": (c_uint32, [c_char_p, c_void_p, POINTER(Handle)]),
    "elasticache_config_node_count": (c_size_t, [Handle]),
    "elasticache_config_node": (c_uint32, [Handle, c_size_t, POINTER(c_char_p), POINTER(c_char_p),
                                           POINTER(c_uint16)]),
    "elasticache_config_free": (None, [Handle]),
    "elasticache_client_new": (c_uint32, [c_char_p, c_void_p, POINTER(Handle)]),
    "elasticache_client_free": (None, [Handle]),
    "elasticache_set": (c_uint32, [Handle, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32, c_int64]),
    "elasticache_get_into": (c_uint32, [Handle, c_char_p, c_size_t, POINTER(c_char), c_size_t,
                                        POINTER(c_size_t), POINTER(c_uint32), c_void_p]),
    "elasticache_server_for_key": (c_uint32, [Handle, c_char_p, c_size_t, POINTER(c_char), c_size_t,
                                              POINTER(c_size_t)]),
    "elasticache_get_multi": (c_uint32, [Handle, POINTER(c_char_p), POINTER(c_size_t), c_size_t, c_bool,
                                         POINTER(Handle)]),
    "elasticache_multi_export": (c_uint32, [Handle, c_size_t, POINTER(c_uint32), POINTER(c_void_p),
                                            POINTER(c_size_t), c_void_p, c_void_p]),
    "elasticache_multi_free": (None, [Handle]),
}
for name, (restype, argtypes) in SIGNATURES.items():
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = restype, argtypes


def check(rc, what):
    if rc != 0:
        buf = ctypes.create_string_buffer(512)
        lib.elasticache_last_error_message(buf, 512, None)
        raise RuntimeError(f"{what}: status {rc}: {buf.value.decode()}")


def main(endpoint):
    ep = endpoint.encode()
    cfg = Handle()
    check(lib.elasticache_discover(ep, None, byref(cfg)), "discover")
    host, ip, port = c_char_p(), c_char_p(), c_uint16()
    for i in range(lib.elasticache_config_node_count(cfg)):
        check(lib.elasticache_config_node(cfg, i, byref(host), byref(ip), byref(port)), "config_node")
        print(f"node {host.value.decode()} {ip.value.decode()}:{port.value}")
    lib.elasticache_config_free(cfg)

    client = Handle()
    check(lib.elasticache_client_new(ep, None, byref(client)), "client_new")
    try:
        keys = [f"ctypes:{i}".encode() for i in range(6)]
        for k in keys:
            v = b"value of " + k
            check(lib.elasticache_set(client, k, len(k), v, len(v), 0, 60), "set")

        buf, n, flags = ctypes.create_string_buffer(1024), c_size_t(), c_uint32()
        where = ctypes.create_string_buffer(128)
        for k in keys:
            check(lib.elasticache_get_into(client, k, len(k), buf, 1024, byref(n), byref(flags), None), "get")
            check(lib.elasticache_server_for_key(client, k, len(k), where, 128, None), "server_for_key")
            print(f"{k.decode():10} on {where.value.decode():22} = {buf.raw[:n.value].decode()}")

        # One foreign call for the whole batch, one to read every entry out.
        count = len(keys)
        key_ptrs = (c_char_p * count)(*keys)
        lens = (c_size_t * count)(*map(len, keys))
        multi = Handle()
        check(lib.elasticache_get_multi(client, key_ptrs, lens, count, False, byref(multi)), "get_multi")
        try:
            statuses, data, dlens = (c_uint32 * count)(), (c_void_p * count)(), (c_size_t * count)()
            check(lib.elasticache_multi_export(multi, count, statuses, data, dlens, None, None),
                  "multi_export")
            # The values point into `multi`: copy them out before freeing it.
            values = [ctypes.string_at(data[i], dlens[i]) if statuses[i] == 0 else None for i in range(count)]
        finally:
            lib.elasticache_multi_free(multi)
    finally:
        lib.elasticache_client_free(client)
    hits = sum(1 for k, v in zip(keys, values) if v == b"value of " + k)
    print(f"get_multi: {hits}/{count} hits")
    return 0 if hits == count else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
