"""The crate's test servers from Python: `examples/local_cluster`
(elasticache::testkit) run as a process and driven over its stdin/stdout, the
one memcached launcher and the one emulated configuration endpoint of the Rust
tests, the Python tests (conftest.py re-exports all of this) and the
benchmarks (bench/*.py, examples/python/bench/*.py, which run outside pytest
and put this directory on sys.path).

    with LocalCluster.start(4) as c:         # 4 memcached nodes on 127.0.0.1
        c.nodes[0].addr, c.nodes[0].kill(), c.nodes[0].restart()
    LocalCluster.start(1, args=["-I", "8m"])  # more memcached arguments
    LocalCluster.start(1, tls=(chain, key))   # TLS, with node.plain_port beside
    ConfigEndpoint([(host, ip, port), ...])   # the emulator, listing given nodes
"""

import os
import queue
import re
import shutil
import socket
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


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
# Called with what is missing when memcached is not there or the examples can
# be neither built nor found (conftest.py sets its `require`: a skip, or a
# failure under CI); unset, that is a RuntimeError.
on_missing = None


def crate_example(name):
    """The path of the crate's example `name` (local_cluster, make_certs),
    built once per process (cargo's no-op when up to date, so never stale).
    Without cargo the built ones are used; when there are none, see on_missing."""
    if not _BUILT:
        exes = {n: os.path.join(REPO, "target", "release", "examples", n) for n in ("local_cluster", "make_certs")}
        if shutil.which("cargo"):
            cmd = ["cargo", "build", "--release", "--quiet", *_cargo_features()]
            for n in exes:
                cmd += ["--example", n]
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
        elif not all(os.path.exists(e) for e in exes.values()):
            _missing(f"cargo, to build {', '.join(exes)}")
        _BUILT.update(exes)
    return _BUILT[name]


def _missing(what):
    if on_missing is None:
        raise RuntimeError(f"{what} is missing")
    on_missing(what)


class LocalCluster:
    """One `local_cluster` process started with `args`: its endpoint's `addr`
    and `port`, and the `nodes` it started (Memcached, as many as it was told
    to start). Everything it runs stops with close() or when this process
    exits (its stdin closes)."""

    def __init__(self, args, nodes=0):
        self.proc = subprocess.Popen([crate_example("local_cluster"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self._lines), daemon=True).start()
        try:
            first = self._line("start", 30.0)
            if not first.startswith("endpoint "):
                raise RuntimeError(f"local_cluster did not start: {first!r}")
            self.addr = first.split()[1]
            self.port = int(self.addr.rsplit(":", 1)[1])
            self.nodes = [Memcached(self, self._line("start")) for _ in range(nodes)]
        except BaseException:
            self.close()
            raise

    @classmethod
    def start(cls, n=1, ip="127.0.0.1", args=(), tls=None):
        """`n` memcached nodes on `ip` and free ports (the endpoint lists them;
        callers may ignore it), each run with the launcher's settings, then
        `args` (which win: `["-m", "1024"]`); with `tls=(chain, key)` (PEM
        files) serving TLS on `port` and plain text on `plain_port`."""
        # The launcher runs $MEMCACHED_BIN, else memcached from the PATH.
        if not shutil.which(os.environ.get("MEMCACHED_BIN", "memcached")):
            _missing("the `memcached` program")
        argv = ["--nodes", str(n), "--ip", ip]
        if tls:
            argv += ["--tls", *map(str, tls)]
        if args:
            argv += ["--", *map(str, args)]
        return cls(argv, nodes=n)

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


class Memcached:
    """One memcached node of a LocalCluster, from its `node HOST IP PORT
    [plain=PORT]` line: `addr`, `ip`, `port`, `plain_port` (the plain-text
    listener beside a TLS one, else `port`), raw commands for assertions, and
    failing in place (kill, restart: same address, still listed)."""

    def __init__(self, cluster, line):
        words = line.split()
        if len(words) < 4 or words[0] != "node":
            raise RuntimeError(f"local_cluster: expected a node line, got {line!r}")
        self.cluster = cluster
        self.host, self.ip, self.port = words[1], words[2], int(words[3])
        extra = dict(w.split("=", 1) for w in words[4:])
        self.plain_port = int(extra.get("plain", self.port))

    @property
    def addr(self):
        return f"{self.ip}:{self.port}"

    def command(self, line):
        """Send one raw command line; return the whole reply (up to END/a status line)."""
        with socket.create_connection((self.ip, self.plain_port), 2) as s:
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
        """Stop the process now (connecting is refused until restart())."""
        self.cluster.command(f"kill {self.port}")

    def restart(self):
        """Start it again on the same address, empty; in force on return."""
        self.cluster.command(f"restart {self.port}")


class ConfigEndpoint:
    """The crate's emulated configuration endpoint (`local_cluster --external`)
    listing the caller's own nodes ([(host, ip, port)]; an empty ip lists none).
    The one emulator of every test: it speaks both discovery commands, counts
    requests and can pretend to be an old engine (`engine="legacy"`), hang,
    delay, answer raw bytes, or lay its payload out another way (`variant`:
    crlf, trailing-space, space-runs, empty-ip). Each change is in force when
    the method returns."""

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
                self._lc = LocalCluster(["--external"])
                if self._lc.port not in ConfigEndpoint._used_ports:
                    break
                taken.append(self._lc)
                if len(taken) > 20:
                    raise RuntimeError("local_cluster: no unused endpoint port in 20 tries")
        finally:
            for lc in taken:
                lc.close()
        self.addr, self.port, self.command = self._lc.addr, self._lc.port, self._lc.command
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
        self._lc.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
