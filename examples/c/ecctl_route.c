/*
 * ecctl route [--distribution modula|ketama|ketama_weighted|rendezvous] [--hash NAME]
 *             [--weights W1,W2,...] --servers HOST:PORT,HOST:PORT,... [KEY...]
 *
 * Prints "KEY HOST:PORT" for each key: the server a libmemcached (or, with
 * rendezvous, pymemcache) client would store it on. With no KEY arguments,
 * reads one key per line from standard input (a trailing CR is dropped), so a
 * key list of any size streams through.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecctl.h"

static void route_usage(void) {
    fprintf(stderr,
            "usage: ecctl route [--distribution modula|ketama|ketama_weighted|rendezvous] [--hash NAME]\n"
            "                   [--weights W1,W2,...] --servers HOST:PORT,... [KEY...]\n");
}

/* Split a comma-separated list in place; returns the number of items (0 on allocation failure). */
static size_t split_list(char *s, char ***out) {
    size_t n = 1;
    for (const char *p = s; *p; p++) n += (*p == ',');
    char **items = malloc(n * sizeof *items);
    if (!items) return 0;
    size_t i = 0;
    items[i++] = s;
    for (char *p = s; *p; p++) {
        if (*p == ',') {
            *p = '\0';
            items[i++] = p + 1;
        }
    }
    *out = items;
    return n;
}

static int route_one(const elasticache_ring *ring, const char *key, size_t len) {
    size_t index = 0;
    const char *server = NULL;
    uint32_t st = elasticache_ring_lookup(ring, (const uint8_t *)key, len, &index);
    if (st == ELASTICACHE_STATUS_OK) st = elasticache_ring_server(ring, index, &server);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("route", st);
        return 1;
    }
    fwrite(key, 1, len, stdout);
    fputc(' ', stdout);
    fputs(server, stdout);
    fputc('\n', stdout);
    return 0;
}

int ecctl_route(int argc, char **argv) {
    char *servers_arg = NULL, *weights_arg = NULL;
    char **servers = NULL, **weight_items = NULL;
    uint32_t *weights = NULL;
    size_t n_servers = 0;
    int first_key = argc;
    int rc = 2;
    elasticache_options *opts = NULL;
    elasticache_ring *ring = NULL;
    char *line = NULL;

    uint32_t st = elasticache_options_new(&opts);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("options", st);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--distribution") == 0 && has_value) {
            if (ecctl_set_option(opts, "distribution", argv[++i])) goto out;
        } else if (strcmp(a, "--hash") == 0 && has_value) {
            if (ecctl_set_option(opts, "hash", argv[++i])) goto out;
        } else if (strcmp(a, "--servers") == 0 && has_value) {
            servers_arg = argv[++i];
        } else if (strcmp(a, "--weights") == 0 && has_value) {
            weights_arg = argv[++i];
        } else if (strcmp(a, "--") == 0) {
            first_key = i + 1;
            break;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "ecctl route: unknown option or missing value '%s'\n", a);
            route_usage();
            goto out;
        } else {
            first_key = i;
            break;
        }
    }
    if (!servers_arg || !*servers_arg) {
        route_usage();
        goto out;
    }
    n_servers = split_list(servers_arg, &servers);
    if (n_servers == 0) {
        fprintf(stderr, "ecctl route: out of memory\n");
        goto out;
    }
    if (weights_arg) {
        size_t n_weights = split_list(weights_arg, &weight_items);
        if (n_weights != n_servers) {
            fprintf(stderr, "ecctl route: %zu weights for %zu servers\n", n_weights, n_servers);
            goto out;
        }
        weights = malloc(n_servers * sizeof *weights);
        if (!weights) goto out;
        for (size_t i = 0; i < n_servers; i++) {
            char *end = NULL;
            unsigned long w = strtoul(weight_items[i], &end, 10);
            if (end == weight_items[i] || *end || w == 0 || w > UINT32_MAX) {
                fprintf(stderr, "ecctl route: bad weight '%s'\n", weight_items[i]);
                goto out;
            }
            weights[i] = (uint32_t)w;
        }
    }
    st = elasticache_ring_new((const char *const *)servers, n_servers, weights, opts, &ring);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("ring", st);
        goto out;
    }

    rc = 0;
    if (first_key < argc) {
        for (int i = first_key; i < argc && rc == 0; i++) rc = route_one(ring, argv[i], strlen(argv[i]));
    } else {
        /* A large output buffer: a million keys is a million short lines. */
        static char outbuf[1 << 16];
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
        size_t cap = 0;
        ssize_t len;
        while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
            if (len > 0 && line[len - 1] == '\n') len--;
            if (len > 0 && line[len - 1] == '\r') len--;
            rc = route_one(ring, line, (size_t)len);
        }
    }
    if (fflush(stdout) != 0) {
        perror("ecctl route: stdout");
        rc = 1;
    }
out:
    free(line);
    elasticache_ring_free(ring);
    free(weights);
    free(weight_items);
    free(servers);
    elasticache_options_free(opts);
    return rc;
}
