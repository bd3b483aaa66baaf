"""The Django backend, through a test project whose CACHES is
django-elasticache's README example (tests/djproject/settings.py)."""

import os
import time

import pytest

import elasticache


@pytest.mark.parametrize("alias", ["default", "direct", "plain"])
def test_cache_api(django_caches, alias, servers):
    from django.core.cache.backends.base import InvalidCacheKey

    cache = django_caches[alias]
    cache.clear()
    assert cache.get("a") is None and cache.get("a", "dflt") == "dflt"
    cache.set("a", {"v": 1})
    assert cache.get("a") == {"v": 1}
    assert cache.add("a", 2) is False and cache.add("b", 2) is True and cache.get("b") == 2
    assert cache.delete("b") is True and cache.delete("b") is False
    assert cache.has_key("a") and not cache.has_key("b")
    assert cache.set_many({"m1": 1, "m2": "two", "m3": [3]}) == []
    assert cache.get_many(["m1", "m2", "m3", "nope"]) == {"m1": 1, "m2": "two", "m3": [3]}
    cache.delete_many(["m1", "m2"])
    assert cache.get_many(["m1", "m2", "m3"]) == {"m3": [3]}
    cache.set("n", 10)
    assert cache.incr("n") == 11 and cache.incr("n", 5) == 16 and cache.decr("n", 6) == 10
    assert cache.incr("n", -3) == 7
    with pytest.raises(ValueError):
        cache.incr("missing")
    with pytest.raises(ValueError):
        cache.decr("missing")
    assert cache.get_or_set("gos", lambda: "computed") == "computed"
    assert cache.get_or_set("gos", "other") == "computed"
    assert cache.touch("a", 100) is True and cache.touch("nope", 100) is False
    # Timeouts: 0 expires at once, None never, > 30 days is an absolute time.
    cache.set("zero", 1, timeout=0)
    assert cache.get("zero") is None
    cache.set("forever", 1, timeout=None)
    cache.set("long", 1, timeout=60 * 60 * 24 * 31)
    assert cache.get("forever") == 1 and cache.get("long") == 1
    assert cache.touch("a", 0) and cache.get("a") is None  # touch(0) deletes, as PyLibMCCache
    cache.set("v", 1, version=2)
    assert cache.get("v", version=2) == 1 and cache.get("v") is None
    with pytest.raises(InvalidCacheKey):
        cache.set("has space", 1)
    # Oversized value: raises like pylibmc, and leaves no stale value behind.
    cache.set("big", "small")
    with pytest.raises(elasticache.TooBig):
        cache.set("big", "x" * (2 << 20))
    assert cache.get("big") is None
    cache.clear()
    assert cache.get("forever") is None
    cache.close()
    assert cache.get("x") is None  # close() did not break anything


def test_keys_land_where_django_elasticache_put_them(django_caches, servers):
    """Same settings, same placement: pylibmc with django-elasticache's node
    list (ip:port) and behaviors reads what the new backend wrote."""
    import pylibmc

    cache = django_caches["default"]
    cache.clear()
    keys = [f"page{i}" for i in range(100)]
    cache.set_many({k: k for k in keys})
    old = pylibmc.Client([m.addr for m in servers[:3]], behaviors={"tcp_nodelay": True, "ketama": True})
    assert old.get_multi([cache.make_key(k) for k in keys]) == {cache.make_key(k): k for k in keys}


def test_plain_memcached_with_ignore_cluster_errors(django_caches, servers):
    cache = django_caches["plain"]
    cache.set("p", "plain")
    assert servers[3].get_raw(cache.make_key("p")) == (16, b"plain")


def test_settings_errors(django_caches):
    from django.core.cache.backends.base import InvalidCacheBackendError

    from elasticache.django import ElastiCache

    with pytest.raises(InvalidCacheBackendError, match="LOCATION"):
        ElastiCache("a.cfg:11211;b.cfg:11211", {})
    with pytest.raises(InvalidCacheBackendError, match="LOCATION"):
        ElastiCache(["a.cfg:11211", "b.cfg:11211"], {})
    with pytest.raises(InvalidCacheBackendError, match="host:port"):
        ElastiCache("a.cfg", {})
    with pytest.raises(InvalidCacheBackendError, match="OPTIONS.*bogus"):
        ElastiCache("a.cfg:11211", {"OPTIONS": {"bogus": 1}})
    # OPTIONS as django-elasticache read them.
    b = ElastiCache("a.cfg:11211", {})
    assert b._behaviors == {"tcp_nodelay": True, "ketama": True} and not b._ignore_cluster_errors
    b = ElastiCache("a.cfg:11211", {"OPTIONS": {"IGNORE_CLUSTER_ERRORS": True}})
    assert b._behaviors == {} and b._ignore_cluster_errors
    b = ElastiCache("a.cfg:11211", {"BINARY": True, "OPTIONS": {"binary": True, "behaviors": {"ketama": 1}}})
    assert b._behaviors == {"ketama": 1}
    b = ElastiCache("a.cfg:11211", {"OPTIONS": {"ketama": True, "cas": True}})
    assert b._behaviors == {"ketama": True, "cas": True}


@pytest.mark.timing
def test_close_is_free_and_clients_are_shared(django_caches):
    from elasticache.django import ElastiCache

    a = ElastiCache(os.environ["ELASTICACHE_TEST_ENDPOINT"], {})
    b = ElastiCache(os.environ["ELASTICACHE_TEST_ENDPOINT"], {})
    assert a._cache is b._cache
    client = a._cache
    started = time.perf_counter()
    for _ in range(1000):
        a.close()
    assert time.perf_counter() - started < 0.5
    assert a._cache is client


def test_shim_module_and_cluster_utils(django_caches, servers):
    import django_elasticache.memcached as shim
    from django_elasticache.cluster_utils import get_cluster_info

    from elasticache.django import ElastiCache

    assert shim.ElastiCache is ElastiCache
    host, port = os.environ["ELASTICACHE_TEST_ENDPOINT"].split(":")
    info = get_cluster_info(host, port)
    assert info["nodes"] == [m.addr for m in servers[:3]]
    plain_host, plain_port = servers[3].addr.split(":")
    assert get_cluster_info(plain_host, plain_port, ignore_cluster_errors=True)["nodes"] == [servers[3].addr]


def test_pylibmc_cache_drop_in(django_caches, flushed):
    import pylibmc

    from elasticache.django import PyLibMCCache

    location = ";".join(m.addr for m in flushed)
    cache = PyLibMCCache(location, {"OPTIONS": {"binary": True, "behaviors": {"ketama": True}}})
    cache.set_many({f"s{i}": i for i in range(50)})
    assert cache.get_many([f"s{i}" for i in range(50)]) == {f"s{i}": i for i in range(50)}
    assert cache._cache.behaviors["ketama"] == 1
    with pytest.raises(ValueError):
        cache.incr("missing")
    # Same placement as Django's PyLibMCCache with the same settings.
    old = pylibmc.Client([m.addr for m in flushed], behaviors={"ketama": True})
    assert len(old.get_multi([cache.make_key(f"s{i}") for i in range(50)])) == 50
