"""pylibmc's `behaviors` dict, translated into the library's named options.

Every name pylibmc accepts is accepted; unknown names raise ValueError (as
pylibmc does). The ones that change what a call does are mapped; the rest
are tuning knobs of libmemcached with no counterpart here and are kept only
so that `client.behaviors` reads back what was set (see README.md).
"""

import math
import pickle

# pylibmc's names, in the order libmemcached applies them (this order matters:
# `distribution` after `ketama`, as in pylibmc).
ALL_BEHAVIORS = [
    "no_block", "tcp_nodelay", "tcp_keepalive", "hash", "ketama_hash", "ketama", "ketama_weighted",
    "distribution", "cas", "buffer_requests", "verify_keys", "connect_timeout", "send_timeout",
    "receive_timeout", "num_replicas", "auto_eject", "retry_timeout", "remove_failed", "failure_limit",
    "_io_msg_watermark", "_io_bytes_watermark", "_io_key_prefetch", "_hash_with_prefix_key", "_noreply",
    "_sort_hosts", "_poll_timeout", "_socket_send_size", "_socket_recv_size", "dead_timeout",
    "pickle_protocol",
]
ALL_CALLBACKS = ["namespace"]

# pylibmc hash name -> library hash name.
HASHERS = {
    "default": "one_at_a_time", "md5": "md5", "crc": "crc", "fnv1_64": "fnv1_64",
    "fnv1a_64": "fnv1a_64", "fnv1_32": "fnv1_32", "fnv1a_32": "fnv1a_32", "hsieh": "hsieh",
    "murmur": "murmur", "jenkins": "jenkins", "murmur3": "murmur3",
}
# pylibmc distribution name -> library distribution (None: not supported).
DISTRIBUTIONS = {
    "modula": "modula", "consistent": "ketama", "consistent ketama": "ketama",
    "consistent weighted": "ketama_weighted", "random": None, "virtual bucket": None,
    "consistent max": None, "consistent ketama spy": None,
}

# What `client.behaviors` shows before anything is set: pylibmc's names with
# the values in effect here (timeouts are this library's defaults).
DEFAULTS = {
    "no_block": 0, "tcp_nodelay": 1, "tcp_keepalive": 0, "hash": "default", "ketama_hash": 0,
    "ketama": 0, "ketama_weighted": 0, "distribution": "modula", "cas": 0, "buffer_requests": 0,
    "verify_keys": 1, "connect_timeout": 1000, "send_timeout": 1000000, "receive_timeout": 1000000,
    "num_replicas": 0, "auto_eject": 0, "retry_timeout": 2, "remove_failed": 0, "failure_limit": 2,
    "_io_msg_watermark": 500, "_io_bytes_watermark": 66560, "_io_key_prefetch": 0,
    "_hash_with_prefix_key": 0, "_noreply": 0, "_sort_hosts": 0, "_poll_timeout": 5000,
    "_socket_send_size": 0, "_socket_recv_size": 0, "dead_timeout": 0, "pickle_protocol": -1,
}


# Behaviors accepted for pylibmc's sake that change nothing here, and why.
# Setting one to anything but its default logs a WARNING once per process.
INERT = {
    "no_block": "every call is already bounded by io_timeout; there is no non-blocking mode to switch",
    "tcp_keepalive": "idle connections are checked when reused instead",
    "buffer_requests": "each call sends its request at once (multi-key calls already batch per node)",
    "_noreply": "every request waits for its reply, so failures are never silent",
    "num_replicas": "replication is ElastiCache's (or none); the client writes to one node",
    "_io_msg_watermark": "libmemcached's internal buffering only",
    "_io_bytes_watermark": "libmemcached's internal buffering only",
    "_io_key_prefetch": "libmemcached's internal buffering only",
    "_hash_with_prefix_key": "no libmemcached prefix key exists here (use key_prefix)",
    "_socket_send_size": "the kernel's socket buffer sizes are used",
    "_socket_recv_size": "the kernel's socket buffer sizes are used",
}
_warned_inert = set()


def warn_inert(behaviors):
    """Log once per process each inert behavior set to a non-default value."""
    import logging

    for name, why in INERT.items():
        value = behaviors.get(name)
        if value is None or value == DEFAULTS.get(name) or name in _warned_inert:
            continue
        _warned_inert.add(name)
        logging.getLogger("elasticache").warning(
            "behavior %s=%r is accepted for pylibmc compatibility and has no effect: %s", name, value, why)


class BadBehaviorValue(ValueError, KeyError):
    """An unknown hash or distribution name (pylibmc raises KeyError)."""

    def __str__(self):
        return str(self.args[0])


