/*
 * C benchmarks: elasticache against libmemcached 1.1.4 and against the wire
 * itself (raw text-protocol requests on blocking sockets), side by side.
 *
 * Every figure is printed as one JSON object per line on stdout; the driver
 * (scripts/bench.sh) collects them and bench/report.py turns them into the
 * results table. Nothing here fails on a figure: a benchmark is not a test.
 * A wrong answer (a miss where a hit was due, a failed call) is counted in
 * "errors" so that a fast but broken run cannot pass unnoticed.
 *
 * Usage:  bench_c MODE [ARGS]   with BENCH_SERVERS="127.0.0.1:p1,127.0.0.1:p2,..."
 *   all                       every latency, scale and ring-build figure
 *   syscalls IMPL OP N        N operations only (run under strace -c by the driver)
 *   threads IMPL N SECS       N threads doing gets for SECS (futex calls counted by the driver)
 *   memory IMPL               resident memory per client and per node connection
 *   discovery ENDPOINT        cold start through a configuration endpoint
 *
 * Method: each benchmark runs its implementations in interleaved rounds (the
 * order rotates each round) so that drift of a noisy shared box hits all of
 * them alike; every operation is timed on its own and the median is reported.
 * CPU time is user+system of the calling thread (getrusage RUSAGE_THREAD).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/pool.h>

#include "elasticache.h"

#define MAX_NODES 16
#define NKEYS 100

/* Which clients store the keys (syscall counting stores through one only, so
 * that the other's set-up does not blur the per-operation difference). */
static int populate_ours = 1, populate_lmc = 1;

/* ---------------------------------------------------------------- utilities */

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double thread_cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void die(const char *what) {
    fprintf(stderr, "bench_c: %s\n", what);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The servers, from BENCH_SERVERS. */
static int nservers;
static char server_str[MAX_NODES][64];
static char server_host[MAX_NODES][48];
static int server_port[MAX_NODES];

static void load_servers(void) {
    const char *env = getenv("BENCH_SERVERS");
    if (!env || !*env) die("BENCH_SERVERS is not set");
    char *copy = strdup(env), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && nservers < MAX_NODES;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon) die("BENCH_SERVERS entries must be host:port");
        snprintf(server_str[nservers], sizeof server_str[0], "%s", tok);
        snprintf(server_host[nservers], sizeof server_host[0], "%.*s", (int)(colon - tok), tok);
        server_port[nservers] = atoi(colon + 1);
        nservers++;
    }
    free(copy);
}

/* ------------------------------------------------------------- the clients */

static elasticache_client *ours_new(int nodes) {
    const char *list[MAX_NODES];
    for (int i = 0; i < nodes; i++) list[i] = server_str[i];
    elasticache_client *c = NULL;
    /* NULL options: ketama, one_at_a_time, tcp_nodelay (the library's defaults). */
    if (elasticache_client_new_servers(list, (size_t)nodes, NULL, NULL, &c) != 0) die("elasticache_client_new_servers");
    return c;
}

static void lmc_configure(memcached_st *mc) {
    /* 1.1.4 builds the continuum when the distribution is set: hash first. */
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_DEFAULT /* one_at_a_time */);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA, 1);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
}

static memcached_st *lmc_new(int nodes) {
    memcached_st *mc = memcached_create(NULL);
    if (!mc) die("memcached_create");
    lmc_configure(mc);
    for (int i = 0; i < nodes; i++)
        if (memcached_server_add(mc, server_host[i], (in_port_t)server_port[i]) != MEMCACHED_SUCCESS)
            die("memcached_server_add");
    return mc;
}

/* The raw floor: one blocking socket per node, requests written by hand. */
typedef struct {
    int n;
    int fd[MAX_NODES];
    char *buf[MAX_NODES];
    size_t cap;
    size_t len[MAX_NODES];
} raw_t;

static int raw_connect(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("raw: host must be an IPv4 address");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("raw: connect");
    return fd;
}

static raw_t *raw_new(int nodes, size_t cap) {
    raw_t *r = xmalloc(sizeof *r);
    r->n = nodes;
    r->cap = cap;
    for (int i = 0; i < nodes; i++) {
        r->fd[i] = raw_connect(server_host[i], server_port[i]);
        r->buf[i] = xmalloc(cap);
        r->len[i] = 0;
    }
    return r;
}

static void raw_free(raw_t *r) {
    for (int i = 0; i < r->n; i++) {
        close(r->fd[i]);
        free(r->buf[i]);
    }
    free(r);
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int ends_with(const char *buf, size_t len, const char *tail, size_t tlen) {
    return len >= tlen && memcmp(buf + len - tlen, tail, tlen) == 0;
}

/* Read on a blocking socket until the reply ends with `tail`. */
static ssize_t raw_read_until(raw_t *r, int node, const char *tail, size_t tlen) {
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(r->fd[node], r->buf[node] + len, r->cap - len, 0);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return -1;
        }
        len += (size_t)k;
        if (ends_with(r->buf[node], len, tail, tlen)) return (ssize_t)len;
        if (len == r->cap) return -1;
    }
}

