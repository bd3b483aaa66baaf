"""The multi-key calls' two paths agree: the packed one (keys joined by
spaces into one buffer, results cut from one buffer) and the per-key one it
falls back to. Every call below runs both ways on the same fresh servers; the
return values, the exceptions and what the servers hold afterwards must match.
"""

import pickle

import pytest

import elasticache
from elasticache import client as client_mod


class Key(str):
    pass


class Blob(bytes):
    pass


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:
        return ("raise", type(e).__name__, getattr(e, "failed", None))


CALLS = [
    lambda c: c.set_multi({"a": b"1", "b": b"", "c": b"x" * 3000}),
    lambda c: c.get_multi(["a", "b", "c", "nope"]),
    lambda c: c.get_multi(("c", "a", "a")),
    lambda c: c.get_multi({"a": 0, "b": 0}.keys()),
    lambda c: c.get_multi(k for k in ["a", "nope", "b"]),
    lambda c: c.set_multi({"s1": "text", "s2": "ümlaut", "s3": ""}),
    lambda c: c.get_multi(["s1", "s2", "s3"]),
    lambda c: c.set_multi({"m1": 1, "m2": "two", "m3": b"3", "m4": [4], "m5": True, "m6": 2**70}),
    lambda c: c.get_multi(["m1", "m2", "m3", "m4", "m5", "m6", "s1"]),
    lambda c: c.set_multi({"p1": 1, "p2": b"2"}, key_prefix="pre:"),
    lambda c: c.get_multi(["p1", "p2", "p3"], key_prefix="pre:"),
    lambda c: c.get_multi(["p1"], key_prefix=b"pre:"),
    lambda c: c.get_multi(["pre:p1", "p2"]),
    lambda c: c.set_multi({b"b1": b"x", b"b2": 7}),
    lambda c: c.get_multi([b"b1", b"b2", b"b3"]),
    lambda c: c.get_multi([b"b1", "a"]),  # str and bytes mixed
    lambda c: c.get_multi([Key("a"), Blob(b"b1")]),
    lambda c: c.get_multi([bytearray(b"b1")]),
    lambda c: c.get_multi(["a", 1]),
    lambda c: c.get_multi(["", "a", ""]),  # empty keys are skipped
    lambda c: c.get_multi(["a b", "a", "x\ny"]),  # bad keys are skipped
    lambda c: c.get_multi(["a" * 251]),
    lambda c: c.get_multi(["a" * 200, "b"], key_prefix="p" * 51),
    lambda c: c.get_multi(["a" * 200], key_prefix="p" * 50),
    lambda c: c.get_multi(["\ud800"]),
    lambda c: c.get_multi([]),
    lambda c: c.set_multi({"": 1, "ok": 2, "a b": 3, "c\x01": 4}),
    lambda c: c.get_multi(["ok", "a"]),
    lambda c: c.set_multi({"long" * 70: 1, "ok2": 2}),
    lambda c: c.set_multi({"q1": object.__new__(Unpicklable), "q" * 300: 1}),
    lambda c: c.get_multi(["ok2"]),
    lambda c: c.set_multi({"z1": b"1", "z2": b"2"}, time=100),
    lambda c: c.add_multi({"z1": b"new", "z3": b"3"}),
    lambda c: c.get_multi(["z1", "z2", "z3"]),
    lambda c: c.set_multi({"big": b"x" * 3000}, min_compress_len=100),
    lambda c: c.get_multi(["big"]),
    lambda c: c.set_multi({"t": b"1"}, time="soon"),
    lambda c: c.set_multi({}),
    lambda c: c.delete_multi(["z1", "z2", "nope"]),
    lambda c: c.delete_multi(["z3"]),
    lambda c: c.delete_multi(["p1", "p2"], key_prefix="pre:"),
    lambda c: c.delete_multi(["", "a"]),
    lambda c: c.delete_multi([b"b1", "b"]),
    lambda c: c.delete_multi(["x" * 251]),
    lambda c: c.delete_multi({"a": 1}),
    lambda c: c.delete_multi([]),
    lambda c: c.delete_multi(k for k in ["c", "s1"]),
    lambda c: c.get_multi(["a", "b", "c", "s1", "s2", "b1", "p1", "z1"]),
]


# Every key the calls above can store (prefixed ones with their prefix).
STATE_KEYS = ["a", "b", "c", "s1", "s2", "s3", "m1", "m2", "m3", "m4", "m5", "m6", "pre:p1",
              "pre:p2", "b1", "b2", "ok", "ok2", "q1", "z1", "z2", "z3", "big", "t", "t1", "t2"]


class Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("no")


class Tagged(elasticache.Client):
    """deserialize() of its own: the results go through it, a CacheMiss skips a key."""

    def deserialize(self, data, flags):
        if data == b"miss":
            raise elasticache.CacheMiss()
        return ("tagged", flags, data)


def run(servers, cls, packed, monkeypatch):
    for m in servers:
        m.command("flush_all")
    if not packed:
        monkeypatch.setattr(client_mod, "_joined", lambda keys: None)
    try:
        c = cls([m.addr for m in servers], behaviors={"ketama": True})
        out = [outcome(lambda: call(c)) for call in CALLS]
        if cls is Tagged:
            c.set_multi({"t1": b"miss", "t2": b"ok"})
            out.append(outcome(lambda: c.get_multi(["t1", "t2"])))
        # What each node holds under every key the script names: raw VALUE
        # lines (key, flags, length) straight from the server.
        state = {}
        for m in servers:
            reply = m.command("get " + " ".join(STATE_KEYS))
            state[m.addr] = sorted(line for line in reply.split(b"\r\n")
                                   if line.startswith(b"VALUE "))
        return out, state
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("cls", [elasticache.Client, Tagged])
def test_packed_and_per_key_paths_agree(servers, cls, monkeypatch):
    packed, packed_state = run(servers, cls, True, monkeypatch)
    per_key, per_key_state = run(servers, cls, False, monkeypatch)
    for i, (a, b) in enumerate(zip(packed, per_key)):
        assert a == b, f"call {i}: packed {a!r} per-key {b!r}"
    assert packed_state == per_key_state
    # The script exercised what it means to: hits, skips, refusals.
    assert packed[1] == ("ok", {"a": b"1", "b": b"", "c": b"x" * 3000}) or cls is Tagged
    assert packed[21][0] == "raise" and packed[21][1] == "ValueError"
    assert packed[18][1] == "TypeError" and packed[17][1] == "TypeError"


def test_the_packed_path_is_taken(server, monkeypatch):
    """str and bytes keys go through the packed calls (the speed depends on it)."""
    calls = []
    for name in ("_get_multi_packed", "_set_multi_packed", "_delete_multi_packed"):
        real = getattr(client_mod, name)
        monkeypatch.setattr(client_mod, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    c = elasticache.Client([server.addr])
    assert c.set_multi({"a": b"1", "b": "2", "c": 3}) == []
    assert c.set_multi({b"d": b"4"}) == []
    assert c.get_multi(["a", "b", "c"]) == {"a": b"1", "b": "2", "c": 3}
    assert c.get_multi([b"d"]) == {b"d": b"4"}
    assert c.delete_multi(["a", "b"]) is True
    assert calls == ["_set_multi_packed", "_set_multi_packed", "_get_multi_packed", "_get_multi_packed",
                     "_delete_multi_packed"]
