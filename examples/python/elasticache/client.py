"""`elasticache.Client`: pylibmc's Client over libelasticache.

Hot paths (get/set) are one foreign call each; get_multi is three
(get_multi, multi_export, multi_free), set_multi and delete_multi one. cffi
releases the GIL around every call, so a thread blocked on the network never
stalls the others. One client may be shared by any number of threads, and
keeps working in both processes after os.fork() (the library opens fresh
sockets in the child).
"""

import operator
from itertools import accumulate, compress as _compress
import pickle
from struct import unpack_from as _unpack_from
import threading
from time import monotonic as _monotonic
import zlib

from . import _native as n
from . import behaviors as _bh
from ._meta import LeaseMixin
from .exceptions import (
    BadKeyProvided,
    CacheMiss,
    Error,
    NotFound,
    SomeErrors,
    error_for,
    ignorable,
    warn_once,
)
from .servers import split_server as _split_server
from .servers import translate_server_spec  # noqa: F401 - pylibmc.client's name
from ._common import (  # noqa: F401 - names this module has always had
    NULL, _BUFFER_TOO_SMALL, _FFI_TYPES, _INVALID_ARGUMENT, _NO_CLIENT, _NOT_FOUND, _SCRATCH_START, _SIZES,
    _U32S, _UNSET, _Scratch, _buffer, _delete_multi_packed, _get_into, _get_multi_packed, _new,
    _packed_free, _scratch, _set, _set_multi_packed, _tls, _unpack, ffi, lib,
)
from ._encoding import (  # noqa: F401 - names this module has always had
    _FLAG_TYPES, FLAG_INTEGER, FLAG_LONG, FLAG_PICKLE, FLAG_TEXT, FLAG_ZLIB, MAX_KEY_LEN, ValueEncoding,
    _compress_level, _full_key, _joined, _key, _keys, _maybe_compress, _prefix, _time,
)
from ._admin import _LIBMEMCACHED_STATS, ServerCalls  # noqa: F401
from ._construct import (  # noqa: F401 - names this module has always had
    _REBUILD_EVERY, TLS_KEYWORDS, BehaviorDict, Construction, _options_handle, _with_tls,
    translate_server_specs,
)


_SCRATCH_MAX = 2 * 1024 * 1024
_BIG_KEYS = 64

_MISS = object()

_utf8 = bytes.decode  # UTF-8, strict: as data.decode("utf-8")
_SEQUENCES = (list, tuple, type({}.keys()))  # iterated more than once without a copy


