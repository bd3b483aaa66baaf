# The C user's entry point.
#   make            library (.so/.a), examples/c/ecctl and examples/cpp/ecservice
#   make test       everything, on a fresh Debian machine (installs what is missing)
#   make demo       a local emulated cluster and ecctl against it
#   make install    PREFIX=/usr/local: library, headers, pkg-config file, CMake package
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
CXXFLAGS ?= -O2 -g
CXXWARN := -std=c++17 -Wall -Wextra -Wpedantic -Werror
# What the static library needs besides itself: rustc's list for this target
# (`cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`,
# without -lc). Goes into elasticache.pc (Libs.private) and the CMake package.
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl

.PHONY: all lib cpp test demo install clean deps header bench bench-ring fuzz wheel sdist

all: lib examples/c/ecctl cpp

lib:
	$(CARGO) build --release

$(LIBDIR)/libelasticache.so $(LIBDIR)/libelasticache.a: lib

examples/c/ecctl: $(ECCTL_SRC) examples/c/ecctl.h include/elasticache.h lib
	$(CC) $(CFLAGS) $(WARN) -I include -o $@ $(ECCTL_SRC) -L $(LIBDIR) -lelasticache -Wl,-rpath,'$$ORIGIN/../../$(LIBDIR)'

cpp: examples/cpp/ecservice

examples/cpp/ecservice: examples/cpp/ecservice.cpp include/elasticache.hpp include/elasticache_base.hpp include/elasticache.h lib
	$(CXX) $(CXXFLAGS) $(CXXWARN) -pthread -I include -o $@ examples/cpp/ecservice.cpp -L $(LIBDIR) -lelasticache -Wl,-rpath,'$$ORIGIN/../../$(LIBDIR)'

# Installs memcached, libmemcached and the Python packages the tests use, when missing.
deps:
	bash scripts/deps.sh

test: deps
	bash scripts/test.sh

demo: deps all
	bash scripts/demo.sh

# The build writes the header to its OUT_DIR only; this copies it into include/.
header:
	$(CARGO) test --release --test header -- --ignored refresh_committed_header

# Benchmarks against libmemcached, pylibmc, pymemcache and the raw wire (writes
# bench/results/latest.md and docs/bench.png; installs what it needs).
bench: deps all
	bash scripts/bench.sh

# Ring lookup and build against libmemcached's (part of `make bench`).
bench-ring: deps lib
	bash bench/ring.sh

# Coverage-guided fuzzing of the discovery and memcached reply parsers and the
# multi-get reply matcher (cargo fuzz + libFuzzer), FUZZ_SECONDS per target,
# then the corpus is minimized.
# Crashes land in fuzz/artifacts/<target>/: commit them with the fix, `cargo
# test` (tests/fuzz_corpus.rs) replays corpus and crashes. Uses the nightly
# toolchain when rustup has one, else stable with RUSTC_BOOTSTRAP=1.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= discovery_reply memcached_reply multiget_match
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then tc=+nightly; else tc=; export RUSTC_BOOTSTRAP=1; fi; \
	for t in $(FUZZ_TARGETS); do \
	  $(CARGO) $$tc fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=8192 || exit 1; \
	  $(CARGO) $$tc fuzz cmin -O $$t -- -use_counters=0 || exit 1; \
	done

CMAKEDIR := $(DESTDIR)$(PREFIX)/lib/cmake/elasticache
# The Python package: dist/elasticache-*-cp38-abi3-manylinux_*.whl with the stripped
# library and the compiled cffi module inside; sdist: dist/elasticache-*.tar.gz
# (with the Rust sources), checked by building a wheel from it.
wheel:
	bash examples/python/build_wheel.sh

sdist:
	bash examples/python/build_wheel.sh --sdist

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(CMAKEDIR)
	install -m 0755 $(LIBDIR)/libelasticache.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 $(LIBDIR)/libelasticache.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/elasticache.h include/elasticache.hpp include/elasticache_base.hpp $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@STATIC_LIBS@|$(STATIC_LIBS)|' \
		elasticache.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/elasticache.pc
	sed -e 's|@STATIC_LIBS@|$(patsubst -l%,%,$(STATIC_LIBS))|' cmake/elasticacheConfig.cmake.in > $(CMAKEDIR)/elasticacheConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|' cmake/elasticacheConfigVersion.cmake.in > $(CMAKEDIR)/elasticacheConfigVersion.cmake

clean:
	$(CARGO) clean
	rm -f examples/c/ecctl examples/cpp/ecservice
	rm -rf build dist examples/python/build
