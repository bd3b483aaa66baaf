"""pylibmc drop-in (issue #19) and the Python halves of issue #15's items 4,
9 and 11. install_as_pylibmc() runs in subprocesses: other tests import the
real pylibmc in this process."""

import os
import subprocess
import sys
import textwrap

import pytest

import elasticache
from conftest import PKG_ROOT, LocalCluster, free_port


def run_py(code, timeout=60, **env):
    """Run `code` in a fresh interpreter with the package importable; returns it."""
    e = dict(os.environ, PYTHONPATH=PKG_ROOT, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True,
                          text=True, timeout=timeout)


def test_install_as_pylibmc_registers_pylibmc_names(server):
    r = run_py(f"""
        import sys, elasticache
        assert elasticache.install_as_pylibmc() is elasticache
        import pylibmc, _pylibmc, pylibmc.pools, pylibmc.autoconf, pylibmc.consts
        from pylibmc.client import translate_server_spec
        assert pylibmc is elasticache and _pylibmc.client is elasticache.Client
        assert pylibmc.pools.ClientPool is pylibmc.ClientPool is elasticache.ClientPool
        assert translate_server_spec("udp:[::1]:5555:2") == (_pylibmc.server_type_udp, "::1", 5555, 2)
        assert _pylibmc.libmemcached_version_hex >= 0x01000003 and pylibmc.support_sasl is False
        assert pylibmc.consts.hashers["md5"] == _pylibmc.hash_md5 == 1
        mc = pylibmc.Client(["{server.addr}"])
        assert mc.set("k", "v") and mc.get("k") == "v"
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_django_pylibmccache_runs_on_install_as_pylibmc(server):
    r = run_py(f"""
        import elasticache
        elasticache.install_as_pylibmc()
        from django.conf import settings
        settings.configure(CACHES={{"default": {{
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": "{server.addr}", "OPTIONS": {{"binary": False, "behaviors": {{"ketama": True}}}}}}}})
        import django
        django.setup()
        from django.core.cache import cache
        assert type(cache._cache) is elasticache.Client
        cache.set("a", {{"x": 1}}, 30)
        assert cache.get("a") == {{"x": 1}} and cache.get("nope", 7) == 7
        cache.set_many({{"b": 2, "c": 3}})
        assert cache.get_many(["a", "b", "c", "d"]) == {{"a": {{"x": 1}}, "b": 2, "c": 3}}
        assert cache.incr("b") == 3 and cache.touch("a", 60) and cache.delete("a")
        assert cache.get("a") is None
        cache.close()
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_dogpile_pylibmc_backend_runs_on_install_as_pylibmc(server):
    pytest.importorskip("dogpile.cache")
    r = run_py(f"""
        import elasticache
        elasticache.install_as_pylibmc()
        from dogpile.cache import make_region
        from dogpile.cache.api import NO_VALUE
        region = make_region().configure("dogpile.cache.pylibmc", expiration_time=60, arguments={{
            "url": ["{server.addr}"], "binary": True, "behaviors": {{"tcp_nodelay": True, "ketama": True}}}})
        calls = []
        @region.cache_on_arguments()
        def slow(x):
            calls.append(x)
            return x * 2
        assert slow(21) == 42 and slow(21) == 42 and calls == [21]
        region.set("k", [1, 2])
        assert region.get("k") == [1, 2]
        region.set_multi({{"m1": 1, "m2": 2}})
        assert region.get_multi(["m1", "m2", "m3"]) == [1, 2, NO_VALUE]
        region.delete("k")
        assert region.get("k") is NO_VALUE
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_pylibmc_answers_for_empty_and_bad_keys(mc):
    assert mc.get("") is None and mc.gets("") == (None, None) and mc.delete("") is False
    assert mc.set("", 1) is False and mc.touch("", 1) is False
    with pytest.raises(elasticache.ClientError):
        mc.delete("hello world")  # pylibmc: a ClientError
    with pytest.raises(elasticache.ClientError):
        mc.incr(chr(0))
    mc.set("a", 1)
    assert mc.get_multi(["a", "", "hello world", "ctl\x01"]) == {"a": 1}


def test_bad_serialize_results_are_value_errors(server):
    class Flags(elasticache.Client):
        def serialize(self, value):
            return b"x", object()

    class Str(elasticache.Client):
        def serialize(self, value):
            return "ab"

    for cls in (Flags, Str):
        c = cls([server.addr])
        with pytest.raises(ValueError):
            c.set("k", 1)
        with pytest.raises(ValueError):
            c.set_multi({"k": 1})


def test_a_kept_deserialize_error_holds_no_keys(server):
    kept = []

    class C(elasticache.Client):
        def deserialize(self, data, flags):
            try:
                raise AttributeError("broken")
            except AttributeError as e:
                kept.append(e)  # the traceback reaches get_multi's frame
                raise elasticache.CacheMiss from None

    c = C([server.addr])
    key = "".join(["kept-", "key"])  # not interned: its refcount is ours alone
    c.set(key, 1)
    before = sys.getrefcount(key)
    assert c.get_multi([key]) == {}
    assert len(kept) == 1 and sys.getrefcount(key) == before


def test_get_stats_returns_libmemcacheds_set(mc):
    (name, stats), = mc.get_stats()
    assert name.endswith(b" (0)") and "pid" in stats and isinstance(stats["pid"], bytes)
    assert "evictions" in stats and "max_connections" not in stats  # the server sends that one too
    assert len(stats) == 22


def test_pools(mc):
    import queue

    pool = elasticache.ClientPool(mc, 2)
    with pool.reserve() as a, pool.reserve() as b:
        assert a is not b and a.set("p", 1) and b.get("p") == 1
        with pytest.raises(queue.Empty):
            with pool.reserve():
                pass
    tm = elasticache.ThreadMappedPool(mc)
    with tm.reserve() as x:
        assert x.get("p") == 1
    with tm.reserve() as y:
        assert y is x
    assert tm.relinquish() is x


def test_autoconf(server, endpoint_factory, servers):
    from elasticache import autoconf

    server.command("delete AmazonElastiCache:cluster")
    with pytest.raises(autoconf.NoAutoconfFound):
        autoconf.elasticache(address=server.addr)
    ep = endpoint_factory([("n1", "127.0.0.1", servers[1].port)])
    c = autoconf.elasticache(address=ep.addr)
    assert c.set("ac", "v") and servers[1].get_raw("ac") is not None


def test_a_call_in_flight_keeps_its_client(servers):
    """Setting behaviors while other threads are in calls must not free the C
    client under them (it crashed: SIGSEGV or a malloc abort)."""
    addrs = [m.addr for m in servers[:2]]
    r = run_py(f"""
        import threading, time, elasticache
        c = elasticache.Client({addrs!r})
        stop = time.monotonic() + 1.5
        def work():
            i = 0
            while time.monotonic() < stop:
                c.set("t%d" % (i % 50), "v" * 100)
                c.get("t%d" % (i % 50))
                c.get_multi(["t%d" % j for j in range(50)])
                c.set_multi({{"u%d" % j: j for j in range(20)}})
                i += 1
        ts = [threading.Thread(target=work) for _ in range(3)]
        [t.start() for t in ts]
        flips = 0
        while time.monotonic() < stop:
            c.behaviors = {{"ketama": flips % 2 == 0}}
            flips += 1
        [t.join() for t in ts]
        print("ok", flips)
    """)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.returncode, r.stderr[-2000:])


def test_set_multi_and_delete_multi_check_the_calls_own_status(mc):
    from elasticache import _native as n

    mc._h = n.ffi.cast("elasticache_client *", 0)  # the call fails before any per-key status
    with pytest.raises(elasticache.InvalidArgument):
        mc.set_multi({"a": 1, "b": 2})
    with pytest.raises(elasticache.InvalidArgument):
        mc.delete_multi(["a", "b"])


def test_get_multi_keeps_what_was_found_when_a_node_fails(server, caplog):
    dead = f"127.0.0.1:{free_port()}"
    c = elasticache.Client([server.addr, dead], behaviors={"connect_timeout": 300})
    keys = [f"k{i}" for i in range(40)]
    live = [k for k in keys if c.server_for_key(k) == server.addr]
    assert live and len(live) < len(keys)
    for k in live:
        server.command(f"set {k} 0 0 1\r\nx")
    with caplog.at_level("WARNING", logger="elasticache"):
        got = c.get_multi(keys)
    assert got == {k: b"x" for k in live}
    assert any(dead in r.getMessage() for r in caplog.records if r.name == "elasticache")
    only_dead = [k for k in keys if k not in live]
    with pytest.raises(elasticache.ConnectionError):
        c.get_multi(only_dead)  # everything failed and nothing was found


def test_a_value_over_2_mib_is_fetched_once():
    with LocalCluster.start(args=["-I", "8m", "-m", "64"]) as lc:
        c = elasticache.Client([lc.nodes[0].addr], options={"max_value_size": 8 << 20})
        big = b"b" * (3 * 1024 * 1024)
        assert c.set("big", big)

        def cmd_get():
            return int(c.get_stats()[0][1]["cmd_get"])

        start = cmd_get()
        for _ in range(5):
            assert c.get("big") == big
        # The first read learns the size (two fetches); the others are one each.
        assert cmd_get() - start <= 6
