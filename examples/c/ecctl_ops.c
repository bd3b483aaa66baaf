#define _POSIX_C_SOURCE 200809L
/*
 * ecctl get|set|delete|incr|stats: operations on a live cluster, given either
 * a configuration endpoint (--endpoint HOST:PORT, discovery) or a static list
 * (--servers HOST:PORT,...), with route's placement options.
 *
 * Exit codes: 0 success (a hit for get), 1 a miss (get) or NOT_FOUND,
 * 2 and above an error (the library's message is printed on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecctl.h"

struct conn_args {
    const char *endpoint;
    char *servers;
    const char *positional[3];
    int npositional;
    const char *exptime;
    const char *flags;
};

/* Parse the flags every operation shares; returns non-zero on a usage error. */
static int parse_common(int argc, char **argv, elasticache_options *opts, struct conn_args *a) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--endpoint") == 0 && val) {
            a->endpoint = val;
            i++;
        } else if (strcmp(arg, "--servers") == 0 && val) {
            a->servers = (char *)val;
            i++;
        } else if (strcmp(arg, "--distribution") == 0 && val) {
            if (ecctl_set_option(opts, "distribution", val)) return 1;
            i++;
        } else if (strcmp(arg, "--hash") == 0 && val) {
            if (ecctl_set_option(opts, "hash", val)) return 1;
            i++;
        } else if (strcmp(arg, "--node-naming") == 0 && val) {
            if (ecctl_set_option(opts, "node_naming", val)) return 1;
            i++;
        } else if (strcmp(arg, "--timeout-ms") == 0 && val) {
            if (ecctl_set_option(opts, "connect_timeout", val) || ecctl_set_option(opts, "io_timeout", val)) return 1;
            i++;
        } else if (strcmp(arg, "--ignore-cluster-errors") == 0) {
            if (ecctl_set_option(opts, "ignore_cluster_errors", "true")) return 1;
        } else if (strcmp(arg, "--exptime") == 0 && val) {
            a->exptime = val;
            i++;
        } else if (strcmp(arg, "--flags") == 0 && val) {
            a->flags = val;
            i++;
        } else if (arg[0] == '-' && arg[1] == '-') {
            int used = 0;
            int r = ecctl_tls_flag(opts, arg, val, &used);
            if (r == 0) {
                i += used - 1;
                continue;
            }
            if (r < 0) fprintf(stderr, "ecctl: unknown or incomplete option '%s'\n", arg);
            return 1;
        } else if (a->npositional < 3) {
            a->positional[a->npositional++] = arg;
        } else {
            fprintf(stderr, "ecctl: too many arguments\n");
            return 1;
        }
    }
    if ((a->endpoint == NULL) == (a->servers == NULL)) {
        fprintf(stderr, "ecctl: give exactly one of --endpoint HOST:PORT or --servers HOST:PORT,...\n");
        return 1;
    }
    return 0;
}

/* Build a client from the parsed arguments; prints the error and returns NULL on failure. */
static elasticache_client *open_client(const struct conn_args *a, const elasticache_options *opts) {
    elasticache_client *client = NULL;
    uint32_t st;
    if (a->endpoint) {
        st = elasticache_client_new(a->endpoint, opts, &client);
    } else {
        size_t n = 1;
        for (const char *p = a->servers; *p; p++) n += (*p == ',');
        const char **list = calloc(n, sizeof *list);
        char *copy = strdup(a->servers);
        if (!list || !copy) {
            free(list);
            free(copy);
            fprintf(stderr, "ecctl: out of memory\n");
            return NULL;
        }
        size_t k = 0;
        for (char *tok = strtok(copy, ","); tok && k < n; tok = strtok(NULL, ",")) list[k++] = tok;
        st = elasticache_client_new_servers(list, k, NULL, opts, &client);
        free(list);
        free(copy);
    }
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("connect", st);
        return NULL;
    }
    return client;
}

static int parse_number(const char *s, const char *what, long long *out) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "ecctl: %s must be a number, got '%s'\n", what, s);
        return 1;
    }
    *out = v;
    return 0;
}

