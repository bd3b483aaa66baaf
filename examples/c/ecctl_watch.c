/* ecctl watch ENDPOINT [--interval-ms N] [--ignore-cluster-errors] [TLS flags]
 *
 * Prints the library's events live, one time-stamped line each, until
 * interrupted: discovery done, nodes added / removed / re-addressed, a failed
 * refresh, a node ejected or revived. The node list is refreshed every
 * interval (default 1000 ms), and every node is asked its version as often,
 * so a node that stops answering is ejected (and later revived) as a client
 * under load would see it. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ecctl.h"

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void on_event(const elasticache_event *ev, void *user_data) {
    (void)user_data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%03ldZ %s", when, ts.tv_nsec / 1000000, elasticache_event_kind_str(ev->kind));
    if (*ev->node) printf(" node=%s", ev->node);
    if (*ev->endpoint) printf(" endpoint=%s", ev->endpoint);
    if (ev->kind <= ELASTICACHE_EVENT_KIND_NODE_READDRESSED)
        printf(" version=%llu nodes=%u->%u", (unsigned long long)ev->config_version, ev->nodes_before,
               ev->nodes_after);
    if (*ev->reason) printf(" reason=%s", ev->reason);
    printf("\n");
    fflush(stdout);
}

int ecctl_watch(int argc, char **argv) {
    const char *endpoint = NULL;
    const char *interval = "1000";
    elasticache_options *opts = NULL;
    elasticache_client *c = NULL;
    int rc = 2;
    uint32_t st = elasticache_options_new(&opts);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("options", st);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) {
            interval = argv[++i];
        } else if (strcmp(argv[i], "--ignore-cluster-errors") == 0) {
            if (ecctl_set_option(opts, "ignore_cluster_errors", "true")) goto out;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            int used = 0;
            int r = ecctl_tls_flag(opts, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used);
            if (r == 0) {
                i += used - 1;
                continue;
            }
            if (r < 0) fprintf(stderr, "ecctl watch: unknown option '%s'\n", argv[i]);
            goto out;
        } else if (!endpoint) {
            endpoint = argv[i];
        } else {
            fprintf(stderr, "ecctl watch: more than one endpoint given\n");
            goto out;
        }
    }
    long ms = strtol(interval, NULL, 10);
    if (!endpoint || ms <= 0) {
        fprintf(stderr, "usage: ecctl watch ENDPOINT [--interval-ms N] [--ignore-cluster-errors] [TLS flags]\n");
        goto out;
    }
    if (ecctl_set_option(opts, "refresh_interval_ms", interval) || ecctl_set_option(opts, "failure_limit", "1") ||
        ecctl_set_option(opts, "retry_timeout", "1") || ecctl_set_option(opts, "connect_timeout", "500") ||
        ecctl_set_option(opts, "io_timeout", "500"))
        goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    elasticache_set_event_callback(on_event, NULL);
    st = elasticache_client_new(endpoint, opts, &c);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("watch", st);
        rc = 1;
        goto out;
    }
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    while (!stop) {
        elasticache_stats *s = NULL;
        if (elasticache_client_versions(c, &s) == ELASTICACHE_STATUS_OK) elasticache_stats_free(s);
        nanosleep(&pause, NULL);
    }
    rc = 0;
out:
    elasticache_set_event_callback(NULL, NULL);
    elasticache_client_free(c);
    elasticache_options_free(opts);
    return rc;
}
