# corio -- the whole build.
#
#   make          build/corio, build/libcorio.a, build/libcorio.so, build/corio.so
#   make run      install what is missing, build, run examples/tour.lua
#   make test     install what is missing, build, run every test
#   make asan     the test suite under AddressSanitizer + UBSan
#   make bench    benchmarks against Node.js, asyncio, uvloop and luv
#   make check-layout  runtime/ depends on nothing in bindings/
#   make fuzz     every libFuzzer target (FUZZ_TIME=60 seconds each)
#   make tsan     the executor specs under ThreadSanitizer
#   make soak     the soak suite (SOAK_SCALE=0.1: CI's short run)
#   make install  binary, libraries, header, pkg-config file, Lua types
#                 (PREFIX, DESTDIR, LIBDIR: see mk/install.mk)
#   make uninstall    removes what make install put there
#   make check-symbols  libcorio.so exports exactly corio.symbols
#   make deb      Debian packages in build/deb (mk/package.mk)
#   make check-package  every packaging check (CI): symbols, a staged
#                 install used through pkg-config, LuaLS types, the man
#                 page (man -l), the luarocks rock, the Debian packages
#                 installed and removed
#
# lua5.4 and libuv are found with pkg-config; nothing is vendored.

CC       ?= cc
PREFIX   ?= /usr/local
# The one place the version lives: the .so names, corio.pc, the rockspec,
# debian/changelog's check, corio.version and corio_version() read it.
VERSION  := $(shell cat VERSION)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
BUILD    ?= build
PKGS      = lua5.4 libuv openssl
WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef
OPT      ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Iruntime -I$(BUILD)/gen -DCORIO_VERSION='"$(VERSION)"'
# override: flags given on the command line (luarocks passes CFLAGS) come
# first and the ones corio needs are still added.
override CFLAGS += -std=c11 $(OPT) $(WARN) $(WERROR) -fPIC -fvisibility=hidden
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
UV_LIBS    = $(shell pkg-config --libs libuv 2>/dev/null)
# corio.tls uses OpenSSL 3 (Debian libssl-dev for the headers, libssl3 at
# run time) but does not link it: bindings/tls/ossl.c loads libssl.so.3
# with dlopen when corio.tls or the WebSocket code is first required, so a
# script that uses neither does not pay for loading it (about half of an
# empty script's start-up: docs/ARCHITECTURE.md).  The fuzz target that
# compiles wsconn.c alone links libcrypto instead (CORIO_OSSL_LINKED).
SSL_LIBS   = -ldl
# The binary links Lua statically and exports its whole API (-E, whole
# archive), so Lua C modules such as busted's dependencies load into the
# same VM.  Lua's objects come first on the link line: placed after ours,
# the interpreter loop landed at an alignment that ran pure Lua code 15%
# slower than the stock lua5.4 (primes by trial division: 2.09 s vs 1.77 s
# mean user time); first, it matches lua5.4 and no longer moves whenever
# corio's own code changes size.  (Linking liblua5.4.so instead cost W1 20%
# in PLT calls.)
LUA_STATIC = $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)/liblua5.4.a
LUA_FIRST  = -Wl,-E -Wl,--whole-archive $(LUA_STATIC) -Wl,--no-whole-archive
# lua-cjson (corio.json) is linked statically, so neither the binary nor
# the shared libraries need a cjson file at run time.  Debian's archive is
# PIE code whose one reference to glibc's `stderr` a shared object cannot
# take: $(BUILD)/cjson.a is a copy with that symbol renamed to a pointer of
# ours (bindings/json/json.c), and --exclude-libs keeps cjson's symbols out
# of the shared libraries' exports.  libcorio.a starts as that copy, so a
# static host needs no cjson of its own either.
CJSON_STATIC = $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)/liblua5.4-cjson.a
CJSON_LIB    = $(BUILD)/cjson.a
CJSON_SO     = $(CJSON_LIB) -Wl,--exclude-libs,cjson.a
# Protocol libraries: OpenSSL (TLS, and the WebSocket handshake's SHA-1
# and random keys; loaded at run time, see SSL_LIBS), WebSocket framing
# (libwslay ships no .pc file), HTTP/1 parsing (Debian's libhttp-parser ships none either: its pkg-config name
# is used when one appears), zlib for HTTP bodies.
HTTP_PARSER_LIBS = $(shell pkg-config --libs http-parser 2>/dev/null || echo -lhttp_parser)
PROTO_LIBS = $(SSL_LIBS) -lwslay $(HTTP_PARSER_LIBS) -lz
BIN_LIBS   = $(UV_LIBS) $(PROTO_LIBS) -lm -ldl -lpthread

