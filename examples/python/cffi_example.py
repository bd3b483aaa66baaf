#!/usr/bin/env python3
"""Calling libelasticache's C API directly from Python with cffi (ABI mode:
no compiler needed), without the elasticache package.

    cargo build --release
    python3 examples/python/cffi_example.py mycluster.abc123.cfg.use1.cache.amazonaws.com:11211
"""

import os
import sys

import cffi

ffi = cffi.FFI()
# The declarations this example uses, copied from include/elasticache.h
# (uint8_t* written as char* so that Python bytes can be passed directly).
ffi.cdef("""
typedef struct elasticache_client elasticache_client;
typedef struct elasticache_multi elasticache_multi;
typedef struct elasticache_config elasticache_config;
uint32_t elasticache_last_error_message(char *buf, size_t len, size_t *out_n);
uint32_t elasticache_discover(const char *endpoint, const void *options, elasticache_config **out);
size_t elasticache_config_node_count(const elasticache_config *config);
uint32_t elasticache_config_node(const elasticache_config *config, size_t index, const char **host,
                                 const char **ip, uint16_t *port);
void elasticache_config_free(elasticache_config *config);
uint32_t elasticache_client_new(const char *endpoint, const void *options, elasticache_client **out);
void elasticache_client_free(elasticache_client *client);
uint32_t elasticache_set(const elasticache_client *client, const char *key, size_t key_len,
                         const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_get_into(const elasticache_client *client, const char *key, size_t key_len,
                              char *buf, size_t cap, size_t *len, uint32_t *flags, uint64_t *cas);
uint32_t elasticache_server_for_key(const elasticache_client *client, const char *key, size_t key_len,
                                    char *buf, size_t len, size_t *out_n);
uint32_t elasticache_get_multi(const elasticache_client *client, const char *const *keys,
                               const size_t *key_lens, size_t n, bool with_cas, elasticache_multi **out);
uint32_t elasticache_multi_export(const elasticache_multi *multi, size_t n, uint32_t *statuses,
                                  const char **data, size_t *lens, uint32_t *flags, uint64_t *cas);
void elasticache_multi_free(elasticache_multi *multi);
""")

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.environ.get("ELASTICACHE_LIBRARY") or os.path.join(HERE, "..", "..", "target", "release",
                                                             "libelasticache.so")
lib = ffi.dlopen(LIB)


def check(rc, what):
    if rc != 0:
        buf = ffi.new("char[]", 512)
        lib.elasticache_last_error_message(buf, 512, ffi.NULL)
        raise RuntimeError(f"{what}: status {rc}: {ffi.string(buf).decode()}")


def main(endpoint):
    ep = endpoint.encode()
    cfg = ffi.new("elasticache_config **")
    check(lib.elasticache_discover(ep, ffi.NULL, cfg), "discover")
    host, ip, port = ffi.new("char **"), ffi.new("char **"), ffi.new("uint16_t *")
    for i in range(lib.elasticache_config_node_count(cfg[0])):
        lib.elasticache_config_node(cfg[0], i, host, ip, port)
        print(f"node {ffi.string(host[0]).decode()} {ffi.string(ip[0]).decode()}:{port[0]}")
    lib.elasticache_config_free(cfg[0])

    out = ffi.new("elasticache_client **")
    check(lib.elasticache_client_new(ep, ffi.NULL, out), "client_new")
    client = ffi.gc(out[0], lib.elasticache_client_free)

    keys = [f"cffi:{i}".encode() for i in range(6)]
    for k in keys:
        check(lib.elasticache_set(client, k, len(k), b"value of " + k, 9 + len(k), 0, 60), "set")

    buf, n, flags = ffi.new("char[]", 1024), ffi.new("size_t *"), ffi.new("uint32_t *")
    where = ffi.new("char[]", 128)
    for k in keys:
        check(lib.elasticache_get_into(client, k, len(k), buf, 1024, n, flags, ffi.NULL), "get")
        check(lib.elasticache_server_for_key(client, k, len(k), where, 128, ffi.NULL), "server_for_key")
        print(f"{k.decode():8} on {ffi.string(where).decode():22} = {ffi.unpack(buf, n[0]).decode()}")

    # One foreign call for the whole batch, one to read every entry out.
    key_ptrs = ffi.new("char *[]", [ffi.from_buffer(k) for k in keys])
    lens = ffi.new("size_t[]", [len(k) for k in keys])
    multi = ffi.new("elasticache_multi **")
    check(lib.elasticache_get_multi(client, key_ptrs, lens, len(keys), False, multi), "get_multi")
    statuses = ffi.new("uint32_t[]", len(keys))
    data, dlens = ffi.new("char *[]", len(keys)), ffi.new("size_t[]", len(keys))
    check(lib.elasticache_multi_export(multi[0], len(keys), statuses, data, dlens, ffi.NULL, ffi.NULL),
          "multi_export")
    hits = sum(1 for i in range(len(keys)) if statuses[i] == 0)
    lib.elasticache_multi_free(multi[0])
    print(f"get_multi: {hits}/{len(keys)} hits")
    return 0 if hits == len(keys) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
