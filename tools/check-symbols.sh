#!/bin/sh
# check-symbols.sh LIB SYMBOLS [--write] -- the C API libcorio.so exports
# must be exactly the list in SYMBOLS (corio.symbols), so a function added,
# renamed or dropped is a decision someone made, not an accident of
# visibility.  --write regenerates the list (make symbols).
#
# It also refuses a second copy of Lua inside the library: libcorio.so must
# take lua_* from the shared liblua5.4 the host uses (two Lua copies in one
# process break as soon as both touch one state).  And it checks that
# lua-cjson is linked in (from Debian's archive, see the Makefile) and kept
# out of the exports: no liblua5.4-cjson needed at run time, no cjson
# symbol a host's own cjson could collide with.
set -eu
lib=$1 list=$2

exported() {
  nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
    grep -E '^(corio_|luaopen_)' | LC_ALL=C sort
}

if [ "${3:-}" = --write ]; then
  { echo "# The C API libcorio.so exports (make symbols regenerates it;"
    echo "# make check-symbols fails when the library drifts from it)."
    exported; } > "$list"
  echo "wrote $list"; exit 0
fi

fail=0
if nm -D --defined-only "$lib" | awk '{ print $3 }' | grep -qE '^luaL?_'; then
  echo "check-symbols: $lib defines Lua's own API (a static Lua inside)" >&2
  fail=1
fi
if ! readelf -d "$lib" | grep -q 'NEEDED.*liblua5\.4\.so'; then
  echo "check-symbols: $lib does not link the shared liblua5.4" >&2
  fail=1
fi
if readelf -d "$lib" | grep -q 'NEEDED.*cjson'; then
  echo "check-symbols: $lib needs a shared lua-cjson (link build/cjson.a)" >&2
  fail=1
fi
if nm -D --defined-only "$lib" | awk '{ print $3 }' |
   grep -qE '^(luaopen_cjson|strbuf_|fpconv_)'; then
  echo "check-symbols: $lib exports lua-cjson's symbols" >&2
  fail=1
fi
if readelf -d "$lib" | grep -q TEXTREL; then
  echo "check-symbols: $lib has text relocations" >&2
  fail=1
fi
now=$(mktemp)
trap 'rm -f "$now"' EXIT
exported > "$now"
if ! grep -v '^#' "$list" | diff -u --label "$list" --label "$lib" - "$now" >&2
then
  echo "check-symbols: the exported API changed; if that is meant, run" \
       "'make symbols' and commit corio.symbols" >&2
  fail=1
fi
exit $fail