# Debian packages the build, the tests and the tour need.
DEB_PKGS = gcc make pkg-config liblua5.4-dev libuv1-dev lua5.4 lua-busted \
           libssl-dev openssl libwslay-dev lua-cjson-dev libhttp-parser-dev zlib1g-dev \
           libedit-dev
# The peers the interop specs talk to (make test installs them too; a
# missing one fails its test loudly rather than skipping it).
TEST_PKGS = curl nginx-light gnutls-bin socat python3-websockets wrk

# main.c, edit.c (the REPL's line editor, on libedit) and bundle.c (the
# payload of `corio bundle`) belong to the binary only: libcorio and
# corio.so do not link libedit (edit.c opens it when the REPL starts).
BIN_SRC     = runtime/main.c runtime/edit.c runtime/bundle.c
BIN_OBJ     = $(patsubst %.c,$(BUILD)/obj/%.o,$(BIN_SRC))
RUNTIME_SRC = $(filter-out $(BIN_SRC),$(wildcard runtime/*.c))
# Every C file under bindings/ and its module folders; no file is listed
# by hand.
BINDING_SRC = $(wildcard bindings/*.c bindings/*/*.c)
SCRIPTS     = $(wildcard scripts/*.lua)
CMODULES    = $(shell grep -ho '^int luaopen_corio_[a-z0-9_]*' $(BINDING_SRC) /dev/null | sed 's/.*luaopen_corio_//' | sort -u)
LIB_OBJ     = $(patsubst %.c,$(BUILD)/obj/%.o,$(RUNTIME_SRC) $(BINDING_SRC)) \
              $(BUILD)/obj/gen/modules.o
HEADERS     = $(wildcard runtime/*.h bindings/*.h bindings/*/*.h)

# A failed step (the embed tool on a script with a syntax error) leaves no
# half-written file that a later make would take as up to date.
.DELETE_ON_ERROR:

.PHONY: check-diff all run test check check-layout check-embed check-embed-asan check-embed-tsan check-embed-nowait check-embed-headers warnings asan tsan soak bench bench-echo bench-http deps install clean examples fuzz

all: $(BUILD)/corio $(BUILD)/libcorio.a $(BUILD)/libcorio.so $(BUILD)/corio.so

$(BUILD)/obj/%.o: %.c $(HEADERS) VERSION
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

# Only bindings see bindings/shared.h: the core cannot include a binding's
# header (tools/check-layout.sh checks the link side too).
$(BUILD)/obj/bindings/%.o: CPPFLAGS += -Ibindings

$(BUILD)/obj/gen/modules.o: $(BUILD)/gen/modules.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/embed: tools/embed.c
	@mkdir -p $(BUILD)
	$(CC) -O1 -Wall -Wextra $(PKG_CFLAGS) -o $@ $< $(LUA_STATIC) -lm -ldl

$(BUILD)/gen/modules.c: $(BUILD)/embed $(SCRIPTS) $(BINDING_SRC)
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ --scripts $(SCRIPTS) --cmodules $(CMODULES)

$(BUILD)/libcorio.a: $(LIB_OBJ) $(CJSON_LIB)
	cp $(CJSON_LIB) $@
	ar rcs $@ $(LIB_OBJ)

$(CJSON_LIB): $(CJSON_STATIC)
	@mkdir -p $(BUILD)
	objcopy --redefine-sym stderr=corio__cjson_stderr $< $@

$(BUILD)/corio: $(BIN_OBJ) $(BUILD)/libcorio.a
	$(CC) $(LDFLAGS) -o $@ $(LUA_FIRST) $^ $(BIN_LIBS)

# For C hosts that link Lua dynamically: the real file carries the whole
# version, the soname only the major (the ABI), and libcorio.so is what
# -lcorio finds at link time.  It links the shared liblua5.4, so a host
# and corio share one Lua (check-symbols refuses a second copy inside).
$(BUILD)/libcorio.so.$(VERSION): $(LIB_OBJ) | $(CJSON_LIB)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libcorio.so.$(SOMAJOR) -o $@ $^ \
	  $(CJSON_SO) $(shell pkg-config --libs lua5.4 libuv 2>/dev/null) \
	  $(PROTO_LIBS) -lm

$(BUILD)/libcorio.so: $(BUILD)/libcorio.so.$(VERSION)
	ln -sf libcorio.so.$(VERSION) $(BUILD)/libcorio.so.$(SOMAJOR)
	ln -sf libcorio.so.$(VERSION) $@

# For stock lua5.4: Lua's symbols come from the interpreter.
$(BUILD)/corio.so: $(LIB_OBJ) | $(CJSON_LIB)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(CJSON_SO) $(UV_LIBS) $(PROTO_LIBS) -lm

deps:
	@sh tools/deps.sh $(DEB_PKGS) $(EXTRA_PKGS)

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/corio examples/tour.lua

test: deps
	@$(MAKE) --no-print-directory EXTRA_PKGS="$(TEST_PKGS)" deps
	@$(MAKE) --no-print-directory all check-layout
	$(BUILD)/corio test tests
	@$(MAKE) --no-print-directory examples

check: test

# runtime/ must not include or call anything in bindings/.
check-layout: $(LIB_OBJ)
	@sh tools/check-layout.sh $(BUILD)

# Warning-free under gcc and clang (-Werror), in their own build folders.
warnings:
	$(MAKE) --no-print-directory CC=gcc BUILD=build/gcc WERROR=-Werror all
	$(MAKE) --no-print-directory CC=clang BUILD=build/clang WERROR=-Werror all

# Every example runs with a time bound.
EMBED_HOSTS = run_script uv_host poll_host
examples: $(BUILD)/corio $(EMBED_HOSTS:%=$(BUILD)/embed_%)
	@sh tools/run-examples.sh $(BUILD)/corio
	@for h in $(EMBED_HOSTS); do echo "== examples/embed/$$h.c"; \
	  timeout 60 $(BUILD)/embed_$$h || exit 1; done

# The hosts of examples/embed/ (docs/EMBEDDING.md).
$(BUILD)/embed_%: examples/embed/%.c $(BUILD)/libcorio.a
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libcorio.a $(LUA_STATIC) $(BIN_LIBS)

asan: deps
	@$(MAKE) --no-print-directory EXTRA_PKGS="$(TEST_PKGS)" deps
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/corio build/asan/corio.so
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/asan/corio test tests

# The executor's specs (thread pools, worker states, cancellation across
# threads) under ThreadSanitizer: any data race fails the run.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan \
	  OPT="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=thread" build/tsan/corio
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
	  build/tsan/corio test tests/executor_spec.lua

# The soak suite (soak/run.lua): each item prints its figure and fails
# past its threshold.  SOAK_SCALE=0.1 is CI's short run.
SOAK_SCALE ?= 1
soak: all
	$(BUILD)/corio soak/run.lua $(SOAK_SCALE)

bench: deps
	@$(MAKE) --no-print-directory EXTRA_PKGS="nodejs python3-uvloop lua-luv" deps all
	/usr/bin/python3 bench/run.py --corio $(BUILD)/corio
	@$(MAKE) --no-print-directory bench-echo

# W4: TCP echo against the peers, driven by one C load client.
bench-echo: $(BUILD)/corio $(BUILD)/echo_client $(BUILD)/w4_echo_uv
	/usr/bin/python3 bench/echo.py --corio $(BUILD)/corio --build $(BUILD)

$(BUILD)/echo_client: bench/echo_client.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $< $(UV_LIBS)

# W11: HTTP hello against the peers, driven by wrk (the driver builds its
# raw C floor and Go peer itself).
bench-http: $(BUILD)/corio
	/usr/bin/python3 bench/http.py --corio $(BUILD)/corio --build $(BUILD)

$(BUILD)/w4_echo_uv: bench/peers/w4_echo_uv.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $< $(UV_LIBS)

# libFuzzer: every tests/fuzz_*.c target in turn, FUZZ_TIME seconds each
# (CI bounds it): the Stream readers against a model (fuzz_rbuf.c), the
# executor's message decoder (fuzz_marshal.c), WebSocket frame decoding
# (fuzz_ws.c), corio.http's guard and http-parser for heads and chunked
# bodies, and its inflater (fuzz_http.c).  A target's sources are
# FUZZ_SRC_<name>.  Inputs that once failed live in tests/fuzz-findings/<name>/
# and are replayed first, so a fixed finding stays fixed.
FUZZ_TIME ?= 60
FUZZ_TARGETS = $(patsubst tests/%.c,%,$(wildcard tests/fuzz_*.c))
FUZZ_CC = clang -g -O1 -fsanitize=fuzzer,address,undefined -Wall -Wextra
FUZZ_SRC_fuzz_rbuf = bindings/net/rbuf.c
FUZZ_SRC_fuzz_marshal = bindings/executor/marshal.c
FUZZ_FLAGS_fuzz_marshal = -D_GNU_SOURCE -DCORIO_VERSION='"$(VERSION)"' -Iruntime -Ibindings $(PKG_CFLAGS) \
  $(LUA_STATIC) -lm -ldl
FUZZ_SRC_fuzz_http = bindings/http/head.c bindings/http/inflate.c bindings/http/respond.c \
  bindings/http/armed.c
FUZZ_FLAGS_fuzz_http = $(PKG_CFLAGS) $(LUA_STATIC) $(HTTP_PARSER_LIBS) -lz -lm -ldl
FUZZ_SRC_fuzz_ws = bindings/http/wsconn.c
FUZZ_FLAGS_fuzz_ws = -Ibindings -DCORIO_OSSL_LINKED -lwslay $(shell pkg-config --libs libcrypto 2>/dev/null)
fuzz:
	@$(MAKE) --no-print-directory EXTRA_PKGS="clang libclang-rt-dev" deps
	@$(MAKE) --no-print-directory $(addprefix $(BUILD)/,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/corpus-$$t; \
	  if [ -d tests/fuzz-findings/$$t ]; then \
	    echo "fuzz: $$t replays tests/fuzz-findings/$$t"; \
	    $(BUILD)/$$t tests/fuzz-findings/$$t/* > $(BUILD)/replay-$$t.log 2>&1 \
	      || { cat $(BUILD)/replay-$$t.log; exit 1; }; \
	  fi; \
	  echo "fuzz: $$t for $(FUZZ_TIME) s"; \
	  $(BUILD)/$$t -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	    -print_final_stats=1 $(BUILD)/corpus-$$t; \
	done

# (secondary expansion: a target is rebuilt when its FUZZ_SRC changes too)
.SECONDEXPANSION:
$(BUILD)/fuzz_%: tests/fuzz_%.c $$(FUZZ_SRC_fuzz_$$*) $(HEADERS) $(wildcard bindings/*/*.h)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) -I$(dir $(firstword $(FUZZ_SRC_fuzz_$*))) $< \
	  $(FUZZ_SRC_fuzz_$*) $(FUZZ_FLAGS_fuzz_$*) -o $@

