/*
 * A client with open connections survives fork() in both processes: parent
 * and child each write and read back their own values at the same time, and
 * neither ever sees a reply meant for the other (a shared socket would mix
 * them up). Run against the shared and the static library, with a time
 * limit on the child, under $ELASTICACHE_TEST_SERVER (scripts/test_c.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "wait_child.h"

#define ROUNDS 400

/* Set and get back ROUNDS values named after `who`; 0 when all round-trip. */
static int round_trips(elasticache_client *c, const char *who) {
    char key[64], val[64];
    for (int i = 0; i < ROUNDS; i++) {
        int kn = snprintf(key, sizeof key, "fork:%s:%d", who, i);
        int vn = snprintf(val, sizeof val, "%s-value-%d-%d", who, i, (int)getpid());
        if (elasticache_set(c, (const uint8_t *)key, (size_t)kn, (const uint8_t *)val, (size_t)vn, 7, 0) !=
            ELASTICACHE_STATUS_OK) {
            char msg[256];
            elasticache_last_error_message(msg, sizeof msg, NULL);
            fprintf(stderr, "%s: set %s: %s\n", who, key, msg);
            return 1;
        }
        elasticache_value *v = NULL;
        if (elasticache_get(c, (const uint8_t *)key, (size_t)kn, &v) != ELASTICACHE_STATUS_OK) {
            fprintf(stderr, "%s: get %s failed\n", who, key);
            return 1;
        }
        int same = elasticache_value_len(v) == (size_t)vn && memcmp(elasticache_value_data(v), val, (size_t)vn) == 0 &&
                   elasticache_value_flags(v) == 7;
        elasticache_value_free(v);
        if (!same) {
            fprintf(stderr, "%s: %s read back someone else's value\n", who, key);
            return 1;
        }
    }
    return 0;
}

int main(void) {
    const char *server = test_server();
    elasticache_options *opts = NULL;
    elasticache_client *c = NULL;
    const char *servers[] = {server};
    if (elasticache_options_new(&opts) != ELASTICACHE_STATUS_OK ||
        elasticache_options_set(opts, "io_timeout", "2000") != ELASTICACHE_STATUS_OK ||
        elasticache_client_new_servers(servers, 1, NULL, opts, &c) != ELASTICACHE_STATUS_OK) {
        fprintf(stderr, "FAIL: cannot make a client for %s\n", server);
        return 1;
    }
    /* Open connections before the fork. */
    if (round_trips(c, "before") != 0) return 1;

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        int rc = round_trips(c, "child");
        /* The parent's earlier write is visible to the child too. */
        elasticache_value *v = NULL;
        if (rc == 0 && elasticache_get(c, (const uint8_t *)"fork:before:3", 13, &v) != ELASTICACHE_STATUS_OK) rc = 1;
        elasticache_value_free(v);
        _exit(rc);
    }
    int parent = round_trips(c, "parent");
    int child = wait_child(pid, 20000, "fork_client child");
    /* The child's values really were written: the parent reads one back. */
    elasticache_value *v = NULL;
    int seen = elasticache_get(c, (const uint8_t *)"fork:child:9", 12, &v) == ELASTICACHE_STATUS_OK &&
               elasticache_value_len(v) > 6 && memcmp(elasticache_value_data(v), "child-", 6) == 0;
    elasticache_value_free(v);
    elasticache_client_free(c);
    elasticache_options_free(opts);
    if (parent != 0 || child != 0 || !seen) {
        fprintf(stderr, "FAIL: parent %d, child %d, child's value seen %d\n", parent, child, seen);
        return 1;
    }
    printf("ok: parent and child each used their own connections (%d round trips each)\n", ROUNDS);
    return 0;
}
