"""Leases against cache stampedes and invalidation that serves stale values.

`LeaseMixin` adds `get_or_lease`, `invalidate` and `get_or_set_leased` to
`elasticache.Client`, which supplies `_h` (the owning client pointer),
`serialize`, `_decode` and `set`.
The library declarations they use are in `_cdef.py` with all the others.
"""

import collections
import threading
import time as _time

from . import _native as n
from .exceptions import BadKeyProvided, CacheMiss, error_for

ffi, lib = n.ffi, n.lib

# The library's elasticache_lease_state numbers.
MISS, WAIT, HIT, REFRESH, STALE = "miss", "wait", "hit", "refresh", "stale"
_STATES = (MISS, WAIT, HIT, REFRESH, STALE)

Lease = collections.namedtuple("Lease", "state value stale protected cas ttl")
Lease.__doc__ = """The answer of `get_or_lease`.

state: "hit" (use value), "refresh" (use value; you won the right to recompute
and `set` it), "stale" (an invalidated value while someone else recomputes),
"miss" (no value; you hold the lease: compute and `set`), "wait" (no value;
someone else holds the lease). value: the decoded value or None. stale: the
value was invalidated. protected: False on a node without memcached's meta
protocol (then every miss is "miss"). cas: the item's cas id (0 when none).
ttl: remaining seconds (-1 none, -2 unknown)."""
_UNPROTECTED_MISS = Lease(MISS, None, False, False, 0, -2)


_get_or_lease = lib.elasticache_get_or_lease
_state, _data, _len = lib.elasticache_lease_get_state, lib.elasticache_lease_data, lib.elasticache_lease_len
_flags, _protected, _free = lib.elasticache_lease_flags, lib.elasticache_lease_protected, lib.elasticache_lease_free
_outs = threading.local()


def _out_lease():
    # One out-pointer per thread, reused: each call overwrites it.
    try:
        return _outs.p
    except AttributeError:
        _outs.p = ffi.new("elasticache_lease **")
        return _outs.p


def _bytes_key(key):
    if isinstance(key, str):
        key = key.encode("utf-8")
    elif not isinstance(key, bytes):
        raise TypeError(f"key must be bytes or str, not {type(key).__name__}")
    if not key:
        raise BadKeyProvided("empty key")
    return key


