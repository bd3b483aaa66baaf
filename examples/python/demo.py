#!/usr/bin/env python3
"""Discover a cluster, store a few keys, read them back, and show which node
holds each one.

    python3 examples/python/demo.py mycluster.abc123.cfg.use1.cache.amazonaws.com:11211
    python3 examples/python/demo.py --ignore-cluster-errors localhost:11211   # plain memcached
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import elasticache  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("endpoint", help="configuration endpoint, host:port")
    ap.add_argument("--ignore-cluster-errors", action="store_true",
                    help="use a plain memcached endpoint as the only node")
    ap.add_argument("--keys", type=int, default=8)
    args = ap.parse_args()

    version, nodes = elasticache.discover(args.endpoint, ignore_cluster_errors=args.ignore_cluster_errors)
    print(f"cluster {args.endpoint}: config version {version}, {len(nodes)} node(s)")
    for host, ip, port in nodes:
        print(f"  {host} {ip or '-'} {port}")

    mc = elasticache.Client.from_endpoint(args.endpoint, ignore_cluster_errors=args.ignore_cluster_errors)
    values = {f"demo:{i}": {"n": i, "square": i * i} for i in range(args.keys)}
    failed = mc.set_multi(values, time=300)
    print(f"stored {len(values) - len(failed)} keys" + (f", failed: {failed}" if failed else ""))
    print(f"{'key':12} {'node':24} value")
    for key in values:
        print(f"{key:12} {mc.server_for_key(key):24} {mc.get(key)}")
    got = mc.get_multi(list(values))
    print(f"get_multi: {len(got)}/{len(values)} hits")
    return 0 if len(got) == len(values) else 1


if __name__ == "__main__":
    sys.exit(main())