/* ------------------------------------------------------------ the key sets */

typedef struct {
    size_t n;
    char **key;
    size_t *len;
    int *owner; /* node index in the client's server list */
} keyset_t;

static int node_index_of(const char *label) {
    for (int i = 0; i < nservers; i++)
        if (strcmp(label, server_str[i]) == 0) return i;
    return -1;
}

/* Keys "prefix:i" and their owners under our ring; libmemcached is checked to agree. */
static keyset_t keyset_new(const char *prefix, size_t n, elasticache_client *ec, memcached_st *mc, int *disagree) {
    keyset_t ks = {.n = n};
    ks.key = xmalloc(n * sizeof(char *));
    ks.len = xmalloc(n * sizeof(size_t));
    ks.owner = xmalloc(n * sizeof(int));
    *disagree = 0;
    for (size_t i = 0; i < n; i++) {
        char tmp[64];
        int l = snprintf(tmp, sizeof tmp, "%s:%zu", prefix, i);
        ks.key[i] = strdup(tmp);
        ks.len[i] = (size_t)l;
        char label[96];
        size_t ln = 0;
        if (elasticache_server_for_key(ec, (const uint8_t *)tmp, (size_t)l, label, sizeof label, &ln) != 0)
            die("elasticache_server_for_key");
        ks.owner[i] = node_index_of(label);
        if (ks.owner[i] < 0) die("server_for_key returned an unknown server");
        memcached_return_t rc;
        const memcached_instance_st *inst = memcached_server_by_key(mc, tmp, (size_t)l, &rc);
        if (inst) {
            char theirs[96];
            snprintf(theirs, sizeof theirs, "%s:%u", memcached_server_name(inst), (unsigned)memcached_server_port(inst));
            if (strcmp(theirs, label) != 0) (*disagree)++;
        }
    }
    return ks;
}

static void keyset_free(keyset_t *ks) {
    for (size_t i = 0; i < ks->n; i++) free(ks->key[i]);
    free(ks->key);
    free(ks->len);
    free(ks->owner);
}

/* ------------------------------------------------------------- the runner */

typedef int (*op_fn)(void *ctx, size_t i);

typedef struct {
    const char *name;
    op_fn fn;
    void *ctx;
    /* filled by the runner */
    double *samples;
    size_t nsamples;
    double cpu_us;
    size_t errors;
} impl_t;

#define IMPL(n, f, c) {.name = (n), .fn = (f), .ctx = (c)}

static void emit_latency(const char *bench, const char *params, impl_t *im) {
    qsort(im->samples, im->nsamples, sizeof(double), cmp_double);
    size_t n = im->nsamples;
    double med = n ? im->samples[n / 2] : 0, p10 = n ? im->samples[n / 10] : 0, p90 = n ? im->samples[(n * 9) / 10] : 0;
    printf("{\"suite\":\"c\",\"bench\":\"%s\",\"params\":{%s},\"impl\":\"%s\",\"median_us\":%.3f,\"p10_us\":%.3f,"
           "\"p90_us\":%.3f,\"ops\":%zu,\"cpu_us_per_op\":%.3f,\"errors\":%zu}\n",
           bench, params ? params : "", im->name, med / 1e3, p10 / 1e3, p90 / 1e3, n,
           n ? im->cpu_us / (double)n : 0, im->errors);
    fflush(stdout);
}

/*
 * Run `nimpl` implementations of one operation in `rounds` interleaved rounds
 * of about `round_ms` each (per implementation) and print their figures.
 */
static void run_bench(const char *bench, const char *params, impl_t *impls, int nimpl, int rounds, double round_ms) {
    double est_ns = 0;
    for (int k = 0; k < nimpl; k++) {
        impls[k].nsamples = 0;
        impls[k].cpu_us = 0;
        impls[k].errors = 0;
        double t0 = now_ns();
        for (size_t i = 0; i < 20; i++)
            if (impls[k].fn(impls[k].ctx, i) != 0) impls[k].errors++;
        double per = (now_ns() - t0) / 20;
        if (per > est_ns) est_ns = per;
    }
    size_t per_round = (size_t)(round_ms * 1e6 / (est_ns > 1 ? est_ns : 1));
    if (per_round < 5) per_round = 5;
    if (per_round > 20000) per_round = 20000;
    for (int k = 0; k < nimpl; k++) impls[k].samples = xmalloc(per_round * (size_t)rounds * sizeof(double));
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < nimpl; j++) {
            impl_t *im = &impls[(r + j) % nimpl];
            double c0 = thread_cpu_us();
            for (size_t i = 0; i < per_round; i++) {
                double t0 = now_ns();
                int rc = im->fn(im->ctx, i);
                double t1 = now_ns();
                if (rc != 0) im->errors++;
                im->samples[im->nsamples++] = t1 - t0;
            }
            im->cpu_us += thread_cpu_us() - c0;
        }
    }
    for (int k = 0; k < nimpl; k++) {
        emit_latency(bench, params, &impls[k]);
        free(impls[k].samples);
    }
}

