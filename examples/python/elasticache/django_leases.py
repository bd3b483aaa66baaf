"""`get_or_set` with stampede protection for the Django backends.

Django's own `get_or_set` is get, then (on a miss) compute and add: when a
hot key expires, every worker that misses computes it at once. Here it is
one `get_or_lease` (memcached's meta protocol, see docs/meta-protocol.md):
for a missing or expiring key exactly one caller runs `default`; the others
get the value still there (early refresh, `LEASE_RECACHE`; a value kept past
its timeout, `LEASE_GRACE`; an invalidated one) or poll for the new one for
at most `LEASE_WAIT` seconds, then compute it themselves (and store it, so a
holder that died does not hold everyone up) rather than fail.

OPTIONS (all optional, taken out before the behaviors are read):
- LEASES (True): False gives Django's plain get_or_set.
- LEASE_TTL (30): seconds a lease holder has to store; a holder that dies
  mid-compute is replaced by the next caller after this.
- LEASE_WAIT (LEASE_TTL): the longest a caller waits for another's compute.
- LEASE_RECACHE (0.1): within this fraction of its timeout before expiry, the
  first reader refreshes the key while the others keep reading it (whole
  seconds: a timeout under 10 s has none, unless LEASE_GRACE).
- LEASE_GRACE (0): seconds a value stored by get_or_set outlives its timeout,
  served to get_or_set callers while one of them recomputes it
  (stale-while-revalidate). Plain `get` reads it during the grace too.
- INVALIDATE_ON_DELETE (False): `delete` marks the key stale for LEASE_TTL
  seconds (`md I`) instead of removing it: get_or_set callers get the old
  value while one recomputes; plain `get` reads the old value meanwhile.

While a lease is out on a missing key the server holds an empty placeholder
there, which a plain `get` reads as b"" (see docs/meta-protocol.md); a
`default` that raises drops it at once. On a node without the meta protocol
every miss computes, as Django's get_or_set (logged once per node).
"""

import time as _time

from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError

import elasticache
from elasticache._meta import HIT, MISS, REFRESH, STALE

LEASE_OPTIONS = ("LEASES", "LEASE_TTL", "LEASE_WAIT", "LEASE_RECACHE", "LEASE_GRACE", "INVALIDATE_ON_DELETE")
_MAX = 30 * 24 * 3600  # the library's longest lease and TTL
# Waiters poll: soon at first, then at most every 20 ms (a round trip each).
_POLL_FIRST, _POLL_MAX = 0.002, 0.02


class LeaseSettings:
    """The lease OPTIONS of one backend, checked."""

    def __init__(self, options=None):
        o = options or {}
        self.enabled = bool(o.get("LEASES", True))
        self.ttl = self._number(o, "LEASE_TTL", 30, 1, _MAX, int)
        self.wait = self._number(o, "LEASE_WAIT", self.ttl, 0, _MAX, float)
        self.recache = self._number(o, "LEASE_RECACHE", 0.1, 0, 1, float)
        self.grace = self._number(o, "LEASE_GRACE", 0, 0, _MAX, int)
        self.invalidate_on_delete = bool(o.get("INVALIDATE_ON_DELETE", False))

    @staticmethod
    def _number(o, name, default, lo, hi, kind):
        v = o.get(name, default)
        try:
            if isinstance(v, bool):
                raise TypeError
            v = kind(v)
        except (TypeError, ValueError):
            raise InvalidCacheBackendError(f"the cache's OPTIONS: {name} must be a number, not {v!r}") from None
        if not lo <= v <= hi:
            raise InvalidCacheBackendError(f"the cache's OPTIONS: {name} {v} is not between {lo} and {hi}")
        return v


def take_lease_options(params):
    """(params without the lease OPTIONS, LeaseSettings). OPTIONS that held
    nothing else become absent, so the backend's defaults stay as before."""
    options = params.get("OPTIONS")
    if not options or not any(k in options for k in LEASE_OPTIONS):
        return params, LeaseSettings()
    rest = {k: v for k, v in options.items() if k not in LEASE_OPTIONS}
    settings = LeaseSettings(options)
    params = dict(params)
    if rest:
        params["OPTIONS"] = rest
    else:
        del params["OPTIONS"]
    return params, settings


def _value(default):
    return default() if callable(default) else default


class LeasedMethods:
    """Mixin for a Django memcached backend whose `_cache` is an
    `elasticache.Client`: get_or_set through leases, delete optionally as
    invalidation."""

    _leases = LeaseSettings()

    def _lease_times(self, timeout):
        """(exptime to store with, recache_before) for a Django timeout."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return 0, 0
        if int(timeout) <= 0:
            return self.get_backend_timeout(timeout), 0
        s = self._leases
        recache = int(timeout * s.recache)
        if s.grace:
            # memcached's R wins when the remaining TTL is below it: one
            # second more than the grace makes the first reader at the
            # logical expiry the one that refreshes.
            return self.get_backend_timeout(timeout + s.grace), min(_MAX, s.grace + recache + 1)
        return self.get_backend_timeout(timeout), min(_MAX, recache)

    def _store_leased(self, client, key, value, exptime):
        try:
            client.set(key, value, exptime)
        except elasticache.TooBig:
            client.delete(key)  # no stale value (nor our placeholder) left behind
            raise

    def _compute_and_store(self, client, key, default, exptime, state, protected):
        try:
            value = _value(default)
        except BaseException:
            if state is MISS and protected:
                # Drop our placeholder: the others would wait LEASE_TTL for it.
                try:
                    client.delete(key)
                except elasticache.Error:
                    pass
            raise
        self._store_leased(client, key, value, exptime)
        return value

    def get_or_set(self, key, default, timeout=DEFAULT_TIMEOUT, version=None):
        s = self._leases
        if not s.enabled:
            return super().get_or_set(key, default, timeout, version)
        key = self.make_and_validate_key(key, version=version)
        exptime, recache = self._lease_times(timeout)
        client = self._cache
        deadline = None
        poll = _POLL_FIRST
        while True:
            state, value, protected = client._lease_brief(key, s.ttl, recache)
            if state is HIT or state is STALE:
                return value
            if state is MISS or state is REFRESH:
                return self._compute_and_store(client, key, default, exptime, state, protected)
            # Another caller computes it.
            if not callable(default):
                return default  # nothing to wait for: the value is at hand
            now = _time.monotonic()
            if deadline is None:
                deadline = now + s.wait
            if now >= deadline:
                value = default()
                self._store_leased(client, key, value, exptime)
                return value
            _time.sleep(min(poll, deadline - now))
            poll = min(poll * 2, _POLL_MAX)

    def delete(self, key, version=None):
        if not self._leases.invalidate_on_delete:
            return super().delete(key, version)
        key = self.make_and_validate_key(key, version=version)
        return bool(self._cache.invalidate(key, self._leases.ttl))

    def delete_many(self, keys, version=None):
        if not self._leases.invalidate_on_delete:
            return super().delete_many(keys, version)
        for key in keys:
            self.delete(key, version)
