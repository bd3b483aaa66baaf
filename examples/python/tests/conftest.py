"""Fixtures: real memcached processes on 127.0.0.1 random ports, and an
emulated ElastiCache configuration endpoint (a thread answering
`config get cluster` as described in shared/reference/discovery.md)."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timing: bound by the clock; run apart, serially (scripts/test.sh: -m timing)")


def stats_pid(port, timeout=0.2):
    """The pid in `stats` of whatever answers on 127.0.0.1:port, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    for line in data.split(b"\r\n"):
        if line.startswith(b"STAT pid "):
            return int(line.split()[2])
    return None


def wait_serving(proc, port, what, limit=5.0):
    """Wait until `proc` itself answers on `port` (its `stats` name its pid,
    as the crate's launcher checks: not whoever else took the port). Kills it
    and raises when it exits or stays silent past `limit`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if stats_pid(port) == proc.pid:
            return
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{what} did not answer on port {port}")


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


class Memcached:
    """One memcached process on 127.0.0.1; killed at the end of the session."""

    def __init__(self):
        self.proc = None
        self.port = None
        self.start()

    def start(self):
        exe = require_tool("memcached")
        error = None
        # A free port can be taken by someone else between probe and bind: retry.
        for _ in range(5):
            port = free_port()
            args = [exe, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
            if os.geteuid() == 0:
                args += ["-u", "root"]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_serving(proc, port, f"memcached on 127.0.0.1:{port}")
            except RuntimeError as e:
                error = e
                continue
            self.proc, self.port = proc, port
            return
        raise RuntimeError(f"memcached did not start: {error}")

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def command(self, line):
        """Send one raw command line; return the whole reply (up to END/a status line)."""
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(line.encode() + b"\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
                if data.endswith((b"END\r\n", b"STORED\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n",
                                  b"OK\r\n", b"ERROR\r\n")):
                    return data

    def get_raw(self, key):
        """(flags, bytes) stored under `key` on this server, or None."""
        reply = self.command(f"get {key}")
        if reply == b"END\r\n":
            return None
        header, rest = reply.split(b"\r\n", 1)
        _, _, flags, length = header.split()
        return int(flags), rest[: int(length)]

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class ConfigEndpoint:
    """An emulated configuration endpoint: answers `config get cluster` with
    `nodes` ([(host, ip, port)]) and `version`, `version` with a 1.6 engine
    version, anything else with ERROR."""

    def __init__(self, nodes, version=1):
        self.nodes = list(nodes)
        self.version = version
        self.requests = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def payload(self):
        nodes = " ".join(f"{h}|{ip}|{p}" for h, ip, p in self.nodes)
        return f"{self.version}\n{nodes}\n".encode()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    if line == b"config get cluster":
                        self.requests += 1
                        body = self.payload()
                        reply = b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body)
                    elif line == b"version":
                        reply = b"VERSION 1.6.12\r\n"
                    else:
                        reply = b"ERROR\r\n"
                    conn.sendall(reply)

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture(scope="session")
def servers():
    """Four memcached servers shared by the session (tests flush what they use)."""
    ms = [Memcached() for _ in range(4)]
    yield ms
    for m in ms:
        m.kill()


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

    def make(nodes, version=1):
        ep = ConfigEndpoint(nodes, version)
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

