"""Exceptions, with pylibmc's names and hierarchy, and the one place where a
library status code becomes an exception.

Every class derives from `elasticache.Error` (pylibmc's flat hierarchy). The
`retcode` class attributes are libmemcached's codes, as in pylibmc, so code
that inspects them keeps working. A raised exception also carries `status`
(the elasticache C status) and the library's message naming node and command.
"""

import logging
import re
import threading
import time

from . import _native as n

log = logging.getLogger("elasticache")


class Error(Exception):
    """Base class of every elasticache error (pylibmc.Error)."""

    retcode = None
    status = None


MemcachedError = Error  # pylibmc's old name


def _exc(name, retcode, base=Error, doc=""):
    cls = type(name, (base,), {"retcode": retcode, "__doc__": doc or name, "__module__": "elasticache"})
    globals()[name] = cls
    return cls


CacheMiss = _exc("CacheMiss", None, doc="Raised by a custom deserialize() to report a miss.")
Failure = _exc("Failure", 1)
HostLookupError = _exc("HostLookupError", 2)
ConnectionError = _exc("ConnectionError", 3)  # noqa: A001 - pylibmc's name
ConnectionBindError = _exc("ConnectionBindError", 4)
WriteError = _exc("WriteError", 5)
ReadError = _exc("ReadError", 6)
UnknownReadFailure = _exc("UnknownReadFailure", 7)
ProtocolError = _exc("ProtocolError", 8)
ClientError = _exc("ClientError", 9)
ServerError = _exc("ServerError", 10)
SocketCreateError = _exc("SocketCreateError", 11)
DataExists = _exc("DataExists", 12)
DataDoesNotExist = _exc("DataDoesNotExist", 13)
NotFound = _exc("NotFound", 16)
AllocationError = _exc("AllocationError", 17)
SomeErrors = _exc("SomeErrors", 19)
NoServers = _exc("NoServers", 20)
UnixSocketError = _exc("UnixSocketError", 27)
NotSupportedError = _exc("NotSupportedError", 28)
FetchNotFinished = _exc("FetchNotFinished", 30)
# A ClientError here (pylibmc's own base is Error): what libmemcached answers
# for such keys in pylibmc is a ClientError, and code catches that.
BadKeyProvided = _exc("BadKeyProvided", 33, ClientError)
InvalidHostProtocolError = _exc("InvalidHostProtocolError", 34)
ServerDead = _exc("ServerDead", 35)
UnknownStatKey = _exc("UnknownStatKey", 36)
TooBig = _exc("TooBig", 37)
ServerDown = _exc("ServerDown", 47)
# Not in pylibmc (which reports these as one of the classes they derive from
# or as plain Error); subclasses so existing handlers still catch them.
Timeout = _exc("Timeout", 31, ConnectionError, "A connect or I/O timeout expired.")
TLSError = _exc("TLSError", None, ConnectionError, "A TLS handshake or certificate check failed.")
DiscoveryError = _exc("DiscoveryError", None, Error, "The configuration endpoint could not be used.")


class InvalidArgument(Error, ValueError):
    """The library rejected an argument or option value."""


# The one mapping from status to exception class. NOT_STORED and EXISTS are
# answers (methods return False); they only surface here from odd paths.
_BY_STATUS = {
    n.NOT_FOUND: NotFound,
    n.NOT_STORED: Failure,
    n.EXISTS: DataExists,
    n.BAD_KEY: BadKeyProvided,
    n.TOO_BIG: TooBig,
    n.TIMEOUT: Timeout,
    n.CONNECTION: ConnectionError,
    n.PROTOCOL: ProtocolError,
    n.SERVER_ERROR: ServerError,
    n.CLIENT_ERROR: ClientError,
    n.DISCOVERY: DiscoveryError,
    n.NO_SERVERS: NoServers,
    n.INVALID_ARGUMENT: InvalidArgument,
    n.PANIC: Error,
    n.HOST_LOOKUP: HostLookupError,
    n.TLS: TLSError,
    n.SERVER_DEAD: ServerDown,  # pylibmc: "SERVER HAS FAILED AND IS DISABLED UNTIL TIMED RETRY"
}


def error_for(status, message=None, what=None):
    """The exception for `status`, with this thread's last error message
    (read now: call this right after the failing foreign call)."""
    if message is None:
        message = n.last_error_message() or n.status_str(status)
    cls = _BY_STATUS.get(status, Error)
    if status == n.SERVER_ERROR and "too large" in message:
        cls = TooBig  # memcached's "SERVER_ERROR object too large for cache"
    exc = cls(f"{what}: {message}" if what else message)
    exc.status = status
    return exc


def raise_for(status, what=None):
    raise error_for(status, what=what)


exceptions = [(c.__name__, c) for c in (
    Error, CacheMiss, Failure, HostLookupError, ConnectionError, ConnectionBindError, WriteError,
    ReadError, UnknownReadFailure, ProtocolError, ClientError, ServerError, SocketCreateError,
    DataExists, DataDoesNotExist, NotFound, AllocationError, SomeErrors, NoServers, UnixSocketError,
    NotSupportedError, FetchNotFinished, BadKeyProvided, InvalidHostProtocolError, ServerDead,
    ServerDown, TooBig, UnknownStatKey, Timeout, TLSError, DiscoveryError, InvalidArgument,
)]
errors = tuple(c for _, c in exceptions)


# What ignore_exc hides: the cluster's trouble, not the caller's bugs.
_IGNORABLE = frozenset((n.TIMEOUT, n.CONNECTION, n.PROTOCOL, n.SERVER_ERROR, n.DISCOVERY, n.NO_SERVERS,
                        n.HOST_LOOKUP, n.TLS, n.SERVER_DEAD))


def ignorable(status, exc=None):
    """True for a connection, timeout, server or discovery error (what
    ignore_exc turns into a default); False for bad keys, values too big,
    bad arguments."""
    return status in _IGNORABLE and not isinstance(exc, TooBig)


WARN_EVERY = 5.0  # seconds: at most one warning per node in that time
_NODE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):\d{1,5}\b")
_last_warned = {}
_warn_lock = threading.Lock()


def warn_once(exc, key=None):
    """Log `exc` at WARNING on the `elasticache` logger unless the same node
    (read from the message, or `key`) was warned about in the last WARN_EVERY
    seconds, so that an outage does not flood the logs."""
    text = str(exc)
    if key is None:
        m = _NODE.search(text)
        key = m.group(0) if m else type(exc).__name__
    now = time.monotonic()
    with _warn_lock:
        last = _last_warned.get(key)
        if last is not None and now - last < WARN_EVERY:
            return False
        if len(_last_warned) > 4096:
            _last_warned.clear()
        _last_warned[key] = now
    log.warning("%s: %s", type(exc).__name__, text)
    return True
