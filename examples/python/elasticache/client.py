"""`elasticache.Client`: pylibmc's Client over libelasticache.

Hot paths (get/set) are one foreign call each; get_multi is two
(get_multi_packed, packed_free), set_multi and delete_multi one. cffi
releases the GIL around every call, so a thread blocked on the network never
stalls the others. One client may be shared by any number of threads, and
keeps working in both processes after os.fork() (the library opens fresh
sockets in the child).

The Client is put together here from one class per concept: construction
and behaviors (_construct.py), value encoding (_encoding.py), single-key
calls (_single.py), the per-key form of the multi-key calls (_per_key.py),
server calls (_admin.py) and leases (_meta.py); the state they share (ffi,
lib, statuses, the import-time parse of every type) is in _common.py. The
packed multi-key calls are written here: they read `_joined` and the packed
functions as this module's globals (tests/test_packed.py replaces them here).
"""

from itertools import compress as _compress
from struct import unpack_from as _unpack_from

from . import _native as n
from ._admin import ServerCalls
from ._common import (
    NULL, _INVALID_ARGUMENT, _NOT_FOUND, _SIZES, _U32S, _UNSET, _buffer, _delete_multi_packed,
    _get_multi_packed, _new, _packed_free, _scratch, _set_multi_packed, _tls, ffi, lib,
)
from ._construct import Construction
from ._encoding import (
    FLAG_TEXT, MAX_KEY_LEN, ValueEncoding, _compress_level, _full_key, _joined, _keys, _maybe_compress,
    _prefix, _time,
)
from ._meta import LeaseMixin
from ._per_key import PerKeyMultiCalls
from ._single import SingleKeyCalls
from .exceptions import BadKeyProvided, NotFound

# Every other name this module had before it was split, for the code that
# imports them from here (pylibmc.client's names among them).
import operator  # noqa: F401
import pickle  # noqa: F401
import threading  # noqa: F401
import zlib  # noqa: F401
from itertools import accumulate  # noqa: F401
from time import monotonic as _monotonic  # noqa: F401

from . import behaviors as _bh  # noqa: F401
from ._admin import _LIBMEMCACHED_STATS  # noqa: F401
from ._common import (  # noqa: F401
    _BUFFER_TOO_SMALL, _FFI_TYPES, _NO_CLIENT, _SCRATCH_START, _Scratch, _get_into, _set, _unpack,
)
from ._construct import (  # noqa: F401
    _REBUILD_EVERY, TLS_KEYWORDS, BehaviorDict, _options_handle, _with_tls, translate_server_specs,
)
from ._encoding import _FLAG_TYPES, FLAG_INTEGER, FLAG_LONG, FLAG_PICKLE, FLAG_ZLIB, _key  # noqa: F401
from ._per_key import _pack  # noqa: F401
from ._single import _BIG_KEYS, _MISS, _SCRATCH_MAX  # noqa: F401
from .exceptions import CacheMiss, Error, SomeErrors, error_for, ignorable, warn_once  # noqa: F401
from .servers import split_server as _split_server  # noqa: F401
from .servers import translate_server_spec  # noqa: F401 - pylibmc.client's name

_utf8 = bytes.decode  # UTF-8, strict: as data.decode("utf-8")
_SEQUENCES = (list, tuple, type({}.keys()))  # iterated more than once without a copy