/* ---------------------------------------------------- single-key operations */

typedef struct {
    elasticache_client *ec;
    memcached_st *mc;
    raw_t *raw;
    keyset_t *ks;
    const char *val;
    size_t vlen;
    int expect_hit;
    uint8_t *into;
    size_t into_cap;
} single_t;

static int ours_get(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n;
    elasticache_value *v = NULL;
    uint32_t st = elasticache_get(c->ec, (const uint8_t *)c->ks->key[k], c->ks->len[k], &v);
    if (st == ELASTICACHE_STATUS_OK) {
        int bad = !c->expect_hit || elasticache_value_len(v) != c->vlen;
        elasticache_value_free(v);
        return bad ? -1 : 0;
    }
    return (st == ELASTICACHE_STATUS_NOT_FOUND && !c->expect_hit) ? 0 : -1;
}

static int ours_get_into(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n, len = 0;
    uint32_t flags = 0;
    uint32_t st = elasticache_get_into(c->ec, (const uint8_t *)c->ks->key[k], c->ks->len[k], c->into, c->into_cap, &len,
                                       &flags, NULL);
    if (st == ELASTICACHE_STATUS_OK) return (c->expect_hit && len == c->vlen) ? 0 : -1;
    return (st == ELASTICACHE_STATUS_NOT_FOUND && !c->expect_hit) ? 0 : -1;
}

static int lmc_get(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n, len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char *v = memcached_get(c->mc, c->ks->key[k], c->ks->len[k], &len, &flags, &rc);
    if (v) {
        free(v);
        return (c->expect_hit && len == c->vlen) ? 0 : -1;
    }
    return (rc == MEMCACHED_NOTFOUND && !c->expect_hit) ? 0 : -1;
}

static int raw_get(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n;
    int node = c->ks->owner[k];
    char req[300];
    memcpy(req, "get ", 4);
    memcpy(req + 4, c->ks->key[k], c->ks->len[k]);
    memcpy(req + 4 + c->ks->len[k], "\r\n", 2);
    if (send_all(c->raw->fd[node], req, c->ks->len[k] + 6) != 0) return -1;
    ssize_t n = raw_read_until(c->raw, node, "END\r\n", 5);
    if (n < 0) return -1;
    int hit = c->raw->buf[node][0] == 'V';
    return hit == c->expect_hit ? 0 : -1;
}

static int ours_set(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n;
    return elasticache_set(c->ec, (const uint8_t *)c->ks->key[k], c->ks->len[k], (const uint8_t *)c->val, c->vlen, 0, 0)
               == ELASTICACHE_STATUS_OK ? 0 : -1;
}

static int lmc_set(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n;
    return memcached_set(c->mc, c->ks->key[k], c->ks->len[k], c->val, c->vlen, 0, 0) == MEMCACHED_SUCCESS ? 0 : -1;
}