int ecctl_op(const char *op, int argc, char **argv) {
    elasticache_options *opts = NULL;
    elasticache_client *client = NULL;
    struct conn_args a = {0};
    int rc = 2;
    uint32_t st = elasticache_options_new(&opts);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("options", st);
        return 2;
    }
    if (parse_common(argc, argv, opts, &a)) goto out;
    int want = strcmp(op, "set") == 0 ? 2 : strcmp(op, "stats") == 0 ? 0 : 1;
    if (strcmp(op, "incr") == 0) want = a.npositional >= 1 ? a.npositional : 1;
    if (a.npositional != want && !(strcmp(op, "stats") == 0 && a.npositional <= 1) &&
        !(strcmp(op, "incr") == 0 && a.npositional == 2)) {
        fprintf(stderr, "ecctl %s: wrong number of arguments (see ecctl --help)\n", op);
        goto out;
    }
    client = open_client(&a, opts);
    if (!client) goto out;

    const char *key = a.npositional > 0 ? a.positional[0] : NULL;
    size_t klen = key ? strlen(key) : 0;
    if (strcmp(op, "get") == 0) {
        elasticache_value *v = NULL;
        st = elasticache_get(client, (const uint8_t *)key, klen, &v);
        if (st == ELASTICACHE_STATUS_NOT_FOUND) {
            rc = 1;
        } else if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("get", st);
        } else {
            fwrite(elasticache_value_data(v), 1, elasticache_value_len(v), stdout);
            elasticache_value_free(v);
            rc = 0;
        }
    } else if (strcmp(op, "set") == 0) {
        long long exptime = 0, flags = 0;
        if (a.exptime && parse_number(a.exptime, "--exptime", &exptime)) goto out;
        if (a.flags && (parse_number(a.flags, "--flags", &flags) || flags < 0 || flags > 0xffffffffLL)) goto out;
        const char *value = a.positional[1];
        st = elasticache_set(client, (const uint8_t *)key, klen, (const uint8_t *)value, strlen(value), (uint32_t)flags,
                             (int64_t)exptime);
        if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("set", st);
        } else {
            rc = 0;
        }
    } else if (strcmp(op, "delete") == 0) {
        st = elasticache_delete(client, (const uint8_t *)key, klen);
        if (st == ELASTICACHE_STATUS_NOT_FOUND) {
            rc = 1;
        } else if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("delete", st);
        } else {
            rc = 0;
        }
    } else if (strcmp(op, "incr") == 0) {
        long long delta = 1;
        if (a.npositional == 2 && (parse_number(a.positional[1], "DELTA", &delta) || delta < 0)) goto out;
        uint64_t value = 0;
        st = elasticache_incr(client, (const uint8_t *)key, klen, (uint64_t)delta, &value);
        if (st == ELASTICACHE_STATUS_NOT_FOUND) {
            ecctl_print_error("incr", st);
            rc = 1;
        } else if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("incr", st);
        } else {
            printf("%llu\n", (unsigned long long)value);
            rc = 0;
        }
    } else { /* stats */
        elasticache_stats *s = NULL;
        st = elasticache_client_stats(client, a.npositional ? a.positional[0] : NULL, &s);
        if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("stats", st);
            goto out;
        }
        rc = 0;
        for (size_t i = 0; i < elasticache_stats_node_count(s); i++) {
            const char *server = NULL;
            uint32_t node_status = 0;
            size_t entries = 0;
            elasticache_stats_node(s, i, &server, &node_status, &entries);
            if (node_status == ELASTICACHE_STATUS_OK) {
                printf("%s\n", server);
            } else {
                printf("%s (failed: %s)\n", server, elasticache_stats_error(s, i));
                rc = 2;
            }
            for (size_t j = 0; j < entries; j++) {
                const char *name = NULL, *value = NULL;
                elasticache_stats_entry(s, i, j, &name, &value);
                printf("  %s %s\n", name, value);
            }
        }
        elasticache_stats_free(s);
    }
out:
    elasticache_client_free(client);
    elasticache_options_free(opts);
    return rc;
}
