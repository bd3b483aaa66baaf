"""Binary keys and leases from Python, against real memcached, read back by
pylibmc: keys with spaces and control bytes written by our client in meta
mode are the keys pylibmc's binary protocol reads (and the reverse), and
values written under a lease keep pylibmc's flags."""

import threading

import pylibmc
import pytest

import elasticache
from elasticache.exceptions import BadKeyProvided


BINARY_KEYS = ["\x00\x01", "\xb5 bad", "with space", b"raw\xff\x00 bytes", "tab\tkey"]


def ours(addrs, **kw):
    # binary=True is what pylibmc code passes: the Client maps it to the binary_keys option.
    return elasticache.Client(addrs, binary=True, **kw)


def test_binary_keys_interoperate_with_pylibmc_binary_mode(flushed):
    addrs = [m.addr for m in flushed]
    theirs = pylibmc.Client(addrs, binary=True, behaviors={"ketama": True})
    mine = ours(addrs, behaviors={"ketama": True})
    for i, key in enumerate(BINARY_KEYS):
        assert mine.set(key, {"i": i}) is True
        assert theirs.get(key) == {"i": i}, key
        assert theirs.set(key, f"theirs {i}")
        assert mine.get(key) == f"theirs {i}", key
        assert mine.delete(key) is True
        assert theirs.get(key) is None
    mapping = {k: i for i, k in enumerate(BINARY_KEYS + ["plain", "text:key"])}
    assert mine.set_multi(mapping) == []
    assert theirs.get_multi(list(mapping)) == mapping
    assert mine.get_multi(list(mapping)) == mapping


def test_binary_keys_refused_without_the_option(server):
    plain = elasticache.Client([server.addr])
    with pytest.raises(BadKeyProvided):
        plain.set("\xb5 bad", 1)


def test_lease_protocol_and_pylibmc_reads_the_values(server):
    c = ours([server.addr])
    theirs = pylibmc.Client([server.addr])
    first = c.get_or_lease("report", lease_ttl=30)
    assert (first.state, first.value, first.protected) == ("miss", None, True)
    assert c.get_or_lease("report").state == "wait"
    value = {"rows": [1, 2, 3]}
    assert c.set("report", value, 60)
    lease = c.get_or_lease("report")
    assert (lease.state, lease.value) == ("hit", value)
    assert theirs.get("report") == value, "pylibmc reads a value stored after a lease"
    for v in ["text", 42, b"bytes", True]:
        c.set("kind", v)
        assert theirs.get("kind") == v
        assert c.get_or_lease("kind").value == v

    assert c.invalidate("report", 60) is True
    refresher = c.get_or_lease("report")
    assert (refresher.state, refresher.value, refresher.stale) == ("refresh", value, True)
    other = c.get_or_lease("report")
    assert (other.state, other.value) == ("stale", value)
    assert theirs.get("report") == value, "the stale value is still an ordinary item"
    assert c.invalidate("never-there") is False


def test_get_or_set_leased_calls_default_once_among_threads(server):
    c = ours([server.addr])
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(2)
        return "fresh"

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        c.get_or_set_leased("hot", compute, time=30, lease_ttl=10, poll=0.02))) for _ in range(16)]
    for t in threads:
        t.start()
    threading.Timer(0.5, gate.set).start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1, f"default ran {len(calls)} times"
    assert results == ["fresh"] * 16


def test_get_or_lease_multi_one_answer_per_key(flushed):
    addrs = [m.addr for m in flushed]
    c = ours(addrs)
    theirs = pylibmc.Client(addrs)
    keys = [f"frag:{i}" for i in range(30)] + ["bin key \x01"]
    for k in keys[::2]:
        c.set(k, {"k": k}, 60)
    first = c.get_or_lease_multi(keys)
    assert list(first) == keys
    for i, k in enumerate(keys):
        want = ("hit", {"k": k}) if i % 2 == 0 else ("miss", None)
        assert (first[k].state, first[k].value) == want, k
        assert first[k].protected
    again = c.get_or_lease_multi(keys)
    assert [again[k].state for k in keys[1::2]] == ["wait"] * len(keys[1::2])
    c.set(keys[1], "filled", 60)
    assert c.get_or_lease_multi([keys[1]])[keys[1]].value == "filled"
    assert theirs.get(keys[1]) == "filled"
    assert c.get_or_lease_multi([]) == {}
    with pytest.raises(BadKeyProvided):
        c.get_or_lease_multi(["ok", "x" * 300])
    with pytest.raises(elasticache.Error):
        c.get_or_lease_multi(["ok"], lease_ttl=0)