static int raw_set(void *p, size_t i) {
    single_t *c = p;
    size_t k = i % c->ks->n;
    int node = c->ks->owner[k];
    char head[320];
    int hl = snprintf(head, sizeof head, "set %s 0 0 %zu\r\n", c->ks->key[k], c->vlen);
    struct iovec iov[3] = {{head, (size_t)hl}, {(void *)c->val, c->vlen}, {"\r\n", 2}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
    ssize_t want = hl + (ssize_t)c->vlen + 2;
    ssize_t sent = sendmsg(c->raw->fd[node], &mh, MSG_NOSIGNAL);
    if (sent != want) return -1; /* loopback takes 10 KB whole; a short write is reported, not retried */
    ssize_t n = raw_read_until(c->raw, node, "\r\n", 2);
    return (n == 8 && memcmp(c->raw->buf[node], "STORED\r\n", 8) == 0) ? 0 : -1;
}

/* ------------------------------------------------------------- multi-get */

typedef struct {
    elasticache_client *ec;
    memcached_st *mc;
    memcached_result_st res;
    raw_t *raw;
    keyset_t ks;
    const uint8_t **kptr;
    size_t nodes_used;
    char *req[MAX_NODES];
    size_t reqlen[MAX_NODES];
    size_t vlen;
} multi_t;

static int ours_mget(void *p, size_t i) {
    (void)i;
    multi_t *c = p;
    elasticache_multi *m = NULL;
    if (elasticache_get_multi(c->ec, c->kptr, c->ks.len, c->ks.n, false, &m) != 0) return -1;
    size_t hits = 0, n = elasticache_multi_count(m);
    for (size_t k = 0; k < n; k++) {
        size_t len = 0;
        if (elasticache_multi_item(m, k, NULL, &len, NULL, NULL) == ELASTICACHE_STATUS_OK && len == c->vlen) hits++;
    }
    elasticache_multi_free(m);
    return hits == c->ks.n ? 0 : -1;
}

static int lmc_mget(void *p, size_t i) {
    (void)i;
    multi_t *c = p;
    if (memcached_mget(c->mc, (const char *const *)c->ks.key, c->ks.len, c->ks.n) != MEMCACHED_SUCCESS) return -1;
    size_t hits = 0;
    memcached_return_t rc;
    while (memcached_fetch_result(c->mc, &c->res, &rc))
        if (memcached_result_length(&c->res) == c->vlen) hits++;
    return hits == c->ks.n ? 0 : -1;
}

/* One request line per node, all sent before any reply is read, replies drained with poll. */
static int raw_mget(void *p, size_t i) {
    (void)i;
    multi_t *c = p;
    raw_t *r = c->raw;
    struct pollfd pfd[MAX_NODES];
    int which[MAX_NODES], np = 0;
    for (int n = 0; n < r->n; n++) {
        if (!c->reqlen[n]) continue;
        if (send_all(r->fd[n], c->req[n], c->reqlen[n]) != 0) return -1;
        r->len[n] = 0;
        pfd[np].fd = r->fd[n];
        pfd[np].events = POLLIN;
        which[np++] = n;
    }
    int open = np;
    while (open) {
        if (poll(pfd, (nfds_t)np, 1000) <= 0) return -1;
        for (int j = 0; j < np; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            int n = which[j];
            ssize_t k = recv(r->fd[n], r->buf[n] + r->len[n], r->cap - r->len[n], MSG_DONTWAIT);
            if (k <= 0) {
                if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                return -1;
            }
            r->len[n] += (size_t)k;
            if (ends_with(r->buf[n], r->len[n], "END\r\n", 5)) {
                pfd[j].fd = -1; /* poll ignores negative descriptors */
                open--;
            } else if (r->len[n] == r->cap) {
                return -1;
            }
        }
    }
    return 0;
}

static void multi_setup(multi_t *c, int nodes, size_t nkeys, size_t vlen, int *disagree) {
    memset(c, 0, sizeof *c);
    c->ec = ours_new(nodes);
    c->mc = lmc_new(nodes);
    memcached_result_create(c->mc, &c->res);
    c->vlen = vlen;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mg%d", nodes);
    c->ks = keyset_new(prefix, nkeys, c->ec, c->mc, disagree);
    c->kptr = xmalloc(nkeys * sizeof(uint8_t *));
    for (size_t k = 0; k < nkeys; k++) c->kptr[k] = (const uint8_t *)c->ks.key[k];
    char *val = xmalloc(vlen);
    memset(val, 'x', vlen);
    for (size_t k = 0; k < nkeys; k++)
        if ((populate_ours && elasticache_set(c->ec, c->kptr[k], c->ks.len[k], (const uint8_t *)val, vlen, 0, 0) != 0) ||
            (populate_lmc && memcached_set(c->mc, c->ks.key[k], c->ks.len[k], val, vlen, 0, 0) != MEMCACHED_SUCCESS))
            die("multi: set");
    free(val);
    c->raw = raw_new(nodes, 4u << 20);
    for (int n = 0; n < nodes; n++) {
        size_t cap = 8 + nkeys * 64, len = 0;
        char *b = xmalloc(cap);
        memcpy(b, "get", 3);
        len = 3;
        size_t count = 0;
        for (size_t k = 0; k < nkeys; k++) {
            if (c->ks.owner[k] != n) continue;
            b[len++] = ' ';
            memcpy(b + len, c->ks.key[k], c->ks.len[k]);
            len += c->ks.len[k];
            count++;
        }
        memcpy(b + len, "\r\n", 2);
        len += 2;
        c->req[n] = b;
        c->reqlen[n] = count ? len : 0;
        if (count) c->nodes_used++;
    }
}

static void multi_teardown(multi_t *c) {
    for (int n = 0; n < MAX_NODES; n++) free(c->req[n]);
    raw_free(c->raw);
    memcached_result_free(&c->res);
    memcached_free(c->mc);
    elasticache_client_free(c->ec);
    free(c->kptr);
    keyset_free(&c->ks);
}

/* ------------------------------------------------------------- threads */

typedef struct {
    const char *impl;
    elasticache_client *ec;
    memcached_pool_st *pool;
    keyset_t *ks;
    size_t vlen;
    int tid;
    atomic_int *ready;
    atomic_int *go;
    atomic_int *stop;
    size_t ops;
    size_t errors;
    double cpu_us;
} thr_t;

static void *thr_main(void *p) {
    thr_t *t = p;
    raw_t *raw = NULL;
    elasticache_client *own = NULL;
    single_t rc = {.ks = t->ks, .vlen = t->vlen, .expect_hit = 1};
    if (strcmp(t->impl, "raw") == 0) {
        raw = raw_new(nservers < 4 ? nservers : 4, 64 * 1024);
        rc.raw = raw;
    } else if (strcmp(t->impl, "ours_client_per_thread") == 0) {
        /* Not shared: what sharing one client costs is the difference to "ours". */
        own = ours_new(nservers < 4 ? nservers : 4);
        t->ec = own;
        single_t oc = {.ec = own, .ks = t->ks, .vlen = t->vlen, .expect_hit = 1};
        for (size_t k = 0; k < t->ks->n; k++) ours_get(&oc, k); /* connect before the clock starts */
    }
    atomic_fetch_add(t->ready, 1);
    while (!atomic_load(t->go)) {
    }
    double c0 = thread_cpu_us();
    size_t i = (size_t)t->tid * 37;
    while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
        int r;
        if (raw) {
            r = raw_get(&rc, i);
        } else if (t->ec) {
            single_t oc = {.ec = t->ec, .ks = t->ks, .vlen = t->vlen, .expect_hit = 1};
            r = ours_get(&oc, i);
        } else {
            memcached_return_t prc;
            memcached_st *mc = memcached_pool_pop(t->pool, true, &prc);
            if (!mc) {
                r = -1;
            } else {
                single_t lc = {.mc = mc, .ks = t->ks, .vlen = t->vlen, .expect_hit = 1};
                r = lmc_get(&lc, i);
                memcached_pool_push(t->pool, mc);
            }
        }
        if (r) t->errors++;
        t->ops++;
        i++;
    }
    t->cpu_us = thread_cpu_us() - c0;
    if (raw) raw_free(raw);
    if (own) elasticache_client_free(own);
    return NULL;
}

