#!/usr/bin/env python3
"""Placement oracle through pylibmc (its bundled libmemcached 1.0.16).

usage: pylibmc_write.py [--read] BEHAVIORS_JSON HOST:PORT[:WEIGHT]...
stdin: one hex-encoded key per line. Every key is written with set_multi in
batches; prints "written N" (and exits non-zero if any key was not stored).
The caller then asks each server which keys it holds. With --read, every
key is read with get_multi instead; prints "read N hits M".
"""
import json
import sys

import pylibmc


def main():
    args = sys.argv[1:]
    reading = args[:1] == ["--read"]
    if reading:
        args = args[1:]
    behaviors = json.loads(args[0])
    servers = args[1:]
    mc = pylibmc.Client(servers, binary=False, behaviors=behaviors)
    keys = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
    if reading:
        hits = 0
        for i in range(0, len(keys), 500):
            hits += len(mc.get_multi(keys[i : i + 500]))
        print("read", len(keys), "hits", hits)
        return
    failed = []
    for i in range(0, len(keys), 500):
        failed += mc.set_multi({k: b"1" for k in keys[i : i + 500]})
    if failed:
        print("failed", len(failed), file=sys.stderr)
        sys.exit(1)
    print("written", len(keys))


if __name__ == "__main__":
    main()
