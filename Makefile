# The C user's entry point.
#   make            library (.so/.a) and examples/c/ecctl
#   make test       everything, on a fresh Debian machine (installs what is missing)
#   make demo       a local emulated cluster and ecctl against it
#   make install    PREFIX=/usr/local: library, header, pkg-config file
#   make bench      benchmarks against libmemcached, pylibmc, pymemcache and the raw wire
#   make wheel      the Python package as a manylinux wheel in dist/ (make sdist: its source)

PREFIX ?= /usr/local
CARGO ?= cargo
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c11 -Wall -Wextra -Wpedantic -Werror
LIBDIR := target/release
ECCTL_SRC := $(wildcard examples/c/ecctl*.c)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

.PHONY: all lib test demo install clean deps header bench bench-ring wheel sdist

all: lib examples/c/ecctl

lib:
	$(CARGO) build --release

$(LIBDIR)/libelasticache.so $(LIBDIR)/libelasticache.a: lib

examples/c/ecctl: $(ECCTL_SRC) examples/c/ecctl.h include/elasticache.h lib
	$(CC) $(CFLAGS) $(WARN) -I include -o $@ $(ECCTL_SRC) -L $(LIBDIR) -lelasticache -Wl,-rpath,'$$ORIGIN/../../$(LIBDIR)'

# Installs memcached, libmemcached and the Python packages the tests use, when missing.
deps:
	bash scripts/deps.sh

test: deps
	bash scripts/test.sh

demo: deps all
	bash scripts/demo.sh

header:
	$(CARGO) build

# Benchmarks against libmemcached, pylibmc, pymemcache and the raw wire (writes
# bench/results/latest.md and docs/bench.png; installs what it needs).
bench: deps all
	bash scripts/bench.sh

# Ring lookup and build against libmemcached's (part of `make bench`).
bench-ring: deps lib
	bash bench/ring.sh

# The Python package: dist/elasticache-*-cp38-abi3-manylinux_*.whl with the stripped
# library and the compiled cffi module inside; sdist: dist/elasticache-*.tar.gz
# (with the Rust sources), checked by building a wheel from it.
wheel:
	bash examples/python/build_wheel.sh

sdist:
	bash examples/python/build_wheel.sh --sdist

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIBDIR)/libelasticache.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(LIBDIR)/libelasticache.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/elasticache.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' elasticache.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/elasticache.pc

clean:
	$(CARGO) clean
	rm -f examples/c/ecctl
	rm -rf build dist examples/python/build
