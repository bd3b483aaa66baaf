"""Values and key placement shared with pylibmc and pymemcache on the same servers."""

import pylibmc
import pytest
from pymemcache import serde
from pymemcache.client.base import Client as PymemcacheClient

import elasticache


class Point:
    """A user class, pickled."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


VALUES = [
    b"bytes", b"", b"\x00\xff" * 10, "text é ключ", "", 0, 42, -7, 2**70, -(2**70), True, False, 1.5,
    None, {"a": [1, 2, {"b": (3, 4)}]}, [1, "two", b"three"], Point(1, 2), b"x" * 5000, "y" * 5000,
]
MODES = {
    "modula": {},
    "ketama": {"ketama": True},
    "ketama+tcp_nodelay (django-elasticache)": {"ketama": True, "tcp_nodelay": True},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_values_written_by_pylibmc_read_back_equal_and_reverse(flushed, mode):
    addrs = [m.addr for m in flushed]
    theirs = pylibmc.Client(addrs, behaviors=MODES[mode])
    ours = elasticache.Client(addrs, behaviors=MODES[mode])
    for i, value in enumerate(VALUES):
        for mcl in (0, 1000):
            key = f"v{i}:{mcl}"
            assert theirs.set(key, value, min_compress_len=mcl)
            assert ours.get(key) == value, (mode, key, value)
            assert ours.set(key + ":ours", value, min_compress_len=mcl)
            assert theirs.get(key + ":ours") == value, (mode, key, value)
    # And through the multi-key calls both ways.
    mapping = {f"m{i}": v for i, v in enumerate(VALUES)}
    assert theirs.set_multi(mapping, min_compress_len=1000) == []
    assert ours.get_multi(list(mapping)) == mapping
    assert ours.set_multi({k + "o": v for k, v in mapping.items()}, min_compress_len=1000) == []
    assert theirs.get_multi([k + "o" for k in mapping]) == {k + "o": v for k, v in mapping.items()}


def test_pymemcache_pickle_serde_both_ways(server):
    pm = PymemcacheClient(("127.0.0.1", server.port), serde=serde.pickle_serde, default_noreply=False)
    ours = elasticache.Client([server.addr])
    for i, value in enumerate(VALUES):
        pm.set(f"pm{i}", value)
        got = ours.get(f"pm{i}")
        assert got == value, value
        ours.set(f"ec{i}", value)
        assert pm.get(f"ec{i}") == value, value
    pm.close()


def test_pymemcache_compressed_serde(server):
    pm = PymemcacheClient(("127.0.0.1", server.port),
                          serde=serde.CompressedSerde(min_compress_len=100), default_noreply=False)
    ours = elasticache.Client([server.addr])
    pm.set("c", "z" * 1000)
    assert ours.get("c") == "z" * 1000
    ours.set("d", "z" * 1000, min_compress_len=100)
    assert pm.get("d") == "z" * 1000
    pm.close()


PLACEMENT_MODES = {
    "modula": {},
    "ketama": {"ketama": True},
    "consistent": {"distribution": "consistent"},
    "ketama md5": {"ketama": True, "hash": "md5"},
    "ketama crc": {"ketama": True, "hash": "crc"},
    "modula fnv1a_32": {"hash": "fnv1a_32"},
    "ketama_weighted": {"ketama_weighted": True},
}


@pytest.mark.parametrize("mode", list(PLACEMENT_MODES))
def test_keys_written_by_pylibmc_through_4_nodes_are_all_hits(flushed, mode):
    addrs = [m.addr for m in flushed]
    behaviors = PLACEMENT_MODES[mode]
    theirs = pylibmc.Client(addrs, behaviors=behaviors)
    keys = [f"place:{i}" for i in range(400)] + [f"ключ:{i}" for i in range(50)]
    assert theirs.set_multi({k: 1 for k in keys}) == []
    ours = elasticache.Client(addrs, behaviors=behaviors)
    found = ours.get_multi(keys)
    assert len(found) == len(keys), f"{mode}: {len(found)}/{len(keys)} hits"
    assert [ours.hash(k) for k in keys[:100]] == [theirs.hash(k) for k in keys[:100]]


def test_endpoint_client_finds_what_django_elasticache_wrote(flushed, endpoint_factory):
    """django-elasticache hands pylibmc the nodes as ip:port with ketama."""
    ep = endpoint_factory([(f"node{i}.example.internal", "127.0.0.1", m.port) for i, m in enumerate(flushed)])
    theirs = pylibmc.Client([m.addr for m in flushed], behaviors={"ketama": True, "tcp_nodelay": True})
    keys = [f":1:views.decorators.cache.cache_page.{i}" for i in range(300)]
    assert theirs.set_multi({k: i for i, k in enumerate(keys)}) == []
    ours = elasticache.Client.from_endpoint(ep.addr)
    assert ours.get_multi(keys) == {k: i for i, k in enumerate(keys)}
