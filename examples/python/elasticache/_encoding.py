"""Keys and values as the library takes them: key checks (UTF-8, at most 250
bytes, a prefix), expiry and compression arguments, and pylibmc's value flags
(`ValueEncoding.serialize` / `deserialize`, which a subclass may override)."""

import operator
import pickle
import zlib

from .exceptions import CacheMiss, Error

FLAG_PICKLE = 1
FLAG_INTEGER = 2
FLAG_LONG = 4
FLAG_ZLIB = 8
FLAG_TEXT = 16
_FLAG_TYPES = FLAG_PICKLE | FLAG_INTEGER | FLAG_LONG | FLAG_TEXT

MAX_KEY_LEN = 250


def _key(key):
    """A key as bytes (str is UTF-8 encoded); over 250 bytes is ValueError."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    elif not isinstance(key, bytes):
        raise TypeError(f"key must be bytes or str, not {type(key).__name__}")
    if len(key) > MAX_KEY_LEN:
        raise ValueError(f"key length {len(key)} too long, max is {MAX_KEY_LEN}")
    return key


def _full_key(prefix, key):
    """prefix + key as bytes, checked like a key."""
    if not prefix:
        return _key(key)
    if type(key) is str:
        key = key.encode("utf-8")
    elif not isinstance(key, bytes):
        raise TypeError(f"key must be bytes or str, not {type(key).__name__}")
    return _key(prefix + key)


def _prefix(key_prefix):
    if key_prefix is None:
        return b""
    if isinstance(key_prefix, str):
        return key_prefix.encode("utf-8")
    if isinstance(key_prefix, bytes):
        return key_prefix
    raise TypeError(f"key_prefix must be bytes or str, not {type(key_prefix).__name__}")


def _joined(keys):
    """The keys as one byte string, separated by spaces (str keys UTF-8
    encoded), for the packed calls; None unless they are all str or all
    bytes (anything else goes through _keys, which names the bad one)."""
    try:
        return " ".join(keys).encode()
    except TypeError:
        pass
    for t in set(map(type, keys)):
        if t is not bytes:
            return None
    return b" ".join(keys)


def _keys(prefix, keys):
    """Every key as checked bytes (prefix applied)."""
    if prefix:
        return [_full_key(prefix, k) for k in keys]
    raw = [k.encode("utf-8") if type(k) is str else k for k in keys]
    for i, k in enumerate(raw):
        if type(k) is not bytes or len(k) > MAX_KEY_LEN:
            raw[i] = _key(k)  # converts a str subclass, or raises the right error
    return raw


def _time(time):
    try:
        return operator.index(time)
    except TypeError:
        raise TypeError(f"'{type(time).__name__}' object cannot be interpreted as an integer") from None


def _compress_level(level):
    if level == -1:
        return -1
    level = operator.index(level)
    if not 0 <= level <= 9:
        raise ValueError("compress_level must be between 0 and 9 inclusive")
    return level


def _maybe_compress(data, flags, min_compress_len, level):
    # pylibmc: only when asked, only when it saves space.
    if min_compress_len and level and len(data) >= min_compress_len:
        z = zlib.compress(data, level)
        if len(z) < len(data):
            return z, flags | FLAG_ZLIB
    return data, flags


class ValueEncoding:
    """The Client's values: serialize/deserialize with pylibmc's flags, and
    the checks and decoding the calls run around them. The Client supplies
    `pickle_protocol`, `_plain_ser` and `_plain_deser`."""

    def serialize(self, value):
        """(bytes, flags) to store for `value`, with pylibmc's flags."""
        if isinstance(value, bytes):
            return value, 0
        if isinstance(value, str):
            return value.encode("utf-8"), FLAG_TEXT
        if isinstance(value, bool):
            return (b"1" if value else b"0"), FLAG_INTEGER
        if isinstance(value, int):
            return b"%d" % value, FLAG_LONG
        return pickle.dumps(value, self.pickle_protocol), FLAG_PICKLE

    def deserialize(self, data, flags):
        """The value for stored `data` (already decompressed) and `flags`.
        Raise CacheMiss to have the read treated as a miss."""
        t = flags & _FLAG_TYPES
        if t == 0:
            return data
        if t == FLAG_TEXT:
            return data.decode("utf-8")
        if t == FLAG_LONG or t == FLAG_INTEGER:
            return int(data)
        if t == FLAG_PICKLE:
            return pickle.loads(data)
        raise Error(f"unknown memcached key flags {t}")

    def _decode(self, data, flags):
        if flags & FLAG_ZLIB:
            try:
                data = zlib.decompress(data)
            except zlib.error as e:
                raise Error(f"Failed to decompress value: {e}") from None
        return self.deserialize(data, flags)

    def _serialize(self, val):
        """serialize(val), checked when a subclass overrides it (pylibmc
        raises ValueError for anything but (bytes, 32-bit int flags))."""
        if self._plain_ser:
            return self.serialize(val)
        out = self.serialize(val)
        if type(out) is not tuple or len(out) != 2:
            raise ValueError(f"serialize() must return a (bytes, flags) tuple, not {type(out).__name__}")
        data, flags = out
        if not isinstance(data, bytes):
            raise ValueError(f"serialize() must return bytes as the value, not {type(data).__name__}")
        if type(flags) is not int or not 0 <= flags < 1 << 32:
            raise ValueError(f"serialize() must return flags as a 32-bit unsigned int, not {flags!r:.40}")
        return out

    def _decode_mixed(self, keys, datas, flags):
        """{key: value} for hits with differing flags (plain deserialize)."""
        result = {}
        try:
            for k, d, f in zip(keys, datas, flags):
                if f == FLAG_TEXT:
                    result[k] = d.decode("utf-8")
                elif f == 0:
                    result[k] = d
                else:
                    result[k] = self._decode(d, f)
            return result
        finally:
            keys = datas = result = k = None  # see Client.get_multi

    def _decode_many(self, keys, datas, flags):
        """{key: value} through a subclass's deserialize(); CacheMiss skips a key."""
        result = {}
        try:
            for k, d, f in zip(keys, datas, flags):
                try:
                    result[k] = self._decode(d, f)
                except CacheMiss:
                    pass
            return result
        finally:
            keys = datas = result = k = None  # see Client.get_multi