class Client(Construction, SingleKeyCalls, PerKeyMultiCalls, ServerCalls, ValueEncoding, LeaseMixin):
    """A memcached client with pylibmc's interface.

    `Client(["10.0.0.1:11211", "10.0.0.2:11211"], behaviors={"ketama": True})`
    for a fixed server list; `Client.from_endpoint("cfg-host:11211")` for an
    ElastiCache cluster found through its configuration endpoint.
    """

    def get_multi(self, keys, key_prefix=None):
        """{key: value} for the keys found (keys as given, without the prefix).
        Empty and bad keys are skipped, as in pylibmc. Keys on nodes that
        failed are left out and logged (WARNING, `elasticache` logger); it
        raises only when every key failed (never under ignore_exc), with the
        exception's `results` the (empty) dict."""
        try:
            originals = keys if type(keys) in _SEQUENCES else list(keys)
            prefix = b"" if key_prefix is None else _prefix(key_prefix)
            joined = _joined(originals)
            if joined is None:
                return self._get_multi_keys(originals, prefix)
            count = len(originals)
            if not count:
                return {}
            fetched = self._fetch_packed(prefix, joined, count)
            if fetched is None:  # keys the packed form refuses: one by one
                return self._get_multi_keys(originals, prefix)
            if fetched is False:
                return {}
            mask, values, flags, failures = fetched
            hit_keys = originals if mask is None else _compress(originals, mask)
            if not self._plain_deser:
                if flags is None or type(flags) is int:
                    flags = [0 if flags is None else flags] * len(values)
                result = self._decode_many(hit_keys, values, flags)
            elif flags is None or flags == 0:
                result = dict(zip(hit_keys, values))
            elif flags == FLAG_TEXT:
                result = dict(zip(hit_keys, map(_utf8, values)))
            else:
                if type(flags) is int:
                    flags = [flags] * len(values)
                result = self._decode_mixed(hit_keys, values, flags)
            if failures:
                raw = _keys(prefix, originals)
                self._multi_failed("get_multi", failures, count - raw.count(b""), raw, result)
            return result
        finally:
            # An exception from deserialize() that the caller keeps holds this
            # frame through its traceback: leave none of the caller's keys here.
            keys = key_prefix = originals = joined = hit_keys = values = result = fetched = raw = None

    def _fetch_packed(self, prefix, joined, count):
        """(hit mask or None when all hit, values, flags, failures) for `count`
        keys packed in `joined`: flags None (no hits), one int (every hit's)
        or a list; failures are (status, message, index), bad keys not among
        them. None when the library refuses the packed keys (nothing was
        sent), False when the call failed and ignore_exc hid it."""
        try:
            s = _tls.s
        except AttributeError:
            s = _scratch()
        out = s.ppacked
        rc = _get_multi_packed(self._h, prefix, len(prefix), joined, len(joined), count, out)
        if rc:
            if rc == _INVALID_ARGUMENT:
                return None
            self._failed(rc, "get_multi", None)
            return False
        p = out[0]
        try:
            hits = p.hits
            buf = _buffer(p.data, p.len)
            # Every value in one call, cut by the lengths the library wrote
            # as a struct format: no Python-level step per key.
            values = _unpack_from(buf[p.format_offset:p.len], buf, p.values_offset) if hits else ()
            mask = None if hits == count else buf[0:count]
            flags = p.flags
            if not hits:
                flags = None
            elif flags == 0xFFFFFFFF:
                flags = _unpack_from(f"={hits}I", buf, p.flags_offset)
            failures = []
            if p.errors:
                statuses = buf[count:2 * count]
                for i in range(count):
                    st = statuses[i]
                    if st != 0 and st != _NOT_FOUND and st != n.BAD_KEY:
                        msg = lib.elasticache_packed_error(p, i)
                        failures.append((st, ffi.string(msg).decode("utf-8", "replace")
                                         if msg != NULL else None, i))
            return mask, values, flags, failures
        finally:
            _packed_free(p)

    def _set_multi(self, mapping, time, key_prefix, min_compress_len, compress_level, add):
        time = _time(time)
        level = _compress_level(compress_level)
        originals = list(mapping)
        prefix = b"" if key_prefix is None else _prefix(key_prefix)
        joined = _joined(originals)
        count = len(originals)
        if joined is None or not count:
            return self._set_multi_keys(mapping, originals, prefix, time, min_compress_len, level, add)
        values = list(mapping.values())
        kinds = set(map(type, values)) if self._plain_ser and not min_compress_len else None
        data = None
        serialized = False
        if kinds == {bytes}:
            data, common, flags = b"".join(values), 0, NULL
        elif kinds == {str}:
            text = "".join(values)
            if text.isascii():  # then every value's length in characters is its length in bytes
                data, common, flags = text.encode(), FLAG_TEXT, NULL
            text = None
        if data is None:
            # serialize() may run the caller's code: first make sure that the
            # keys pass, so that a bad key is reported before anything else
            # (as the per-key path does) and the values are serialized once.
            pieces = joined.split(b" ")
            if len(pieces) != count or max(map(len, pieces)) + len(prefix) > MAX_KEY_LEN:
                return self._set_multi_keys(mapping, originals, prefix, time, min_compress_len, level, add)
            pieces = None
            serialized = True
            serialize = self._serialize
            flag_list = []
            for i, v in enumerate(values):
                d, fl = serialize(v)
                if min_compress_len:
                    d, fl = _maybe_compress(d, fl, min_compress_len, level)
                values[i] = d
                flag_list.append(fl)
            data = b"".join(values)
            common = flag_list[0]
            flags = NULL if flag_list.count(common) == count else _new(_U32S, flag_list)
        statuses = _new(_U32S, [_UNSET] * count)
        rc = _set_multi_packed(self._h, prefix, len(prefix), joined, len(joined), data, len(data),
                               _new(_SIZES, list(map(len, values))), flags, common, time, add,
                               count, statuses)
        if rc == 0:
            return []
        if rc == _INVALID_ARGUMENT and statuses[0] == _UNSET and not serialized:
            # Refused before anything was sent (a key the packed form cannot
            # carry); no serialize() of the caller's ran, so running again is safe.
            return self._set_multi_keys(mapping, originals, prefix, time, min_compress_len, level, add)
        return self._set_multi_failed(rc, statuses, originals, _keys(prefix, originals), add)

    def set_multi(self, mapping, time=0, key_prefix=None, min_compress_len=0, compress_level=-1):
        """Store every item (one write per node): the list of keys that failed."""
        return self._set_multi(mapping, time, key_prefix, min_compress_len, compress_level, False)

    def add_multi(self, mapping, time=0, key_prefix=None, min_compress_len=0, compress_level=-1):
        """Like set_multi with `add`: keys that already existed are in the list."""
        return self._set_multi(mapping, time, key_prefix, min_compress_len, compress_level, True)

    def delete_multi(self, keys, key_prefix=None):
        """True only if every key existed and was deleted."""
        if isinstance(keys, dict):
            raise TypeError("keys must be a sequence, not a mapping")
        originals = keys if type(keys) in _SEQUENCES else list(keys)
        prefix = b"" if key_prefix is None else _prefix(key_prefix)
        joined = _joined(originals)
        count = len(originals)
        if joined is not None and count:
            statuses = _new(_U32S, [_UNSET] * count)
            rc = _delete_multi_packed(self._h, prefix, len(prefix), joined, len(joined), count, statuses)
            if rc == 0:
                return True
            if not (rc == _INVALID_ARGUMENT and statuses[0] == _UNSET):
                return self._delete_multi_failed(rc, statuses, _keys(prefix, originals))
        return self._delete_multi_keys(originals, prefix)

    def incr_multi(self, keys, key_prefix=None, delta=1):
        """Increment every key by `delta`: None; NotFound naming how many were missing."""
        prefix = _prefix(key_prefix)
        missing = 0
        for k in keys:
            full = _full_key(prefix, k)
            if not full:
                raise BadKeyProvided("incr_multi: empty key")
            try:
                self.incr(full, delta)
            except NotFound:
                missing += 1
        if missing:
            raise NotFound(f"{missing} keys not found")
        return None
