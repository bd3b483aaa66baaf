"""The Client's calls on its servers rather than on keys: flush_all, stats
and versions, which server owns a key, the routing list, connections and
rediscovery, and the client-side per-node counters."""

from ._common import NULL, _BUFFER_TOO_SMALL, ffi, lib
from ._encoding import _key, _time
from .exceptions import SomeErrors, error_for

# libmemcached's stats, the only ones pylibmc's get_stats() returns.
_LIBMEMCACHED_STATS = frozenset((
    "pid", "uptime", "time", "version", "pointer_size", "rusage_user", "rusage_system", "curr_items",
    "total_items", "bytes", "curr_connections", "total_connections", "connection_structures",
    "cmd_get", "cmd_set", "get_hits", "get_misses", "evictions", "bytes_read", "bytes_written",
    "limit_maxbytes", "threads"))


class ServerCalls:
    """The Client supplies `_h`, its C client."""

    def flush_all(self, time=0):
        """Invalidate every item on every server: True."""
        time = _time(time)
        rc = lib.elasticache_flush_all(self._h, max(0, time))
        if rc:
            raise SomeErrors(f"flush_all: {error_for(rc)}")
        return True

    def _per_node(self, fn, *args):
        out = ffi.new("elasticache_stats **")
        rc = fn(self._h, *args, out)
        if rc:
            raise error_for(rc)
        st = out[0]
        try:
            nodes = []
            server, status, entries = ffi.new("char **"), ffi.new("uint32_t *"), ffi.new("size_t *")
            name, value = ffi.new("char **"), ffi.new("char **")
            for i in range(lib.elasticache_stats_node_count(st)):
                lib.elasticache_stats_node(st, i, server, status, entries)
                pairs = {}
                for j in range(entries[0]):
                    lib.elasticache_stats_entry(st, i, j, name, value)
                    pairs[ffi.string(name[0]).decode()] = ffi.string(value[0])
                err = lib.elasticache_stats_error(st, i)
                err = ffi.string(err).decode(errors="replace") if err != ffi.NULL else ""
                nodes.append((ffi.string(server[0]).decode(), status[0], pairs, err))
            return nodes
        finally:
            lib.elasticache_stats_free(st)

    def get_stats(self, args=None):
        """[(b"host:port (i)", {name: bytes value}), ...] for every server;
        SomeErrors when a server did not answer."""
        arg = NULL if not args else (args.encode() if isinstance(args, str) else args)
        nodes = self._per_node(lib.elasticache_client_stats, arg)
        bad = [(s, e) for s, st, _, e in nodes if st]
        if bad:
            raise SomeErrors("get_stats: " + "; ".join(f"{s}: {e}" for s, e in bad))
        if not args:
            # libmemcached (so pylibmc) reports its fixed set, not all the server sends.
            return [(f"{s} ({i})".encode(), {k: v for k, v in p.items() if k in _LIBMEMCACHED_STATS})
                    for i, (s, _, p, _) in enumerate(nodes)]
        return [(f"{s} ({i})".encode(), p) for i, (s, _, p, _) in enumerate(nodes)]

    def server_versions(self):
        """{"host:port": version} (None for a server that did not answer)."""
        return {s: (p.get("version").decode() if not st else None)
                for s, st, p, _ in self._per_node(lib.elasticache_client_versions)}

    def server_for_key(self, key):
        """The "host:port" of the server that owns `key` now."""
        key = _key(key)
        buf = ffi.new("char[]", 300)
        nout = ffi.new("size_t *")
        rc = lib.elasticache_server_for_key(self._h, key, len(key), buf, 300, nout)
        if rc:
            raise error_for(rc, what=f"server_for_key({key!r})")
        return ffi.unpack(buf, nout[0]).decode()

    def servers(self):
        """The servers ("host:port") the client routes with now, in ring
        order: the library's own list, no discovery round trip."""
        n = ffi.new("size_t *")
        buf = ffi.new("char[]", 1024)
        rc = lib.elasticache_client_servers(self._h, buf, len(buf), n)
        if rc == _BUFFER_TOO_SMALL:
            buf = ffi.new("char[]", n[0] + 1)
            rc = lib.elasticache_client_servers(self._h, buf, len(buf), n)
        if rc:
            raise error_for(rc, what="servers()")
        text = ffi.string(buf, n[0]).decode()
        return text.split("\n") if text else []

    def hash(self, key):
        """The index of the server that owns `key` now, in the order of the
        client's server list (pylibmc's hash())."""
        key = _key(key)
        out = ffi.new("size_t *")
        rc = lib.elasticache_server_index_for_key(self._h, key, len(key), out)
        if rc:
            raise error_for(rc, what=f"hash({key!r})")
        return out[0]

    def disconnect_all(self):
        """Close every idle connection (the next call reconnects). Calls running
        on other threads keep theirs until they finish."""
        rc = lib.elasticache_client_disconnect_all(self._h)
        if rc:
            raise error_for(rc, what="disconnect_all")

    def refresh(self):
        """Re-discover the cluster now (endpoint clients; the library also
        does it on its own every 60 s)."""
        rc = lib.elasticache_client_refresh(self._h)
        if rc:
            raise error_for(rc, what="refresh")

    def node_metrics(self):
        """Client-side counters per node: {"host:port": {"requests": ...,
        "hits": ..., "misses": ..., "errors": ..., "timeouts": ...,
        "ejections": ..., "open_connections": ..., "state": "up" | "ejected",
        "p50_us": ..., "p99_us": ..., ...}} (see elasticache.metrics)."""
        from . import metrics
        return metrics.node_metrics(self)
