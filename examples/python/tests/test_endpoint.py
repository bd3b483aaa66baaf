"""Client.from_endpoint: discovery through an (emulated) configuration endpoint."""

import socket
import time

import pytest

import elasticache
from conftest import free_port


def nodes_for(servers, n=3):
    return [(f"node{i}.abc.cfg.use1.cache.amazonaws.com", "127.0.0.1", m.port) for i, m in enumerate(servers[:n])]


def test_discover_set_get_and_placement(flushed, endpoint_factory):
    ep = endpoint_factory(nodes_for(flushed), version=7)
    version, nodes = elasticache.discover(ep.addr)
    assert version == 7
    assert nodes == nodes_for(flushed)
    c = elasticache.Client.from_endpoint(ep.addr)
    assert c.behaviors["ketama"] == 1 and c.behaviors["tcp_nodelay"] == 1  # django-elasticache's defaults
    by_addr = {m.addr: m for m in flushed[:3]}
    assert c.servers() == list(by_addr)
    used = set()
    for i in range(60):
        key = f"k{i}"
        assert c.set(key, i)
        owner = c.server_for_key(key)
        used.add(owner)
        # The key is on the node the client names, and only there.
        assert by_addr[owner].get_raw(key) == (4, str(i).encode())
        assert all(m.get_raw(key) is None for a, m in by_addr.items() if a != owner)
        assert c.servers()[c.hash(key)] == owner
    assert used == set(by_addr)
    assert flushed[3].get_raw("k0") is None


def test_node_list_comes_from_the_process_global_cache(flushed, endpoint_factory):
    ep = endpoint_factory(nodes_for(flushed, 2))
    a = elasticache.Client.from_endpoint(ep.addr)
    b = elasticache.Client.from_endpoint(ep.addr, behaviors={"ketama": True})
    c = a.clone()
    assert a.set("shared", 1) and b.get("shared") == 1 and c.get("shared") == 1
    assert ep.requests == 1
    elasticache.refresh(ep.addr)
    assert ep.requests == 2


def test_refresh_applies_a_new_node_list(flushed, endpoint_factory):
    ep = endpoint_factory(nodes_for(flushed, 2), version=1)
    c = elasticache.Client.from_endpoint(ep.addr)
    assert len(c.servers()) == 2
    assert ep.set_nodes(nodes_for(flushed, 4)) == 2
    c.refresh()
    assert len(c.servers()) == 4
    owners = {c.server_for_key(f"r{i}") for i in range(200)}
    assert owners == {m.addr for m in flushed}


def test_ignore_cluster_errors_against_plain_memcached(server):
    with pytest.raises(elasticache.DiscoveryError) as info:
        elasticache.Client.from_endpoint(server.addr)
    assert "ignore_cluster_errors" in str(info.value)
    c = elasticache.Client.from_endpoint(server.addr, ignore_cluster_errors=True)
    assert c.set("plain", "yes") and c.get("plain") == "yes"
    assert server.get_raw("plain") == (16, b"yes")


def test_unreachable_endpoint_names_it():
    port = free_port()
    with pytest.raises(elasticache.ConnectionError) as info:
        elasticache.Client.from_endpoint(f"127.0.0.1:{port}", options={"connect_timeout": 200})
    assert str(port) in str(info.value)


def assert_placed_on(c, servers, n=40):
    """Each key written through `c` is on the node the client names (by port:
    an empty IP column names nodes by host), and only there; every node is used."""
    by_port = {m.port: m for m in servers}
    used = set()
    for i in range(n):
        key = f"p{i}"
        assert c.set(key, i)
        owner = int(c.server_for_key(key).rsplit(":", 1)[1])
        used.add(owner)
        assert by_port[owner].get_raw(key) == (4, str(i).encode())
        assert all(m.get_raw(key) is None for p, m in by_port.items() if p != owner), key
    assert used == set(by_port)


def test_an_old_engine_is_discovered_through_the_legacy_command(flushed, endpoint_factory):
    # Engines before 1.4.14 answer ERROR to `config get cluster`; the node list is
    # the value of the key AmazonElastiCache:cluster.
    ep = endpoint_factory(nodes_for(flushed), version=3, engine="legacy")
    version, nodes = elasticache.discover(ep.addr)
    assert (version, nodes) == (3, nodes_for(flushed))
    assert (ep.counts()["config"], ep.counts()["legacy"]) == (1, 1)
    c = elasticache.Client.from_endpoint(ep.addr)
    assert sorted(c.servers()) == sorted(m.addr for m in flushed[:3])
    assert_placed_on(c, flushed[:3])
    # A refresh asks the command that worked, not `config get cluster` again.
    assert ep.set_nodes(nodes_for(flushed, 4)) == 4
    assert elasticache.refresh(ep.addr) == (4, nodes_for(flushed, 4))
    assert (ep.counts()["config"], ep.counts()["legacy"]) == (1, 2)


@pytest.mark.parametrize("variant", ["crlf", "trailing-space", "space-runs"])
def test_payload_layouts_seen_in_the_wild_give_the_same_nodes(variant, flushed, endpoint_factory):
    ep = endpoint_factory(nodes_for(flushed), version=5, variant=variant)
    with socket.create_connection(("127.0.0.1", ep.port), 2) as s:
        s.sendall(b"config get cluster\r\n")
        raw = b""
        while not raw.endswith(b"END\r\n"):
            raw += s.recv(4096)
    # The layout really is the variant's (else this test proves nothing).
    payload = raw.split(b"\r\n", 1)[1]
    assert {"crlf": payload.startswith(b"5\r\n"), "trailing-space": b" \n\r\nEND" in raw,
            "space-runs": b"   " in payload}[variant], raw
    assert elasticache.discover(ep.addr) == (5, nodes_for(flushed))
    assert_placed_on(elasticache.Client.from_endpoint(ep.addr), flushed[:3])


def test_an_empty_ip_column_is_resolved_from_the_host_name(flushed, endpoint_factory):
    ep = endpoint_factory([("localhost", "127.0.0.1", m.port) for m in flushed[:2]], variant="empty-ip")
    assert elasticache.discover(ep.addr) == (1, [("localhost", "", m.port) for m in flushed[:2]])
    c = elasticache.Client.from_endpoint(ep.addr)
    assert sorted(c.servers()) == sorted(f"localhost:{m.port}" for m in flushed[:2])
    assert_placed_on(c, flushed[:2])


def test_a_malformed_reply_is_a_discovery_error_naming_the_endpoint(servers, endpoint_factory):
    ep = endpoint_factory(nodes_for(servers))
    ep.raw(b"CONFIG cluster 0 999\r\n1\nshort\r\nEND\r\n")
    with pytest.raises(elasticache.DiscoveryError) as info:
        elasticache.Client.from_endpoint(ep.addr, options={"io_timeout": 500})
    assert ep.addr in str(info.value)


@pytest.mark.timing
def test_a_hung_endpoint_is_a_timeout_naming_it_within_the_timeout(servers, endpoint_factory):
    ep = endpoint_factory(nodes_for(servers))
    ep.hang()
    timeout = 0.3
    start = time.monotonic()
    with pytest.raises(elasticache.Timeout) as info:
        elasticache.Client.from_endpoint(ep.addr, options={"connect_timeout": 300, "io_timeout": 300})
    took = time.monotonic() - start
    assert ep.addr in str(info.value)
    assert "config get cluster" in str(info.value)
    # The timeout, plus slack a loaded 2-core machine keeps; below a second attempt.
    assert timeout - 0.02 <= took < timeout + 0.35, took
    assert ep.requests == 1
