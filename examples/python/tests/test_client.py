"""elasticache.Client against pylibmc's documented and observed behaviour."""

import os
import pickle
import socket
import threading
import time
import zlib

import pylibmc
import pytest

import elasticache
from conftest import free_port, wait_child


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # compare exception class names with pylibmc's
        return ("raise", type(e).__name__)


# (description, call) pairs run in order against pylibmc and against us on
# the same kind of fresh server: return values and exception classes must agree.
SCRIPT = [
    lambda c: c.get("nokey"),
    lambda c: c.get("nokey", 5),
    lambda c: c.set("k", "v"),
    lambda c: c.get("k"),
    lambda c: c.add("k", "x"),
    lambda c: c.add("k2", "x"),
    lambda c: c.replace("zz", "x"),
    lambda c: c.replace("k2", "y"),
    lambda c: c.get("k2"),
    lambda c: c.append("zz", "x"),
    lambda c: c.prepend("zz", "x"),
    lambda c: c.append("k", "x"),
    lambda c: c.prepend("k", "<"),
    lambda c: c.get("k"),
    lambda c: c.delete("zz"),
    lambda c: c.delete("k"),
    lambda c: c.get("k"),
    lambda c: c.incr("nope"),
    lambda c: c.decr("nope"),
    lambda c: c.set("n", 5),
    lambda c: c.incr("n"),
    lambda c: c.incr("n", 3),
    lambda c: c.decr("n", 100),
    lambda c: c.get("n"),
    lambda c: c.incr("n", -1),
    lambda c: c.incr("n", 0),
    lambda c: c.set("s", "abc"),
    lambda c: c.incr("s"),
    lambda c: c.touch("n", 100),
    lambda c: c.touch("nope", 100),
    lambda c: c.get_multi(["n", "nope", "s"]),
    lambda c: c.get_multi([]),
    lambda c: c.get_multi(["a", "b"], key_prefix="p:"),
    lambda c: c.set_multi({"a": 1, "b": 2}, key_prefix="p:"),
    lambda c: c.get_multi(["a", "b", "c"], key_prefix="p:"),
    lambda c: c.set_multi({}),
    lambda c: sorted(c.add_multi({"a": 1, "x": 2}, key_prefix="p:")),
    lambda c: c.delete_multi(["a", "b"], key_prefix="p:"),
    lambda c: c.delete_multi(["a", "x"], key_prefix="p:"),
    lambda c: c.delete_multi([]),
    lambda c: c.delete_multi({"a": 1}),
    lambda c: c.incr_multi(["n"], delta=2),
    lambda c: c.get("n"),
    lambda c: c.incr_multi(["n", "nope"]),
    lambda c: c.get("x" * 251),
    lambda c: c.set("x" * 251, 1),
    lambda c: c.get_multi(["", "n"]),
    lambda c: c.set_multi({"": 1, "ok1": 2}),
    lambda c: c.set(1, 2),
    lambda c: c.get(None),
    lambda c: c.gets("k"),  # no cas behavior: ValueError
    lambda c: c.cas("k", 1, 1),
    lambda c: c.set("k", "v", time=None),
    lambda c: c.set("k", "v", 0, 0, 10),
    lambda c: c.set("k", 1, time=-1),
    lambda c: c.get("k"),
    lambda c: c.set("bb", b""),
    lambda c: c.get("bb"),
    lambda c: c["bb"],
    lambda c: "bb" in c,
    lambda c: c["nope"],
    lambda c: c.set("big", b"x" * (2 * 1024 * 1024)),
    lambda c: c.flush_all(),
    lambda c: c.get("n"),
    lambda c: c.serialize("a"),
    lambda c: c.serialize(5),
    lambda c: c.serialize(True),
    lambda c: c.serialize(b"x"),
    lambda c: c.serialize(2**70),
    lambda c: c.deserialize(b"5", 4),
    lambda c: c.deserialize(b"1", 2),
    lambda c: c.deserialize(b"x", 99),
    lambda c: c.deserialize(b"\x80\x05K\x07.", 1),
    lambda c: c.set("neg", -5),
    lambda c: c.get("neg"),
    lambda c: c.incr("neg"),
    lambda c: c.set("n", 2**64 - 1),
    lambda c: c.incr("n"),
    lambda c: repr(c).split("(")[0],
    lambda c: pylibmc.Client is None or len(c.get_stats()),
    # pylibmc's libmemcached keeps a fixed subset of the stats; we pass all of them.
    lambda c: {"pid", "uptime", "curr_items", "version", "limit_maxbytes"} <= set(c.get_stats()[0][1]),
    lambda c: type(c.get_stats()[0][1]["pid"]).__name__,
    lambda c: type(c.get_stats()[0][0]).__name__,
    lambda c: c.behaviors["distribution"],
    lambda c: c.behaviors["ketama"],
]


