/*
 * Shared by the C tests that run against $ELASTICACHE_TEST_SERVER: the
 * server's address, CHECK (count a failure, print it with the library's last
 * error message, go on), checks_done (the verdict) and K (a string literal
 * as key bytes and length).
 */
#ifndef ELASTICACHE_TEST_CHECK_H
#define ELASTICACHE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elasticache.h"

/* How many CHECKs failed (see checks_done). */
static int failures = 0;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            char msg_[512];                                                     \
            elasticache_last_error_message(msg_, sizeof msg_, NULL);            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, msg_); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

#define K(s) (const uint8_t *)(s), strlen(s)

/* main's exit status after the last CHECK: 1 when any failed, else 0; says which on stdout/stderr. */
static inline int checks_done(const char *test) {
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", test, failures);
        return 1;
    }
    printf("%s: all checks passed\n", test);
    return 0;
}

/* The memcached scripts/test_c.sh started ("ip:port"); exits with 2 when it is not set. */
static inline const char *test_server(void) {
    const char *server = getenv("ELASTICACHE_TEST_SERVER");
    if (!server) {
        fprintf(stderr, "ELASTICACHE_TEST_SERVER is not set\n");
        exit(2);
    }
    return server;
}

#endif
