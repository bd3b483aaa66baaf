/*
 * Placement oracle through libmemcached itself (Debian's libmemcached 1.1.4 C
 * API): write every key from stdin to real memcached servers the way a
 * libmemcached client places it. The caller then asks each server which keys
 * it holds.
 *
 * usage: lmc_write DIST HASH [--remove-failed | --read] HOST:PORT:WEIGHT...
 *   DIST: modula | ketama | ketama_weighted
 *   HASH: memcached_hash_t number (0 default ... 10 murmur3)
 *   --remove-failed: auto-eject (MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS,
 *     failure limit 1, long dead/retry timeouts). Warm-up keys are written
 *     first until the dead servers are ejected, then the test keys; a key whose
 *     set fails is printed as "FAIL <hex>".
 *   --read: get every key instead (the reverse check: libmemcached finds what
 *     another client wrote); prints "MISS <hex>" per miss, then "read N hits M".
 * stdin: one hex-encoded key per line. stdout: "written N" then any FAIL lines.
 *
 * Behaviors are set as pylibmc sets them: the hash first, then the
 * distribution (ketama_weighted sets md5 as the key hash after it), then the
 * servers are pushed, so 1.1.4's "hash set after distribution" quirk never
 * applies. Without --remove-failed, sets are sent with noreply (speed).
 *
 * Build: cc -O2 -o lmc_write lmc_write.c -lmemcached
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void check(memcached_st *m, memcached_return_t rc, const char *what) {
    if (rc != MEMCACHED_SUCCESS) {
        fprintf(stderr, "lmc_write: %s: %s\n", what, memcached_last_error_message(m));
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: lmc_write DIST HASH [--remove-failed] HOST:PORT:WEIGHT...\n");
        return 2;
    }
    const char *dist = argv[1];
    int hash = atoi(argv[2]);
    int first = 3, remove_failed = 0, reading = 0;
    if (strcmp(argv[3], "--remove-failed") == 0) {
        remove_failed = 1;
        first = 4;
    } else if (strcmp(argv[3], "--read") == 0) {
        reading = 1;
        first = 4;
    }
    memcached_st *m = memcached_create(NULL);
    check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_HASH, (uint64_t)hash), "hash");
    if (strcmp(dist, "modula") == 0) {
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_MODULA), "dist");
    } else if (strcmp(dist, "ketama") == 0) {
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA, 1), "ketama");
    } else if (strcmp(dist, "ketama_weighted") == 0) {
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1), "ketama_weighted");
    } else {
        fprintf(stderr, "lmc_write: unknown distribution %s\n", dist);
        return 2;
    }
    if (remove_failed) {
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1), "remove_failed");
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1), "failure_limit");
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 600), "retry_timeout");
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, 600), "dead_timeout");
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 200), "connect_timeout");
    } else if (!reading) {
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NOREPLY, 1), "noreply");
    }
    for (int i = first; i < argc; i++) {
        char host[256];
        unsigned port = 0, weight = 1;
        if (sscanf(argv[i], "%255[^:]:%u:%u", host, &port, &weight) < 2) {
            fprintf(stderr, "lmc_write: bad server %s\n", argv[i]);
            return 2;
        }
        check(m, memcached_server_add_with_weight(m, host, (in_port_t)port, weight), "server_add");
    }

    if (remove_failed) {
        /* Eject the dead servers: write warm-up keys until 500 in a row succeed. */
        int streak = 0;
        for (int i = 0; i < 20000 && streak < 500; i++) {
            char k[32];
            int n = snprintf(k, sizeof k, "warmup-%d", i);
            memcached_return_t rc = memcached_set(m, k, (size_t)n, "1", 1, 0, 0);
            streak = rc == MEMCACHED_SUCCESS ? streak + 1 : 0;
        }
        if (streak < 500) {
            fprintf(stderr, "lmc_write: dead servers were never ejected\n");
            return 3;
        }
    }

    char *line = NULL, *key = NULL;
    size_t cap = 0;
    ssize_t n;
    long written = 0, hits = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        key = realloc(key, (size_t)n / 2 + 1);
        for (ssize_t i = 0; i < n / 2; i++) key[i] = (char)(hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]));
        if (reading) {
            size_t vlen = 0;
            uint32_t flags = 0;
            memcached_return_t rc;
            char *v = memcached_get(m, key, (size_t)n / 2, &vlen, &flags, &rc);
            if (v) {
                hits++;
                free(v);
            } else if (rc == MEMCACHED_NOTFOUND) {
                printf("MISS %.*s\n", (int)n, line);
            } else {
                fprintf(stderr, "lmc_write: get %.*s: %s\n", (int)n, line, memcached_last_error_message(m));
                return 1;
            }
            written++;
            continue;
        }
        memcached_return_t rc = memcached_set(m, key, (size_t)n / 2, "1", 1, 0, 0);
        if (rc != MEMCACHED_SUCCESS) {
            if (remove_failed) {
                printf("FAIL %.*s\n", (int)n, line);
                continue;
            }
            fprintf(stderr, "lmc_write: set %.*s: %s\n", (int)n, line, memcached_last_error_message(m));
            return 1;
        }
        written++;
    }
    if (reading) {
        memcached_quit(m);
        printf("read %ld hits %ld\n", written, hits);
        memcached_free(m);
        free(line);
        free(key);
        return 0;
    }
    if (!remove_failed) {
        /* noreply sets are unacknowledged: a `version` round trip on each
         * server's connection returns only after the server has processed
         * everything sent before it, so the caller sees every key. */
        check(m, memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NOREPLY, 0), "noreply off");
        check(m, memcached_version(m), "version");
    }
    memcached_quit(m);
    printf("written %ld\n", written);
    memcached_free(m);
    free(line);
    free(key);
    return 0;
}