def test_same_results_as_pylibmc(servers):
    theirs_server, ours_server = servers[2], servers[3]
    theirs_server.command("flush_all")
    ours_server.command("flush_all")
    theirs = pylibmc.Client([theirs_server.addr])
    ours = elasticache.Client([ours_server.addr])
    mismatches = []
    for i, step in enumerate(SCRIPT):
        a, b = outcome(lambda: step(theirs)), outcome(lambda: step(ours))
        if a != b:
            mismatches.append((i, a, b))
    # pylibmc's behaviour here depends on the libmemcached bundled with it:
    # only the known, deliberate differences are allowed (none at the moment).
    assert mismatches == []


def test_gets_and_cas(mc):
    assert mc.gets("nope") == (None, None)
    assert mc.gets("") == (None, None)  # pylibmc's answer (issue #19)
    assert mc.set("k", {"a": 1})
    value, cas = mc.gets("k")
    assert value == {"a": 1} and isinstance(cas, int) and cas > 0
    assert mc.cas("k", "new", cas) is True
    assert mc.get("k") == "new"
    assert mc.cas("k", "again", cas) is False  # changed since
    assert mc.get("k") == "new"
    with pytest.raises(elasticache.NotFound):
        mc.cas("nope", 1, cas)


@pytest.mark.parametrize("key", ["has space", "ctl\x01", "tab\there", "nl\nx", "del\x7f", "x" * 251, "é" * 126])
def test_bad_keys_raise_and_client_keeps_working(mc, key):
    too_long = len(key.encode()) > 250
    expected = ValueError if too_long else elasticache.BadKeyProvided
    calls = [
        lambda: mc.get(key), lambda: mc.set(key, 1), lambda: mc.add(key, 1), lambda: mc.replace(key, 1),
        lambda: mc.append(key, 1), lambda: mc.delete(key), lambda: mc.incr(key), lambda: mc.decr(key),
        lambda: mc.touch(key, 1), lambda: mc.gets(key),
        *([lambda: mc.get_multi(["ok", key])] if too_long else []),  # else skipped, as pylibmc (#19)
        lambda: mc.delete_multi([key]), lambda: mc.server_for_key(key),
    ]
    assert issubclass(elasticache.BadKeyProvided, elasticache.Error)
    for call in calls:
        with pytest.raises(expected):
            call()
        # The next call on the same client works (pylibmc broke here).
        assert mc.set("after", "fine") is True
        assert mc.get("after") == "fine"
    if not too_long:
        assert mc.set_multi({key: 1, "good": 2}) == [key]
        assert mc.get("good") == 2
    assert len(mc.get_stats()) == 1


def test_empty_key_raises_and_the_client_stays_usable(mc):
    # pylibmc answers get("") with None and set("") with False; an empty key is
    # a caller's bug, so single-key calls raise like any other bad key.
    # Issue #19 reverses that for the Python Client: pylibmc's answers.
    assert mc.get("") is None and mc.get("", 5) == 5
    assert [mc.set("", 1), mc.add("", 1), mc.delete(""), mc.touch("", 1), mc.append("", b"x")] == [False] * 5
    with pytest.raises(elasticache.BadKeyProvided):
        mc.incr("")
    assert mc.set("x", 1) is True and mc.get("x") == 1  # still usable
    # The multi calls skip empty keys, as pylibmc does.
    assert mc.delete_multi([""]) is False


def test_exceptions_have_pylibmc_names_and_codes():
    import _pylibmc

    assert len(_pylibmc.exceptions) > 20
    for name, exc in _pylibmc.exceptions:
        ours = getattr(elasticache, name)
        assert issubclass(ours, elasticache.Error), name
        assert getattr(ours, "retcode", None) == getattr(exc, "retcode", None), name
    assert elasticache.MemcachedError is elasticache.Error
    assert issubclass(elasticache.Timeout, elasticache.ConnectionError)


