"""Fixtures: real memcached processes on 127.0.0.1 random ports and the
crate's emulated ElastiCache configuration endpoint in front of them, both
from the crate's own launcher (examples/local_cluster, driven by
local_cluster.py beside this file), and its certificate maker
(examples/make_certs)."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import local_cluster
from local_cluster import ConfigEndpoint, LocalCluster, Memcached, crate_example  # noqa: F401 (the tests' names)

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)  # examples/python
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
# scripts/test_wheel.sh sets ELASTICACHE_TEST_INSTALLED=1 to test an installed
# wheel: then neither the source tree's package nor its library is used.
INSTALLED = os.environ.get("ELASTICACHE_TEST_INSTALLED") == "1"
if not INSTALLED:
    sys.path.insert(0, PKG_ROOT)

LIB = os.path.join(REPO, "target", "release", "libelasticache.so")
if not INSTALLED and not os.environ.get("ELASTICACHE_LIBRARY") and not os.path.exists(LIB):
    subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)


def in_ci():
    """Whether this is CI's run (CI=true): there a missing tool fails the test."""
    return os.environ.get("CI") in ("true", "1")


def require(what, available):
    """The one rule for a prerequisite: under CI=true a missing one fails the
    test naming it; elsewhere it is a skip whose reason `pytest -rs` prints."""
    if available:
        return
    if in_ci():
        pytest.fail(f"missing under CI=true: {what} (scripts/deps.sh installs what it can)", pytrace=False)
    pytest.skip(f"{what} is missing (under CI=true this fails)")


def require_tool(tool, what=None):
    """`require` for an executable on the PATH; returns its path."""
    path = shutil.which(tool)
    require(what or f"the `{tool}` program", path is not None)
    return path


local_cluster.on_missing = lambda what: require(what, False)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timing: bound by the clock; run apart, serially (scripts/test.sh: -m timing)")


def wait_child(pid, limit):
    """Wait at most `limit` seconds for child `pid` (SIGKILL past that: a
    deadlocked child must not hang the run); returns its wait status."""
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} still running after {limit} s (killed)")
        time.sleep(0.005)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """A scripted TCP server on a free port of 127.0.0.1 (`addr`): `serve(conn)`
    runs on a thread of its own for each connection, until `close()`."""

    def __init__(self, backlog=16):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()


@pytest.fixture(scope="session")
def servers():
    """Four memcached servers shared by the session (tests flush what they use)."""
    with LocalCluster.start(4) as c:
        yield c.nodes


@pytest.fixture
def server(servers):
    servers[0].command("flush_all")
    return servers[0]


@pytest.fixture
def flushed(servers):
    for m in servers:
        m.command("flush_all")
    return servers


@pytest.fixture
def endpoint_factory():
    made = []

    def make(nodes, version=1, **kw):
        ep = ConfigEndpoint(nodes, version, **kw)
        made.append(ep)
        return ep

    yield make
    for ep in made:
        ep.close()


@pytest.fixture
def mc(server):
    import elasticache

    return elasticache.Client([server.addr], behaviors={"cas": True})


@pytest.fixture(scope="session")
def django_caches(servers):
    """Django set up once per session from tests/djproject (django-elasticache's
    README CACHES), whichever test module asks first: no test configures
    Django's global settings any other way, so the order of tests is free."""
    ep = ConfigEndpoint([(f"cache-c.000{i}.use1.cache.amazonaws.com", "127.0.0.1", m.port)
                         for i, m in enumerate(servers[:3])])
    os.environ["ELASTICACHE_TEST_ENDPOINT"] = ep.addr
    os.environ["ELASTICACHE_TEST_PLAIN"] = servers[3].addr
    os.environ["DJANGO_SETTINGS_MODULE"] = "djproject.settings"
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import django

    django.setup()
    from django.core.cache import caches

    yield caches
    ep.close()

