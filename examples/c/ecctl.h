/* ecctl: shared declarations of the subcommands (one file each). */
#ifndef ECCTL_H
#define ECCTL_H

#include "elasticache.h"

/* Print "ecctl: WHAT: <library's last error message>" on stderr. */
void ecctl_print_error(const char *what, uint32_t status);

/* Set option NAME=VALUE on OPTS; on failure print the error and return non-zero. */
int ecctl_set_option(elasticache_options *opts, const char *name, const char *value);

/* Subcommands: each gets argv after the subcommand name and returns the exit code. */
int ecctl_discover(int argc, char **argv);
int ecctl_route(int argc, char **argv);
/* get, set, delete, incr, stats (op is the subcommand's name). */
int ecctl_op(const char *op, int argc, char **argv);

#endif