def test_status_mapping_lives_in_one_place():
    from elasticache import _native as n
    from elasticache.exceptions import error_for

    assert type(error_for(n.NOT_FOUND, "m")) is elasticache.NotFound
    assert type(error_for(n.BAD_KEY, "m")) is elasticache.BadKeyProvided
    assert type(error_for(n.TOO_BIG, "m")) is elasticache.TooBig
    assert type(error_for(n.SERVER_ERROR, "SERVER_ERROR object too large for cache")) is elasticache.TooBig
    assert type(error_for(n.SERVER_ERROR, "SERVER_ERROR out of memory")) is elasticache.ServerError
    assert type(error_for(n.CONNECTION, "m")) is elasticache.ConnectionError
    assert type(error_for(n.TIMEOUT, "m")) is elasticache.Timeout
    assert type(error_for(n.NO_SERVERS, "m")) is elasticache.NoServers
    assert type(error_for(n.SERVER_DEAD, "m")) is elasticache.ServerDown
    assert error_for(n.CLIENT_ERROR, "boom").status == n.CLIENT_ERROR
    assert isinstance(error_for(n.INVALID_ARGUMENT, "m"), ValueError)


def test_flags_written_match_pylibmc(server, mc):
    cases = [
        (b"bytes", 0), ("text é", 16), (42, 4), (2**70, 4), (True, 2), (1.5, 1), ({"a": 1}, 1), (None, 1),
    ]
    for value, flags in cases:
        assert mc.set("f", value)
        got_flags, raw = server.get_raw("f")
        assert got_flags == flags, value
        if flags == 1:
            assert raw.startswith(b"\x80\x05") and pickle.loads(raw) == value
    assert mc.set("z", b"x" * 5000, min_compress_len=1000)
    flags, raw = server.get_raw("z")
    assert flags == 8 and zlib.decompress(raw) == b"x" * 5000
    assert mc.set("z", "y" * 5000, min_compress_len=1000)
    assert server.get_raw("z")[0] == 24
    assert mc.set("z", "y" * 5000, min_compress_len=1000, compress_level=0)
    assert server.get_raw("z")[0] == 16  # level 0: not compressed
    assert mc.set("z", "y" * 50, min_compress_len=10)
    assert mc.get("z") == "y" * 50
    with pytest.raises(ValueError):
        mc.set("z", 1, compress_level=10)


def test_pickle_protocol_behavior(server):
    c = elasticache.Client([server.addr], behaviors={"pickle_protocol": 2})
    c.set("p", [1, 2])
    assert server.get_raw("p")[1].startswith(b"\x80\x02")
    assert c.get("p") == [1, 2]


def test_large_values_beyond_the_scratch_buffer(mc):
    for size in (16 * 1024, 16 * 1024 + 1, 300_000, 1_000_000):
        value = os.urandom(size)
        assert mc.set("big", value)
        assert mc.get("big") == value
        assert mc.get_multi(["big"]) == {"big": value}
    assert mc.get("small") is None


def test_overridable_serialize_and_cache_miss(server):
    class Custom(elasticache.Client):
        def serialize(self, value):
            return repr(value).encode(), 64

        def deserialize(self, data, flags):
            if data == b"'miss'":
                raise elasticache.CacheMiss
            assert flags == 64
            return ("custom", data)

    c = Custom([server.addr])
    assert c.set("a", 1) and c.set_multi({"b": 2, "m": "miss"}) == []
    assert server.get_raw("a") == (64, b"1")
    assert c.get("a") == ("custom", b"1")
    assert c.get("m", "dflt") == "dflt"
    assert c.get_multi(["a", "b", "m"]) == {"a": ("custom", b"1"), "b": ("custom", b"2")}


def test_str_and_bytes_keys(mc):
    assert mc.set("ключ", "значение")
    assert mc.get("ключ".encode()) == "значение"
    got = mc.get_multi(["ключ", b"other"])
    assert got == {"ключ": "значение"} and isinstance(list(got)[0], str)
    mc.set(b"other", 1)
    assert mc.get_multi([b"other"]) == {b"other": 1}


def test_set_multi_and_get_multi_many_keys(flushed):
    c = elasticache.Client([m.addr for m in flushed], behaviors={"ketama": True})
    data = {f"key:{i}": i for i in range(500)}
    assert c.set_multi(data, time=100) == []
    assert c.get_multi(list(data)) == data
    assert sum(1 for m in flushed for k in data if m.get_raw(k)) == 500  # each key on one node
    assert c.delete_multi(list(data)[:250]) is True
    assert len(c.get_multi(list(data))) == 250


