"""State the Client's modules share: `ffi` and `lib` with every type and
function parsed at import, the library calls and statuses the hot paths bind
as module globals, and the per-thread output buffers."""

import threading

from . import _native as n

ffi, lib, NULL = n.ffi, n.lib, n.NULL

# cffi parses a C type string the first time it meets it, and keeps a few
# references to small ints from it: parse every type the calls use at import,
# so that no call changes a refcount (pylibmc's own test_refcounts checks it).
_FFI_TYPES = (
    "char **", "char *[]", "char[]", "const char *[]", "elasticache_client *",
    "elasticache_client **", "elasticache_config **", "elasticache_lease **",
    "elasticache_lease *[]", "elasticache_metrics **", "elasticache_multi **",
    "elasticache_node_metrics *", "elasticache_options **", "elasticache_packed **",
    "elasticache_stats **", "elasticache_value **", "size_t *", "size_t[]", "uint16_t *",
    "uint32_t *", "uint32_t[]", "uint64_t *", "uint64_t[]", "uintptr_t", "uintptr_t *",
    "uintptr_t[]",
)  # every type string the package hands to ffi (tests/test_native.py checks the list)
for _t in _FFI_TYPES:
    ffi.typeof(_t)
# ABI mode resolves (and parses the type of) each function on first use: all now.
for _t in dir(lib):
    try:
        getattr(lib, _t)
    except AttributeError:  # declared, but absent from an older library
        pass
del _t

_SCRATCH_START = 16 * 1024

_tls = threading.local()

# Bound once: the hot paths read these as module globals, with no attribute
# lookup on lib, ffi or _native per call.
_get_into = lib.elasticache_get_into
_set = lib.elasticache_set
_get_multi_packed = lib.elasticache_get_multi_packed
_set_multi_packed = lib.elasticache_set_multi_packed
_delete_multi_packed = lib.elasticache_delete_multi_packed
_packed_free = lib.elasticache_packed_free
_unpack, _buffer, _new = ffi.unpack, ffi.buffer, ffi.new
_INVALID_ARGUMENT, _NOT_FOUND, _BUFFER_TOO_SMALL = n.INVALID_ARGUMENT, n.NOT_FOUND, n.BUFFER_TOO_SMALL
# Array types resolved once at import: a type's first use makes cffi build and
# cache it, which would otherwise happen inside some caller's first call.
_U32S = ffi.typeof("uint32_t[]")
_SIZES = ffi.typeof("size_t[]")

# The C client of a Client whose discovery failed under ignore_exc: every
# call on it answers INVALID_ARGUMENT at once, and the error path retries.
_NO_CLIENT = ffi.cast("elasticache_client *", 0)
_UNSET = 0xFFFFFFFF  # a per-key status the library did not write


class _Scratch:
    """Per-thread output buffers for get_into (never shared between threads)."""

    __slots__ = ("buf", "view", "cap", "plen", "pflags", "pcas", "pval", "pnum", "big", "ppacked")

    def __init__(self):
        self.big = {}  # keys last seen with a value over _SCRATCH_MAX (see _get_large)
        self.cap = _SCRATCH_START
        self.buf = ffi.new("char[]", self.cap)
        self.view = ffi.buffer(self.buf)  # sliced to bytes in one step
        self.ppacked = ffi.new("elasticache_packed **")
        self.plen = ffi.new("size_t *")
        self.pflags = ffi.new("uint32_t *")
        self.pcas = ffi.new("uint64_t *")
        self.pval = ffi.new("elasticache_value **")
        self.pnum = ffi.new("uint64_t *")


def _scratch():
    try:
        return _tls.s
    except AttributeError:
        s = _tls.s = _Scratch()
        return s