class LeaseMixin:
    """Lease methods for `elasticache.Client`."""

    def get_or_lease(self, key, lease_ttl=30, recache_before=0):
        """Read `key` and take a lease when it is missing (for `lease_ttl`
        seconds) or when it expires within `recache_before` seconds, in one
        round trip. Returns a `Lease`; see its states."""
        key = _bytes_key(key)
        out = ffi.new("elasticache_lease **")
        rc = lib.elasticache_get_or_lease(self._h, key, len(key), lease_ttl, recache_before, out)
        if rc:
            # Under ignore_exc a failed node is an unprotected miss: the caller computes.
            return self._failed(rc, f"get_or_lease({key!r})", _UNPROTECTED_MISS)
        lease = out[0]
        try:
            return self._lease_from(lease)
        finally:
            lib.elasticache_lease_free(lease)

    def _lease_brief(self, key, lease_ttl, recache_before):
        """(state, value, protected) of `get_or_lease`, with the fewest
        library calls: Django's get_or_set needs no more on its hot path."""
        key = _bytes_key(key)
        out = _out_lease()
        rc = _get_or_lease(self._h, key, len(key), lease_ttl, recache_before, out)
        if rc:
            lease = self._failed(rc, f"get_or_lease({key!r})", _UNPROTECTED_MISS)
            return lease.state, lease.value, lease.protected
        lease = out[0]
        try:
            state = _STATES[_state(lease)]
            data = _data(lease)
            if data == ffi.NULL:
                return state, None, state == WAIT or bool(_protected(lease))
            try:
                return state, self._decode(ffi.unpack(data, _len(lease)), _flags(lease)), True
            except CacheMiss:
                return (MISS if state == REFRESH else (WAIT if state in (HIT, STALE) else state)), None, True
        finally:
            _free(lease)

    def _lease_from(self, lease):
        state = _STATES[lib.elasticache_lease_get_state(lease)]
        value = None
        if lib.elasticache_lease_has_value(lease):
            data = ffi.unpack(lib.elasticache_lease_data(lease), lib.elasticache_lease_len(lease))
            try:
                value = self._decode(data, lib.elasticache_lease_flags(lease))
            except CacheMiss:
                # An unreadable value is treated as absent; whoever won may recompute it.
                state = MISS if state == REFRESH else (WAIT if state in (HIT, STALE) else state)
        return Lease(state, value, bool(lib.elasticache_lease_stale(lease)),
                     bool(lib.elasticache_lease_protected(lease)),
                     lib.elasticache_lease_cas(lease), lib.elasticache_lease_ttl(lease))

    def get_or_lease_multi(self, keys, lease_ttl=30, recache_before=0):
        """`get_or_lease` for many keys in one pipelined round trip per node:
        {key: Lease}. A bad key or argument raises; a key whose node failed is
        left out (as get_multi does, which raises only when every key failed,
        and never under ignore_exc)."""
        keys = list(keys)
        raw = [_bytes_key(k) for k in keys]
        count = len(raw)
        if not count:
            return {}
        bufs = [ffi.from_buffer(k) for k in raw]  # alive until the call returns
        ptrs = ffi.new("const char *[]", bufs)
        lens = ffi.new("size_t[]", [len(k) for k in raw])
        leases = ffi.new("elasticache_lease *[]", count)
        statuses = ffi.new("uint32_t[]", count)
        rc = lib.elasticache_get_or_lease_multi(self._h, ptrs, lens, count, lease_ttl, recache_before,
                                                leases, statuses)
        caller = next((st for st in statuses if st in (n.BAD_KEY, n.INVALID_ARGUMENT)), 0) \
            if rc else 0
        if caller:
            for i in range(count):
                lib.elasticache_lease_free(leases[i])
            raise error_for(caller, what=f"get_or_lease_multi({count} keys)")
        out = {}
        try:
            for i, key in enumerate(keys):
                if leases[i] != ffi.NULL:
                    out[key] = self._lease_from(leases[i])
        finally:
            for i in range(count):
                lib.elasticache_lease_free(leases[i])
        if rc and not out:
            return self._failed(rc, f"get_or_lease_multi({count} keys)", {})
        return out

    def invalidate(self, key, ttl=0):
        """Mark `key` stale instead of deleting it: lease readers keep getting
        the old value while one of them recomputes it. `ttl` (seconds, 0 keeps
        the item's) bounds how long the stale value lives. True, or False when
        the key is missing. A plain delete on nodes without the meta protocol."""
        key = _bytes_key(key)
        rc = lib.elasticache_invalidate(self._h, key, len(key), ttl)
        if rc == 0:
            return True
        if rc == n.NOT_FOUND:
            return False
        return self._failed(rc, f"invalidate({key!r})", False)

    def get_or_set_leased(self, key, default, time=0, lease_ttl=30, recache_before=0,
                          wait=None, poll=0.05):
        """The value of `key`; on a miss exactly one caller at a time runs
        `default()` (a callable) and stores its result for `time` seconds,
        while the others get the stale value or wait up to `wait` seconds
        (default: `lease_ttl`) for it, then compute it themselves without
        storing rather than fail. A `default` that raises on a miss drops the
        lease, so the others need not wait for it."""
        deadline = None
        while True:
            lease = self.get_or_lease(key, lease_ttl, recache_before)
            if lease.state in (HIT, STALE):
                return lease.value
            if lease.state in (MISS, REFRESH):
                try:
                    value = default()
                except BaseException:
                    if lease.state == MISS and lease.protected:
                        self.delete(key)
                    raise
                self.set(key, value, time)
                return value
            now = _time.monotonic()
            if deadline is None:
                deadline = now + (lease_ttl if wait is None else wait)
            if now >= deadline:
                return default()
            _time.sleep(poll)