def test_behaviors(server):
    with pytest.raises(ValueError, match="unknown behavior names: bogus"):
        elasticache.Client([server.addr], behaviors={"bogus": 1})
    with pytest.raises(KeyError):
        elasticache.Client([server.addr], behaviors={"hash": "bogus"})
    with pytest.raises(KeyError):
        elasticache.Client([server.addr], behaviors={"distribution": "bogus"})
    with pytest.raises(ValueError, match="not supported"):
        elasticache.Client([server.addr], behaviors={"distribution": "random"})
    with pytest.raises(TypeError):
        elasticache.Client([server.addr], behaviors={"connect_timeout": "x"})
    with pytest.raises(ValueError, match="namespace"):
        elasticache.Client([server.addr], behaviors={"namespace": "ns"})
    with pytest.raises(elasticache.Error, match="empty server list"):
        elasticache.Client([])
    c = elasticache.Client([server.addr], behaviors={"ketama": True})
    assert c.behaviors["distribution"] == "consistent ketama" and c.behaviors["ketama"] == 1
    assert set(c.behaviors) == set(pylibmc.Client([server.addr]).behaviors)
    c = elasticache.Client([server.addr], behaviors={"distribution": "consistent"})
    assert c.behaviors["ketama"] == 1
    # Accepted no-ops (pylibmc tuning knobs) and mapped ones.
    everything = {
        "no_block": 1, "tcp_nodelay": 1, "tcp_keepalive": 1, "buffer_requests": 0, "verify_keys": 1,
        "num_replicas": 0, "_io_msg_watermark": 1, "_poll_timeout": 100, "_socket_send_size": 1,
        "connect_timeout": 500, "receive_timeout": 200000, "send_timeout": 200000, "retry_timeout": 1,
        "dead_timeout": 3, "failure_limit": 3, "remove_failed": 1, "auto_eject": 1, "cas": 1,
        "hash": "md5", "ketama": 1, "pickle_protocol": 4,
    }
    c = elasticache.Client([server.addr], behaviors=everything)
    assert c.set("b", 1) and c.get("b") == 1 and c.gets("b")[0] == 1
    # Settable afterwards, like pylibmc.
    c = elasticache.Client([server.addr])
    with pytest.raises(ValueError):
        c.gets("b")
    c.behaviors = {"cas": True}
    assert c.gets("b")[0] == 1 and c.behaviors["cas"] == 1
    c.behaviors["receive_timeout"] = 5000
    assert c.behaviors["receive_timeout"] == 5000 and c.behaviors["cas"] == 1
    with pytest.raises(ValueError):
        c.behaviors = {"bogus": 1}
    assert c.get("b") == 1


def test_binary_is_accepted_and_sasl_is_refused(server):
    c = elasticache.Client([server.addr], binary=True)
    assert c.set("a", 1) and c.get("a") == 1 and c.binary is True
    with pytest.raises(TypeError, match="SASL"):
        elasticache.Client([server.addr], username="u", password="p")


def test_clone_disconnect_all_hash(flushed):
    addrs = [m.addr for m in flushed]
    c = elasticache.Client(addrs, behaviors={"cas": True})
    c.set("a", 1)
    d = c.clone()
    assert d is not c and d.get("a") == 1 and d.behaviors["cas"] == 1 and d.addresses == addrs
    assert c.disconnect_all() is None
    assert c.get("a") == 1
    p = pylibmc.Client(addrs)
    keys = [f"h{i}" for i in range(200)]
    assert [c.hash(k) for k in keys] == [p.hash(k) for k in keys]
    for k in keys[:20]:
        assert c.server_for_key(k) == addrs[c.hash(k)]


def test_servers_is_the_clients_own_list_and_stats_name_a_failed_node(server):
    dead = f"127.0.0.1:{free_port()}"
    c = elasticache.Client([dead, server.addr], behaviors={"connect_timeout": 200})
    # The library's list, in the order given (pylibmc's hash() counts in it).
    assert c.servers() == [dead, server.addr]
    with pytest.raises(elasticache.SomeErrors) as info:
        c.get_stats()
    # The failed node's own message, not a made-up entry.
    assert f"{dead}: {dead}: connection error" in str(info.value), str(info.value)
    assert c.server_versions()[dead] is None and c.server_versions()[server.addr]