def validate(behaviors):
    """Check names and value types; returns a plain dict (a new one)."""
    if behaviors is None:
        return {}
    b = dict(behaviors)
    if "_retry_timeout" in b:
        b.setdefault("retry_timeout", b.pop("_retry_timeout"))
    unknown = set(b) - set(ALL_BEHAVIORS) - set(ALL_CALLBACKS)
    if unknown:
        raise ValueError("unknown behavior names: " + ", ".join(sorted(map(str, unknown))))
    for name, value in b.items():
        if name in ("hash", "ketama_hash") and isinstance(value, str):
            if value not in HASHERS:
                raise BadBehaviorValue(f"unknown hash {value!r} (known: {', '.join(sorted(HASHERS))})")
        elif name == "distribution":
            if value not in DISTRIBUTIONS:
                raise BadBehaviorValue(
                    f"unknown distribution {value!r} (known: {', '.join(sorted(DISTRIBUTIONS))})")
            if DISTRIBUTIONS[value] is None:
                raise ValueError(f"distribution {value!r} is not supported by elasticache "
                                 "(use 'modula', 'consistent' or 'consistent weighted')")
        elif name == "namespace":
            if value:
                raise ValueError("the 'namespace' callback is not supported: libmemcached hashes "
                                 "keys without it, which this client cannot reproduce; use "
                                 "key_prefix or prefix the keys")
        elif name == "pickle_protocol":
            if not isinstance(value, int) or value > pickle.HIGHEST_PROTOCOL:
                raise ValueError(f"pickle_protocol {value!r} is not a valid pickle protocol")
        elif value is not None and not isinstance(value, int):
            raise TypeError(f"behavior {name} must be int, not {type(value).__name__}")
    warn_inert(b)
    return b


def effective(behaviors):
    """The full behaviors dict (defaults merged, ketama/distribution made
    consistent the way libmemcached makes them), as `client.behaviors` shows."""
    out = dict(DEFAULTS)
    for name in ALL_BEHAVIORS + ALL_CALLBACKS:
        if name not in behaviors or behaviors[name] is None:
            continue
        value = behaviors[name]
        if name == "ketama":
            out["ketama"] = int(bool(value))
            out["distribution"] = "consistent ketama" if value else "modula"
        elif name == "ketama_weighted":
            # libmemcached: turning it off turns plain ketama on.
            out["ketama_weighted"] = int(bool(value))
            out["ketama"] = 1
            if value:
                out["hash"] = "md5"
                out["distribution"] = "consistent weighted"
            else:
                out["distribution"] = "consistent ketama"
        elif name == "distribution":
            out["distribution"] = value
            out["ketama"] = int(DISTRIBUTIONS[value] != "modula")
            out["ketama_weighted"] = int(DISTRIBUTIONS[value] == "ketama_weighted")
        elif name == "remove_failed":
            out["remove_failed"] = int(value)
            out["auto_eject"] = int(bool(value))
            if value and "failure_limit" not in behaviors:
                out["failure_limit"] = int(value)
        elif name == "auto_eject":
            out["auto_eject"] = int(bool(value))
            if not value:
                out["remove_failed"] = 0
        elif name in ("hash", "ketama_hash") and isinstance(value, int):
            # pylibmc also takes the numeric constants.
            names = ["default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32",
                     "hsieh", "murmur", "jenkins"]
            if name == "ketama_hash" and value == 0:
                out[name] = 0
            elif 0 <= value < len(names):
                out[name] = names[value]
            else:
                raise BadBehaviorValue(f"unknown {name} constant {value}")
        else:
            out[name] = value
    return out


def to_options(eff):
    """Library options (name -> text) for an effective behaviors dict."""
    opts = {
        "distribution": DISTRIBUTIONS[eff["distribution"]],
        "hash": HASHERS[eff["hash"]],
        "tcp_nodelay": "true" if eff["tcp_nodelay"] else "false",
        "remove_failed": "true" if (eff["auto_eject"] or eff["remove_failed"]) else "false",
        "failure_limit": str(int(eff["failure_limit"])),
    }
    kh = eff["ketama_hash"]
    if kh not in (0, None) and HASHERS.get(kh) != opts["hash"] and opts["distribution"] == "ketama":
        raise ValueError(f"ketama_hash {kh!r} differs from hash {eff['hash']!r}: this client hashes "
                         "keys and continuum points with the same function (set 'hash' instead)")
    if eff["connect_timeout"] and eff["connect_timeout"] > 0:
        opts["connect_timeout"] = str(int(eff["connect_timeout"]))
    io_us = max(eff["send_timeout"] or 0, eff["receive_timeout"] or 0)
    if io_us > 0:
        opts["io_timeout"] = str(max(1, math.ceil(io_us / 1000)))
    # libmemcached waits at most _poll_timeout (ms) for each reply in its
    # non-blocking mode: the same bound as io_timeout, used when the send and
    # receive timeouts are left alone.
    default_io = (eff["send_timeout"], eff["receive_timeout"]) == (DEFAULTS["send_timeout"],
                                                                  DEFAULTS["receive_timeout"])
    if default_io and eff["_poll_timeout"] not in (None, DEFAULTS["_poll_timeout"]) and eff["_poll_timeout"] > 0:
        opts["io_timeout"] = str(int(eff["_poll_timeout"]))
    # One "stay out" period here; libmemcached's dead_timeout, when set, is the
    # longer one it applies to servers that crossed the failure limit.
    retry = eff["dead_timeout"] if eff["dead_timeout"] and eff["dead_timeout"] > 0 else eff["retry_timeout"]
    if retry is not None and retry >= 0:
        opts["retry_timeout"] = str(int(retry))
    return opts
