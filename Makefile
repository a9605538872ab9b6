# corio -- the whole build.
#
#   make          build/corio, build/libcorio.a, build/corio.so
#   make run      install what is missing, build, run examples/tour.lua
#   make test     install what is missing, build, run every test
#   make asan     the test suite under AddressSanitizer + UBSan
#   make bench    benchmarks against Node.js, asyncio, uvloop and luv
#   make check-layout  runtime/ depends on nothing in bindings/
#   make fuzz     libFuzzer on the Stream readers (FUZZ_TIME=60 seconds)
#   make install  binary, libraries, header and pkg-config file
#
# lua5.4 and libuv are found with pkg-config; nothing is vendored.

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
PKGS      = lua5.4 libuv
WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wcast-qual -Wformat=2 -Wundef
OPT      ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Iruntime -I$(BUILD)/gen
CFLAGS   += -std=c11 $(OPT) $(WARN) $(WERROR) -fPIC -fvisibility=hidden
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
UV_LIBS    = $(shell pkg-config --libs libuv 2>/dev/null)
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
BIN_LIBS   = $(UV_LIBS) -lm -ldl -lpthread

# Debian packages the build, the tests and the tour need.
DEB_PKGS = gcc make pkg-config liblua5.4-dev libuv1-dev lua5.4 lua-busted \
           libedit-dev

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

.PHONY: all run test check check-layout check-embed warnings asan bench bench-echo deps install clean examples fuzz

all: $(BUILD)/corio $(BUILD)/libcorio.a $(BUILD)/libcorio.so $(BUILD)/corio.so

$(BUILD)/obj/%.o: %.c $(HEADERS)
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

$(BUILD)/libcorio.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/corio: $(BIN_OBJ) $(BUILD)/libcorio.a
	$(CC) $(LDFLAGS) -o $@ $(LUA_FIRST) $^ $(BIN_LIBS)

# For C hosts that link Lua dynamically.
$(BUILD)/libcorio.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libcorio.so.0 -o $@ $^ \
	  $(shell pkg-config --libs lua5.4 libuv 2>/dev/null) -lm

# For stock lua5.4: Lua's symbols come from the interpreter.
$(BUILD)/corio.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(UV_LIBS) -lm

deps:
	@sh tools/deps.sh $(DEB_PKGS) $(EXTRA_PKGS)

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/corio examples/tour.lua

test: deps
	@$(MAKE) --no-print-directory all check-layout
	$(BUILD)/corio test tests
	@$(MAKE) --no-print-directory examples

check: test

# runtime/ must not include or call anything in bindings/.
check-layout: $(LIB_OBJ)
	@sh tools/check-layout.sh $(BUILD)

# The embedding API from a C host, under valgrind: no error, no leak.
$(BUILD)/embed_test: tests/embed/embed_test.c $(BUILD)/libcorio.a
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libcorio.a $(LUA_STATIC) $(BIN_LIBS)

check-embed: $(BUILD)/embed_test
	valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
	  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \
	  $(BUILD)/embed_test

# Warning-free under gcc and clang (-Werror), in their own build folders.
warnings:
	$(MAKE) --no-print-directory CC=gcc BUILD=build/gcc WERROR=-Werror all
	$(MAKE) --no-print-directory CC=clang BUILD=build/clang WERROR=-Werror all

# Every example runs with a time bound.
examples: $(BUILD)/corio $(BUILD)/embed_host
	@sh tools/run-examples.sh $(BUILD)/corio
	$(BUILD)/embed_host

$(BUILD)/embed_host: examples/embed_host.c $(BUILD)/libcorio.a
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libcorio.a $(LUA_STATIC) $(BIN_LIBS)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/corio build/asan/corio.so
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  build/asan/corio test tests

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

$(BUILD)/w4_echo_uv: bench/peers/w4_echo_uv.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $< $(UV_LIBS)

# libFuzzer: a Stream's readers under random chunking and limits, checked
# against a model (tests/fuzz_rbuf.c).  FUZZ_TIME bounds the run (CI).
FUZZ_TIME ?= 60
fuzz:
	@$(MAKE) --no-print-directory EXTRA_PKGS="clang libclang-rt-dev" deps
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_rbuf
	@mkdir -p $(BUILD)/fuzz-corpus
	$(BUILD)/fuzz_rbuf -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	  -print_final_stats=1 $(BUILD)/fuzz-corpus

$(BUILD)/fuzz_rbuf: tests/fuzz_rbuf.c bindings/net/rbuf.c bindings/net/rbuf.h
	@mkdir -p $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Wall -Wextra \
	  -Ibindings/net tests/fuzz_rbuf.c bindings/net/rbuf.c -o $@

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4
	install -m 755 $(BUILD)/corio $(DESTDIR)$(PREFIX)/bin/corio
	install -m 644 $(BUILD)/libcorio.a $(DESTDIR)$(PREFIX)/lib/libcorio.a
	install -m 755 $(BUILD)/libcorio.so $(DESTDIR)$(PREFIX)/lib/libcorio.so
	install -m 755 $(BUILD)/corio.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/corio.so
	install -m 644 runtime/corio.h $(DESTDIR)$(PREFIX)/include/corio.h
	sed -e 's|@PREFIX@|$(PREFIX)|' tools/corio.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/corio.pc

clean:
	rm -rf build
