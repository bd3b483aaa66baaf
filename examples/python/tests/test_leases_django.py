"""Django's get_or_set through memcached's leases (issue #18), against real
memcached: one `default` call per expiry among 16 threads, stale values
served while one caller recomputes, a killed lease holder replaced after
LEASE_TTL, the fallback on an emulated old engine (logged once), values
pylibmc reads, and Django's semantics kept (callable or value, version,
timeouts, aget_or_set)."""

import asyncio
import logging
import os
import signal
import threading
import time

import pytest

import elasticache
from conftest import LoopbackServer, free_port


@pytest.fixture(scope="module")
def django_ready():
    # Backends built directly need no settings (test_django.py's project is left alone).
    pytest.importorskip("django")


def backend(server, **options):
    from elasticache.django import PyLibMCCache

    return PyLibMCCache(server.addr, {"OPTIONS": options} if options else {})


class Counter:
    """A `default` that counts its calls and takes `seconds`."""

    def __init__(self, seconds=0.0, value="fresh"):
        self.calls = 0
        self.seconds = seconds
        self.value = value
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        return f"{self.value}{n}" if self.value else n


def stampede(fn, n=16):
    """Run `fn` on `n` threads released together; (results, seconds each)."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        t = time.monotonic()
        out[i] = (fn(), time.monotonic() - t)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(o is not None for o in out), "a thread did not finish"
    return [o[0] for o in out], [o[1] for o in out]


@pytest.mark.timing
def test_one_default_call_per_expiry_among_16_threads(django_ready, server):
    cache = backend(server, LEASE_TTL=10)
    key = cache.make_key("hot")
    default = Counter(0.3)
    for expiry in range(1, 4):
        # Wait for memcached itself to expire the key (2 s timeout: the
        # fresh value outlives the waiters' polls, whatever the clock's phase).
        deadline = time.monotonic() + 5
        while server.get_raw(key) is not None:
            assert time.monotonic() < deadline, "the key did not expire"
            time.sleep(0.05)
        results, _ = stampede(lambda: cache.get_or_set("hot", default, 2))
        assert default.calls == expiry, f"expiry {expiry}: default ran {default.calls} times in all"
        assert results == [f"fresh{expiry}"] * 16


def test_values_and_semantics_as_django(django_ready, server):
    import pylibmc

    cache = backend(server)
    theirs = pylibmc.Client([server.addr])
    assert cache.get_or_set("v", 42) == 42 and cache.get_or_set("v", 43) == 42
    assert cache.get_or_set("c", lambda: {"rows": [1, 2]}) == {"rows": [1, 2]}
    assert cache.get_or_set("c", lambda: pytest.fail("not called on a hit")) == {"rows": [1, 2]}
    assert cache.get_or_set("none", lambda: None) is None and cache.get("none", "dflt") is None
    assert cache.get_or_set("ver", "two", version=2) == "two"
    assert cache.get("ver") is None and cache.get("ver", version=2) == "two"
    # Values written under a lease are ordinary items with pylibmc's flags.
    for name, value in [("s", "text"), ("i", 7), ("b", b"raw"), ("d", {"a": 1})]:
        assert cache.get_or_set(name, value) == value
        assert theirs.get(cache.make_key(name)) == value, name
    # Timeouts: 0 stores nothing, None never expires, > 30 days is absolute.
    assert cache.get_or_set("zero", "z", timeout=0) == "z" and cache.get("zero") is None
    cache.get_or_set("forever", 1, timeout=None)
    cache.get_or_set("long", 1, timeout=60 * 60 * 24 * 31)
    assert cache.get("forever") == 1 and cache.get("long") == 1
    # A default that raises leaves no placeholder behind (a plain get would read b"").
    with pytest.raises(ZeroDivisionError):
        cache.get_or_set("boom", lambda: 1 / 0)
    assert server.get_raw(cache.make_key("boom")) is None
    assert cache.get_or_set("boom", "ok") == "ok"
    # The async variant takes the same path on the backend's pool.
    default = Counter(0.3)

    async def many():
        return await asyncio.gather(*(cache.aget_or_set("async", default, 30) for _ in range(16)))

    assert asyncio.run(many()) == ["fresh1"] * 16 and default.calls == 1
    # delete stays a delete.
    assert cache.delete("async") is True and server.get_raw(cache.make_key("async")) is None


def test_stale_while_revalidate_with_grace(django_ready, server):
    cache = backend(server, LEASE_GRACE=30, LEASE_TTL=10)
    first = Counter(0, "old")
    assert cache.get_or_set("page", first, 1) == "old1"
    time.sleep(2.1)  # past the timeout, inside the grace
    slow = Counter(1.0, "new")
    results, took = stampede(lambda: cache.get_or_set("page", slow, 1))
    assert slow.calls == 1
    assert results.count("new1") == 1 and results.count("old1") == 15, results
    served_stale = [t for r, t in zip(results, took) if r == "old1"]
    assert max(served_stale) < 0.5, f"stale readers waited for the recompute: {max(served_stale):.2f} s"
    assert cache.get_or_set("page", slow, 1) == "new1"


@pytest.mark.timing
def test_early_refresh_keeps_serving_the_value_before_expiry(django_ready, server):
    # LEASE_RECACHE 0.5 of a 6 s timeout: memcached hands out one refresh
    # once fewer than 3 s remain, while the value is still valid.
    cache = backend(server, LEASE_RECACHE=0.5, LEASE_TTL=10)
    assert cache.get_or_set("feed", Counter(0, "old"), 6) == "old1"
    slow = Counter(1.0, "new")
    results, took = stampede(lambda: cache.get_or_set("feed", slow, 6))
    assert slow.calls == 0 and results == ["old1"] * 16, "fresh: nobody refreshes"
    time.sleep(4.2)  # memcached's clock: 4 or 5 of the 6 s gone
    results, took = stampede(lambda: cache.get_or_set("feed", slow, 6))
    assert slow.calls == 1, slow.calls
    assert results.count("new1") == 1 and results.count("old1") == 15, results
    assert sorted(took)[-2] < 0.5, "the others did not wait for the refresh"
    assert cache.get("feed") == "new1"


def test_ignore_exc_makes_a_dead_node_an_unprotected_miss(django_ready):
    c = elasticache.Client([f"127.0.0.1:{free_port()}"], ignore_exc=True,
                           behaviors={"connect_timeout": 200})
    lease = c.get_or_lease("k")
    assert (lease.state, lease.protected, lease.value) == ("miss", False, None)
    assert c.get_or_lease_multi(["k", "j"]) == {}
    assert c.invalidate("k") is False
    strict = elasticache.Client([f"127.0.0.1:{free_port()}"], behaviors={"connect_timeout": 200})
    with pytest.raises(elasticache.Error):
        strict.get_or_lease("k")


def test_invalidate_on_delete_serves_the_old_value(django_ready, server):
    cache = backend(server, INVALIDATE_ON_DELETE=True, LEASE_TTL=10)
    assert cache.get_or_set("article", "v1", 300) == "v1"
    assert cache.delete("article") is True
    slow = Counter(1.0, "v")
    results, took = stampede(lambda: cache.get_or_set("article", slow, 300))
    assert slow.calls == 1 and results.count("v1") == 16, results
    assert sorted(took)[-2] < 0.5, "the others got the old value without waiting"
    assert cache.get("article") == "v1"
    assert cache.delete("never-there") is False
    cache.set("m1", 1)
    cache.set("m2", 2)
    cache.delete_many(["m1", "m2"])
    assert cache.get_or_set("m1", lambda: "recomputed") == "recomputed"


@pytest.mark.timing
def test_a_killed_lease_holder_is_replaced_after_lease_ttl(django_ready, server):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the lease holder: takes the lease, says so, never finishes
        try:
            os.close(r)
            child = backend(server, LEASE_TTL=2)

            def forever():
                os.write(w, b"x")
                time.sleep(60)

            child.get_or_set("report", forever, 60)
        finally:
            os._exit(1)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x", "the holder did not start computing"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        start = time.monotonic()
        cache = backend(server, LEASE_TTL=2, LEASE_WAIT=20)
        default = Counter(0, "mine")
        assert cache.get_or_set("report", default, 60) == "mine1"
        took = time.monotonic() - start
    finally:
        os.close(r)
    assert default.calls == 1
    # It waited for the lapse (not for LEASE_WAIT), then took over.
    assert 0.5 < took < 2 + 3, took
    assert cache.get("report") == "mine1"


class OldEngine(LoopbackServer):
    """A memcached 1.5 stand-in: `version`, get/set/delete, ERROR for the rest."""

    def __init__(self, version="1.5.16"):
        self.version = version
        self.items = {}
        self.commands = []
        super().__init__()

    def serve(self, conn):
        f = conn.makefile("rb")
        with conn:
            for line in f:
                words = line.split()
                if not words:
                    continue
                cmd = words[0].decode()
                self.commands.append(cmd)
                if cmd == "version":
                    out = f"VERSION {self.version}\r\n".encode()
                elif cmd in ("get", "gets"):
                    out = b""
                    for k in words[1:]:
                        if k in self.items:
                            flags, data = self.items[k]
                            out += b"VALUE %s %d %d\r\n%s\r\n" % (k, flags, len(data), data)
                    out += b"END\r\n"
                elif cmd == "set":
                    data = f.read(int(words[4]) + 2)[:-2]
                    self.items[words[1]] = (int(words[2]), data)
                    out = b"STORED\r\n"
                elif cmd == "delete":
                    out = b"DELETED\r\n" if self.items.pop(words[1], None) else b"NOT_FOUND\r\n"
                else:
                    out = b"ERROR\r\n"
                if b"noreply" not in words:
                    conn.sendall(out)


def test_old_engine_falls_back_and_says_so_once_in_the_log(django_ready, caplog):
    from elasticache.django import PyLibMCCache

    old = OldEngine("1.5.16")
    try:
        cache = PyLibMCCache(old.addr, {})
        default = Counter(0, "v")
        with caplog.at_level(logging.INFO, logger="elasticache"):
            assert cache.get_or_set("k", default, 60) == "v1"
            assert cache.get_or_set("k", default, 60) == "v1"
            cache.delete("k")
            assert cache.get_or_set("k", default, 60) == "v2"
        assert default.calls == 2
        assert not [c for c in old.commands if c.startswith("m")], old.commands
        said = [r for r in caplog.records if r.name == "elasticache" and "meta protocol" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in said]
        assert said[0].levelno == logging.WARNING
        msg = said[0].getMessage()
        assert old.addr in msg and "1.5.16" in msg and "without stampede protection" in msg, msg
        assert said[0].elasticache_event["kind"] == "meta_unsupported"
    finally:
        old.close()


def test_lease_options_are_checked_and_leave_the_behaviors(django_ready, server, endpoint_factory):
    from django.core.cache.backends.base import InvalidCacheBackendError

    from elasticache.django import ElastiCache

    for bad in [{"LEASE_TTL": 0}, {"LEASE_WAIT": "soon"}, {"LEASE_RECACHE": 2}]:
        with pytest.raises(InvalidCacheBackendError):
            backend(server, **bad)
    ep = endpoint_factory([("n0", "127.0.0.1", server.port)])
    b = ElastiCache(ep.addr, {"OPTIONS": {"LEASE_TTL": 5}})
    assert b._behaviors == {"tcp_nodelay": True, "ketama": True} and b._leases.ttl == 5
    assert b.get_or_set("through-endpoint", "x") == "x"
    off = backend(server, LEASES=False)
    assert off.get_or_set("plain-path", "y") == "y" and off.get("plain-path") == "y"
