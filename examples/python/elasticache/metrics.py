"""Per-node client-side metrics: `Client.node_metrics()` and a Prometheus text
rendering for a `/metrics` view.

    from elasticache.metrics import prometheus_text
    def metrics_view(request):
        return HttpResponse(prometheus_text(cache._cache), content_type=CONTENT_TYPE)

Counts are since the client was built (a node that leaves the list takes its
counts with it). `requests` counts one per single-key call and one per node a
multi-key call touched (plus keys refused while the node was ejected); `hits`
and `misses` count keys; `errors` includes `timeouts`. Latency is a histogram
with fixed power-of-two buckets from 8 us to about 1 s; p50/p99 are the upper
bounds of the buckets they fall in.
"""

from . import _native as n
from .exceptions import error_for

ffi, lib = n.ffi, n.lib
BUCKETS = lib.elasticache_metrics_bucket_count()
_FIELDS = ("requests", "hits", "misses", "errors", "timeouts", "ejections", "open_connections")


def node_metrics(client):
    """{"host:port": {"requests": ..., "hits": ..., "misses": ..., "errors": ...,
    "timeouts": ..., "ejections": ..., "open_connections": ..., "state": "up" |
    "ejected", "latency_sum_us": ..., "p50_us": ..., "p99_us": ...,
    "latency_buckets": [(upper_us or None, count), ...]}} for a Client."""
    h = client._h
    if h == ffi.NULL:
        return {}
    out = ffi.new("elasticache_metrics **")
    rc = lib.elasticache_client_metrics(h, out)
    if rc:
        raise error_for(rc, what="node_metrics")
    m = ffi.gc(out[0], lib.elasticache_metrics_free)
    nm = ffi.new("elasticache_node_metrics *")
    upper = ffi.new("uint64_t *")
    count = ffi.new("uint64_t *")
    result = {}
    for i in range(lib.elasticache_metrics_node_count(m)):
        rc = lib.elasticache_metrics_node(m, i, nm)
        if rc:
            raise error_for(rc, what="node_metrics")
        d = {f: int(getattr(nm, f)) for f in _FIELDS}
        d["state"] = "ejected" if nm.ejected else "up"
        d["latency_sum_us"] = int(nm.latency_sum_us)
        d["p50_us"] = int(nm.p50_us) if nm.p50_us != 2**64 - 1 else None
        d["p99_us"] = int(nm.p99_us) if nm.p99_us != 2**64 - 1 else None
        buckets = []
        for b in range(BUCKETS):
            lib.elasticache_metrics_bucket(m, i, b, upper, count)
            buckets.append((None if upper[0] == 2**64 - 1 else int(upper[0]), int(count[0])))
        d["latency_buckets"] = buckets
        result[ffi.string(nm.node).decode("utf-8", "replace")] = d
    return result


def _label(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(*clients):
    """The metrics of one or more clients in Prometheus' text exposition
    format (version 0.0.4), one series per node."""
    per_node = {}
    for c in clients:
        for node, d in node_metrics(c).items():
            per_node[node] = d  # clients sharing a node: the last one's counts
    lines = []

    def family(name, kind, help_text, rows):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(rows)

    counters = [
        ("requests", "Requests sent to the node (one per node a multi-key call touches)."),
        ("hits", "Keys read and found."),
        ("misses", "Keys read and not found."),
        ("errors", "Requests the node failed, timeouts included."),
        ("timeouts", "Requests that timed out."),
        ("ejections", "Times the node was ejected after repeated failures."),
    ]
    for field, help_text in counters:
        name = f"elasticache_client_{field}_total"
        family(name, "counter", help_text,
               [f'{name}{{node="{_label(k)}"}} {d[field]}' for k, d in sorted(per_node.items())])
    family("elasticache_client_open_connections", "gauge", "Connections open to the node.",
           [f'elasticache_client_open_connections{{node="{_label(k)}"}} {d["open_connections"]}'
            for k, d in sorted(per_node.items())])
    family("elasticache_client_node_up", "gauge", "1 while the node takes requests, 0 while ejected.",
           [f'elasticache_client_node_up{{node="{_label(k)}"}} {1 if d["state"] == "up" else 0}'
            for k, d in sorted(per_node.items())])
    rows = []
    name = "elasticache_client_request_duration_seconds"
    for k, d in sorted(per_node.items()):
        total = 0
        for upper, count in d["latency_buckets"]:
            total += count
            le = "+Inf" if upper is None else repr(upper / 1e6)
            rows.append(f'{name}_bucket{{node="{_label(k)}",le="{le}"}} {total}')
        rows.append(f'{name}_sum{{node="{_label(k)}"}} {d["latency_sum_us"] / 1e6}')
        rows.append(f'{name}_count{{node="{_label(k)}"}} {total}')
    family(name, "histogram", "Request latency seen by the client.", rows)
    return "\n".join(lines) + "\n"
