"""Discovery through a configuration endpoint, via the process-global node cache."""

from . import _native as n
from .exceptions import error_for

ffi, lib = n.ffi, n.lib


def _config(fn, endpoint, ignore_cluster_errors, connect_timeout_ms):
    from .client import _options_handle

    opts = {"ignore_cluster_errors": "true" if ignore_cluster_errors else "false"}
    if connect_timeout_ms is not None:
        opts["connect_timeout"] = str(int(connect_timeout_ms))
    out = ffi.new("elasticache_config **")
    rc = fn(endpoint.encode(), _options_handle(opts), out)
    if rc:
        raise error_for(rc, what=f"discover({endpoint})")
    cfg = out[0]
    try:
        host, ip, port = ffi.new("char **"), ffi.new("char **"), ffi.new("uint16_t *")
        nodes = []
        for i in range(lib.elasticache_config_node_count(cfg)):
            lib.elasticache_config_node(cfg, i, host, ip, port)
            nodes.append((ffi.string(host[0]).decode(), ffi.string(ip[0]).decode(), port[0]))
        return lib.elasticache_config_version(cfg), nodes
    finally:
        lib.elasticache_config_free(cfg)


def discover(endpoint, ignore_cluster_errors=False, connect_timeout_ms=None):
    """(config version, [(host, ip, port), ...]) for the cluster behind
    `endpoint` ("host:port"). The first call for an endpoint in a process asks
    it; later calls answer from the process-global cache."""
    return _config(lib.elasticache_discover, endpoint, ignore_cluster_errors, connect_timeout_ms)


def refresh(endpoint, ignore_cluster_errors=False, connect_timeout_ms=None):
    """Ask the endpoint again now and update the process-global cache."""
    return _config(lib.elasticache_refresh, endpoint, ignore_cluster_errors, connect_timeout_ms)
