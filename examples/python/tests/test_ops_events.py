"""Events in the `elasticache` log and per-node metrics (issue #16 items 3
and 4), against real memcached behind the emulated configuration endpoint."""

import logging
import time

import elasticache
from conftest import ConfigEndpoint, free_port


def records(caplog, level, text):
    return [r for r in caplog.records if r.name == "elasticache" and r.levelno == level and text in r.getMessage()]


def test_node_added_is_logged_within_the_refresh_interval(caplog, servers):
    ep = ConfigEndpoint([("n0", "127.0.0.1", servers[0].port), ("n1", "127.0.0.1", servers[1].port)])
    try:
        with caplog.at_level(logging.INFO, logger="elasticache"):
            c = elasticache.Client.from_endpoint(ep.addr, options={"refresh_interval_ms": 300})
            assert records(caplog, logging.INFO, f"discovery done for {ep.addr}")
            ep.set_nodes(ep.nodes + [("n2", "127.0.0.1", servers[2].port)])
            start = time.monotonic()
            added = []
            while not added and time.monotonic() - start < 5:
                c.get("poke")
                added = records(caplog, logging.INFO, f"node added {servers[2].addr}")
                time.sleep(0.02)
            took = time.monotonic() - start
        assert added, [r.getMessage() for r in caplog.records]
        assert "2 -> 3 nodes" in added[0].getMessage()
        assert added[0].elasticache_event["endpoint"] == ep.addr
        # Within the refresh interval, plus slack for a loaded 2-core machine.
        assert took < 0.3 + 1.5, took
        # The event comes from whoever refreshed the process-wide node cache
        # (the background refresh may beat this client's own check); the
        # client routes to the new node from its next maintenance on, within
        # the refresh interval.
        while servers[2].addr not in c.servers() and time.monotonic() - start < 0.3 + 1.5:
            c.get("poke")
            time.sleep(0.02)
        assert servers[2].addr in c.servers(), (c.servers(), time.monotonic() - start)
    finally:
        ep.close()


def test_ejected_node_is_a_warning_naming_it(caplog, servers):
    dead = f"127.0.0.1:{free_port()}"
    c = elasticache.Client([servers[0].addr, dead],
                           behaviors={"remove_failed": 1, "connect_timeout": 300, "retry_timeout": 30})
    key = next(k for k in (f"k{i}" for i in range(1000)) if c.server_for_key(k) == dead)
    with caplog.at_level(logging.INFO, logger="elasticache"):
        try:
            c.get(key)
        except elasticache.Error:
            pass
    warned = records(caplog, logging.WARNING, f"node ejected {dead}")
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    assert "refused" in warned[0].getMessage().lower()
    m = c.node_metrics()[dead]
    assert (m["state"], m["ejections"], m["errors"]) == ("ejected", 1, 1)


def test_node_metrics_count_the_operations(flushed):
    a, b = flushed[0].addr, flushed[1].addr
    c = elasticache.Client([a, b])
    ka = [k for k in (f"key{i}" for i in range(500)) if c.server_for_key(k) == a][:5]
    kb = [k for k in (f"key{i}" for i in range(500)) if c.server_for_key(k) == b][:5]
    for k in ka[:3]:
        c.set(k, "v")
    for k in ka:
        c.get(k)
    c.delete(ka[0])
    c.get_multi(ka + kb)
    m = c.node_metrics()
    assert set(m) == {a, b}
    ma, mb = m[a], m[b]
    # a: 3 sets, 5 gets (3 hits), 1 delete, its part of one multi-get (2 of 5 hit).
    assert (ma["requests"], ma["hits"], ma["misses"], ma["errors"], ma["timeouts"]) == (10, 5, 5, 0, 0), ma
    assert (mb["requests"], mb["hits"], mb["misses"]) == (1, 0, 5), mb
    assert ma["state"] == "up" and ma["open_connections"] >= 1
    assert sum(n for _, n in ma["latency_buckets"]) == 10
    assert 0 < ma["p50_us"] <= ma["p99_us"]

    text = elasticache.metrics.prometheus_text(c)
    assert f'elasticache_client_requests_total{{node="{a}"}} 10' in text
    assert f'elasticache_client_node_up{{node="{b}"}} 1' in text
    assert f'elasticache_client_request_duration_seconds_count{{node="{a}"}} 10' in text
    assert f'elasticache_client_request_duration_seconds_bucket{{node="{a}",le="+Inf"}} 10' in text
    # Cumulative buckets never decrease.
    counts = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(f'elasticache_client_request_duration_seconds_bucket{{node="{a}"')]
    assert counts == sorted(counts) and len(counts) == elasticache.metrics.BUCKETS
