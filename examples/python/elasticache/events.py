"""Cluster events from the library, forwarded to the `elasticache` logger.

The library reports discovery done, nodes added / removed / re-addressed, a
failed refresh, a node ejected (with the failure) or revived, a fork, and
(once per node) a node whose memcached lacks the meta protocol, where leases
fall back to plain get/set/delete. Importing the package installs one
process-wide callback (the C library has one slot: a C program embedding
Python that set its own loses it) which logs each event: INFO for changes and
revivals, WARNING for ejections, failed refreshes and nodes without the meta
protocol, every message naming the node as host:port. `add_listener(fn)` also
hands each event, as a dict, to `fn` (ecctl-like tools, tests).

The callback runs on the thread whose cache call noticed the event, after
the library released its locks, holding the GIL for the length of the
logging call.
"""

import logging
import threading
import time

from . import _native as n
from .exceptions import _last_warned, _warn_lock

ffi, lib = n.ffi, n.lib
log = logging.getLogger("elasticache")

KINDS = {
    1: "discovery_done",
    2: "node_added",
    3: "node_removed",
    4: "node_readdressed",
    5: "refresh_failed",
    6: "node_ejected",
    7: "node_revived",
    8: "fork_detected",
    9: "meta_unsupported",
}
WARNING_KINDS = frozenset(("refresh_failed", "node_ejected", "meta_unsupported"))

_listeners = []
_lock = threading.Lock()
_installed = False


def _text(p):
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def _as_dict(ev):
    return {
        "kind": KINDS.get(ev.kind, f"unknown({ev.kind})"),
        "node": _text(ev.node),
        "endpoint": _text(ev.endpoint),
        "config_version": int(ev.config_version),
        "nodes_before": int(ev.nodes_before),
        "nodes_after": int(ev.nodes_after),
        "reason": _text(ev.reason),
    }


# One line a kind; `where` and `listing` are made from the event's fields.
_MESSAGES = {
    "discovery_done": "discovery done for {endpoint}: {listing}: {reason}",
    "node_added": "node added {node}{where}: {listing}",
    "node_removed": "node removed {node}{where}: {listing}",
    "node_readdressed": "node re-addressed {node} ({reason}){where}: {listing}",
    "refresh_failed": "refresh of {endpoint} failed, the last node list stays in use: {reason}",
    "node_ejected": "node ejected {node}: {reason}",
    "node_revived": "node revived {node}: its retry time came, it takes requests again",
    "meta_unsupported": "node {node} without memcached's meta protocol: {reason}",
    "fork_detected": "fork detected ({reason}): connections are opened afresh in this process",
}


def message(e):
    """One line for an event dict, naming the node as host:port."""
    template = _MESSAGES.get(e["kind"])
    if template is None:
        return f"{e['kind']} {e['node']} {e['reason']}".strip()
    where = f" (endpoint {e['endpoint']})" if e["endpoint"] else ""
    listing = f"config version {e['config_version']}, {e['nodes_before']} -> {e['nodes_after']} nodes"
    return template.format(where=where, listing=listing, **e)


def _count_as_warned(node):
    # An ejection is a WARNING about its node: ignore_exc's rate-limited
    # warning about the same node's failure (logged right after, when the
    # call returns) would say it twice.
    with _warn_lock:
        _last_warned[node] = time.monotonic()


def _dispatch(ev, _user_data):
    e = _as_dict(ev)
    level = logging.WARNING if e["kind"] in WARNING_KINDS else logging.INFO
    if e["kind"] == "node_ejected" and e["node"]:
        _count_as_warned(e["node"])
    log.log(level, "%s", message(e), extra={"elasticache_event": e})
    for fn in list(_listeners):
        fn(e)


def _on_error(exc_type, exc, tb):
    # An exception in a handler or listener must not reach the C caller.
    try:
        log.debug("elasticache event listener raised %s: %s", exc_type.__name__, exc)
    except Exception:  # noqa: BLE001 - nothing may escape into C
        pass
    return None


_callback = ffi.callback("elasticache_event_fn", _dispatch, onerror=_on_error)


def install():
    """Set the library's event callback to this module's (done at import)."""
    global _installed
    with _lock:
        rc = lib.elasticache_set_event_callback(_callback, ffi.NULL)
        _installed = rc == n.OK
    return _installed


def uninstall():
    """Remove the callback: the library stops building events."""
    global _installed
    with _lock:
        lib.elasticache_set_event_callback(ffi.NULL, ffi.NULL)
        _installed = False


def add_listener(fn):
    """Call `fn(event_dict)` for every event (besides logging it)."""
    _listeners.append(fn)
    return fn


def remove_listener(fn):
    try:
        _listeners.remove(fn)
    except ValueError:
        pass


install()
