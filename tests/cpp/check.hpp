// Shared by the C++ tests: CHECK (count a failure, print it, go on),
// checks_done (the verdict) and the address of the memcached
// scripts/test_cpp.sh started.
#ifndef ELASTICACHE_TEST_CHECK_HPP
#define ELASTICACHE_TEST_CHECK_HPP

#include <cstdio>
#include <cstdlib>

// How many CHECKs failed (see checks_done).
static int failures = 0;

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                \
            failures++;                                                                                  \
        }                                                                                                \
    } while (0)

// main's exit status after the last CHECK: 1 when any failed, else 0; says which.
inline int checks_done(const char *test) {
    if (failures) {
        std::fprintf(stderr, "%s: %d failure(s)\n", test, failures);
        return 1;
    }
    std::printf("%s: ok\n", test);
    return 0;
}

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
