/*
 * Hash oracle: libmemcached's own hash functions (memcached_generate_hash_value,
 * the public C API of Debian's libmemcached 1.1.4).
 *
 * stdin: one key per line, hex-encoded (an empty line is the empty key).
 * stdout: per key, one line of 11 decimal u32 values in memcached_hash_t order
 *         (default, md5, crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh,
 *         murmur, jenkins, murmur3). hsieh is not built into this libmemcached
 *         (the call returns a constant); the test ignores that column.
 *
 * Build: cc -O2 -o hash_oracle hash_oracle.c -lmemcached
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char *key = NULL;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n % 2) {
            fprintf(stderr, "odd hex length\n");
            return 2;
        }
        key = realloc(key, (size_t)n / 2 + 1);
        for (ssize_t i = 0; i < n / 2; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "bad hex\n");
                return 2;
            }
            key[i] = (char)(hi * 16 + lo);
        }
        for (int a = 0; a <= (int)MEMCACHED_HASH_MURMUR3; a++) {
            uint32_t h = memcached_generate_hash_value(key, (size_t)n / 2, (memcached_hash_t)a);
            printf(a ? " %u" : "%u", h);
        }
        putchar('\n');
    }
    free(line);
    free(key);
    return 0;
}
