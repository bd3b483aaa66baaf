/*
 * The event callback and the per-node metrics from C, against a real
 * memcached in $ELASTICACHE_TEST_SERVER and a port nobody listens on.
 * scripts/test_c.sh also runs it under valgrind: the strings handed to the
 * callback must be valid during the call and nothing may leak.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

struct seen {
    uint32_t kind;
    char node[128];
    char endpoint[128];
    char reason[256];
    uint32_t nodes_after;
};
static struct seen events[64];
static int n_events = 0;
static int tag = 0;

static void on_event(const elasticache_event *ev, void *user_data) {
    if (user_data != &tag || n_events >= 64) return;
    struct seen *s = &events[n_events++];
    s->kind = ev->kind;
    snprintf(s->node, sizeof s->node, "%s", ev->node);
    snprintf(s->endpoint, sizeof s->endpoint, "%s", ev->endpoint);
    snprintf(s->reason, sizeof s->reason, "%s", ev->reason);
    s->nodes_after = ev->nodes_after;
}

static const struct seen *find(uint32_t kind, const char *node) {
    for (int i = 0; i < n_events; i++)
        if (events[i].kind == kind && (!node || strcmp(events[i].node, node) == 0)) return &events[i];
    return NULL;
}

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

int main(void) {
    const char *server = test_server();
    CHECK(strcmp(elasticache_event_kind_str(ELASTICACHE_EVENT_KIND_NODE_EJECTED), "node_ejected") == 0);
    CHECK(strcmp(elasticache_event_kind_str(999), "unknown") == 0);
    CHECK(elasticache_set_event_callback(on_event, &tag) == ELASTICACHE_STATUS_OK);

    /* Discovery: plain memcached as the endpoint (ignore_cluster_errors) is one node. */
    elasticache_options *opts = NULL;
    CHECK(elasticache_options_new(&opts) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "ignore_cluster_errors", "true") == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "connect_timeout", "500") == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "io_timeout", "500") == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "failure_limit", "1") == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_options_set(opts, "retry_timeout", "60") == ELASTICACHE_STATUS_OK);
    elasticache_client *ec = NULL;
    CHECK(elasticache_client_new(server, opts, &ec) == ELASTICACHE_STATUS_OK);
    const struct seen *d = find(ELASTICACHE_EVENT_KIND_DISCOVERY_DONE, NULL);
    CHECK(d != NULL);
    CHECK(d && strcmp(d->endpoint, server) == 0 && d->nodes_after == 1);
    elasticache_client_free(ec);

    /* A dead node: its first failure ejects it (failure_limit 1). */
    int port = dead_port();
    CHECK(port > 0);
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", port);
    const char *servers[] = {server, dead};
    elasticache_client *c = NULL;
    CHECK(elasticache_client_new_servers(servers, 2, NULL, opts, &c) == ELASTICACHE_STATUS_OK);
    char key[32];
    int on_live = 0, on_dead = 0;
    for (int i = 0; i < 200 && (on_live < 3 || !on_dead); i++) {
        snprintf(key, sizeof key, "ev:%d", i);
        size_t idx = 9;
        CHECK(elasticache_server_index_for_key(c, K(key), &idx) == ELASTICACHE_STATUS_OK);
        if (idx == 0 && on_live < 3) {
            CHECK(elasticache_set(c, K(key), K("v"), 0, 0) == ELASTICACHE_STATUS_OK);
            elasticache_value *v = NULL;
            CHECK(elasticache_get(c, K(key), &v) == ELASTICACHE_STATUS_OK);
            elasticache_value_free(v);
            on_live++;
        } else if (idx == 1 && !on_dead) {
            elasticache_value *v = NULL;
            CHECK(elasticache_get(c, K(key), &v) == ELASTICACHE_STATUS_CONNECTION);
            on_dead = 1;
        }
    }
    CHECK(on_live == 3 && on_dead == 1);
    const struct seen *e = find(ELASTICACHE_EVENT_KIND_NODE_EJECTED, dead);
    CHECK(e != NULL);
    CHECK(e && strlen(e->reason) > 0);

    /* Metrics: 6 requests (3 hits) on the live node; the dead one ejected. */
    elasticache_metrics *m = NULL;
    CHECK(elasticache_client_metrics(c, &m) == ELASTICACHE_STATUS_OK);
    CHECK(elasticache_metrics_node_count(m) == 2);
    int found_live = 0, found_dead = 0;
    for (size_t i = 0; i < elasticache_metrics_node_count(m); i++) {
        elasticache_node_metrics nm;
        CHECK(elasticache_metrics_node(m, i, &nm) == ELASTICACHE_STATUS_OK);
        if (strcmp(nm.node, server) == 0) {
            found_live = 1;
            CHECK(nm.requests == 6 && nm.hits == 3 && nm.misses == 0 && nm.errors == 0 && !nm.ejected);
            CHECK(nm.open_connections >= 1);
            CHECK(nm.p50_us > 0 && nm.p99_us >= nm.p50_us);
            uint64_t total = 0, upper = 0, count = 0;
            for (size_t b = 0; b < elasticache_metrics_bucket_count(); b++) {
                CHECK(elasticache_metrics_bucket(m, i, b, &upper, &count) == ELASTICACHE_STATUS_OK);
                total += count;
            }
            CHECK(total == 6);
            CHECK(upper == UINT64_MAX);
        } else if (strcmp(nm.node, dead) == 0) {
            found_dead = 1;
            CHECK(nm.ejected && nm.ejections == 1 && nm.errors == 1 && nm.requests == 1);
        }
    }
    CHECK(found_live && found_dead);
    elasticache_node_metrics nm;
    CHECK(elasticache_metrics_node(m, 2, &nm) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_metrics_bucket(m, 0, elasticache_metrics_bucket_count(), NULL, NULL) ==
          ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_metrics_node(NULL, 0, &nm) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_client_metrics(NULL, &m) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    CHECK(elasticache_client_metrics(c, NULL) == ELASTICACHE_STATUS_INVALID_ARGUMENT);
    elasticache_metrics_free(m);
    elasticache_metrics_free(NULL);

    /* Removed: no more events. */
    CHECK(elasticache_set_event_callback(NULL, NULL) == ELASTICACHE_STATUS_OK);
    int before = n_events;
    elasticache_client *c2 = NULL;
    CHECK(elasticache_client_new(server, opts, &c2) == ELASTICACHE_STATUS_OK);
    CHECK(n_events == before);
    elasticache_client_free(c2);

    elasticache_client_free(c);
    elasticache_options_free(opts);
    return checks_done("events");
}
