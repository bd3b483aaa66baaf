"""The C declarations of include/elasticache.h, as cffi reads them.

One text for both bindings: cffi's ABI mode parses it at import time, and the
wheel build (_cffi_build.py) compiles it in API mode against the header itself.
Byte buffers are declared `char *` where the header says `uint8_t *`: the same
ABI, and cffi then accepts `bytes` directly. tests/test_native.py checks every
declaration against the header, both ways.
"""

CDEF = """
typedef uint32_t elasticache_status;
typedef struct elasticache_client elasticache_client;
typedef struct elasticache_value elasticache_value;
typedef struct elasticache_options elasticache_options;
typedef struct elasticache_multi elasticache_multi;
typedef struct elasticache_stats elasticache_stats;
typedef struct elasticache_config elasticache_config;
typedef struct elasticache_ring elasticache_ring;

const char *elasticache_status_str(uint32_t status);
elasticache_status elasticache_last_error_message(char *buf, size_t len, size_t *out_n);
const char *elasticache_version(void);
uint64_t elasticache_fork_generation(void);

elasticache_status elasticache_options_new(elasticache_options **out);
elasticache_status elasticache_options_set(elasticache_options *opts, const char *name, const char *value);
void elasticache_options_free(elasticache_options *opts);

elasticache_status elasticache_client_new(const char *endpoint, const elasticache_options *options,
                                          elasticache_client **out);
elasticache_status elasticache_client_new_servers(const char *const *servers, size_t n, const uint32_t *weights,
                                                  const elasticache_options *options, elasticache_client **out);
void elasticache_client_free(elasticache_client *client);
elasticache_status elasticache_client_refresh(const elasticache_client *client);

elasticache_status elasticache_get(const elasticache_client *client, const char *key, size_t key_len,
                                   elasticache_value **out);
elasticache_status elasticache_gets(const elasticache_client *client, const char *key, size_t key_len,
                                    elasticache_value **out);
elasticache_status elasticache_get_into(const elasticache_client *client, const char *key, size_t key_len,
                                        char *buf, size_t cap, size_t *len, uint32_t *flags, uint64_t *cas);
const char *elasticache_value_data(const elasticache_value *value);
size_t elasticache_value_len(const elasticache_value *value);
uint32_t elasticache_value_flags(const elasticache_value *value);
uint64_t elasticache_value_cas(const elasticache_value *value);
void elasticache_value_free(elasticache_value *value);

elasticache_status elasticache_set(const elasticache_client *client, const char *key, size_t key_len,
                                   const char *value, size_t value_len, uint32_t flags, int64_t exptime);
elasticache_status elasticache_add(const elasticache_client *client, const char *key, size_t key_len,
                                   const char *value, size_t value_len, uint32_t flags, int64_t exptime);
elasticache_status elasticache_replace(const elasticache_client *client, const char *key, size_t key_len,
                                       const char *value, size_t value_len, uint32_t flags, int64_t exptime);
elasticache_status elasticache_append(const elasticache_client *client, const char *key, size_t key_len,
                                      const char *value, size_t value_len, uint32_t flags, int64_t exptime);
elasticache_status elasticache_prepend(const elasticache_client *client, const char *key, size_t key_len,
                                       const char *value, size_t value_len, uint32_t flags, int64_t exptime);
elasticache_status elasticache_cas(const elasticache_client *client, const char *key, size_t key_len,
                                   const char *value, size_t value_len, uint32_t flags, int64_t exptime,
                                   uint64_t cas);
elasticache_status elasticache_delete(const elasticache_client *client, const char *key, size_t key_len);
elasticache_status elasticache_incr(const elasticache_client *client, const char *key, size_t key_len,
                                    uint64_t delta, uint64_t *new_value);
elasticache_status elasticache_decr(const elasticache_client *client, const char *key, size_t key_len,
                                    uint64_t delta, uint64_t *new_value);
elasticache_status elasticache_touch(const elasticache_client *client, const char *key, size_t key_len,
                                     int64_t exptime);
elasticache_status elasticache_flush_all(const elasticache_client *client, uint32_t delay);
elasticache_status elasticache_server_for_key(const elasticache_client *client, const char *key, size_t key_len,
                                              char *buf, size_t len, size_t *out_n);
elasticache_status elasticache_server_index_for_key(const elasticache_client *client, const char *key, size_t key_len,
                                                    size_t *index);
elasticache_status elasticache_client_servers(const elasticache_client *client, char *buf, size_t len, size_t *out_n);
elasticache_status elasticache_client_disconnect_all(const elasticache_client *client);

elasticache_status elasticache_get_multi(const elasticache_client *client, const char *const *keys,
                                         const size_t *key_lens, size_t n, bool with_cas,
                                         elasticache_multi **out);
size_t elasticache_multi_count(const elasticache_multi *multi);
elasticache_status elasticache_multi_export(const elasticache_multi *multi, size_t n, uint32_t *statuses,
                                            const char **data, size_t *lens, uint32_t *flags, uint64_t *cas);
elasticache_status elasticache_multi_arena(const elasticache_multi *multi, const char **data, size_t *len);
const char *elasticache_multi_error(const elasticache_multi *multi, size_t i);
elasticache_status elasticache_multi_item(const elasticache_multi *multi, size_t i, const char **data, size_t *len,
                                          uint32_t *flags, uint64_t *cas);
void elasticache_multi_free(elasticache_multi *multi);
elasticache_status elasticache_set_multi(const elasticache_client *client, const char *const *keys,
                                         const size_t *key_lens, const char *const *values,
                                         const size_t *value_lens, const uint32_t *flags, int64_t exptime,
                                         bool add, size_t n, uint32_t *statuses);
elasticache_status elasticache_delete_multi(const elasticache_client *client, const char *const *keys,
                                            const size_t *key_lens, size_t n, uint32_t *statuses);

elasticache_status elasticache_client_stats(const elasticache_client *client, const char *arg,
                                            elasticache_stats **out);
elasticache_status elasticache_client_versions(const elasticache_client *client, elasticache_stats **out);
size_t elasticache_stats_node_count(const elasticache_stats *stats);
elasticache_status elasticache_stats_node(const elasticache_stats *stats, size_t i, const char **server,
                                          uint32_t *status, size_t *entries);
const char *elasticache_stats_error(const elasticache_stats *stats, size_t i);
elasticache_status elasticache_stats_entry(const elasticache_stats *stats, size_t i, size_t j,
                                           const char **name, const char **value);
void elasticache_stats_free(elasticache_stats *stats);

elasticache_status elasticache_discover(const char *endpoint, const elasticache_options *options,
                                        elasticache_config **out);
elasticache_status elasticache_refresh(const char *endpoint, const elasticache_options *options,
                                       elasticache_config **out);
uint64_t elasticache_config_version(const elasticache_config *config);
bool elasticache_config_is_serverless(const elasticache_config *config);
size_t elasticache_config_node_count(const elasticache_config *config);
elasticache_status elasticache_config_node(const elasticache_config *config, size_t index, const char **host,
                                           const char **ip, uint16_t *port);
void elasticache_config_free(elasticache_config *config);

elasticache_status elasticache_ring_new(const char *const *servers, size_t n, const uint32_t *weights,
                                        const elasticache_options *opts, elasticache_ring **out);
elasticache_status elasticache_ring_lookup(const elasticache_ring *ring, const char *key, size_t key_len,
                                           size_t *index);
elasticache_status elasticache_ring_server(const elasticache_ring *ring, size_t index, const char **host_port);
size_t elasticache_ring_server_count(const elasticache_ring *ring);
void elasticache_ring_free(elasticache_ring *ring);

typedef struct elasticache_event {
    uint32_t kind;
    const char *node;
    const char *endpoint;
    uint64_t config_version;
    uint32_t nodes_before;
    uint32_t nodes_after;
    const char *reason;
} elasticache_event;
/* (a space before the ";": not a function declaration, for tests/test_native.py) */
typedef void (*elasticache_event_fn)(const elasticache_event *event, void *user_data) ;
elasticache_status elasticache_set_event_callback(elasticache_event_fn callback, void *user_data);
const char *elasticache_event_kind_str(uint32_t kind);

typedef struct elasticache_metrics elasticache_metrics;
typedef struct elasticache_node_metrics {
    const char *node;
    uint64_t requests;
    uint64_t hits;
    uint64_t misses;
    uint64_t errors;
    uint64_t timeouts;
    uint64_t ejections;
    uint64_t open_connections;
    bool ejected;
    uint64_t latency_sum_us;
    uint64_t p50_us;
    uint64_t p99_us;
} elasticache_node_metrics;
elasticache_status elasticache_client_metrics(const elasticache_client *client, elasticache_metrics **out);
size_t elasticache_metrics_node_count(const elasticache_metrics *metrics);
elasticache_status elasticache_metrics_node(const elasticache_metrics *metrics, size_t i, elasticache_node_metrics *out);
size_t elasticache_metrics_bucket_count(void);
elasticache_status elasticache_metrics_bucket(const elasticache_metrics *metrics, size_t i, size_t b, uint64_t *upper_us,
                                              uint64_t *count);
void elasticache_metrics_free(elasticache_metrics *metrics);

typedef struct elasticache_lease elasticache_lease;
typedef uint32_t elasticache_lease_state;
elasticache_status elasticache_get_or_lease(const elasticache_client *client, const char *key, size_t key_len,
                                            uint32_t lease_ttl, uint32_t recache_before,
                                            elasticache_lease **out);
elasticache_status elasticache_invalidate(const elasticache_client *client, const char *key, size_t key_len,
                                          uint32_t ttl);
elasticache_lease_state elasticache_lease_get_state(const elasticache_lease *lease);
bool elasticache_lease_has_value(const elasticache_lease *lease);
const char *elasticache_lease_data(const elasticache_lease *lease);
size_t elasticache_lease_len(const elasticache_lease *lease);
uint32_t elasticache_lease_flags(const elasticache_lease *lease);
uint64_t elasticache_lease_cas(const elasticache_lease *lease);
bool elasticache_lease_stale(const elasticache_lease *lease);
bool elasticache_lease_protected(const elasticache_lease *lease);
int64_t elasticache_lease_ttl(const elasticache_lease *lease);
void elasticache_lease_free(elasticache_lease *lease);

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
elasticache_status elasticache_get_multi_packed(const elasticache_client *client, const char *prefix, size_t prefix_len,
                                                const char *keys, size_t keys_len, size_t n,
                                                elasticache_packed **out);
const char *elasticache_packed_error(const elasticache_packed *packed, size_t i);
void elasticache_packed_free(elasticache_packed *packed);
elasticache_status elasticache_set_multi_packed(const elasticache_client *client, const char *prefix, size_t prefix_len,
                                                const char *keys, size_t keys_len, const char *values,
                                                size_t values_len, const size_t *value_lens, const uint32_t *flags,
                                                uint32_t common_flags, int64_t exptime, bool add, size_t n,
                                                uint32_t *statuses);
elasticache_status elasticache_delete_multi_packed(const elasticache_client *client, const char *prefix,
                                                   size_t prefix_len, const char *keys, size_t keys_len, size_t n,
                                                   uint32_t *statuses);
elasticache_status elasticache_get_or_lease_multi(const elasticache_client *client, const char *const *keys,
                                                  const size_t *key_lens, size_t n, uint32_t lease_ttl,
                                                  uint32_t recache_before, elasticache_lease **leases,
                                                  uint32_t *statuses);
"""