static void run_threads(const char *impl, int nthreads, double secs, elasticache_client *ec, memcached_st *master,
                        keyset_t *ks, size_t vlen, double *ops_per_s, double *cpu_per_op, size_t *errors) {
    memcached_pool_st *pool = NULL;
    if (strcmp(impl, "libmemcached") == 0) {
        pool = memcached_pool_create(master, (uint32_t)nthreads, (uint32_t)nthreads);
        if (!pool) die("memcached_pool_create");
    }
    atomic_int ready = 0, go = 0, stop = 0;
    thr_t t[8];
    pthread_t th[8];
    for (int k = 0; k < nthreads; k++) {
        t[k] = (thr_t){.impl = impl, .ec = strcmp(impl, "ours") == 0 ? ec : NULL, .pool = pool, .ks = ks,
                       .vlen = vlen, .tid = k, .ready = &ready, .go = &go, .stop = &stop};
        pthread_create(&th[k], NULL, thr_main, &t[k]);
    }
    while (atomic_load(&ready) < nthreads) usleep(100); /* connections are opened before the clock starts */
    double t0 = now_ns();
    atomic_store(&go, 1);
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop, 1);
    size_t ops = 0, err = 0;
    double cpu = 0;
    for (int k = 0; k < nthreads; k++) {
        pthread_join(th[k], NULL);
        ops += t[k].ops;
        err += t[k].errors;
        cpu += t[k].cpu_us;
    }
    double el = (now_ns() - t0) / 1e9;
    *ops_per_s = (double)ops / el;
    *cpu_per_op = ops ? cpu / (double)ops : 0;
    *errors = err;
    /* The pool's clones are freed with it; the master stays with the caller. */
    if (pool) memcached_pool_destroy(pool);
}

/* ------------------------------------------------------------- ring build */

static double ring_build_ours(int n, int reps) {
    char **list = xmalloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, "127.0.%d.%d:11211", i / 250, i % 250 + 1);
        list[i] = strdup(tmp);
    }
    double best = 1e18;
    for (int r = 0; r < reps; r++) {
        elasticache_client *c = NULL;
        double t0 = now_ns();
        if (elasticache_client_new_servers((const char *const *)list, (size_t)n, NULL, NULL, &c) != 0) die("ring ours");
        double t = now_ns() - t0;
        elasticache_client_free(c);
        if (t < best) best = t;
    }
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    return best / 1e3;
}

static double ring_build_lmc(int n, int reps) {
    char spec[16384];
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(spec + off, sizeof spec - off, "%s127.0.%d.%d:11211", i ? "," : "", i / 250, i % 250 + 1);
    memcached_server_st *list = memcached_servers_parse(spec);
    double best = 1e18;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        memcached_st *mc = memcached_create(NULL);
        lmc_configure(mc);
        if (memcached_server_push(mc, list) != MEMCACHED_SUCCESS) die("ring lmc push");
        double t = now_ns() - t0;
        memcached_free(mc);
        if (t < best) best = t;
    }
    memcached_server_list_free(list);
    return best / 1e3;
}

/* ------------------------------------------------------------- mode: all */

/* Stored through both clients: should their placements differ, each still finds its keys. */
static void populate_single(elasticache_client *ec, memcached_st *mc, keyset_t *ks, size_t vlen) {
    char *v = xmalloc(vlen);
    memset(v, 'v', vlen);
    for (size_t k = 0; k < ks->n; k++) {
        if (populate_ours &&
            elasticache_set(ec, (const uint8_t *)ks->key[k], ks->len[k], (const uint8_t *)v, vlen, 0, 0) != 0)
            die("populate");
        if (populate_lmc && memcached_set(mc, ks->key[k], ks->len[k], v, vlen, 0, 0) != MEMCACHED_SUCCESS)
            die("populate (libmemcached)");
    }
    free(v);
}

