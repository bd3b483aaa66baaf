/* ecctl discover ENDPOINT [--timeout-ms N] [--ignore-cluster-errors] [TLS flags] */
#include <stdio.h>
#include <string.h>

#include "ecctl.h"

static const char *or_dash(const char *s) { return (s && *s) ? s : "-"; }

int ecctl_discover(int argc, char **argv) {
    const char *endpoint = NULL;
    elasticache_options *opts = NULL;
    elasticache_config *cfg = NULL;
    int rc = 2;
    uint32_t st = elasticache_options_new(&opts);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("options", st);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (ecctl_set_option(opts, "connect_timeout", v) || ecctl_set_option(opts, "io_timeout", v)) goto out;
        } else if (strcmp(argv[i], "--ignore-cluster-errors") == 0) {
            if (ecctl_set_option(opts, "ignore_cluster_errors", "true")) goto out;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            int used = 0;
            int r = ecctl_tls_flag(opts, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used);
            if (r == 0) {
                i += used - 1;
                continue;
            }
            if (r < 0) fprintf(stderr, "ecctl discover: unknown option '%s'\n", argv[i]);
            goto out;
        } else if (!endpoint) {
            endpoint = argv[i];
        } else {
            fprintf(stderr, "ecctl discover: more than one endpoint given\n");
            goto out;
        }
    }
    if (!endpoint) {
        fprintf(stderr, "usage: ecctl discover ENDPOINT [--timeout-ms N] [--ignore-cluster-errors] [--tls] [--tls-ca FILE]\n"
                        "       [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME] [--tls-insecure-skip-verify] [--serverless]\n");
        goto out;
    }
    st = elasticache_discover(endpoint, opts, &cfg);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("discover", st);
        rc = 1;
        goto out;
    }
    if (elasticache_config_is_serverless(cfg))
        printf("serverless\n");
    else
        printf("version %llu\n", (unsigned long long)elasticache_config_version(cfg));
    for (size_t i = 0; i < elasticache_config_node_count(cfg); i++) {
        const char *host = NULL, *ip = NULL;
        uint16_t port = 0;
        st = elasticache_config_node(cfg, i, &host, &ip, &port);
        if (st != ELASTICACHE_STATUS_OK) {
            ecctl_print_error("config", st);
            rc = 1;
            goto out;
        }
        printf("%s %s %u\n", or_dash(host), or_dash(ip), (unsigned)port);
    }
    rc = 0;
out:
    elasticache_config_free(cfg);
    elasticache_options_free(opts);
    return rc;
}
