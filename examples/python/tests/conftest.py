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
        exe = shutil.which("memcached")
        if exe is None:
            pytest.skip("memcached is not installed")
        for _ in range(5):
            port = free_port()
            args = [exe, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
            if os.geteuid() == 0:
                args += ["-u", "root"]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    self.proc, self.port = proc, port
                    return
                except OSError:
                    time.sleep(0.01)
            proc.kill()
            proc.wait()
        raise RuntimeError("memcached did not start")

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
