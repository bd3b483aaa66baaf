/* ecctl route: placeholder until the ring's C API lands. */
#include <stdio.h>

#include "ecctl.h"

int ecctl_route(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ecctl: route is not implemented yet\n");
    return 2;
}
