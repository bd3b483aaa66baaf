#!/usr/bin/env python3
"""A minimal ElastiCache configuration endpoint for the discovery cold-start
benchmark: answers `config get cluster` (and the legacy
`get AmazonElastiCache:cluster`) with a fixed node list, `version`, and
`quit`; anything else gets `ERROR`.

It counts what clients do to it, so the benchmark can report the connects and
round trips of a cold start: every accepted connection and every request line
is appended to LOG ("connect" / "cmd <line>"). It writes its port to
PORT_FILE once it listens, and stops by itself after --lifetime seconds.

usage: cfg_endpoint.py --nodes host|ip|port[,host|ip|port...] --log LOG --port-file PORT_FILE
"""

import argparse
import socket
import threading
import time


def serve(conn, payload, log, lock):
    buf = b""
    with conn:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                text = line.decode("latin-1")
                with lock:
                    log.write(f"cmd {text}\n")
                    log.flush()
                if text == "config get cluster":
                    reply = b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(payload), payload)
                elif text == "get AmazonElastiCache:cluster":
                    reply = b"VALUE AmazonElastiCache:cluster 0 %d\r\n%s\r\nEND\r\n" % (len(payload), payload)
                elif text == "version":
                    reply = b"VERSION 1.6.12\r\n"
                elif text == "quit":
                    return
                else:
                    reply = b"ERROR\r\n"
                conn.sendall(reply)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--lifetime", type=float, default=120.0)
    a = ap.parse_args()
    entries = " ".join(a.nodes.split(","))
    payload = f"1\n{entries}\n".encode()
    lock = threading.Lock()
    log = open(a.log, "a")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.5)
    with open(a.port_file, "w") as f:
        f.write(str(srv.getsockname()[1]))
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        with lock:
            log.write("connect\n")
            log.flush()
        threading.Thread(target=serve, args=(conn, payload, log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
