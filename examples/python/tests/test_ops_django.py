"""Operating the Django backend (issue #16): every library option by name
in OPTIONS, inert behaviors warned about once, and async methods on the
backend's own pool (20 concurrent aget against a node that delays every
reply by 50 ms)."""

import asyncio
import logging
import socket
import threading
import time

import pytest

from conftest import ConfigEndpoint, LoopbackServer


@pytest.fixture(scope="module")
def django_ready():
    # The backends need no settings: built directly, they leave Django's
    # settings (test_django.py's project) alone.
    pytest.importorskip("django")


def backend(location, options):
    from elasticache.django import ElastiCache

    return ElastiCache(location, {"OPTIONS": options})


def test_library_options_by_name(django_ready, servers):
    ep = ConfigEndpoint([("n0", "127.0.0.1", servers[0].port), ("n1", "127.0.0.1", servers[1].port)])
    try:
        b = backend(ep.addr, {"io_timeout": 250, "REFRESH_INTERVAL": 7, "node_naming": "host",
                              "max_connections_per_node": 3, "max_value_size": 4096, "IGNORE_EXC": True})
        # Library options are not behaviors: django-elasticache's defaults stay.
        assert b._behaviors == {"tcp_nodelay": True, "ketama": True}
        assert b._options == {"io_timeout": "250", "refresh_interval": "7", "node_naming": "host",
                              "max_connections_per_node": "3", "max_value_size": "4096"}
        b.set("k", "v")
        assert b.get("k") == "v"
        # max_value_size took effect: a 5000-byte value is refused before sending.
        import elasticache

        with pytest.raises(elasticache.TooBig):
            b.set("big", "x" * 5000)
        # node_naming=host changes the names hashed, not the addresses used.
        assert set(b._cache.servers()) == {servers[0].addr, servers[1].addr}
        # pylibmc's behaviors next to them, timeouts mapped.
        b2 = backend(ep.addr, {"ketama": True, "receive_timeout": 300000, "send_timeout": 300000,
                               "CONNECT_TIMEOUT": 150})
        assert b2._options == {"connect_timeout": "150"}
        assert elasticache.behaviors.to_options(elasticache.behaviors.effective(b2._behaviors))["io_timeout"] == "300"
        # libmemcached's _poll_timeout bounds each reply: mapped to io_timeout.
        eff = elasticache.behaviors.effective({"_poll_timeout": 700})
        assert elasticache.behaviors.to_options(eff)["io_timeout"] == "700"
    finally:
        ep.close()


def test_bad_library_option_is_a_settings_error(django_ready, servers):
    from django.core.cache.backends.base import InvalidCacheBackendError

    with pytest.raises(InvalidCacheBackendError, match="node_naming"):
        backend(servers[0].addr, {"node_naming": "sideways"})
    with pytest.raises(InvalidCacheBackendError, match="io_timeout"):
        backend(servers[0].addr, {"io_timeout": "soon"})


def test_inert_behaviors_warn_once(caplog):
    import elasticache

    elasticache.behaviors._warned_inert.discard("buffer_requests")
    with caplog.at_level(logging.WARNING, logger="elasticache"):
        elasticache.behaviors.validate({"buffer_requests": 1})
        elasticache.behaviors.validate({"buffer_requests": 1})
        elasticache.behaviors.validate({"_noreply": 0})  # the default: nothing to say
    msgs = [r.getMessage() for r in caplog.records if "buffer_requests" in r.getMessage()]
    assert len(msgs) == 1 and "no effect" in msgs[0]
    assert not any("_noreply" in r.getMessage() for r in caplog.records)


class DelayingProxy(LoopbackServer):
    """A TCP proxy in front of a real memcached that holds every reply
    chunk for `delay` seconds (a slow node, scripted)."""

    def __init__(self, target_port, delay):
        self.target, self.delay = target_port, delay
        super().__init__(backlog=64)

    def serve(self, c):
        s = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._pipe, args=(c, s, 0), daemon=True).start()
        self._pipe(s, c, self.delay)

    def _pipe(self, src, dst, delay):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_async_calls_run_concurrently(django_ready, servers):
    proxy = DelayingProxy(servers[2].port, 0.05)
    try:
        b = backend(proxy.addr, {"IGNORE_CLUSTER_ERRORS": True, "ASYNC_THREADS": 20,
                                 "max_connections_per_node": 20})
        b.set("slow", 1)

        async def run():
            await b.aset("a", 2)
            start = time.monotonic()
            got = await asyncio.gather(*(b.aget("slow") for _ in range(20)))
            return got, time.monotonic() - start

        got, took = asyncio.run(run())
        assert got == [1] * 20
        # Serialised on one thread it is 20 x 50 ms = 1 s; concurrently one
        # round trip plus connection set-up. Margin for a loaded 2-core box.
        assert took < 0.5, f"20 concurrent aget took {took:.3f} s"

        async def more():
            await b.aset_many({"x": 1, "y": 2})
            many = await b.aget_many(["x", "y", "z"])
            deleted = await b.adelete("x")
            return many, deleted, await b.aget("x", "gone"), await b.aincr("y", 5)

        assert asyncio.run(more()) == ({"x": 1, "y": 2}, True, "gone", 7)
    finally:
        proxy.close()
