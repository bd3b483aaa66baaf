#!/usr/bin/env python3
"""Placement oracle through pylibmc (its bundled libmemcached 1.0.16).

usage: pylibmc_write.py BEHAVIORS_JSON HOST:PORT[:WEIGHT]...
stdin: one hex-encoded key per line. Every key is written with set_multi in
batches; prints "written N" (and exits non-zero if any key was not stored).
The caller then asks each server which keys it holds.
"""
import json
import sys

import pylibmc


def main():
    behaviors = json.loads(sys.argv[1])
    servers = sys.argv[2:]
    mc = pylibmc.Client(servers, binary=False, behaviors=behaviors)
    keys = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
    failed = []
    for i in range(0, len(keys), 500):
        failed += mc.set_multi({k: b"1" for k in keys[i : i + 500]})
    if failed:
        print("failed", len(failed), file=sys.stderr)
        sys.exit(1)
    print("written", len(keys))


if __name__ == "__main__":
    main()
