#!/usr/bin/env bash
# The Python package as users get it: builds the wheel (make wheel), installs it
# into fresh virtual environments outside the checkout, and runs
# examples/python/tests against the installed package (ELASTICACHE_LIBRARY,
# LD_LIBRARY_PATH and PYTHONPATH unset; the checkout's examples/python is not
# on sys.path), on the oldest and newest pyenv CPython that requires-python
# admits, with Django 4.2 LTS, 5.2 LTS and the newest 6.x each of them supports.
# The full suite runs on the oldest and the newest combination, the Django tests
# and test_native.py (loading, the examples) on the others.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
start=$SECONDS

missing() {
    if [ "${CI:-}" = true ]; then
        echo "test_wheel: FAILED: $* (CI=true: the installed-wheel tests cannot be skipped)" >&2
        exit 1
    fi
    echo "test_wheel: !!! SKIPPED: $* -- the installed wheel was NOT tested !!!" >&2
    exit 0
}

make -s wheel
wheels=(dist/elasticache-*-manylinux*.whl)
[ "${#wheels[@]}" = 1 ] || { echo "test_wheel: expected one wheel in dist/, found ${wheels[*]}" >&2; exit 1; }
wheel=$ROOT/${wheels[0]}

# Interpreters: pyenv's CPython 3.x builds no older than requires-python.
min=$(sed -n 's/^requires-python = ">=3\.\([0-9]*\)"$/\1/p' examples/python/pyproject.toml)
[ -n "$min" ] || { echo "test_wheel: cannot read requires-python" >&2; exit 1; }
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
[ -d "$PYENV_ROOT/versions" ] || missing "pyenv not found (no $PYENV_ROOT/versions)"
pythons=()
while read -r v; do
    minor=${v#3.}
    minor=${minor%%.*}
    ((minor >= min)) && [ -x "$PYENV_ROOT/versions/$v/bin/python3" ] && pythons+=("$v")
done < <(ls "$PYENV_ROOT/versions" | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -V)
((${#pythons[@]} >= 2)) || missing "pyenv has fewer than two CPython >= 3.$min (found: ${pythons[*]:-none})"
oldest=${pythons[0]}
newest=${pythons[-1]}

# The oldest CPython each Django series supports (Django's release notes).
django_min_minor() {
    case $1 in 4.2) echo 8 ;; 5.2) echo 10 ;; 6) echo 12 ;; esac
}
django_spec() {
    case $1 in 4.2) echo "Django>=4.2,<4.3" ;; 5.2) echo "Django>=5.2,<5.3" ;; 6) echo "Django>=6,<7" ;; esac
}

# make wheel's tool environment: its pip (>= 22.3 for --python, and old enough to
# run on the oldest target; python3's bundled pip 23.2 here) installs into venvs
# made without pip.
PIP=$ROOT/build/wheel-tools/bin/pip
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TESTS=$ROOT/examples/python/tests
ran=0
for py in "$oldest" "$newest"; do
    minor=${py#3.}
    minor=${minor%%.*}
    series=()
    for d in 4.2 5.2 6; do
        ((minor >= $(django_min_minor "$d"))) && series+=("$d")
    done
    for d in "${series[@]}"; do
        t0=$SECONDS
        venv=$tmp/py$py-django$d
        # No pip inside (ensurepip costs ~5-20 s here): the wheel tools' pip
        # installs into it. --no-compile: Django's 2,800 files compiled on a
        # loaded 2-core machine cost more than the tests; imports compile lazily.
        "$PYENV_ROOT/versions/$py/bin/python3" -m venv --without-pip "$venv"
        "$PIP" --python "$venv/bin/python" install -q --no-compile --disable-pip-version-check \
            "$wheel" pytest pylibmc pymemcache "$(django_spec "$d")"
        if [ "$py/$d" = "$oldest/${series[0]}" ] || [ "$py/$d" = "$newest/${series[-1]}" ]; then
            what=(full suite)
            tests=("$TESTS")
        else
            what=(Django tests and test_native.py)
            tests=("$TESTS/test_django.py" "$TESTS/test_native.py")
        fi
        django=$("$venv/bin/python" -c "import django; print(django.get_version())")
        echo "--- CPython $py, Django $django: ${what[*]}"
        # From an empty directory: `python -m` puts the cwd on sys.path.
        mkdir -p "$venv/run"
        (cd "$venv/run" && env -u ELASTICACHE_LIBRARY -u LD_LIBRARY_PATH -u PYTHONPATH \
            ELASTICACHE_TEST_INSTALLED=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}")
        echo "    ($((SECONDS - t0)) s)"
        ran=$((ran + 1))
        rm -rf "$venv"
    done
done
echo "test_wheel: $ran combinations passed in $((SECONDS - start)) s"