static void mode_all(double scale) {
    int nodes = nservers < 4 ? nservers : 4;
    char params[128];
    snprintf(params, sizeof params, "\"nodes\":%d", nodes);
    elasticache_client *ec = ours_new(nodes);
    memcached_st *mc = lmc_new(nodes);
    raw_t *raw = raw_new(nodes, 64 * 1024);
    int disagree = 0;
    keyset_t hit = keyset_new("bench:hit", NKEYS, ec, mc, &disagree);
    printf("{\"suite\":\"c\",\"bench\":\"placement_check\",\"params\":{%s},\"impl\":\"libmemcached\",\"disagree\":%d,\"keys\":%d}\n",
           params, disagree, NKEYS);
    keyset_t miss = keyset_new("bench:miss", NKEYS, ec, mc, &disagree);
    keyset_t setk = keyset_new("bench:set", NKEYS, ec, mc, &disagree);
    populate_single(ec, mc, &hit, 100);
    static uint8_t into[64 * 1024];
    char *v100 = xmalloc(100), *v10k = xmalloc(10240);
    memset(v100, 's', 100);
    memset(v10k, 'S', 10240);
    /* Many short rounds: the box's latency mode changes (other processes, CPU
     * idle states), and every implementation must see the same mixture. */
    int rounds = 100;
    double rms = 3 * scale;

    single_t g = {.ec = ec, .mc = mc, .raw = raw, .ks = &hit, .vlen = 100, .expect_hit = 1, .into = into,
                  .into_cap = sizeof into};
    impl_t gi[] = {IMPL("raw", raw_get, &g), IMPL("ours", ours_get, &g), IMPL("ours_get_into", ours_get_into, &g),
                   IMPL("libmemcached", lmc_get, &g)};
    run_bench("get_hit", params, gi, 4, rounds, rms);

    single_t m = g;
    m.ks = &miss;
    m.expect_hit = 0;
    impl_t mi[] = {IMPL("raw", raw_get, &m), IMPL("ours", ours_get, &m), IMPL("libmemcached", lmc_get, &m)};
    run_bench("get_miss", params, mi, 3, rounds, rms);

    single_t s = g;
    s.ks = &setk;
    s.val = v100;
    s.vlen = 100;
    impl_t si[] = {IMPL("raw", raw_set, &s), IMPL("ours", ours_set, &s), IMPL("libmemcached", lmc_set, &s)};
    run_bench("set_100B", params, si, 3, rounds, rms);

    single_t s2 = s;
    s2.val = v10k;
    s2.vlen = 10240;
    impl_t si2[] = {IMPL("raw", raw_set, &s2), IMPL("ours", ours_set, &s2), IMPL("libmemcached", lmc_set, &s2)};
    run_bench("set_10KB", params, si2, 3, rounds, rms);

    /* Multi-get: 10, 100, 1000 keys over 1, 4, 16 nodes (100 over 4 is the headline). */
    int node_counts[] = {1, 4, 16};
    size_t key_counts[] = {10, 100, 1000};
    for (int a = 0; a < 3; a++) {
        int nn = node_counts[a];
        if (nn > nservers) continue;
        for (int b = 0; b < 3; b++) {
            multi_t mt;
            int dis = 0;
            multi_setup(&mt, nn, key_counts[b], 100, &dis);
            char pr[128];
            snprintf(pr, sizeof pr, "\"nodes\":%d,\"keys\":%zu,\"nodes_used\":%zu,\"placement_disagree\":%d", nn,
                     key_counts[b], mt.nodes_used, dis);
            impl_t mi2[] = {IMPL("raw", raw_mget, &mt), IMPL("ours", ours_mget, &mt), IMPL("libmemcached", lmc_mget, &mt)};
            run_bench("mget", pr, mi2, 3, rounds, rms);
            multi_teardown(&mt);
        }
    }

    /* Threads sharing one client (libmemcached: memcached_pool; raw: a socket set per thread). */
    enum { NTI = 4 };
    const char *timpl[NTI] = {"raw", "ours", "ours_client_per_thread", "libmemcached"};
    int tcounts[] = {1, 2, 4};
    double tput[3][NTI] = {{0}}, tcpu[3][NTI] = {{0}};
    size_t terr[3][NTI] = {{0}};
    int trounds = 6;
    for (int r = 0; r < trounds; r++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < NTI; b++) {
                int ii = (b + r) % NTI;
                double ops, cpu;
                size_t err;
                run_threads(timpl[ii], tcounts[a], 0.12 * scale, ec, mc, &hit, 100, &ops, &cpu, &err);
                tput[a][ii] += ops / trounds;
                tcpu[a][ii] += cpu / trounds;
                terr[a][ii] += err;
            }
    for (int a = 0; a < 3; a++)
        for (int ii = 0; ii < NTI; ii++)
            printf("{\"suite\":\"c\",\"bench\":\"threads_get\",\"params\":{\"nodes\":%d,\"threads\":%d},\"impl\":\"%s\","
                   "\"ops_per_s\":%.0f,\"cpu_us_per_op\":%.3f,\"errors\":%zu}\n",
                   nodes, tcounts[a], timpl[ii], tput[a][ii], tcpu[a][ii], terr[a][ii]);

    /* Ring build: a client over N servers (no connection is made). */
    int rn[] = {3, 30, 100, 300};
    for (int a = 0; a < 4; a++) {
        int reps = rn[a] >= 100 ? 5 : 20;
        printf("{\"suite\":\"c\",\"bench\":\"ring_build\",\"params\":{\"servers\":%d},\"impl\":\"ours\",\"best_us\":%.2f}\n",
               rn[a], ring_build_ours(rn[a], reps));
        if (rn[a] <= 100)
            printf("{\"suite\":\"c\",\"bench\":\"ring_build\",\"params\":{\"servers\":%d},\"impl\":\"libmemcached\",\"best_us\":%.2f}\n",
                   rn[a], ring_build_lmc(rn[a], reps));
        else
            printf("{\"suite\":\"c\",\"bench\":\"ring_build\",\"params\":{\"servers\":%d},\"impl\":\"libmemcached\",\"na\":\"1.1.4 aborts past 100 ketama servers\"}\n",
                   rn[a]);
    }
    fflush(stdout);
    keyset_free(&hit);
    keyset_free(&miss);
    keyset_free(&setk);
    raw_free(raw);
    memcached_free(mc);
    elasticache_client_free(ec);
    free(v100);
    free(v10k);
}

