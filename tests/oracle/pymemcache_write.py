#!/usr/bin/env python3
"""Placement oracle through pymemcache's HashClient (rendezvous hashing).

usage: pymemcache_write.py [--read] HOST:PORT...
stdin: one hex-encoded key per line. A key that is valid UTF-8 is passed as a
Python str (what Django and most callers pass), any other key as bytes; both
go through HashClient.set_many. Prints "written N"; exits non-zero if any key
was not stored. The caller then asks each server which keys it holds.
"""
import sys

from pymemcache.client.hash import HashClient


def main():
    args = sys.argv[1:]
    reading = args[:1] == ["--read"]
    if reading:
        args = args[1:]
    servers = []
    for s in args:
        host, port = s.rsplit(":", 1)
        servers.append((host, int(port)))
    client = HashClient(servers, allow_unicode_keys=True, default_noreply=False)
    keys = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        raw = bytes.fromhex(line)
        try:
            keys.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            keys.append(raw)
    if reading:
        hits = 0
        for i in range(0, len(keys), 500):
            hits += len(client.get_many(keys[i : i + 500]))
        print("read", len(keys), "hits", hits)
        return
    failed = []
    for i in range(0, len(keys), 500):
        failed += client.set_many({k: b"1" for k in keys[i : i + 500]}, noreply=False)
    if failed:
        print("failed", len(failed), failed[:5], file=sys.stderr)
        sys.exit(1)
    print("written", len(keys))


if __name__ == "__main__":
    main()