def test_server_specs(server):
    # pylibmc's "host:port:weight" and tuple forms.
    c = elasticache.Client([server.addr + ":3"], behaviors={"ketama_weighted": True})
    assert c.set("w", 1) and c.get("w") == 1
    c = elasticache.Client([(1, "127.0.0.1", server.port)])
    assert c.get("w") == 1
    for bad in (["/tmp/sock"], ["udp:127.0.0.1:1"]):
        with pytest.raises(ValueError):
            elasticache.Client(bad)


def test_errors_against_a_dead_server():
    c = elasticache.Client([f"127.0.0.1:{free_port()}"], behaviors={"connect_timeout": 200})
    with pytest.raises(elasticache.ConnectionError):
        c.get("a")
    with pytest.raises(elasticache.ConnectionError):
        c.set("a", 1)
    with pytest.raises(elasticache.SomeErrors):
        c.get_stats()
    with pytest.raises(elasticache.SomeErrors):
        c.flush_all()
    # By now the node has failed often enough (failure_limit) to be marked dead.
    with pytest.raises(elasticache.ServerDown) as info:
        c.set_multi({"a": 1, "b": 2})
    assert sorted(info.value.failed) == ["a", "b"]
    with pytest.raises(elasticache.ServerDown) as info:
        c.get_multi(["a", "b"])
    assert info.value.results == {}


@pytest.mark.timing
def test_calls_release_the_gil():
    """A call blocked on a silent server must not stop other threads."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    port = silent.getsockname()[1]
    c = elasticache.Client([f"127.0.0.1:{port}"], behaviors={"receive_timeout": 600_000, "send_timeout": 600_000})
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(elasticache.Timeout):
            c.get("k")
    finally:
        stop.set()
        t.join()
        silent.close()
    assert time.monotonic() - started >= 0.5
    # With the GIL held the spinner would not have run at all during the call.
    assert len(ticks) > 100


def test_threads_share_one_client(flushed):
    c = elasticache.Client([m.addr for m in flushed], behaviors={"ketama": True})
    errors = []

    def work(t):
        try:
            for i in range(150):
                key = f"t{t}:{i}"
                assert c.set(key, (t, i))
                assert c.get(key) == (t, i)
                if i % 10 == 0:
                    batch = {f"t{t}:m{i}:{j}": j for j in range(20)}
                    assert c.set_multi(batch) == []
                    assert c.get_multi(list(batch)) == batch
            assert c.add(f"t{t}:0:n", 0) is True  # each thread's own fresh key
            assert c.incr(f"t{t}:0:n", 1) == 1
        except Exception as e:  # collected for the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fork_parent_and_child_each_see_their_own_replies(flushed):
    c = elasticache.Client([m.addr for m in flushed])
    assert c.set("before", "fork")  # connections open before the fork
    assert c.get("before") == "fork"
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(300):
                if c.set(f"child:{i}", i) is not True or c.get(f"child:{i}") != i:
                    code = 1
                if c.get("before") != "fork":
                    code = 2
        except BaseException:
            code = 3
        os._exit(code)
    bad = 0
    for i in range(300):
        if c.set(f"parent:{i}", -i) is not True or c.get(f"parent:{i}") != -i:
            bad += 1
    status = wait_child(pid, 20)
    assert os.WIFEXITED(status), f"the child did not exit: wait status {status}"
    assert os.WEXITSTATUS(status) == 0
    assert bad == 0
    assert c.get("child:299") == 299 and c.get("parent:299") == -299


def test_multi_calls_take_any_iterable_and_key_types(mc):
    class Key(str):
        pass

    assert mc.set_multi({Key("s1"): 1, b"b1": 2, "s2": 3}) == []
    assert mc.get_multi(k for k in ["s1", b"b1", "nope"]) == {"s1": 1, b"b1": 2}
    assert mc.get_multi({"s2": None}.keys()) == {"s2": 3}
    assert mc.get_multi([Key("s1")]) == {"s1": 1}
    with pytest.raises(TypeError):
        mc.get_multi([1])
    with pytest.raises(ValueError):
        mc.get_multi(["a" * 200], key_prefix="p" * 51)
    assert mc.get_multi(["a" * 200], key_prefix="p" * 50) == {}
    assert mc.delete_multi(iter(["s1", "s2"])) is True
