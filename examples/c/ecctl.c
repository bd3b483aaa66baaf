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

static void usage(FILE *out) {
    fprintf(out,
            "usage: ecctl COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  discover ENDPOINT [--timeout-ms N] [--ignore-cluster-errors]\n"
            "      print the cluster's config version and one line per node: HOST IP PORT\n"
            "  route [--distribution modula|ketama|ketama_weighted|rendezvous] [--hash NAME]\n"
            "        [--weights W1,W2,...] --servers HOST:PORT,... [KEY...]\n"
            "      print KEY HOST:PORT for each key (keys from stdin, one per line, if none given)\n"
            "  get KEY | set KEY VALUE [--exptime N] [--flags N] | delete KEY | incr KEY [DELTA] | stats [ARG]\n"
            "      each with --endpoint HOST:PORT (discovery) or --servers HOST:PORT,... and route's\n"
            "      placement options; get writes the value to stdout, exit 0 on a hit, 1 on a miss,\n"
            "      2 or more on an error\n"
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