/* ------------------------------------------------------- mode: syscalls */

/* Set up, warm up (connect), then N operations: the driver runs this under
 * strace -c for two values of N and divides the difference. */
static void mode_syscalls(const char *impl, const char *op, long n) {
    populate_lmc = strcmp(impl, "libmemcached") == 0;
    populate_ours = !populate_lmc;
    int nodes = nservers < 4 ? nservers : 4;
    elasticache_client *ec = ours_new(nodes);
    memcached_st *mc = lmc_new(nodes);
    int dis;
    if (strcmp(op, "mget100") == 0) {
        multi_t mt;
        multi_setup(&mt, nodes, 100, 100, &dis);
        op_fn fn = strcmp(impl, "raw") == 0 ? raw_mget : strcmp(impl, "ours") == 0 ? ours_mget : lmc_mget;
        for (long i = 0; i < 3; i++) fn(&mt, (size_t)i);
        for (long i = 0; i < n; i++) fn(&mt, (size_t)i);
        multi_teardown(&mt);
    } else {
        raw_t *raw = raw_new(nodes, 64 * 1024);
        keyset_t ks = keyset_new("bench:hit", NKEYS, ec, mc, &dis);
        populate_single(ec, mc, &ks, 100);
        char v[100];
        memset(v, 's', sizeof v);
        single_t c = {.ec = ec, .mc = mc, .raw = raw, .ks = &ks, .vlen = 100, .expect_hit = 1, .val = v};
        int is_set = strcmp(op, "set") == 0;
        op_fn fn = strcmp(impl, "raw") == 0 ? (is_set ? raw_set : raw_get)
                   : strcmp(impl, "ours") == 0 ? (is_set ? ours_set : ours_get)
                                               : (is_set ? lmc_set : lmc_get);
        /* Warm every node's connection first, so connects are not counted. */
        for (long i = 0; i < NKEYS; i++) fn(&c, (size_t)i);
        for (long i = 0; i < n; i++) fn(&c, (size_t)i);
        keyset_free(&ks);
        raw_free(raw);
    }
    memcached_free(mc);
    elasticache_client_free(ec);
}

