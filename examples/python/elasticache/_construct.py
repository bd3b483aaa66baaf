"""Building a Client: its constructors, behaviors and options (TLS too), the
library client they make, and what a call answers when that client fails
(ignore_exc, and the rebuild of a client whose discovery failed)."""

import pickle
import threading
from time import monotonic as _monotonic

from . import behaviors as _bh
from ._common import _NO_CLIENT, ffi, lib
from ._encoding import ValueEncoding
from .exceptions import Error, error_for, ignorable, warn_once
from .servers import split_server as _split_server
from .servers import translate_server_spec

_REBUILD_EVERY = 1.0  # seconds between attempts to build a client whose discovery failed
TLS_KEYWORDS = ("tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
                "tls_insecure_skip_verify", "serverless")


def _options_handle(opts):
    """A library options object (freed when garbage) holding `opts`."""
    out = ffi.new("elasticache_options **")
    rc = lib.elasticache_options_new(out)
    if rc:
        raise error_for(rc, what="elasticache_options_new")
    handle = ffi.gc(out[0], lib.elasticache_options_free)
    for name, value in opts.items():
        rc = lib.elasticache_options_set(handle, name.encode(), str(value).encode())
        if rc:
            raise error_for(rc, what=f"option {name}={value!r}")
    return handle


class BehaviorDict(dict):
    """`client.behaviors`: a dict whose item assignment reconfigures the client."""

    def __init__(self, client, *args, **kw):
        super().__init__(*args, **kw)
        self.client = client

    def __setitem__(self, name, value):
        self.client.set_behaviors({name: value})
        super().__setitem__(name, value)

    def update(self, d=(), **kw):
        d = dict(d, **kw)
        self.client.set_behaviors(d)
        super().update(d)


def translate_server_specs(servers):
    """pylibmc's helper: every spec as a (type, address, port, weight) tuple
    (3-tuples are passed through)."""
    return [s if isinstance(s, tuple) and len(s) == 3 else translate_server_spec(s) for s in servers]


