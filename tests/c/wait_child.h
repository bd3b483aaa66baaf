/*
 * Shared by the C tests that fork: wait for a child at most `limit_ms`,
 * killing it past that, and say how it ended. Returns 0 only when it
 * exited with status 0.
 */
#ifndef ELASTICACHE_TEST_WAIT_CHILD_H
#define ELASTICACHE_TEST_WAIT_CHILD_H

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int wait_child(pid_t pid, long limit_ms, const char *who) {
    struct timespec nap = {0, 5 * 1000 * 1000};
    int status = 0;
    for (long waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) {
            perror("waitpid");
            return -1;
        }
        if (waited >= limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "FAIL: %s still running after %ld ms (killed)\n", who, limit_ms);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "FAIL: %s killed by signal %d\n", who, WTERMSIG(status));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: %s exited with status %d\n", who, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

#endif
