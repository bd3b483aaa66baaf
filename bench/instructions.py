#!/usr/bin/env python3
"""User-space instructions per operation, counted by valgrind's callgrind:
deterministic where wall-clock latency on a shared 2-core box is not, and
free of kernel time. Collection is switched on only inside the benchmark's
operation function (ours_get, lmc_get, raw_get, ...), and two run lengths are
subtracted so that connecting and warming up cancel out.

Also writes, for our implementation, the functions that cost the most
instructions per call (exclusive), as PROFILE_OUT: where a goal is missed,
this says which function the time goes to.

usage: instructions.py BENCH_C PROFILE_OUT   (BENCH_SERVERS in the environment)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

N_LOW, N_HIGH = 100, 600
OPS = {"get": "get", "set": "set", "mget100": "mget"}


def collected(bench_c, impl, op, n, out_file):
    fn = {"ours": "ours_", "libmemcached": "lmc_", "raw": "raw_"}[impl] + OPS[op]
    p = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={fn}",
            f"--callgrind-out-file={out_file}",
            bench_c,
            "syscalls",
            impl,
            op,
            str(n),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
    if not m:
        raise RuntimeError(f"callgrind gave no count (exit {p.returncode}): {p.stderr[-300:]}")
    return int(m.group(1))


def top_functions(cg_file, calls, limit=14):
    """Exclusive instruction counts per call of the costliest functions."""
    p = subprocess.run(["callgrind_annotate", "--inclusive=no", cg_file], capture_output=True, text=True)
    rows = []
    in_table = False
    for line in p.stdout.splitlines():
        # Only the first table (exclusive cost per function); later sections annotate call sites.
        if re.match(r"^Ir\s+file:function", line.strip()):
            in_table = True
            continue
        if not in_table:
            continue
        if line.startswith("----") and rows:
            break
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        count = int(m.group(1).replace(",", ""))
        where = m.group(2)
        # "file:function [object]" -> "function (file)"
        obj = re.search(r"\[(.*?)\]\s*$", where)
        where = re.sub(r"\s*\[.*?\]\s*$", "", where)
        file_, _, func = where.partition(":")
        if not func:
            func, file_ = file_, ""
        file_ = re.sub(r"^.*/(library|src|memchr-[\d.]+/src|malloc|string|elf)/", r"\1/", file_)
        lib = os.path.basename(obj.group(1)) if obj else ""
        rows.append((count / calls, func.strip(), file_.strip(), lib))
    merged = {}
    for per, func, file_, lib in rows:
        key = func
        prev = merged.get(key, (0, file_, lib))
        merged[key] = (prev[0] + per, prev[1] or file_, prev[2] or lib)
    out = sorted(merged.items(), key=lambda kv: -kv[1][0])[:limit]
    return [(round(v[0]), k, v[1], v[2]) for k, v in out]


def main():
    bench_c, profile_out = sys.argv[1], sys.argv[2]
    if not shutil.which("valgrind"):
        print(json.dumps({"suite": "ins", "bench": "note", "impl": "-", "note": "valgrind is not installed"}))
        return
    tmp = tempfile.mkdtemp()
    profiles = []
    try:
        for op in ("get", "set", "mget100"):
            for impl in ("raw", "ours", "libmemcached"):
                try:
                    lo = collected(bench_c, impl, op, N_LOW, os.path.join(tmp, "lo"))
                    hi_file = os.path.join(tmp, f"hi.{impl}.{op}")
                    hi = collected(bench_c, impl, op, N_HIGH, hi_file)
                except Exception as e:
                    print(json.dumps({"suite": "ins", "bench": op, "impl": impl, "error": str(e)}), flush=True)
                    continue
                per_op = (hi - lo) / (N_HIGH - N_LOW)
                print(json.dumps({"suite": "ins", "bench": op, "impl": impl, "instructions_per_op": round(per_op)}), flush=True)
                if impl == "ours":
                    # calls inside the toggled function: warm-up calls included (see mode_syscalls)
                    warm = 3 if op == "mget100" else 100
                    top = top_functions(hi_file, N_HIGH + warm)
                    profiles.append((op, round(per_op), top))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(profile_out, "w") as f:
        for op, per, top in profiles:
            f.write(f"### ours, {op}: {per} instructions per call; costliest functions (exclusive, per call)\n\n")
            f.write("| instructions | function | where |\n|---|---|---|\n")
            for n, func, file_, lib in top:
                f.write(f"| {n} | `{func}` | {file_ or lib} |\n")
            f.write("\n")


if __name__ == "__main__":
    main()
