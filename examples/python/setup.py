"""Builds the elasticache wheel: `cargo build --release` makes
libelasticache.so, a stripped copy goes inside the package, and cffi compiles
`elasticache._elasticache_cffi` (API mode, _cffi_build.py) against
include/elasticache.h, linked to that copy.

The Rust sources come from the repository around this directory, or, in an
sdist, from the `_rust/` copy that `sdist` puts in it. An editable install
(`pip install -e`) builds the library but no extension: the package then runs
in cffi's ABI mode on the repository's target/release, as the tests do.
"""

import json
import os
import shutil
import subprocess
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE_DIR = os.path.join(HERE, "build", "native")  # _cffi_build.py compiles against this
SDIST_RUST = "_rust"
# What cargo needs to build the library (Cargo.toml names the example too).
RUST_FILES = ["Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "src", "include",
              "bench/tls_bench.rs"]
LIBRARY = "libelasticache.so"


def crate_root():
    for root in (os.path.join(HERE, SDIST_RUST), os.path.normpath(os.path.join(HERE, "..", ".."))):
        if os.path.exists(os.path.join(root, "Cargo.toml")):
            return root
    raise SystemExit(f"elasticache: no Rust sources (Cargo.toml) in {HERE}/{SDIST_RUST} or {HERE}/../..")


def cargo_build(root):
    """Runs `cargo build --release`; returns the path of libelasticache.so."""
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        raise SystemExit("elasticache: building from source needs Rust's cargo (https://rustup.rs)")
    # The same command as `make`, so a checkout's target/release is shared, not rebuilt.
    out = subprocess.run([cargo, "build", "--release", "--message-format=json-render-diagnostics"],
                         cwd=root, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and "cdylib" in msg["target"]["kind"]:
            for name in msg["filenames"]:
                if os.path.basename(name) == LIBRARY:
                    return name
    raise SystemExit(f"elasticache: cargo built no {LIBRARY}")


class BuildExt(build_ext):
    def run(self):
        root = crate_root()
        built = cargo_build(root)
        if self.inplace or getattr(self, "editable_mode", False):
            # ABI mode on target/release: no second copy of the library to go stale.
            self.extensions = []
            super().run()
            return
        os.makedirs(NATIVE_DIR, exist_ok=True)
        shutil.copy2(os.path.join(root, "include", "elasticache.h"), NATIVE_DIR)
        staged = os.path.join(NATIVE_DIR, LIBRARY)
        shutil.copyfile(built, staged)
        strip = shutil.which("strip")
        if not strip:
            raise SystemExit("elasticache: `strip` (binutils) is needed to ship the library without "
                             "its debug information")
        subprocess.run([strip, "--strip-unneeded", staged], check=True)
        package_dir = os.path.join(self.build_lib, "elasticache")
        os.makedirs(package_dir, exist_ok=True)
        shutil.copy2(staged, package_dir)
        super().run()

    def build_extensions(self):
        # Python's own link flags may carry an rpath of the machine that built
        # Python (pyenv does); the module's only rpath is $ORIGIN.
        self.compiler.linker_so = [a for a in self.compiler.linker_so
                                   if not a.startswith(("-Wl,-rpath", "-Wl,-R"))]
        super().build_extensions()


class Sdist(sdist):
    """Carries the Rust sources along, so that the sdist builds the same wheel."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = crate_root()
        if root == os.path.join(HERE, SDIST_RUST):
            return  # an sdist of an sdist: MANIFEST.in's graft already took _rust/
        for name in RUST_FILES:
            src, dst = os.path.join(root, name), os.path.join(base_dir, SDIST_RUST, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)


options = {}
if not sysconfig.get_config_var("Py_GIL_DISABLED"):
    # cffi compiles against the stable ABI (Py_LIMITED_API): one wheel for CPython 3.8 and later.
    options["bdist_wheel"] = {"py_limited_api": "cp38"}

setup(
    cmdclass={"build_ext": BuildExt, "sdist": Sdist},
    cffi_modules=["_cffi_build.py:ffibuilder"],
    options=options,
)
