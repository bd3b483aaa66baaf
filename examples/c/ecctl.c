/*
 * ecctl: an operator's tool for ElastiCache memcached clusters, and the C
 * example of the elasticache library. Each subcommand lives in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "ecctl.h"

void ecctl_print_error(const char *what, uint32_t status) {
    char msg[1024];
    size_t n = 0;
    elasticache_last_error_message(msg, sizeof msg, &n);
    fprintf(stderr, "ecctl: %s: %s (%s)\n", what, msg, elasticache_status_str(status));
}

int ecctl_set_option(elasticache_options *opts, const char *name, const char *value) {
    uint32_t st = elasticache_options_set(opts, name, value);
    if (st != ELASTICACHE_STATUS_OK) {
        ecctl_print_error("option", st);
        return 1;
    }
    return 0;
}

int ecctl_tls_flag(elasticache_options *opts, const char *arg, const char *val, int *used) {
    static const struct {
        const char *flag;
        const char *option;
    } with_value[] = {
        {"--tls-ca", "tls_ca_file"},
        {"--tls-cert", "tls_cert_file"},
        {"--tls-key", "tls_key_file"},
        {"--tls-server-name", "tls_server_name"},
    };
    *used = 1;
    if (strcmp(arg, "--tls") == 0) return ecctl_set_option(opts, "tls", "true");
    if (strcmp(arg, "--tls-insecure-skip-verify") == 0) {
        return ecctl_set_option(opts, "tls", "true") || ecctl_set_option(opts, "tls_insecure_skip_verify", "true");
    }
    if (strcmp(arg, "--serverless") == 0) return ecctl_set_option(opts, "serverless", "true");
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++) {
        if (strcmp(arg, with_value[i].flag) != 0) continue;
        if (!val) {
            fprintf(stderr, "ecctl: %s needs a value\n", arg);
            return 1;
        }
        *used = 2;
        /* A TLS file or name only makes sense with TLS on. */
        return ecctl_set_option(opts, "tls", "true") || ecctl_set_option(opts, with_value[i].option, val);
    }
    return -1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: ecctl COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  discover ENDPOINT [--timeout-ms N] [--ignore-cluster-errors] [TLS flags]\n"
            "  watch ENDPOINT [--interval-ms N] [--ignore-cluster-errors] [TLS flags]\n"
            "      print cluster events (nodes added/removed, ejected, revived...) live until interrupted\n"
            "      print the cluster's config version (or 'serverless') and one line per node:\n"
            "      HOST IP PORT\n"
            "  route [--distribution modula|ketama|ketama_weighted|rendezvous] [--hash NAME]\n"
            "        [--weights W1,W2,...] --servers HOST:PORT,... [KEY...]\n"
            "      print KEY HOST:PORT for each key (keys from stdin, one per line, if none given)\n"
            "  get KEY | set KEY VALUE [--exptime N] [--flags N] | delete KEY | incr KEY [DELTA] | stats [ARG]\n"
            "      each with --endpoint HOST:PORT (discovery) or --servers HOST:PORT,... and route's\n"
            "      placement options; get writes the value to stdout, exit 0 on a hit, 1 on a miss,\n"
            "      2 or more on an error\n"
            "  TLS flags (discover and the operations): --tls, --tls-ca FILE, --tls-cert FILE,\n"
            "      --tls-key FILE, --tls-server-name NAME, --tls-insecure-skip-verify (testing only),\n"
            "      --serverless (an ElastiCache Serverless endpoint: one TLS node)\n"
            "  version\n"
            "      print the library version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "discover") == 0) return ecctl_discover(argc - 2, argv + 2);
    if (strcmp(cmd, "route") == 0) return ecctl_route(argc - 2, argv + 2);
    if (strcmp(cmd, "watch") == 0) return ecctl_watch(argc - 2, argv + 2);
    if (strcmp(cmd, "get") == 0 || strcmp(cmd, "set") == 0 || strcmp(cmd, "delete") == 0 ||
        strcmp(cmd, "incr") == 0 || strcmp(cmd, "stats") == 0)
        return ecctl_op(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0) {
        printf("ecctl %s (library %s)\n", ELASTICACHE_VERSION, elasticache_version());
        return 0;
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "ecctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