/* --------------------------------------------------------- mode: memory */

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t heap_bytes(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void mode_memory(const char *impl) {
    int nodes = nservers;
    enum { NCLIENTS = 40 };
    int ours = strcmp(impl, "ours") == 0;
    /* One key per node, so that one get per key opens one connection per node. */
    elasticache_client *probe = ours_new(nodes);
    char *node_key[MAX_NODES] = {0};
    int found = 0;
    for (int i = 0; found < nodes && i < 100000; i++) {
        char tmp[32], label[96];
        size_t ln;
        snprintf(tmp, sizeof tmp, "mem:%d", i);
        elasticache_server_for_key(probe, (const uint8_t *)tmp, strlen(tmp), label, sizeof label, &ln);
        int n = node_index_of(label);
        if (n >= 0 && !node_key[n]) {
            node_key[n] = strdup(tmp);
            found++;
        }
    }
    elasticache_client_free(probe);
    if (found < nodes) die("memory: no key for some node");

    malloc_trim(0);
    long rss0 = rss_kb();
    size_t heap0 = heap_bytes();
    void *clients[NCLIENTS];
    for (int c = 0; c < NCLIENTS; c++) clients[c] = ours ? (void *)ours_new(nodes) : (void *)lmc_new(nodes);
    long rss1 = rss_kb();
    size_t heap1 = heap_bytes();
    size_t errs = 0;
    for (int c = 0; c < NCLIENTS; c++)
        for (int n = 0; n < nodes; n++) {
            if (ours) {
                elasticache_value *v = NULL;
                uint32_t st = elasticache_get(clients[c], (const uint8_t *)node_key[n], strlen(node_key[n]), &v);
                if (st == 0) elasticache_value_free(v);
                else if (st != ELASTICACHE_STATUS_NOT_FOUND) errs++;
            } else {
                size_t len;
                uint32_t fl;
                memcached_return_t rc;
                char *v = memcached_get(clients[c], node_key[n], strlen(node_key[n]), &len, &fl, &rc);
                if (v) free(v);
                else if (rc != MEMCACHED_NOTFOUND) errs++;
            }
        }
    long rss2 = rss_kb();
    size_t heap2 = heap_bytes();
    printf("{\"suite\":\"c\",\"bench\":\"memory\",\"params\":{\"nodes\":%d,\"clients\":%d},\"impl\":\"%s\","
           "\"client_rss_kb\":%.2f,\"client_heap_kb\":%.2f,\"conn_rss_kb\":%.2f,\"conn_heap_kb\":%.2f,\"errors\":%zu}\n",
           nodes, NCLIENTS, impl, (double)(rss1 - rss0) / NCLIENTS, (double)(heap1 - heap0) / 1024.0 / NCLIENTS,
           (double)(rss2 - rss1) / (NCLIENTS * nodes), (double)(heap2 - heap1) / 1024.0 / (NCLIENTS * nodes), errs);
    for (int c = 0; c < NCLIENTS; c++) {
        if (ours) elasticache_client_free(clients[c]);
        else memcached_free(clients[c]);
    }
    for (int n = 0; n < nodes; n++) free(node_key[n]);
}

/* ------------------------------------------------------ mode: discovery */

static void mode_discovery(const char *endpoint) {
    double t0 = now_ns();
    elasticache_client *c = NULL;
    uint32_t st = elasticache_client_new(endpoint, NULL, &c);
    double t1 = now_ns();
    if (st != 0) {
        char msg[256] = "";
        elasticache_last_error_message(msg, sizeof msg, NULL);
        printf("{\"suite\":\"c\",\"bench\":\"discovery\",\"impl\":\"ours\",\"error\":\"%s\"}\n", elasticache_status_str(st));
        fprintf(stderr, "discovery: %s\n", msg);
        return;
    }
    elasticache_value *v = NULL;
    st = elasticache_get(c, (const uint8_t *)"cold:key", 8, &v);
    double t2 = now_ns();
    if (st == 0) elasticache_value_free(v);
    int ok = st == 0 || st == ELASTICACHE_STATUS_NOT_FOUND;
    printf("{\"suite\":\"c\",\"bench\":\"discovery\",\"impl\":\"ours\",\"client_new_us\":%.1f,\"first_get_us\":%.1f,\"errors\":%d}\n",
           (t1 - t0) / 1e3, (t2 - t1) / 1e3, ok ? 0 : 1);
    elasticache_client_free(c);
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: bench_c all|syscalls IMPL OP N|memory IMPL|discovery ENDPOINT");
    const char *mode = argv[1];
    if (strcmp(mode, "discovery") == 0) {
        if (argc < 3) die("discovery ENDPOINT");
        mode_discovery(argv[2]);
        return 0;
    }
    load_servers();
    if (strcmp(mode, "all") == 0) {
        const char *sc = getenv("BENCH_SCALE");
        mode_all(sc ? atof(sc) : 1.0);
    } else if (strcmp(mode, "syscalls") == 0 && argc >= 5) {
        mode_syscalls(argv[2], argv[3], atol(argv[4]));
    } else if (strcmp(mode, "threads") == 0 && argc >= 5) {
        /* One thread-scaling slice on its own (the driver counts its futex calls). */
        int nodes = nservers < 4 ? nservers : 4, dis;
        elasticache_client *ec = ours_new(nodes);
        memcached_st *mc = lmc_new(nodes);
        keyset_t ks = keyset_new("bench:hit", NKEYS, ec, mc, &dis);
        populate_single(ec, mc, &ks, 100);
        double ops, cpu;
        size_t err;
        run_threads(argv[2], atoi(argv[3]), atof(argv[4]), ec, mc, &ks, 100, &ops, &cpu, &err);
        printf("{\"suite\":\"c\",\"bench\":\"threads_slice\",\"impl\":\"%s\",\"threads\":%s,\"ops\":%.0f,\"errors\":%zu}\n",
               argv[2], argv[3], ops * atof(argv[4]), err);
        keyset_free(&ks);
        memcached_free(mc);
        elasticache_client_free(ec);
    } else if (strcmp(mode, "memory") == 0 && argc >= 3) {
        mode_memory(argv[2]);
    } else {
        die("unknown mode");
    }
    return 0;
}