class Client(Construction, ServerCalls, ValueEncoding, LeaseMixin):
    """A memcached client with pylibmc's interface.

    `Client(["10.0.0.1:11211", "10.0.0.2:11211"], behaviors={"ketama": True})`
    for a fixed server list; `Client.from_endpoint("cfg-host:11211")` for an
    ElastiCache cluster found through its configuration endpoint.
    """

    # {{{ single-key reads
    def get(self, key, default=None):
        """The value of `key`, or `default` on a miss (and for an empty key)."""
        # _key() inlined: this is the hottest call of the binding. The name
        # is rebound, as _key() did: a traceback that keeps this frame (from
        # a subclass's deserialize()) must not keep the caller's key.
        if type(key) is str:
            key = key.encode()
        if type(key) is not bytes or len(key) > MAX_KEY_LEN:
            key = _key(key)
        k = key
        try:
            s = _tls.s
        except AttributeError:
            s = _scratch()
        if s.big and k in s.big:
            got = self._get_large(k, s)
            if got is None:
                return default
            data, flags = got
        else:
            rc = _get_into(self._h, k, len(k), s.buf, s.cap, s.plen, s.pflags, NULL)
            if rc == 0:
                data = s.view[0:s.plen[0]]
                flags = s.pflags[0]
                if self._plain_deser:
                    if flags == 0:
                        return data
                    if flags == FLAG_TEXT:
                        return data.decode("utf-8")
            elif rc == _NOT_FOUND:
                return default
            elif rc == _BUFFER_TOO_SMALL:
                got = self._get_large(k, s)
                if got is None:
                    return default
                data, flags = got
            elif not k:
                return default  # pylibmc: an empty key is a miss
            else:
                return self._failed(rc, f"get({k!r})", default)
        try:
            return self._decode(data, flags)
        except CacheMiss:
            return default

    def _get_large(self, key, s):
        """(data, flags) of a value that did not fit the thread's buffer, or
        None on a miss. Up to _SCRATCH_MAX the buffer grows (so the next read
        of that size is one fetch); above it the key is remembered and read
        through a value object, one fetch of exactly its size, from then on."""
        need = s.plen[0]
        if need <= _SCRATCH_MAX and key not in s.big:
            s.cap = min(_SCRATCH_MAX, max(need, 2 * s.cap))
            s.buf = ffi.new("char[]", s.cap)
            s.view = ffi.buffer(s.buf)
            rc = _get_into(self._h, key, len(key), s.buf, s.cap, s.plen, s.pflags, NULL)
            if rc == 0:
                return _unpack(s.buf, s.plen[0]), s.pflags[0]
            if rc == n.NOT_FOUND:
                return None
            if rc != n.BUFFER_TOO_SMALL:
                return self._failed(rc, f"get({key!r})", None)
        got = self._get_value(key, s, False)
        if got is None:
            s.big.pop(key, None)
            return None
        data, flags, _ = got
        if len(data) > _SCRATCH_MAX:
            if len(s.big) >= _BIG_KEYS:
                s.big.pop(next(iter(s.big)))
            s.big[key] = True
        else:
            s.big.pop(key, None)
        return data, flags

    def _get_value(self, key, s, with_cas):
        """(data, flags, cas) read through a library value object, or None on
        a miss (or a failure swallowed by ignore_exc)."""
        fn = lib.elasticache_gets if with_cas else lib.elasticache_get
        rc = fn(self._h, key, len(key), s.pval)
        if rc == n.NOT_FOUND:
            return None
        if rc:
            return self._failed(rc, f"{'gets' if with_cas else 'get'}({key!r})", None)
        v = s.pval[0]
        try:
            return (_unpack(lib.elasticache_value_data(v), lib.elasticache_value_len(v)),
                    lib.elasticache_value_flags(v), lib.elasticache_value_cas(v))
        finally:
            lib.elasticache_value_free(v)

    def gets(self, key):
        """(value, cas_id), or (None, None) on a miss. Needs behavior `cas`."""
        key = _key(key)
        if not self._cas:
            raise ValueError("gets without cas behavior")
        if not key:
            return (None, None)
        got = self._get_value(key, _scratch(), True)
        if got is None:
            return (None, None)
        data, flags, cas = got
        try:
            return (self._decode(data, flags), cas)
        except CacheMiss:
            return (None, None)

    def __getitem__(self, key):
        value = self.get(key, _MISS)
        if value is _MISS:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return self.get(key, _MISS) is not _MISS
    # }}}

    # {{{ single-key writes
    def _store(self, fn, name, key, val, time, min_compress_len, compress_level):
        key = _key(key)
        time = _time(time)
        level = _compress_level(compress_level)
        data, flags = self._serialize(val)
        data, flags = _maybe_compress(data, flags, min_compress_len, level)
        rc = fn(self._h, key, len(key), data, len(data), flags, time)
        if rc == 0:
            return True
        return self._not_stored(rc, name, key)

    def _not_stored(self, rc, name, key):
        """A store's answer for a nonzero status: False when memcached
        declined it (or for an empty key), else the failure's."""
        if rc == n.NOT_STORED or rc == n.EXISTS or rc == n.NOT_FOUND or not key:
            return False
        return self._failed(rc, f"{name}({key!r})", False)

    def set(self, key, val, time=0, min_compress_len=0, compress_level=-1):
        """Store unconditionally: True (False for an empty key)."""
        if min_compress_len or compress_level != -1 or type(time) is not int:
            return self._store(_set, "set", key, val, time, min_compress_len, compress_level)
        # _store() inlined for the defaults: no compression, an int expiry.
        if type(key) is str:
            key = key.encode()
        if type(key) is not bytes or len(key) > MAX_KEY_LEN:
            key = _key(key)
        k = key
        t = type(val)
        if t is bytes and self._plain_ser:
            data, flags = val, 0
        elif t is str and self._plain_ser:
            data, flags = val.encode("utf-8"), FLAG_TEXT
        else:
            data, flags = self._serialize(val)
        rc = _set(self._h, k, len(k), data, len(data), flags, time)
        if rc == 0:
            return True
        return self._not_stored(rc, "set", k)

    def add(self, key, val, time=0, min_compress_len=0, compress_level=-1):
        """Store if `key` is absent: True, False when it exists."""
        return self._store(lib.elasticache_add, "add", key, val, time, min_compress_len, compress_level)

    def replace(self, key, val, time=0, min_compress_len=0, compress_level=-1):
        """Store if `key` exists: True, False when it does not."""
        return self._store(lib.elasticache_replace, "replace", key, val, time, min_compress_len,
                           compress_level)

    def append(self, key, val, time=0, min_compress_len=0, compress_level=-1):
        """Append the serialized `val`: True, False on a missing key."""
        return self._store(lib.elasticache_append, "append", key, val, time, min_compress_len,
                           compress_level)

    def prepend(self, key, val, time=0, min_compress_len=0, compress_level=-1):
        """Prepend the serialized `val`: True, False on a missing key."""
        return self._store(lib.elasticache_prepend, "prepend", key, val, time, min_compress_len,
                           compress_level)

    def cas(self, key, val, cas, time=0):
        """Store if unchanged since `gets`: True, False when it changed;
        NotFound when the key is gone. Needs behavior `cas`."""
        key = _key(key)
        time = _time(time)
        cas = operator.index(cas)
        if not self._cas:
            raise ValueError("cas without cas behavior")
        data, flags = self._serialize(val)
        if not key:
            return False
        rc = lib.elasticache_cas(self._h, key, len(key), data, len(data), flags, time, cas)
        if rc == 0:
            return True
        if rc == n.EXISTS:
            return False
        if rc == n.NOT_FOUND:
            raise NotFound(f"cas({key!r}): not found")
        return self._failed(rc, f"cas({key!r})", False)

    def delete(self, key):
        """True, False on a miss (and for an empty key)."""
        key = _key(key)
        rc = lib.elasticache_delete(self._h, key, len(key))
        if rc == 0:
            return True
        if rc == n.NOT_FOUND or not key:
            return False
        return self._failed(rc, f"delete({key!r})", False)

    def touch(self, key, time):
        """New expiry: True, False on a miss (and for an empty key)."""
        key = _key(key)
        time = _time(time)
        rc = lib.elasticache_touch(self._h, key, len(key), time)
        if rc == 0:
            return True
        if rc == n.NOT_FOUND or not key:
            return False
        return self._failed(rc, f"touch({key!r})", False)

    def _arith(self, fn, name, key, delta):
        key = _key(key)
        delta = operator.index(delta)
        if delta < 0:
            raise ValueError("delta must be positive")
        if delta >= 1 << 64:
            raise OverflowError(f"delta {delta} does not fit in 64 bits")
        if not key:
            raise BadKeyProvided(f"{name}: empty key")  # as pylibmc
        s = _scratch()
        rc = fn(self._h, key, len(key), delta, s.pnum)
        if rc == 0:
            return s.pnum[0]
        if rc == n.NOT_FOUND:
            raise NotFound("1 keys not found")
        return self._failed(rc, f"{name}({key!r})", None)

    def incr(self, key, delta=1):
        """The new value; NotFound on a miss (None for an error ignore_exc hides)."""
        return self._arith(lib.elasticache_incr, "incr", key, delta)

    def decr(self, key, delta=1):
        """The new value (stops at 0); NotFound on a miss."""
        return self._arith(lib.elasticache_decr, "decr", key, delta)

    def __setitem__(self, key, value):
        if not self.set(key, value):
            raise KeyError(f"failed setting {key!r}")

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)
    # }}}

    # {{{ multi-key
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

    def _get_multi_keys(self, originals, prefix):
        """get_multi through the per-key arrays: keys the packed form cannot
        carry (bytes-like objects, a mix of str and bytes, spaces, over 250
        bytes), checked one by one with the per-key errors."""
        try:
            raw = _keys(prefix, originals)
            if not all(raw):  # pylibmc skips empty keys
                pairs = [(o, r) for o, r in zip(originals, raw) if r]
                originals, raw = [o for o, _ in pairs], [r for _, r in pairs]
                pairs = None
            count = len(raw)
            if not count:
                return {}
            fetched = self._fetch_multi(raw, count)
            if fetched is None:
                return {}
            hits, values, hit_flags, failures = fetched
            hit_keys = originals if hits is None else [originals[i] for i in hits]
            if not self._plain_deser:
                result = self._decode_many(hit_keys, values, hit_flags)
            else:
                # The common flags without a call per value; anything else through _decode.
                first = hit_flags[0] if hit_flags else 0
                if hit_flags.count(first) == len(hit_flags) and first in (0, FLAG_TEXT):
                    if first == FLAG_TEXT:
                        values = [d.decode("utf-8") for d in values]
                    result = dict(zip(hit_keys, values))
                else:
                    result = self._decode_mixed(hit_keys, values, hit_flags)
            if failures:
                self._multi_failed("get_multi", failures, count, raw, result)
            return result
        finally:
            originals = raw = hit_keys = values = result = None  # see get_multi

    def _fetch_multi(self, raw, count):
        """(hit indexes or None when all hit, values, flags, failures) for the
        keys `raw`; failures are (status, message, index), bad keys not among
        them. None when the call failed and ignore_exc hid it."""
        keep, ptrs, lens = _pack(raw)
        out = ffi.new("elasticache_multi **")
        rc = lib.elasticache_get_multi(self._h, ptrs, lens, count, False, out)
        del keep
        if rc:
            return self._failed(rc, "get_multi", None)
        m = out[0]
        # One allocation for every output array (in 8-byte slots; the two
        # uint32 arrays take half a slot per entry).
        half = (count + 1) // 2
        scratch = ffi.new("uint64_t[]", 2 * half + 2 * count + 2)
        statuses = ffi.cast("uint32_t *", scratch)
        flags = ffi.cast("uint32_t *", scratch + half)
        data = ffi.cast("char **", scratch + 2 * half)
        dlens = ffi.cast("size_t *", scratch + 2 * half + count)
        arena = ffi.cast("char **", scratch + 2 * half + 2 * count)
        alen = ffi.cast("size_t *", scratch + 2 * half + 2 * count + 1)
        failures = []
        try:
            rc = lib.elasticache_multi_export(m, count, statuses, data, dlens, flags, NULL)
            if rc == 0:
                rc = lib.elasticache_multi_arena(m, arena, alen)
            if rc:
                return self._failed(rc, "get_multi", None)
            # Every value is copied out in one go and cut by offset: one
            # foreign read per key cost more than the whole copy.
            blob = ffi.buffer(arena[0], alen[0])[:]
            base = int(ffi.cast("uintptr_t", arena[0]))
            st_list = _unpack(statuses, count)
            a_list = _unpack(ffi.cast("uintptr_t *", data), count)
            l_list, f_list = _unpack(dlens, count), _unpack(flags, count)
            nhits = st_list.count(0)
            if nhits == count:
                hits = None
            else:
                hits = [i for i in range(count) if st_list[i] == 0]
                if count - nhits != st_list.count(n.NOT_FOUND):
                    for i in range(count):
                        st = st_list[i]
                        if st != 0 and st != n.NOT_FOUND and st != n.BAD_KEY:
                            msg = lib.elasticache_multi_error(m, i)
                            failures.append((st, ffi.string(msg).decode("utf-8", "replace")
                                             if msg != NULL else None, i))
        finally:
            lib.elasticache_multi_free(m)
        if hits is None:
            values = [blob[a - base:a - base + ln] for a, ln in zip(a_list, l_list)]
            return None, values, f_list, failures
        values = [blob[a_list[i] - base:a_list[i] - base + l_list[i]] for i in hits]
        return hits, values, [f_list[i] for i in hits], failures

    def _multi_failed(self, name, failures, count, raw, result):
        """Report the failed keys of a multi call: log them (once per node
        every few seconds); raise when every key failed, unless ignore_exc."""
        by_message = {}
        for st, msg, i in failures:
            by_message.setdefault((st, msg), []).append(i)
        excs = []
        for (st, msg), idx in by_message.items():
            exc = error_for(st, msg or n.status_str(st),
                            what=f"{name}: {len(idx)} of {count} keys failed, first {raw[idx[0]]!r}")
            if not ignorable(st, exc) and not self.ignore_exc:
                exc.results = result
                raise exc
            excs.append(exc)
        if len(failures) == count and not self.ignore_exc:
            st, msg, i = failures[0]
            exc = error_for(st, msg or n.status_str(st),
                            what=f"{name}: {len(failures)} of {count} keys failed, first {raw[i]!r}")
            exc.results = result
            raise exc
        for exc in excs:
            warn_once(exc)

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

    def _set_multi_keys(self, mapping, originals, prefix, time, min_compress_len, level, add):
        """set_multi through the per-key arrays (see _get_multi_keys)."""
        raw = _keys(prefix, originals)
        count = len(raw)
        if not count:
            return []
        serialize = self._serialize
        values, flag_list = [], []
        for v in mapping.values():
            data, fl = serialize(v)
            if min_compress_len:
                data, fl = _maybe_compress(data, fl, min_compress_len, level)
            values.append(data)
            flag_list.append(fl)
        statuses = ffi.new("uint32_t[]", [_UNSET] * count)
        kkeep, kptrs, klens = _pack(raw)
        vkeep, vptrs, vlens = _pack(values)
        rc = lib.elasticache_set_multi(self._h, kptrs, klens, vptrs, vlens,
                                       ffi.new("uint32_t[]", flag_list), time, add, count, statuses)
        del kkeep, vkeep
        return self._set_multi_failed(rc, statuses, originals, raw, add)

    def _set_multi_failed(self, rc, statuses, originals, raw, add):
        """The keys that failed to store (raising for a hard failure unless ignore_exc)."""
        count = len(raw)
        # A failure of the whole call (before any item was tried) leaves the
        # statuses unwritten: every item failed with the call's status.
        st_list = [rc if st == _UNSET else st for st in _unpack(statuses, count)]
        failed, hard = [], None
        for i in range(count):
            st = st_list[i]
            if st == 0:
                continue
            failed.append(originals[i])
            if st not in (n.NOT_STORED, n.EXISTS, n.NOT_FOUND, n.BAD_KEY) and hard is None:
                hard = (st, i)
        if hard is not None:
            st, i = hard
            exc = error_for(st, what=f"{'add' if add else 'set'}_multi: {len(failed)} of {count} "
                                     f"keys failed, first hard failure {raw[i]!r}")
            if not (self.ignore_exc and ignorable(st, exc)):
                exc.failed = failed
                raise exc
            warn_once(exc)
        return failed

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
        raw = _keys(prefix, originals)
        count = len(raw)
        if not count:
            return True
        statuses = ffi.new("uint32_t[]", [_UNSET] * count)
        keep, ptrs, lens = _pack(raw)
        rc = lib.elasticache_delete_multi(self._h, ptrs, lens, count, statuses)
        del keep
        return self._delete_multi_failed(rc, statuses, raw)

    def _delete_multi_failed(self, rc, statuses, raw):
        count = len(raw)
        st_list = [rc if st == _UNSET else st for st in _unpack(statuses, count)]
        ok = True
        for i in range(count):
            st = st_list[i]
            if st == 0:
                continue
            ok = False
            if st == n.NOT_FOUND or (st == n.BAD_KEY and not raw[i]):
                continue
            self._failed(st, f"delete_multi({raw[i]!r})", False)
        return ok

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
    # }}}


def _pack(items):
    """A `char *[]` and a `size_t[]` describing `items` (bytes) for one
    foreign call, built from integers rather than one cdata per item (3-4x
    cheaper for 100 keys). Returns (keepalive, pointers, lengths): keep the
    first alive until the call returns."""
    lens = list(map(len, items))
    blob = b"".join(items)
    offsets = list(accumulate(lens, initial=int(ffi.cast("uintptr_t", ffi.from_buffer(blob)))))
    offsets.pop()
    addrs = ffi.new("uintptr_t[]", offsets)
    return (blob, addrs), ffi.cast("char **", addrs), ffi.new("size_t[]", lens)
