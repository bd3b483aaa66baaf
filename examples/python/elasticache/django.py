"""Django cache backend for ElastiCache, a drop-in for django-elasticache.

    CACHES = {
        "default": {
            "BACKEND": "elasticache.django.ElastiCache",   # or django_elasticache.memcached.ElastiCache
            "LOCATION": "mycluster.abc123.cfg.use1.cache.amazonaws.com:11211",
            "OPTIONS": {"IGNORE_CLUSTER_ERRORS": False},     # optional
        }
    }

Settings are read exactly as django-elasticache read them, so that a fleet
can switch backends without moving a single key:
- LOCATION is the one configuration endpoint; more than one is an error.
- Without OPTIONS the behaviors are django-elasticache's `{"tcp_nodelay":
  True, "ketama": True}`. With OPTIONS, OPTIONS (or OPTIONS["behaviors"])
  *are* the behaviors, minus IGNORE_CLUSTER_ERRORS: as with the old backend,
  giving OPTIONS without "ketama" means libmemcached's default, modula.
- BINARY is accepted and ignored (the text protocol is always used).
- The library's own options go in OPTIONS by name: io_timeout (ms),
  refresh_interval (s), node_naming, max_connections_per_node,
  max_value_size, ... (LIBRARY_OPTIONS; upper case works too); they are not
  behaviors, so they leave django-elasticache's defaults in place.
- IGNORE_EXC: errors as misses; ASYNC_THREADS: the size of the pool the
  async methods (aget, aset, ...) run on (see django_async.py).
- get_or_set is protected against stampedes with memcached's leases: one
  caller per expiry runs `default` (LEASES, LEASE_TTL, LEASE_WAIT,
  LEASE_RECACHE, LEASE_GRACE, INVALIDATE_ON_DELETE: see django_leases.py).

Built on Django's BaseMemcachedCache: timeouts None -> never, 0 -> expire
at once, > 30 days -> absolute time; set_many returns the keys that failed;
incr on a missing key raises ValueError; close() does nothing (the library
pools connections per process and is safe across threads and fork).
"""

import threading

from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.utils.functional import cached_property

import elasticache
from elasticache.django_async import DEFAULT_ASYNC_THREADS, AsyncMethods
from elasticache.django_leases import LeasedMethods, take_lease_options

DJANGO_ELASTICACHE_BEHAVIORS = {"tcp_nodelay": True, "ketama": True}

# pylibmc.Client keyword arguments Django >= 1.11 puts in OPTIONS next to
# the behaviors; none of them is a behavior.
_CLIENT_KWARGS = ("binary", "username", "password", "behaviors")

# Library options with no pylibmc behavior of the same name, accepted in
# OPTIONS by their own names (lower or upper case). The names pylibmc also has
# (connect_timeout, retry_timeout, failure_limit, remove_failed, tcp_nodelay,
# hash, distribution) stay behaviors in lower case, mapped to the same
# options; in upper case (CONNECT_TIMEOUT, ...) they are the library's.
LIBRARY_ONLY_OPTIONS = ("io_timeout", "io_timeout_ms", "connect_timeout_ms", "refresh_interval",
                        "refresh_interval_ms", "node_naming", "max_connections_per_node", "max_value_size")
LIBRARY_OPTIONS = LIBRARY_ONLY_OPTIONS + ("connect_timeout", "retry_timeout", "failure_limit", "remove_failed",
                                          "tcp_nodelay", "hash", "distribution")


def library_options(options):
    """Pop the library options out of a Django OPTIONS dict (name -> text)."""
    out = {}
    for k in list(options):
        if not isinstance(k, str):
            continue
        name = k.lower()
        if name in LIBRARY_ONLY_OPTIONS or (k.isupper() and name in LIBRARY_OPTIONS):
            v = options.pop(k)
            out[name] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


# One client per (endpoint, settings) in the process: clients are
# thread-safe, and sharing one keeps one connection pool per node.
_clients = {}
_clients_lock = threading.Lock()


def _shared_client(endpoint, behaviors, ignore_cluster_errors, tls=None, ignore_exc=False, options=None):
    tls = tls or {}
    options = options or {}
    key = (endpoint, tuple(sorted((k, repr(v)) for k, v in behaviors.items())), ignore_cluster_errors,
           tuple(sorted((k, repr(v)) for k, v in tls.items())), ignore_exc,
           tuple(sorted(options.items())))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = elasticache.Client.from_endpoint(
                endpoint, behaviors=behaviors, ignore_cluster_errors=ignore_cluster_errors,
                ignore_exc=ignore_exc, options=options, **tls)
            _clients[key] = client
        return client


