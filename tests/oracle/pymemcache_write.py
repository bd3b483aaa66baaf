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

from oracle_batches import hex_keys, run, split_read


def text_or_bytes(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def main():
    reading, args = split_read(sys.argv[1:])
    servers = []
    for s in args:
        host, port = s.rsplit(":", 1)
        servers.append((host, int(port)))
    client = HashClient(servers, allow_unicode_keys=True, default_noreply=False)
    keys = [text_or_bytes(raw) for raw in hex_keys(sys.stdin)]
    run(reading, keys, client.get_many, lambda batch: client.set_many(batch, noreply=False))


if __name__ == "__main__":
    main()
