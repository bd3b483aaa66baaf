"""The binding's C declarations against include/elasticache.h, library loading
(source tree and installed wheel), and the C-API examples."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import INSTALLED, PKG_ROOT, REPO

from elasticache import _native

HEADER = os.path.join(REPO, "include", "elasticache.h")


def normalize(sig):
    sig = re.sub(r"/\*.*?\*/", " ", sig, flags=re.S)
    sig = sig.replace("uint8_t", "char").replace("struct ", "")
    sig = re.sub(r"\s+", " ", sig)
    sig = re.sub(r"\s*([*(),])\s*", r"\1", sig)
    ret, name, args = re.match(r"(.*?)(elasticache_\w+)\((.*)\)", sig.strip()).groups()
    # Parameter names do not matter, only types.
    types = [a.strip() if a.strip() == "void" else re.sub(r"\s*\b\w+$", "", a.strip())
             for a in args.split(",")] if args else []
    return ret.strip(), name, types


def declarations(text):
    """{function name: (return type, [parameter types])} of every prototype."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    out = {}
    for m in re.finditer(r"^[\w ]+?\**\s*\**(elasticache_\w+)\([^;{]*?\);", text, flags=re.M | re.S):
        ret, name, types = normalize(m.group(0).rstrip(";"))
        assert name not in out, f"{name} declared twice"
        out[name] = (ret, types)
    return out


def drift(cdef, header):
    """Every way `cdef` disagrees with `header`, as readable lines."""
    ours, theirs = declarations(cdef), declarations(header)
    problems = [f"{n}: not declared in the binding" for n in sorted(set(theirs) - set(ours))]
    problems += [f"{n}: not in elasticache.h" for n in sorted(set(ours) - set(theirs))]
    problems += [f"{n}: binding {ours[n]} != header {theirs[n]}"
                 for n in sorted(set(ours) & set(theirs)) if ours[n] != theirs[n]]
    if len(ours) != cdef.count(");"):
        problems.append(f"parsed {len(ours)} of the binding's {cdef.count(');')} declarations")
    return problems


def test_declarations_match_the_header():
    header = open(HEADER).read()
    assert len(declarations(header)) >= 60  # the parser sees the whole header
    assert drift(_native.CDEF, header) == []


# Each edit makes the binding disagree with the header in one way that a
# foreign call would get wrong silently (or crash on).
DRIFTS = [
    ("size_t key_len);", "uint32_t key_len);"),              # parameter type (elasticache_delete)
    ("uint64_t cas);\nelasticache_status elasticache_delete", "uint32_t cas);\nelasticache_status elasticache_delete"),
    ("size_t *index);\nelasticache_status elasticache_client_servers",
     "size_t index);\nelasticache_status elasticache_client_servers"),  # pointer level
    ("const char *elasticache_version(void);", "char *elasticache_version(void);"),  # return type
    ("uint64_t elasticache_fork_generation(void);", "uint32_t elasticache_fork_generation(void);"),
    ("elasticache_status elasticache_touch(const elasticache_client *client, const char *key, size_t key_len,\n"
     "                                     int64_t exptime);",
     "elasticache_status elasticache_touch(const elasticache_client *client, const char *key, size_t key_len);"),
    ("elasticache_status elasticache_flush_all(", "uint64_t elasticache_flush_all("),  # a status is 32 bits
    ("void elasticache_stats_free(elasticache_stats *stats);\n", ""),  # a function left out
    ("void elasticache_ring_free(elasticache_ring *ring);",
     "void elasticache_ring_free(elasticache_ring *ring);\nvoid elasticache_gone(void);"),
    ("size_t elasticache_multi_count(const elasticache_multi *multi);",
     "size_t elasticache_multi_count(elasticache_multi *multi);"),  # const
]


@pytest.mark.parametrize("old,new", DRIFTS)
def test_a_drifted_declaration_is_caught(old, new):
    header = open(HEADER).read()
    assert _native.CDEF.count(old) == 1, old
    assert drift(_native.CDEF.replace(old, new), header), new


def test_status_codes_match_the_header():
    text = open(HEADER).read()
    enum = dict((k, int(v)) for k, v in re.findall(r"ELASTICACHE_STATUS_(\w+) = (\d+)", text))
    assert len(enum) == 19
    for name, value in enum.items():
        assert getattr(_native, name) == value, name
        assert _native.status_str(value)


def clean_env(**extra):
    """The environment of a user's process: no override, no LD_LIBRARY_PATH, and
    the source tree's package on the path only when testing the source tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ELASTICACHE_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    if not INSTALLED:
        env["PYTHONPATH"] = PKG_ROOT
    env.update(extra)
    return env


def run_python(code, tmp_path, **env):
    # cwd outside the checkout: `python -c` puts the cwd on sys.path.
    return subprocess.run([sys.executable, "-c", code], env=clean_env(**env), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def mapped_libraries():
    """The libelasticache files mapped into this process (from /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f
                if len(line.split(None, 5)) == 6 and "libelasticache" in line}


SHOW = ("import elasticache, os\n"
        "from elasticache import _native\n"
        "print(_native.mode, elasticache.library_path, os.path.dirname(elasticache.__file__))\n"
        "print(sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps')\n"
        "              if 'libelasticache' in l}))\n")


