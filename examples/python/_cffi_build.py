"""The cffi builder for `elasticache._elasticache_cffi` (API mode), used by
setup.py through `cffi_modules`.

It compiles elasticache/_cdef.py's declarations against the real
include/elasticache.h, so a function that lost or gained a parameter, or whose
pointer types changed, fails the build instead of crashing at run time. The
module links to the stripped libelasticache.so that setup.py stages in
build/native/ and ships next to the module, found through an $ORIGIN rpath.
"""

import ast
import os

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
# setup.py's build_ext copies the header and the stripped library here before
# the module is compiled.
NATIVE_DIR = os.path.join(HERE, "build", "native")


def read_cdef():
    """CDEF from elasticache/_cdef.py, read without importing the package
    (importing it loads the library)."""
    path = os.path.join(HERE, "elasticache", "_cdef.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["CDEF"]:
            return ast.literal_eval(node.value)
    raise RuntimeError(f"{path} defines no CDEF")


# The path of the libelasticache.so this process loaded, for
# elasticache.library_path: dladdr on one of its functions names the file the
# dynamic loader actually mapped, wherever the rpath led.
LOADED_PATH_CDEF = "const char *_ec_loaded_library_path(void);"
LOADED_PATH_SOURCE = """
static const char *_ec_loaded_library_path(void) {
    Dl_info info;
    if (dladdr((void *)&elasticache_version, &info) && info.dli_fname)
        return info.dli_fname;
    return "";
}
"""

# The header read with uint8_t spelled char, as _cdef.py spells it (the same
# ABI; cffi then takes `bytes` for those buffers): the header uses uint8_t for
# byte buffers only, and <stdint.h> is already in, so nothing else changes.
PREAMBLE = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#define uint8_t char
#include "elasticache.h"
#undef uint8_t
"""

ffibuilder = cffi.FFI()
ffibuilder.cdef(read_cdef() + LOADED_PATH_CDEF)
ffibuilder.set_source(
    "elasticache._elasticache_cffi",
    PREAMBLE + LOADED_PATH_SOURCE,
    include_dirs=[NATIVE_DIR],
    library_dirs=[NATIVE_DIR],
    # dladdr lives in libdl before glibc 2.34 (an empty stub after).
    libraries=["elasticache", "dl"],
    # DT_RPATH rather than DT_RUNPATH: searched before LD_LIBRARY_PATH, so a
    # libelasticache.so elsewhere on the system never replaces the bundled one.
    extra_link_args=["-Wl,-rpath,$ORIGIN", "-Wl,--disable-new-dtags"],
    # Any disagreement with the header that C notices is an error; no debug
    # information (Python's CFLAGS say -g) in a shipped binary.
    extra_compile_args=["-g0", "-Werror=incompatible-pointer-types", "-Werror=implicit-function-declaration",
                        "-Werror=int-conversion", "-Werror=pointer-sign"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
