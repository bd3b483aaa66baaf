#!/usr/bin/env python3
"""Syscalls per operation: runs `bench_c syscalls IMPL OP N` under
`strace -c -f` for two values of N and divides the difference of the counts
by the difference of N, so that set-up (connects, populating keys) cancels
out. Prints one JSON object per (impl, op) with the per-operation count of
every syscall seen, and the sends / receives / polls summed.

usage: syscalls.py BENCH_C   (BENCH_SERVERS in the environment)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SENDS = {"sendto", "sendmsg", "send", "write", "writev", "sendmmsg"}
RECVS = {"recvfrom", "recvmsg", "recv", "read", "readv", "recvmmsg"}
POLLS = {"poll", "ppoll", "epoll_wait", "epoll_pwait", "select", "pselect6"}
N_LOW, N_HIGH = 50, 1050


def counts(bench_c, impl, op, n):
    with tempfile.NamedTemporaryFile(suffix=".strace", delete=False) as f:
        out = f.name
    try:
        subprocess.run(
            ["strace", "-c", "-f", "-o", out, bench_c, "syscalls", impl, op, str(n)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        table = {}
        with open(out) as fh:
            for line in fh:
                parts = line.split()
                # rows: % time, seconds, usecs/call, calls, [errors], syscall
                if len(parts) in (5, 6) and parts[0][0].isdigit() and parts[-1] != "total":
                    try:
                        table[parts[-1]] = int(parts[3])
                    except ValueError:
                        pass
        return table
    finally:
        os.unlink(out)


def main():
    bench_c = sys.argv[1]
    if not shutil.which("strace"):
        print(json.dumps({"suite": "sys", "bench": "note", "impl": "-", "note": "strace is not installed"}))
        return
    for op in ("get", "set", "mget100"):
        for impl in ("raw", "ours", "libmemcached"):
            try:
                lo = counts(bench_c, impl, op, N_LOW)
                hi = counts(bench_c, impl, op, N_HIGH)
            except Exception as e:
                print(json.dumps({"suite": "sys", "bench": op, "impl": impl, "error": str(e)}), flush=True)
                continue
            per = {}
            for name in set(lo) | set(hi):
                d = (hi.get(name, 0) - lo.get(name, 0)) / (N_HIGH - N_LOW)
                if abs(d) >= 0.005:
                    per[name] = round(d, 3)
            rec = {
                "suite": "sys",
                "bench": op,
                "impl": impl,
                "per_op": dict(sorted(per.items())),
                "sends": round(sum(v for k, v in per.items() if k in SENDS), 3),
                "recvs": round(sum(v for k, v in per.items() if k in RECVS), 3),
                "polls": round(sum(v for k, v in per.items() if k in POLLS), 3),
                "total": round(sum(per.values()), 3),
            }
            print(json.dumps(rec), flush=True)


def futex_per_op(bench_c, impl, threads, secs=0.5):
    """futex calls per get with `threads` threads sharing one client: a lock
    that makes threads wait shows up here (an uncontended lock makes none)."""
    with tempfile.NamedTemporaryFile(suffix=".strace", delete=False) as f:
        out = f.name
    try:
        base = ["strace", "-f", "-c", "-e", "trace=futex", "-o", out]
        # --seccomp-bpf stops the traced process only on futex, so the run keeps its pace.
        probe = subprocess.run(["strace", "--seccomp-bpf", "-e", "trace=futex", "true"], capture_output=True)
        if probe.returncode == 0:
            base.insert(1, "--seccomp-bpf")
        p = subprocess.run(base + [bench_c, "threads", impl, str(threads), str(secs)],
                           capture_output=True, text=True, timeout=60)
        rec = json.loads(p.stdout.strip().splitlines()[-1])
        calls = 0
        with open(out) as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[-1] == "futex" and len(parts) >= 5:
                    calls = int(parts[3])
        return calls, rec["ops"]
    finally:
        os.unlink(out)


def futex_main(bench_c):
    for impl in ("ours", "libmemcached"):
        try:
            calls, ops = futex_per_op(bench_c, impl, 2)
        except Exception as e:
            print(json.dumps({"suite": "sys", "bench": "futex", "impl": impl, "error": str(e)}), flush=True)
            continue
        print(json.dumps({"suite": "sys", "bench": "futex", "impl": impl, "threads": 2, "futex_calls": calls,
                          "ops": ops, "futex_per_get": round(calls / ops, 5) if ops else None}), flush=True)


if __name__ == "__main__":
    main()
    futex_main(sys.argv[1])
