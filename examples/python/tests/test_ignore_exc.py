"""Client(..., ignore_exc=True) and Django's OPTIONS IGNORE_EXC (issue #16 item 1)."""

import logging
import time

import pytest

import elasticache
from conftest import free_port


def dead_client(**kw):
    ports = [free_port(), free_port()]
    return elasticache.Client([f"127.0.0.1:{p}" for p in ports], behaviors={"connect_timeout": 300}, **kw)


def test_every_node_down_reads_default_writes_false_nothing_raises(caplog):
    c = dead_client(ignore_exc=True)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="elasticache"):
        assert c.get("a") is None and c.get("a", "dflt") == "dflt"
        assert c.set("a", 1) is False and c.add("b", 1) is False and c.delete("a") is False
        assert c.touch("a", 5) is False and c.incr("n") is None
        assert c.get_multi(["a", "b", "c"]) == {}
        assert sorted(c.set_multi({"a": 1, "b": 2})) == ["a", "b"]
        assert c.delete_multi(["a", "b"]) is False
        for _ in range(20):
            c.get("x")
    assert time.monotonic() - start < 2
    # Error warnings (not the node-ejected events, logged once per ejection).
    warnings = [r for r in caplog.records if r.name == "elasticache" and r.levelno == logging.WARNING
                and not hasattr(r, "elasticache_event")]
    # Logged, and at most once per node (two nodes) in the window.
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    assert "127.0.0.1:" in warnings[0].getMessage()


def test_without_it_errors_raise():
    c = dead_client()
    with pytest.raises(elasticache.ConnectionError):
        c.get("a")
    with pytest.raises(elasticache.ConnectionError):
        c.get_multi(["a", "b"])


def test_callers_bugs_still_raise(server):
    c = elasticache.Client([server.addr], ignore_exc=True)
    with pytest.raises(elasticache.BadKeyProvided):
        c.set("has space", 1)
    with pytest.raises(ValueError):
        c.get("x" * 251)
    with pytest.raises(elasticache.TooBig):
        c.set("big", b"x" * (2 << 20))
    assert c.clone().ignore_exc is True


def test_endpoint_down_at_construction_serves_defaults(caplog):
    endpoint = f"127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="elasticache"):
        c = elasticache.Client.from_endpoint(endpoint, ignore_exc=True, options={"connect_timeout": 200})
        assert c.get("a", 3) == 3 and c.set("a", 1) is False and c.get_multi(["a"]) == {}
    assert any(endpoint in r.getMessage() for r in caplog.records)
    with pytest.raises(elasticache.Error):
        elasticache.Client.from_endpoint(endpoint, options={"connect_timeout": 200})


def test_django_ignore_exc_option(servers):
    from elasticache.django import ElastiCache

    endpoint = f"127.0.0.1:{free_port()}"
    cache = ElastiCache(endpoint, {"OPTIONS": {"IGNORE_EXC": True, "connect_timeout": 200}})
    assert cache._ignore_exc is True
    assert cache._cache.ignore_exc is True
    assert cache.get("a") is None and cache.get("a", 4) == 4
    cache.set("a", 1)  # no exception
    assert cache.get_many(["a", "b"]) == {}
    # Only IGNORE_EXC given: django-elasticache's default behaviors stay.
    assert ElastiCache(endpoint, {"OPTIONS": {"IGNORE_EXC": True}})._behaviors == {"tcp_nodelay": True,
                                                                                  "ketama": True}
