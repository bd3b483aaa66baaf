"""Loading libelasticache and declaring the C functions the binding calls.

Two ways to reach the library, with the same `ffi` and `lib` names and calls:

- API mode (an installed wheel): `_elasticache_cffi`, compiled by the wheel
  build against include/elasticache.h and linked to the libelasticache.so
  shipped beside it (rpath $ORIGIN). A call is a direct C call instead of a
  libffi one, and importing parses no C declarations.
- ABI mode (the source tree, an editable install, or ELASTICACHE_LIBRARY):
  cffi parses `CDEF` and dlopens the library; no compiler anywhere.

Both release the GIL around every foreign call.
"""

import os

from ._cdef import CDEF

# Status codes (enum elasticache_status; fixed numbers, part of the ABI).
OK = 0
NOT_FOUND = 1
NOT_STORED = 2
EXISTS = 3
BAD_KEY = 4
TOO_BIG = 5
TIMEOUT = 6
CONNECTION = 7
PROTOCOL = 8
SERVER_ERROR = 9
CLIENT_ERROR = 10
DISCOVERY = 11
NO_SERVERS = 12
INVALID_ARGUMENT = 13
PANIC = 14
HOST_LOOKUP = 15
TLS = 16
BUFFER_TOO_SMALL = 17
SERVER_DEAD = 18

LIBRARY_NAME = "libelasticache.so"
HERE = os.path.dirname(os.path.abspath(__file__))


def _abi_candidates(env):
    """(path, why) pairs in the order ABI mode tries them."""
    if env:
        path = os.path.join(env, LIBRARY_NAME) if os.path.isdir(env) else env
        # An explicit choice is final: falling back would hide a typo.
        return [(path, "ELASTICACHE_LIBRARY")]
    return [
        (os.path.join(HERE, LIBRARY_NAME), "bundled with the package"),
        # Running from the source tree: examples/python/elasticache -> repo root.
        (os.path.normpath(os.path.join(HERE, "..", "..", "..", "target", "release", LIBRARY_NAME)),
         "the repository's target/release"),
        (LIBRARY_NAME, "the system library path"),
    ]


def _load():
    """(ffi, lib, library path, mode)."""
    tried = []
    env = os.environ.get("ELASTICACHE_LIBRARY")
    if env:
        tried.append("  the compiled module: not used while ELASTICACHE_LIBRARY is set")
    else:
        try:
            from . import _elasticache_cffi as compiled
        except ImportError as e:  # not built (source tree), or its library is missing
            tried.append(f"  the compiled module elasticache._elasticache_cffi: {e}")
        else:
            path = compiled.ffi.string(compiled.lib._ec_loaded_library_path()).decode()
            return compiled.ffi, compiled.lib, os.path.abspath(path), "api"

    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    for path, why in _abi_candidates(env):
        if os.sep in path and not os.path.exists(path):
            tried.append(f"  {path} ({why}): no such file")
            continue
        try:
            return ffi, ffi.dlopen(path), path, "abi"
        except OSError as e:
            tried.append(f"  {path} ({why}): {e}")
    raise ImportError(
        "elasticache: cannot load the C library libelasticache.so. Tried:\n"
        + "\n".join(tried)
        + "\nInstall the wheel (`make wheel && pip install dist/*.whl`), build the library with "
        "`cargo build --release` in the repository, or set ELASTICACHE_LIBRARY to the path of "
        "libelasticache.so."
    )


ffi, lib, library_path, mode = _load()
NULL = ffi.NULL


def last_error_message():
    """This thread's last error message from the library ('' when none)."""
    buf = ffi.new("char[]", 512)
    n = ffi.new("size_t *")
    rc = lib.elasticache_last_error_message(buf, 512, n)
    if rc == BUFFER_TOO_SMALL:
        buf = ffi.new("char[]", n[0] + 1)
        lib.elasticache_last_error_message(buf, n[0] + 1, n)
    return ffi.string(buf).decode("utf-8", "replace")


def status_str(status):
    return ffi.string(lib.elasticache_status_str(status)).decode()


def version():
    return ffi.string(lib.elasticache_version()).decode()
