"""Fixtures: real memcached processes on 127.0.0.1 random ports, the crate's
emulated ElastiCache configuration endpoint in front of them
(examples/local_cluster --external) and its certificate maker
(examples/make_certs)."""

import os
import queue
import re
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


def _cargo_features():
    """`--features testkit` when Cargo.toml has that feature (the emulator then
    lives behind it), else nothing."""
    with open(os.path.join(REPO, "Cargo.toml")) as f:
        text = f.read()
    section = re.search(r"^\[features\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if section and re.search(r"^\s*testkit\s*=", section.group(1), re.M):
        return ["--features", "testkit"]
    return []


_BUILT = {}


def crate_example(name):
    """The path of the crate's example `name` (local_cluster, make_certs),
    built once per session (cargo's no-op when up to date, so never stale)."""
    if not _BUILT:
        exes = {n: os.path.join(REPO, "target", "release", "examples", n) for n in ("local_cluster", "make_certs")}
        if shutil.which("cargo"):
            cmd = ["cargo", "build", "--release", "--quiet", *_cargo_features()]
            for n in exes:
                cmd += ["--example", n]
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
        else:
            require(f"cargo, to build {', '.join(exes)}", all(os.path.exists(e) for e in exes.values()))
        _BUILT.update(exes)
    return _BUILT[name]


class ConfigEndpoint:
    """The crate's emulated configuration endpoint (elasticache::testkit, run by
    `examples/local_cluster --external`) listing the caller's own nodes
    ([(host, ip, port)]; an empty ip lists none). The one emulator of every
    test: it speaks both discovery commands, counts requests and can pretend to
    be an old engine (`engine="legacy"`), hang, delay, answer raw bytes, or lay
    its payload out another way (`variant`: crlf, trailing-space, space-runs,
    empty-ip). Each change is in force when the method returns."""

    # Ports handed out in this process: the library caches discovery per
    # endpoint address for the life of the process (as in production), so an
    # endpoint on a port an earlier test's endpoint had would be answered from
    # that test's cached node list.
    _used_ports = set()

    def __init__(self, nodes=(), version=1, engine="elasticache", variant="standard"):
        taken = []
        try:
            # A port seen before is kept bound while the next one is asked
            # for, so the kernel cannot hand it out again.
            while True:
                self._spawn()
                if self.port not in ConfigEndpoint._used_ports:
                    break
                taken.append((self.proc, self._lines))
                if len(taken) > 20:
                    raise RuntimeError("local_cluster: no unused endpoint port in 20 tries")
        finally:
            for proc, lines in taken:
                self.proc, self._lines = proc, lines
                self.close()
        ConfigEndpoint._used_ports.add(self.port)
        try:
            self._nodes = []
            self.set_config(version, nodes)
            if engine != "elasticache":
                self.set_engine(engine)
            if variant != "standard":
                self.set_variant(variant)
        except BaseException:
            self.close()
            raise

    def _spawn(self):
        self.proc = subprocess.Popen([crate_example("local_cluster"), "--external"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self._lines), daemon=True).start()
        try:
            first = self._line("start")
            if not first.startswith("endpoint "):
                raise RuntimeError(f"local_cluster did not start: {first!r}")
            self.addr = first.split()[1]
            self.port = int(self.addr.rsplit(":", 1)[1])
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _read(proc, lines):
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _line(self, what, limit=10.0):
        try:
            line = self._lines.get(timeout=limit)
        except queue.Empty:
            raise RuntimeError(f"local_cluster: no answer to {what!r} in {limit} s") from None
        if line is None:
            raise RuntimeError(f"local_cluster exited (rc {self.proc.poll()}) before answering {what!r}")
        return line

    def command(self, line):
        """Send one command line to local_cluster; its one-line answer."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self._line(line)
        if reply.startswith("error:"):
            raise RuntimeError(f"local_cluster: {line!r}: {reply}")
        return reply

    @staticmethod
    def _entries(nodes):
        return [(h, ip, int(p)) for h, ip, p in nodes]

    def _set(self, verb, nodes):
        nodes = self._entries(nodes)
        reply = self.command(" ".join([verb] + [f"{h}|{ip}|{p}" for h, ip, p in nodes]))
        self._nodes = nodes
        return int(reply.split()[1])

    def set_nodes(self, nodes):
        """List `nodes` under the next config version (as AWS does); returns it."""
        return self._set("nodes", nodes)

    def set_config(self, version, nodes):
        """List exactly `nodes` under exactly `version`."""
        self._set(f"config {int(version)}", nodes)

    @property
    def nodes(self):
        """The nodes as given (a copy; assign to change them under the same version)."""
        return list(self._nodes)

    @nodes.setter
    def nodes(self, nodes):
        self.set_config(self.version, nodes)

    @property
    def version(self):
        return int(self.command("version").split()[1])

    @version.setter
    def version(self, v):
        self.command(f"version {int(v)}")

    def counts(self):
        """Requests since start (or reset_counts): config, legacy, version, other, connections."""
        words = self.command("counts").split()[1:]
        return {k: int(v) for k, v in (w.split("=") for w in words)}

    @property
    def requests(self):
        """How many `config get cluster` it received."""
        return self.counts()["config"]

    def reset_counts(self):
        self.command("reset")

    def set_engine(self, name):
        """elasticache, legacy (only `get AmazonElastiCache:cluster`) or plain (memcached)."""
        self.command(f"engine {name}")

    def set_variant(self, name):
        self.command(f"variant {name}")

    def hang(self, on=True):
        """Read requests, never answer."""
        self.command(f"hang {'on' if on else 'off'}")

    def delay(self, ms):
        self.command(f"delay {int(ms)}")

    def raw(self, data, request="both"):
        """Answer `request` (config, legacy, both) with exactly `data` (None: normally)."""
        self.command(f"raw {request} {'off' if data is None else data.hex()}")

    def truncate(self, n):
        self.command(f"truncate {'off' if n is None else int(n)}")

    def stop(self):
        """Go away: connecting is refused until start()."""
        self.command("stop")

    def start(self):
        self.command("start")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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

