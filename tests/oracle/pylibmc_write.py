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

from oracle_batches import hex_keys, run, split_read


def main():
    reading, args = split_read(sys.argv[1:])
    behaviors = json.loads(args[0])
    mc = pylibmc.Client(args[1:], binary=False, behaviors=behaviors)
    run(reading, hex_keys(sys.stdin), mc.get_multi, mc.set_multi)


if __name__ == "__main__":
    main()
