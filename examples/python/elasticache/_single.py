"""The Client's single-key calls: get, gets and the stores, cas, delete,
touch, incr/decr, and the mapping protocol over them.

get and set are the hottest calls of the binding: one foreign call each,
with their key checks inlined and the library functions bound as module
globals.
"""

import operator

from . import _native as n
from ._common import NULL, _BUFFER_TOO_SMALL, _NOT_FOUND, _get_into, _scratch, _set, _tls, _unpack, ffi, lib
from ._encoding import FLAG_TEXT, MAX_KEY_LEN, _compress_level, _key, _maybe_compress, _time
from .exceptions import BadKeyProvided, CacheMiss, NotFound

_SCRATCH_MAX = 2 * 1024 * 1024
_BIG_KEYS = 64

_MISS = object()


class SingleKeyCalls:
    """Calls on one key. The Client supplies `_h`, `_plain_ser`,
    `_plain_deser`, `_cas`, `_serialize`, `_decode` and `_failed`."""

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
