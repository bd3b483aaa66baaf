/*
 * The client's C API end to end against a real memcached whose address is in
 * $ELASTICACHE_TEST_SERVER (scripts/test_c.sh starts it). Run once under
 * valgrind as well: every object handed out is freed, so no leak may remain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(void) {
    const char *server = test_server();
    elasticache_options *opts = NULL;
    CHECK(elasticache_options_new(&opts) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "io_timeout", "2000") == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "no_such_option", "1") == ELASTICACHE_STATUS_INVALID_ARGUMENT);

    elasticache_client *c = NULL;
    const char *servers[] = {server};
    CHECK(elasticache_client_new_servers(servers, 1, NULL, opts, &c) == ELASTICACHE_STATUS_OK);
    CHECK(c != NULL);
    CHECK(elasticache_client_new_servers(servers, 0, NULL, opts, &c) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_flush_all(c, 0) == ELASTICACHE_STATUS_OK);

    /* set / get / flags / miss */
    CHECK(elasticache_set(c, K("k1"), K("hello"), 42, 0) == ELASTICACHE_STATUS_OK);
    elasticache_value *v = NULL;
    CHECK(elasticache_get(c, K("k1"), &v) == ELASTICACHE_STATUS_OK);
    CHECK(v && elasticache_value_len(v) == 5 && memcmp(elasticache_value_data(v), "hello", 5) == 0);
    CHECK(elasticache_value_flags(v) == 42);
    elasticache_value_free(v);
    v = NULL;
    CHECK(elasticache_get(c, K("missing"), &v) == ELASTICACHE_STATUS_NOT_FOUND);
    CHECK(v == NULL);

    /* get_into: fits, too small, miss */
    uint8_t buf[8];
    size_t len = 0;
    uint32_t flags = 0;
    CHECK(elasticache_get_into(c, K("k1"), buf, sizeof buf, &len, &flags, NULL) == ELASTICACHE_STATUS_OK);
    CHECK(len == 5 && flags == 42 && memcmp(buf, "hello", 5) == 0);
    CHECK(elasticache_get_into(c, K("k1"), buf, 2, &len, NULL, NULL) == ELASTICACHE_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 5);

    /* binary value with CRLF inside, empty value */
    const uint8_t bin[] = {'a', '\r', '\n', 0, 'E', 'N', 'D', '\r', '\n', 0xff};
    CHECK(elasticache_set(c, K("bin"), bin, sizeof bin, 0, 0) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_get(c, K("bin"), &v) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_value_len(v) == sizeof bin && memcmp(elasticache_value_data(v), bin, sizeof bin) == 0);
    elasticache_value_free(v);
    CHECK(elasticache_set(c, K("empty"), NULL, 0, 0, 0) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_get(c, K("empty"), &v) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_value_len(v) == 0);
    elasticache_value_free(v);

    /* add / replace / append / prepend / cas */
    CHECK(elasticache_add(c, K("k1"), K("x"), 0, 0) == ELASTICACHE_STATUS_NOT_STORED);
    CHECK(elasticache_replace(c, K("nokey"), K("x"), 0, 0) == ELASTICACHE_STATUS_NOT_STORED);
    CHECK(elasticache_append(c, K("k1"), K("!"), 0, 0) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_prepend(c, K("k1"), K(">"), 0, 0) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_gets(c, K("k1"), &v) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_value_len(v) == 7 && memcmp(elasticache_value_data(v), ">hello!", 7) == 0);
    uint64_t cas = elasticache_value_cas(v);
    CHECK(cas != 0);
    elasticache_value_free(v);
    CHECK(elasticache_cas(c, K("k1"), K("new"), 0, 0, cas) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_cas(c, K("k1"), K("newer"), 0, 0, cas) == ELASTICACHE_STATUS_EXISTS);

    /* incr / decr / touch / delete */
    uint64_t n = 0;
    CHECK(elasticache_incr(c, K("ctr"), 1, &n) == ELASTICACHE_STATUS_NOT_FOUND);
    CHECK(elasticache_set(c, K("ctr"), K("10"), 0, 0) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_incr(c, K("ctr"), 5, &n) == ELASTICACHE_STATUS_OK && n == 15);
    CHECK(elasticache_decr(c, K("ctr"), 20, &n) == ELASTICACHE_STATUS_OK && n == 0);
    CHECK(elasticache_incr(c, K("k1"), 1, &n) == ELASTICACHE_STATUS_CLIENT_ERROR);
    CHECK(elasticache_touch(c, K("ctr"), 100) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_touch(c, K("nokey"), 100) == ELASTICACHE_STATUS_NOT_FOUND);
    CHECK(elasticache_delete(c, K("ctr")) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_delete(c, K("ctr")) == ELASTICACHE_STATUS_NOT_FOUND);

    /* bad input never reaches the server, and the client stays usable */
    CHECK(elasticache_set(c, K("bad key"), K("v"), 0, 0) == ELASTICACHE_STATUS_BAD_KEY);
    CHECK(elasticache_get(c, K(""), &v) == ELASTICACHE_STATUS_BAD_KEY);
    CHECK(elasticache_get(c, NULL, 3, &v) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_get(NULL, K("k1"), &v) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_get(c, K("k1"), NULL) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    char big[300];
    memset(big, 'k', sizeof big);
    CHECK(elasticache_get(c, (const uint8_t *)big, 251, &v) == ELASTICACHE_STATUS_BAD_KEY);
    uint8_t *huge = calloc(1, (1 << 20) + 1);
    CHECK(elasticache_set(c, K("huge"), huge, (1 << 20) + 1, 0, 0) == ELASTICACHE_STATUS_TOO_BIG);
    free(huge);
    CHECK(elasticache_get(c, K("k1"), &v) == ELASTICACHE_STATUS_OK);
    elasticache_value_free(v);

    /* multi: set 3, get 4 (one miss, one bad key), delete */
    const uint8_t *keys[] = {(const uint8_t *)"m1", (const uint8_t *)"m2", (const uint8_t *)"m3",
                             (const uint8_t *)"m 4"};
    size_t klens[] = {2, 2, 2, 3};
    const uint8_t *vals[] = {(const uint8_t *)"v1", (const uint8_t *)"v2", (const uint8_t *)"v3"};
    size_t vlens[] = {2, 2, 2};
    uint32_t fl[] = {1, 2, 3};
    uint32_t statuses[4] = {99, 99, 99, 99};
    CHECK(elasticache_set_multi(c, keys, klens, vals, vlens, fl, 0, false, 2, statuses) == ELASTICACHE_STATUS_OK);
    CHECK(statuses[0] == 0 && statuses[1] == 0);
    elasticache_multi *m = NULL;
    CHECK(elasticache_get_multi(c, keys, klens, 4, false, &m) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_multi_count(m) == 4);
    const uint8_t *data = NULL;
    CHECK(elasticache_multi_item(m, 0, &data, &len, &flags, NULL) == ELASTICACHE_STATUS_OK);
    CHECK(len == 2 && memcmp(data, "v1", 2) == 0 && flags == 1);
    CHECK(elasticache_multi_item(m, 2, &data, &len, NULL, NULL) == ELASTICACHE_STATUS_NOT_FOUND);
    CHECK(elasticache_multi_item(m, 3, &data, &len, NULL, NULL) == ELASTICACHE_STATUS_BAD_KEY);
    CHECK(elasticache_multi_error(m, 3) != NULL && elasticache_multi_error(m, 0) == NULL);
    CHECK(elasticache_multi_item(m, 4, &data, &len, NULL, NULL) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    const uint8_t *datas[4];
    size_t lens[4];
    uint32_t sts[4];
    CHECK(elasticache_multi_export(m, 4, sts, datas, lens, NULL, NULL) == ELASTICACHE_STATUS_OK);
    CHECK(sts[0] == 0 && sts[1] == 0 && sts[2] == ELASTICACHE_STATUS_NOT_FOUND && sts[3] == ELASTICACHE_STATUS_BAD_KEY);
    CHECK(lens[1] == 2 && memcmp(datas[1], "v2", 2) == 0 && datas[2] == NULL);
    CHECK(elasticache_multi_export(m, 3, sts, datas, lens, NULL, NULL) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    /* every hit lies in the arena */
    const uint8_t *arena = NULL;
    size_t arena_len = 0;
    CHECK(elasticache_multi_arena(m, &arena, &arena_len) == ELASTICACHE_STATUS_OK);
    CHECK(arena_len == 4);
    CHECK(datas[0] >= arena && datas[0] + lens[0] <= arena + arena_len);
    CHECK(datas[1] >= arena && datas[1] + lens[1] <= arena + arena_len && datas[0] != datas[1]);
    CHECK(elasticache_multi_arena(NULL, &arena, &arena_len) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_multi_arena(m, NULL, &arena_len) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    elasticache_multi_free(m);
    CHECK(elasticache_delete_multi(c, keys, klens, 3, statuses) == ELASTICACHE_STATUS_NOT_FOUND);
    CHECK(statuses[0] == 0 && statuses[1] == 0 && statuses[2] == ELASTICACHE_STATUS_NOT_FOUND);

    /* stats, versions, server_for_key */
    elasticache_stats *s = NULL;
    CHECK(elasticache_client_stats(c, NULL, &s) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_stats_node_count(s) == 1);
    const char *srv = NULL;
    uint32_t node_status = 99;
    size_t entries = 0;
    CHECK(elasticache_stats_node(s, 0, &srv, &node_status, &entries) == ELASTICACHE_STATUS_OK);
    CHECK(node_status == 0 && entries > 10 && strcmp(srv, server) == 0);
    const char *name = NULL, *value = NULL;
    CHECK(elasticache_stats_entry(s, 0, 0, &name, &value) == ELASTICACHE_STATUS_OK && strcmp(name, "pid") == 0);
    elasticache_stats_free(s);
    CHECK(elasticache_client_versions(c, &s) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_stats_entry(s, 0, 0, &name, &value) == ELASTICACHE_STATUS_OK && strcmp(name, "version") == 0);
    elasticache_stats_free(s);
    char where[64];
    size_t wn = 0;
    CHECK(elasticache_server_for_key(c, K("k1"), where, sizeof where, &wn) == ELASTICACHE_STATUS_OK);
    CHECK(strcmp(where, server) == 0 && wn == strlen(server));

    /* every _free accepts NULL */
    elasticache_value_free(NULL);
    elasticache_multi_free(NULL);
    elasticache_stats_free(NULL);
    elasticache_client_free(NULL);
    elasticache_config_free(NULL);
    elasticache_options_free(NULL);

    elasticache_client_free(c);
    elasticache_options_free(opts);
    return checks_done("client_api");
}