clean:
	rm -rf build

# Installing and packaging (after every target above, so `all` stays the
# default goal).
include mk/install.mk mk/package.mk
# {===== The embedding API (tests/embed/, examples/embed/, docs/EMBEDDING.md)
EMBED_TEST_SRC = $(wildcard tests/embed/*.c)

$(BUILD)/embed_test: $(EMBED_TEST_SRC) tests/embed/t.h $(BUILD)/libcorio.a
	$(CC) $(CPPFLAGS) -Itests/embed $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
	  $(EMBED_TEST_SRC) $(BUILD)/libcorio.a $(LUA_STATIC) $(BIN_LIBS)
# }=====

# The C tests under valgrind (counts scaled down 50x: valgrind is slow),
# ASan+UBSan and TSan (full counts), in their own build folders.
VALGRIND = valgrind -q --leak-check=full \
  --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1
# The RSS bounds are checked in the native run at full counts: under
# valgrind the process's RSS is valgrind's own heap (it grew 2.7 MiB over
# 200 cycles that natively grow 92 KiB over 10,000), and its leak check
# stands in for them there.
check-embed: $(BUILD)/embed_test
	$(BUILD)/embed_test
	CORIO_EMBED_SCALE=50 CORIO_EMBED_NO_RSS=1 CORIO_OOM_JOBS=1 $(VALGRIND) $(BUILD)/embed_test

SAN = -O1 -g -fno-omit-frame-pointer
check-embed-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  OPT="$(SAN) -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/embed_test
	CORIO_EMBED_NO_RSS=1 ASAN_OPTIONS=detect_leaks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 build/asan/embed_test

check-embed-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT="$(SAN) -fsanitize=thread" \
	  LDFLAGS="-fsanitize=thread" build/tsan/embed_test
	CORIO_EMBED_SCALE=20 CORIO_EMBED_NO_RSS=1 CORIO_EMBED_NO_SPIN=1 \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  build/tsan/embed_test

# The whole Lua spec suite, driven through corio_loop_run(NOWAIT) by a
# poll() host, with the collector never pausing (one CI step for both).
check-embed-nowait: $(BUILD)/corio $(BUILD)/corio-nowait
	$(BUILD)/corio-nowait test --gc-pause=0 tests

# corio.h is C99 -pedantic and C++ clean, and a C++ host links.
check-embed-headers: $(BUILD)/libcorio.a
	$(CC) -std=c99 -pedantic -Werror -Wall -Wextra -D_POSIX_C_SOURCE=200809L \
	  $(PKG_CFLAGS) -Iruntime -fsyntax-only -x c runtime/corio.h
	g++ -std=c++11 -Wall -Wextra -Werror $(PKG_CFLAGS) -Iruntime \
	  -o $(BUILD)/embed_cxx_host tests/embed/hosts/cxx_host.cc \
	  $(BUILD)/libcorio.a $(LUA_STATIC) $(BIN_LIBS)
	$(BUILD)/embed_cxx_host

$(BUILD)/corio-nowait: tests/embed/hosts/nowait_host.c $(BUILD)/libcorio.a
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libcorio.a $(LUA_FIRST) $(BIN_LIBS)

# Differential test against Debian's Python 3.11 asyncio (tests/diff/):
# any divergence fails.  Seeds 0 .. DIFF_FIXED-1 every run, then
# DIFF_COUNT scenarios from DIFF_SEED (default: from the clock, printed,
# so that each run explores new seeds; a failure prints how to replay
# it).  0 skips either part.  DIFF_ARGS adds options (--report-only to
# list divergences without failing).
DIFF_FIXED ?= 3000
DIFF_COUNT ?= 2000
DIFF_SEED ?=
DIFF_ARGS ?=
DIFF_RUN = /usr/bin/python3 tests/diff/diff.py --corio $(BUILD)/corio \
	  --vclock $(BUILD)/vclock.so $(DIFF_ARGS)
check-diff: $(BUILD)/corio $(BUILD)/vclock.so
	$(if $(filter-out 0,$(DIFF_FIXED)),$(DIFF_RUN) --seed 0 --count $(DIFF_FIXED))
	$(if $(filter-out 0,$(DIFF_COUNT)),$(DIFF_RUN) --count $(DIFF_COUNT) \
	  $(if $(DIFF_SEED),--seed $(DIFF_SEED)))

$(BUILD)/vclock.so: tests/diff/vclock.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra $(WERROR) -shared -fPIC -o $@ $< -ldl
