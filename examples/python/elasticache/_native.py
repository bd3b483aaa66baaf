"""Loading libelasticache and declaring the C functions the binding calls.

cffi in ABI mode: no compiler at install time, the GIL is released around
every foreign call, and a call costs about 0.45 us here against 1.1-1.3 us for
ctypes (bench/bench_ffi.py). Byte buffers are declared `char *` where the
header says `uint8_t *`: the same ABI, and cffi then accepts `bytes` directly.
tests/test_native.py checks these declarations against include/elasticache.h.
"""

import os

import cffi

CDEF = """
typedef struct elasticache_client elasticache_client;
typedef struct elasticache_value elasticache_value;
typedef struct elasticache_options elasticache_options;
typedef struct elasticache_multi elasticache_multi;
typedef struct elasticache_stats elasticache_stats;
typedef struct elasticache_config elasticache_config;

const char *elasticache_status_str(uint32_t status);
uint32_t elasticache_last_error_message(char *buf, size_t len, size_t *out_n);
const char *elasticache_version(void);
uint64_t elasticache_fork_generation(void);

uint32_t elasticache_options_new(elasticache_options **out);
uint32_t elasticache_options_set(elasticache_options *opts, const char *name, const char *value);
void elasticache_options_free(elasticache_options *opts);

uint32_t elasticache_client_new(const char *endpoint, const elasticache_options *options,
                                elasticache_client **out);
uint32_t elasticache_client_new_servers(const char *const *servers, size_t n, const uint32_t *weights,
                                        const elasticache_options *options, elasticache_client **out);
void elasticache_client_free(elasticache_client *client);
uint32_t elasticache_client_refresh(const elasticache_client *client);

uint32_t elasticache_get(const elasticache_client *client, const char *key, size_t key_len,
                         elasticache_value **out);
uint32_t elasticache_gets(const elasticache_client *client, const char *key, size_t key_len,
                          elasticache_value **out);
uint32_t elasticache_get_into(const elasticache_client *client, const char *key, size_t key_len,
                              char *buf, size_t cap, size_t *len, uint32_t *flags, uint64_t *cas);
const char *elasticache_value_data(const elasticache_value *value);
size_t elasticache_value_len(const elasticache_value *value);
uint32_t elasticache_value_flags(const elasticache_value *value);
uint64_t elasticache_value_cas(const elasticache_value *value);
void elasticache_value_free(elasticache_value *value);

uint32_t elasticache_set(const elasticache_client *client, const char *key, size_t key_len,
                         const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_add(const elasticache_client *client, const char *key, size_t key_len,
                         const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_replace(const elasticache_client *client, const char *key, size_t key_len,
                             const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_append(const elasticache_client *client, const char *key, size_t key_len,
                            const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_prepend(const elasticache_client *client, const char *key, size_t key_len,
                             const char *value, size_t value_len, uint32_t flags, int64_t exptime);
uint32_t elasticache_cas(const elasticache_client *client, const char *key, size_t key_len,
                         const char *value, size_t value_len, uint32_t flags, int64_t exptime,
                         uint64_t cas);
uint32_t elasticache_delete(const elasticache_client *client, const char *key, size_t key_len);
uint32_t elasticache_incr(const elasticache_client *client, const char *key, size_t key_len,
                          uint64_t delta, uint64_t *new_value);
uint32_t elasticache_decr(const elasticache_client *client, const char *key, size_t key_len,
                          uint64_t delta, uint64_t *new_value);
uint32_t elasticache_touch(const elasticache_client *client, const char *key, size_t key_len,
                           int64_t exptime);
uint32_t elasticache_flush_all(const elasticache_client *client, uint32_t delay);
uint32_t elasticache_server_for_key(const elasticache_client *client, const char *key, size_t key_len,
                                    char *buf, size_t len, size_t *out_n);
uint32_t elasticache_server_index_for_key(const elasticache_client *client, const char *key, size_t key_len,
                                          size_t *index);
uint32_t elasticache_client_disconnect_all(const elasticache_client *client);

uint32_t elasticache_get_multi(const elasticache_client *client, const char *const *keys,
                               const size_t *key_lens, size_t n, bool with_cas,
                               elasticache_multi **out);
size_t elasticache_multi_count(const elasticache_multi *multi);
uint32_t elasticache_multi_export(const elasticache_multi *multi, size_t n, uint32_t *statuses,
                                  const char **data, size_t *lens, uint32_t *flags, uint64_t *cas);
uint32_t elasticache_multi_arena(const elasticache_multi *multi, const char **data, size_t *len);
const char *elasticache_multi_error(const elasticache_multi *multi, size_t i);
void elasticache_multi_free(elasticache_multi *multi);
uint32_t elasticache_set_multi(const elasticache_client *client, const char *const *keys,
                               const size_t *key_lens, const char *const *values,
                               const size_t *value_lens, const uint32_t *flags, int64_t exptime,
                               bool add, size_t n, uint32_t *statuses);
uint32_t elasticache_delete_multi(const elasticache_client *client, const char *const *keys,
                                  const size_t *key_lens, size_t n, uint32_t *statuses);

typedef struct {
    const char *data;
    size_t len;
    size_t n;
    size_t hits;
    size_t errors;
    uint32_t flags;
    size_t values_offset;
    size_t flags_offset;
    size_t format_offset;
} elasticache_packed;
uint32_t elasticache_get_multi_packed(const elasticache_client *client, const char *prefix, size_t prefix_len,
                                      const char *keys, size_t keys_len, size_t n,
                                      elasticache_packed **out);
const char *elasticache_packed_error(const elasticache_packed *packed, size_t i);
void elasticache_packed_free(elasticache_packed *packed);
uint32_t elasticache_set_multi_packed(const elasticache_client *client, const char *prefix, size_t prefix_len,
                                      const char *keys, size_t keys_len, const char *values,
                                      size_t values_len, const size_t *value_lens, const uint32_t *flags,
                                      uint32_t common_flags, int64_t exptime, bool add, size_t n,
                                      uint32_t *statuses);
uint32_t elasticache_delete_multi_packed(const elasticache_client *client, const char *prefix,
                                         size_t prefix_len, const char *keys, size_t keys_len, size_t n,
                                         uint32_t *statuses);

uint32_t elasticache_client_stats(const elasticache_client *client, const char *arg,
                                  elasticache_stats **out);
uint32_t elasticache_client_versions(const elasticache_client *client, elasticache_stats **out);
size_t elasticache_stats_node_count(const elasticache_stats *stats);
uint32_t elasticache_stats_node(const elasticache_stats *stats, size_t i, const char **server,
                                uint32_t *status, size_t *entries);
uint32_t elasticache_stats_entry(const elasticache_stats *stats, size_t i, size_t j,
                                 const char **name, const char **value);
void elasticache_stats_free(elasticache_stats *stats);

uint32_t elasticache_discover(const char *endpoint, const elasticache_options *options,
                              elasticache_config **out);
uint32_t elasticache_refresh(const char *endpoint, const elasticache_options *options,
                             elasticache_config **out);
uint64_t elasticache_config_version(const elasticache_config *config);
size_t elasticache_config_node_count(const elasticache_config *config);
uint32_t elasticache_config_node(const elasticache_config *config, size_t index, const char **host,
                                 const char **ip, uint16_t *port);
void elasticache_config_free(elasticache_config *config);
"""