class _Backend(LeasedMethods, AsyncMethods, BaseMemcachedCache):
    """What both backends share: the lease OPTIONS, the library, and the
    methods that differ from Django's BaseMemcachedCache."""

    def __init__(self, server, params):
        params, self._leases = take_lease_options(params)
        super().__init__(server, params, library=elasticache,
                         value_not_found_exception=elasticache.NotFound)
        self._configure(params)

    def _configure(self, params):
        """A backend's own settings, read from `params` without the lease OPTIONS."""

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            super().set(key, value, timeout, version)
        except elasticache.TooBig:
            # The library refuses oversized values before sending them; drop
            # the old value as memcached does, so that a failed set never
            # leaves a stale one behind (Django's cache_db sessions and test
            # suite rely on it).
            self._cache.delete(self.make_and_validate_key(key, version=version))
            raise

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        if timeout == 0:
            return self._cache.delete(key)
        return self._cache.touch(key, self.get_backend_timeout(timeout))

    def close(self, **kwargs):
        # Django calls this after every request: connections are pooled by
        # the library and stay open.
        pass


class ElastiCache(_Backend):
    """Cache backend for an ElastiCache memcached cluster with auto-discovery."""

    def _configure(self, params):
        servers = [s.strip() for s in self._servers if s and s.strip()]
        if len(servers) != 1:
            raise InvalidCacheBackendError(
                "ElastiCache should be configured with only one server (the configuration "
                f"endpoint) in the cache's LOCATION setting; got {len(servers)}: {self._servers!r}")
        if len(servers[0].rsplit(":", 1)) != 2 or not servers[0].rsplit(":", 1)[1].isdigit():
            raise InvalidCacheBackendError(
                f"the cache's LOCATION {servers[0]!r} should be the configuration endpoint as host:port")
        self._endpoint = servers[0]
        options = dict(params.get("OPTIONS") or {})
        self._ignore_cluster_errors = bool(options.pop("IGNORE_CLUSTER_ERRORS", False))
        self._ignore_exc = bool(options.pop("IGNORE_EXC", False))  # errors as misses (Client ignore_exc)
        self._async_threads = int(options.pop("ASYNC_THREADS", DEFAULT_ASYNC_THREADS))
        if self._async_threads < 1:
            raise InvalidCacheBackendError("the cache's OPTIONS: ASYNC_THREADS must be at least 1")
        self._options = library_options(options)
        if self._options:
            try:
                elasticache.client._options_handle(self._options)
            except elasticache.Error as e:
                raise InvalidCacheBackendError(f"the cache's OPTIONS: {e}") from None
        # TLS settings in OPTIONS (TLS, TLS_CA_FILE, ..., SERVERLESS) are not behaviors.
        self._tls = {k.lower(): options.pop(k) for k in list(options)
                     if k.lower() in elasticache.client.TLS_KEYWORDS and k.isupper()}
        # OPTIONS holding only TLS settings (which django-elasticache never had)
        # keep its default behaviors; any other OPTIONS are the behaviors, as before.
        if params.get("OPTIONS") is None or (not options and (self._tls or self._ignore_exc or self._options
                                                              or "ASYNC_THREADS" in params["OPTIONS"])
                                             and not self._ignore_cluster_errors):
            behaviors = dict(DJANGO_ELASTICACHE_BEHAVIORS)
        elif "behaviors" in options:
            behaviors = dict(options["behaviors"] or {})
        else:
            behaviors = {k: v for k, v in options.items() if k not in _CLIENT_KWARGS}
        try:
            elasticache.behaviors.validate(behaviors)
        except (ValueError, TypeError) as e:
            raise InvalidCacheBackendError(f"the cache's OPTIONS: {e}") from None
        self._behaviors = behaviors

    @cached_property
    def _cache(self):
        return _shared_client(self._endpoint, self._behaviors, self._ignore_cluster_errors, self._tls,
                              self._ignore_exc, self._options)


class PyLibMCCache(_Backend):
    """Django's PyLibMCCache on elasticache: a fixed server list in LOCATION and
    OPTIONS passed to `elasticache.Client` as keyword arguments, exactly as
    Django passes them to pylibmc (change only the BACKEND path), but for the
    lease OPTIONS (django_leases.py)."""

    @property
    def client_servers(self):
        return [s.removeprefix("unix:") if hasattr(s, "removeprefix") else s for s in self._servers]