def _with_tls(options, tls):
    """`options` (library option names -> values) plus the TLS keywords given
    to the constructor; an unknown keyword is a TypeError, as in Python."""
    out = dict(options or {})
    for name, value in tls.items():
        if name not in TLS_KEYWORDS:
            raise TypeError(f"unexpected keyword argument {name!r}")
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class Construction:
    """The Client's constructors, its library client `_h` (built again when
    the behaviors change) and `_failed`, every call's answer to a failure
    status."""

    def __init__(self, servers, behaviors=None, binary=False, username=None, password=None,
                 options=None, ignore_exc=False, **tls):
        if username is not None or password is not None:
            raise TypeError("SASL (username/password) is not supported: ElastiCache memcached "
                            "uses no SASL; use TLS or network isolation")
        if isinstance(servers, str):
            servers = [servers]
        self.addresses = list(servers)
        if not self.addresses:
            raise Error("empty server list")
        self.binary = binary  # keys text cannot carry go as meta-protocol binary keys
        self.endpoint = None
        self._ignore_cluster_errors = False
        self.ignore_exc = bool(ignore_exc)
        self._extra_options = _with_tls(options, tls)
        self._set = _bh.validate(behaviors)
        self._build()

    @classmethod
    def from_endpoint(cls, endpoint, behaviors=None, ignore_cluster_errors=False, binary=False,
                      options=None, ignore_exc=False, **tls):
        """A client for the cluster behind a configuration endpoint ("host:port").

        The node list comes from the process-global node cache (discovered on
        the first use of `endpoint` in the process, then refreshed by the
        library every 60 s). `behaviors=None` means django-elasticache's
        defaults, `{"ketama": True, "tcp_nodelay": True}`. With
        `ignore_cluster_errors=True` an endpoint that is plain memcached (it
        answers ERROR to `config get cluster`) is used as the only node.
        TLS keywords (also accepted by `Client(...)`): `tls`, `tls_ca_file`,
        `tls_cert_file`, `tls_key_file`, `tls_server_name`,
        `tls_insecure_skip_verify`, `serverless`.

        `ignore_exc=True` (also for `Client(...)`): a connection, timeout,
        server or discovery error makes reads return the default (get_multi
        what it found) and writes and deletes False instead of raising; each
        is logged at WARNING on the `elasticache` logger, at most once per node
        every few seconds. Bad keys and values too big still raise.
        """
        self = cls.__new__(cls)
        if not isinstance(endpoint, str) or not endpoint:
            raise TypeError("endpoint must be a 'host:port' string")
        self.addresses = [endpoint]
        self.binary = binary
        self.endpoint = endpoint
        self._ignore_cluster_errors = bool(ignore_cluster_errors)
        self.ignore_exc = bool(ignore_exc)
        self._extra_options = _with_tls(options, tls)
        if behaviors is None:
            behaviors = {"ketama": True, "tcp_nodelay": True}
        self._set = _bh.validate(behaviors)
        self._build()
        return self

    def _build(self):
        eff = _bh.effective(self._set)
        opts = _bh.to_options(eff)
        if self.binary:
            # pylibmc's binary protocol carries any key bytes; we carry the
            # keys text cannot through the meta protocol's base64 keys.
            opts["binary_keys"] = "true"
        if self.endpoint is not None:
            opts["ignore_cluster_errors"] = "true" if self._ignore_cluster_errors else "false"
        opts.update({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in self._extra_options.items()})
        oh = _options_handle(opts)
        out = ffi.new("elasticache_client **")
        if self.endpoint is not None:
            rc = lib.elasticache_client_new(self.endpoint.encode(), oh, out)
            what = f"elasticache_client_new({self.endpoint})"
        else:
            specs = [_split_server(s) for s in self.addresses]
            if eff["_sort_hosts"]:
                specs.sort()
            keep = [ffi.new("char[]", s.encode()) for s, _ in specs]
            weights = ffi.new("uint32_t[]", [w for _, w in specs])
            rc = lib.elasticache_client_new_servers(ffi.new("char *[]", keep), len(specs), weights, oh, out)
            what = "elasticache_client_new_servers"
        self._rebuild_lock = threading.Lock()
        self._next_build = 0.0
        if rc:
            exc = error_for(rc, what=what)
            if not (self.ignore_exc and ignorable(rc, exc)):
                raise exc
            # Serve defaults until the cluster can be reached (see _failed).
            warn_once(exc, key=what)
            self._h = _NO_CLIENT
            self._next_build = _monotonic() + _REBUILD_EVERY
        else:
            # The cdata owns the C client. Every call passes it as an argument,
            # which holds it for the length of the call: a concurrent
            # set_behaviors() only drops this attribute's reference.
            self._h = ffi.gc(out[0], lib.elasticache_client_free)
        self._eff = eff
        self._plain_ser = type(self).serialize is ValueEncoding.serialize
        self._plain_deser = type(self).deserialize is ValueEncoding.deserialize
        self._cas = bool(eff["cas"])
        proto = eff["pickle_protocol"]
        self.pickle_protocol = pickle.HIGHEST_PROTOCOL if proto is None or proto < 0 else proto

    def get_behaviors(self):
        return BehaviorDict(self, self._eff)

    def set_behaviors(self, behaviors):
        merged = dict(self._set)
        merged.update(_bh.validate(behaviors))
        old = self._set
        self._set = merged
        try:
            self._build()
        except Exception:
            self._set = old
            raise

    behaviors = property(get_behaviors, set_behaviors)

    def clone(self):
        """A new client with the same servers and behaviors and its own connections."""
        if self.endpoint is not None:
            return type(self).from_endpoint(self.endpoint, behaviors=self._set,
                                            ignore_cluster_errors=self._ignore_cluster_errors,
                                            binary=self.binary, options=self._extra_options,
                                            ignore_exc=self.ignore_exc)
        return type(self)(self.addresses, behaviors=self._set, binary=self.binary,
                          options=self._extra_options, ignore_exc=self.ignore_exc)

    def __repr__(self):
        return f"{type(self).__name__}({self.addresses!r}, binary={self.binary!r})"

    def __str__(self):
        return f"<{type(self).__name__} for {', '.join(map(str, self.addresses))}, binary={self.binary!r}>"

    def _failed(self, rc, what, default):
        """The answer of a call that failed with `rc`: raises, or under
        ignore_exc logs (rate-limited) and returns `default`."""
        exc = error_for(rc, what=what)
        if self.ignore_exc:
            if self._h is _NO_CLIENT:
                self._retry_build()
                return default
            if ignorable(rc, exc):
                warn_once(exc)
                return default
        raise exc

    def _retry_build(self):
        # One thread at a time, at most every _REBUILD_EVERY seconds; the
        # others get the default at once.
        if _monotonic() < self._next_build or not self._rebuild_lock.acquire(False):
            return
        try:
            if self._h is _NO_CLIENT and _monotonic() >= self._next_build:
                self._build()
        except Error as e:
            warn_once(e, key="build")
        finally:
            self._rebuild_lock.release()
