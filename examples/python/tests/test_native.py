"""The binding's C declarations against include/elasticache.h, and library loading."""

import os
import re
import subprocess
import sys

import pytest

from conftest import PKG_ROOT, REPO

from elasticache import _native

HEADER = os.path.join(REPO, "include", "elasticache.h")


def normalize(sig):
    sig = re.sub(r"/\*.*?\*/", " ", sig, flags=re.S)
    sig = sig.replace("uint8_t", "char").replace("struct ", "")
    sig = re.sub(r"\s+", " ", sig)
    sig = re.sub(r"\s*([*(),])\s*", r"\1", sig)
    # Parameter names do not matter, only types.
    ret, name, args = re.match(r"(.*?)(elasticache_\w+)\((.*)\)", sig.strip()).groups()
    types = [re.sub(r"\s*\b\w+$", "", a.strip()) if a.strip() not in ("void",) else "void"
             for a in args.split(",")] if args else []
    return ret.strip(), name, types


def declarations(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    out = {}
    for m in re.finditer(r"^[\w ]+?\**\s*\**(elasticache_\w+)\([^;{]*?\);", text, flags=re.M | re.S):
        ret, name, types = normalize(m.group(0).rstrip(";"))
        out[name] = (ret, types)
    return out


def test_declarations_match_the_header():
    ours = declarations(_native.CDEF)
    header = declarations(open(HEADER).read())
    assert len(ours) == _native.CDEF.count(");") >= 50  # every declaration parsed
    for name, sig in ours.items():
        assert name in header, f"{name} is not in elasticache.h"
        assert sig == header[name], name
    assert ours["elasticache_set"] == ours["elasticache_add"]


def test_status_codes_match_the_header():
    text = open(HEADER).read()
    enum = dict((k, int(v)) for k, v in re.findall(r"ELASTICACHE_STATUS_(\w+) = (\d+)", text))
    assert len(enum) == 19
    for name, value in enum.items():
        assert getattr(_native, name) == value, name
        assert _native.status_str(value)


def test_missing_library_names_every_path_tried(tmp_path):
    missing = tmp_path / "nope" / "libelasticache.so"
    env = dict(os.environ, ELASTICACHE_LIBRARY=str(missing), PYTHONPATH=PKG_ROOT)
    r = subprocess.run([sys.executable, "-c", "import elasticache"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and str(missing) in r.stderr and "ELASTICACHE_LIBRARY" in r.stderr


def test_library_found_in_the_repository_by_default():
    env = {k: v for k, v in os.environ.items() if k != "ELASTICACHE_LIBRARY"}
    env["PYTHONPATH"] = PKG_ROOT
    r = subprocess.run([sys.executable, "-c", "import elasticache; print(elasticache.library_path)"],
                       env=env, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == os.path.join(REPO, "target", "release", "libelasticache.so")


def test_version():
    import elasticache

    assert re.fullmatch(r"\d+\.\d+\.\d+.*", elasticache.libelasticache_version)
    m = re.search(r'#define ELASTICACHE_VERSION "([^"]+)"', open(HEADER).read())
    assert m and m.group(1) == elasticache.libelasticache_version


@pytest.mark.parametrize("script", ["demo.py", "cffi_example.py"])
def test_examples_run(script, flushed, endpoint_factory):
    ep = endpoint_factory([(f"node{i}.example", "127.0.0.1", m.port) for i, m in enumerate(flushed[:3])])
    r = subprocess.run([sys.executable, os.path.join(PKG_ROOT, script), ep.addr],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=PKG_ROOT))
    assert r.returncode == 0, r.stderr
    for m in flushed[:3]:
        assert str(m.port) in r.stdout  # every discovered node is listed
    owners = re.findall(r"^\S+ +(?:on )?(127\.0\.0\.1:\d+) ", r.stdout, flags=re.M)
    assert owners and set(owners) <= {m.addr for m in flushed[:3]}
    assert re.search(r"get_multi: (\d+)/\1 hits", r.stdout)
