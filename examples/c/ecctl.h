/* ecctl: shared declarations of the subcommands (one file each). */
#ifndef ECCTL_H
#define ECCTL_H

#include "elasticache.h"

/* Print "ecctl: WHAT: <library's last error message>" on stderr. */
void ecctl_print_error(const char *what, uint32_t status);

/* Set option NAME=VALUE on OPTS; on failure print the error and return non-zero. */
int ecctl_set_option(elasticache_options *opts, const char *name, const char *value);

/* The TLS flags shared by discover and the operations: --tls, --tls-ca FILE,
 * --tls-cert FILE, --tls-key FILE, --tls-server-name NAME,
 * --tls-insecure-skip-verify, --serverless. VAL is the next argument or NULL.
 * Returns -1 when ARG is not one of them, 0 when it was applied (*used is the
 * number of arguments consumed: 1 or 2), 1 on an error (printed). */
int ecctl_tls_flag(elasticache_options *opts, const char *arg, const char *val, int *used);

/* Subcommands: each gets argv after the subcommand name and returns the exit code. */
int ecctl_discover(int argc, char **argv);
int ecctl_route(int argc, char **argv);
/* Print the library's events live until interrupted. */
int ecctl_watch(int argc, char **argv);
/* get, set, delete, incr, stats (op is the subcommand's name). */
int ecctl_op(const char *op, int argc, char **argv);

#endif
