"""Client.from_endpoint: discovery through an (emulated) configuration endpoint."""

import socket

import pytest

import elasticache


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
    ep.nodes = nodes_for(flushed, 4)
    ep.version = 2
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(elasticache.ConnectionError) as info:
        elasticache.Client.from_endpoint(f"127.0.0.1:{port}", options={"connect_timeout": 200})
    assert str(port) in str(info.value)
