"""Records where this source tree's library is built, so that an installed
copy finds `<repo>/target/release/libelasticache.so` without
ELASTICACHE_LIBRARY (the package needs no compiler: it loads the library
with cffi's ABI mode at import time)."""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_LIBRARY = os.path.normpath(os.path.join(HERE, "..", "..", "target", "release", "libelasticache.so"))


class BuildPy(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "elasticache", "_build_paths.py")
        with open(target, "w") as f:
            f.write("# Written by setup.py at install time.\n")
            f.write(f"REPO_LIBRARY = {REPO_LIBRARY!r}\n")


setup(cmdclass={"build_py": BuildPy})
