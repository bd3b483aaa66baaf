#!/usr/bin/env python3
"""Connects and round trips of one discovery cold start, seen from the client:
runs `bench_c discovery ENDPOINT` under strace and counts the connects to the
endpoint's port and the requests written on those sockets (with their first
line). Prints one JSON object.

usage: discovery_trace.py BENCH_C HOST:PORT
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    bench_c, endpoint = sys.argv[1], sys.argv[2]
    port = int(endpoint.rsplit(":", 1)[1])
    if not shutil.which("strace"):
        print(json.dumps({"suite": "disc", "bench": "note", "impl": "-", "note": "strace is not installed"}))
        return
    with tempfile.NamedTemporaryFile(suffix=".strace") as tf:
        subprocess.run(
            ["strace", "-f", "-s", "80", "-e", "trace=connect,sendto,sendmsg,write,close", "-o", tf.name,
             bench_c, "discovery", endpoint],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False,
        )
        lines = open(tf.name).read().splitlines()
    open_fds, connects, requests = set(), 0, []
    for line in lines:
        m = re.search(r"connect\((\d+), \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\)", line)
        if m and int(m.group(2)) == port:
            connects += 1
            open_fds.add(m.group(1))
            continue
        m = re.search(r"(?:sendto|write|sendmsg)\((\d+), (?:\{.*?\[\{iov_base=)?\"(.*?)\"", line)
        if m and m.group(1) in open_fds:
            requests.append(m.group(2).split("\\r\\n")[0])
            continue
        m = re.search(r"close\((\d+)\)", line)
        if m:
            open_fds.discard(m.group(1))
    print(json.dumps({"suite": "disc", "bench": "discovery_trace", "impl": "ours", "connects": connects,
                      "requests": len(requests), "request_lines": requests}))


if __name__ == "__main__":
    main()
