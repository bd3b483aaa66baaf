// Shared by the C++ tests: CHECK (count a failure, print it, go on) and the
// address of the memcached scripts/test_cpp.sh started.
#ifndef ELASTICACHE_TEST_CHECK_HPP
#define ELASTICACHE_TEST_CHECK_HPP

#include <cstdio>
#include <cstdlib>

// How many CHECKs failed; main fails when any did.
static int failures = 0;

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                \
            failures++;                                                                                  \
        }                                                                                                \
    } while (0)

// $ELASTICACHE_TEST_SERVER ("ip:port"); exits with 2 when it is not set.
inline const char *test_server() {
    const char *server = std::getenv("ELASTICACHE_TEST_SERVER");
    if (!server) {
        std::fprintf(stderr, "ELASTICACHE_TEST_SERVER is not set\n");
        std::exit(2);
    }
    return server;
}

#endif