# Status codes (enum elasticache_status; fixed numbers, part of the ABI).
OK = 0
NOT_FOUND = 1
NOT_STORED = 2
EXISTS = 3
BAD_KEY = 4
TOO_BIG = 5
TIMEOUT = 6
CONNECTION = 7
PROTOCOL = 8
SERVER_ERROR = 9
CLIENT_ERROR = 10
DISCOVERY = 11
NO_SERVERS = 12
INVALID_ARGUMENT = 13
PANIC = 14
HOST_LOOKUP = 15
TLS = 16
BUFFER_TOO_SMALL = 17
SERVER_DEAD = 18

LIBRARY_NAME = "libelasticache.so"

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _candidates():
    """(path, why) pairs in the order they are tried."""
    env = os.environ.get("ELASTICACHE_LIBRARY")
    if env:
        path = os.path.join(env, LIBRARY_NAME) if os.path.isdir(env) else env
        # An explicit choice is final: falling back would hide a typo.
        return [(path, "ELASTICACHE_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    # Running from the source tree: examples/python/elasticache -> repo root.
    in_tree = os.path.normpath(os.path.join(here, "..", "..", "..", "target", "release", LIBRARY_NAME))
    out.append((in_tree, "the repository's target/release"))
    try:
        from ._build_paths import REPO_LIBRARY  # written by setup.py at install time
    except ImportError:
        REPO_LIBRARY = None
    if REPO_LIBRARY and REPO_LIBRARY != in_tree:
        out.append((REPO_LIBRARY, "the repository's target/release (recorded at install)"))
    out.append((LIBRARY_NAME, "the system library path"))
    return out


def _load():
    tried = []
    for path, why in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"  {path} ({why}): no such file")
            continue
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            tried.append(f"  {path} ({why}): {e}")
    raise ImportError(
        "elasticache: cannot load the C library libelasticache.so. Tried:\n"
        + "\n".join(tried)
        + "\nBuild it with `cargo build --release` in the repository, or set "
        "ELASTICACHE_LIBRARY to the path of libelasticache.so."
    )


lib, library_path = _load()
NULL = ffi.NULL


def last_error_message():
    """This thread's last error message from the library ('' when none)."""
    buf = ffi.new("char[]", 512)
    n = ffi.new("size_t *")
    rc = lib.elasticache_last_error_message(buf, 512, n)
    if rc == BUFFER_TOO_SMALL:
        buf = ffi.new("char[]", n[0] + 1)
        lib.elasticache_last_error_message(buf, n[0] + 1, n)
    return ffi.string(buf).decode("utf-8", "replace")


def status_str(status):
    return ffi.string(lib.elasticache_status_str(status)).decode()


def version():
    return ffi.string(lib.elasticache_version()).decode()
