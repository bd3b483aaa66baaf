/*
 * The library's fork handler must be registered by its load-time constructor,
 * in the shared and in the static library alike: the child of a fork sees the
 * generation go up, the parent does not. No other library call is made first,
 * so nothing but the constructor can have registered the handler.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elasticache.h"
#include "wait_child.h"

int main(void) {
    uint64_t before = elasticache_fork_generation();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        _exit(elasticache_fork_generation() == before + 1 ? 0 : 1);
    }
    if (wait_child(pid, 10000, "fork_generation child") != 0) {
        fprintf(stderr, "FAIL: the child did not see a new fork generation (handler not registered)\n");
        return 1;
    }
    if (elasticache_fork_generation() != before) {
        fprintf(stderr, "FAIL: the parent's generation changed\n");
        return 1;
    }
    if (strcmp(elasticache_version(), ELASTICACHE_VERSION) != 0) {
        fprintf(stderr, "FAIL: header version %s, library %s\n", ELASTICACHE_VERSION, elasticache_version());
        return 1;
    }
    printf("ok: fork generation %llu -> %llu in the child\n", (unsigned long long)before,
           (unsigned long long)before + 1);
    return 0;
}