def test_missing_library_names_every_path_tried(tmp_path):
    missing = tmp_path / "nope" / "libelasticache.so"
    r = run_python("import elasticache", tmp_path, ELASTICACHE_LIBRARY=str(missing))
    assert r.returncode != 0
    assert "ImportError" in r.stderr and str(missing) in r.stderr and "ELASTICACHE_LIBRARY" in r.stderr


@pytest.mark.skipif(INSTALLED, reason="the source tree's loading (this run tests an installed wheel)")
def test_source_tree_loads_target_release(tmp_path):
    r = run_python(SHOW, tmp_path)
    assert r.returncode == 0, r.stderr
    lib = os.path.join(REPO, "target", "release", "libelasticache.so")
    mode, path, pkg = r.stdout.split("\n")[0].split()
    assert (mode, path, pkg) == ("abi", lib, os.path.join(PKG_ROOT, "elasticache"))
    assert r.stdout.split("\n")[1] == repr([lib])
    assert mapped_libraries() == {os.path.realpath(lib)}


@pytest.mark.skipif(not INSTALLED, reason="needs the installed wheel (scripts/test_wheel.sh)")
def test_installed_wheel_loads_its_own_library(tmp_path):
    site = os.path.realpath(os.path.join(sysconfig.get_paths()["platlib"], "elasticache"))
    bundled = os.path.join(site, "libelasticache.so")
    # This process (the whole suite ran on it) and a fresh one.
    assert mapped_libraries() == {bundled}
    assert os.path.realpath(_native.library_path) == bundled and _native.mode == "api"
    r = run_python(SHOW, tmp_path)
    assert r.returncode == 0, r.stderr
    mode, path, pkg = r.stdout.split("\n")[0].split()
    assert (mode, os.path.realpath(path), os.path.realpath(pkg)) == ("api", bundled, site)
    assert r.stdout.split("\n")[1] == repr([bundled])
    assert not os.path.realpath(pkg).startswith(os.path.realpath(REPO) + os.sep)


@pytest.mark.skipif(not INSTALLED, reason="needs the installed wheel (scripts/test_wheel.sh)")
def test_override_wins_over_the_bundled_library(tmp_path):
    """ELASTICACHE_LIBRARY switches an installed wheel to ABI mode on that file."""
    other = tmp_path / "lib" / "libelasticache.so"
    other.parent.mkdir()
    shutil.copy(_native.library_path, other)
    r = run_python(SHOW, tmp_path, ELASTICACHE_LIBRARY=str(other.parent))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0].split()[:2] == ["abi", str(other)]
    assert r.stdout.split("\n")[1] == repr([str(other)])


def test_both_modes_expose_every_declared_function(tmp_path):
    names = sorted(declarations(_native.CDEF))
    assert set(names) <= set(dir(_native.lib)), _native.mode
    if INSTALLED:  # the other mode, on the same library
        code = "from elasticache import _native; print(_native.mode, sorted(dir(_native.lib)))"
        r = run_python(code, tmp_path, ELASTICACHE_LIBRARY=_native.library_path)
        assert r.returncode == 0, r.stderr
        mode, listed = r.stdout.split(" ", 1)
        assert mode == "abi" and set(names) <= set(eval(listed))


def test_version():
    import elasticache

    assert re.fullmatch(r"\d+\.\d+\.\d+.*", elasticache.libelasticache_version)
    m = re.search(r'#define ELASTICACHE_VERSION "([^"]+)"', open(HEADER).read())
    assert m and m.group(1) == elasticache.libelasticache_version


@pytest.mark.parametrize("script", ["demo.py", "cffi_example.py", "ctypes_example.py"])
def test_examples_run(script, flushed, endpoint_factory, tmp_path):
    ep = endpoint_factory([(f"node{i}.example", "127.0.0.1", m.port) for i, m in enumerate(flushed[:3])])
    path = os.path.join(PKG_ROOT, script)
    if INSTALLED and script == "demo.py":
        # A script's own directory comes first on sys.path: run demo.py (which
        # imports elasticache) from elsewhere, so that it gets the installed package.
        path = shutil.copy(path, tmp_path)
    r = subprocess.run([sys.executable, path, ep.addr], capture_output=True, text=True, timeout=60,
                       env=clean_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for m in flushed[:3]:
        assert str(m.port) in r.stdout  # every discovered node is listed
    owners = re.findall(r"^\S+ +(?:on )?(127\.0\.0\.1:\d+) ", r.stdout, flags=re.M)
    assert len(owners) >= 6 and set(owners) <= {m.addr for m in flushed[:3]}
    assert re.search(r"get_multi: ([1-9]\d*)/\1 hits", r.stdout)


def test_every_ffi_type_string_is_parsed_at_import():
    """cffi parses a type string on first use and keeps references to small
    ints from it, which changes refcounts (pylibmc's own refcount tests):
    _common.py parses all of them at import, so its list must be complete."""
    import glob

    from elasticache import client

    pkg = os.path.dirname(client.__file__)
    used = set()
    for path in glob.glob(os.path.join(pkg, "*.py")):
        with open(path) as f:
            used |= set(re.findall(r'ffi\.(?:new|cast|typeof|sizeof)\("([^"]*)"', f.read()))
    assert used - set(client._FFI_TYPES) == set()
