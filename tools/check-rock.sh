#!/bin/sh
# check-rock.sh ROCKSPEC -- the rockspec is current (made from VERSION),
# Debian's luarocks installs it into a fresh tree without the network, and
# stock lua5.4 with that tree's paths requires corio and runs a task.
set -eu
cd "$(dirname "$0")/.."
spec=$1
fail() { echo "check-rock: $*" >&2; exit 1; }
[ -f "$spec" ] || fail "$spec is missing: run 'make rockspec' and commit it"
sed "s/@VERSION@/$(cat VERSION)/g" tools/corio.rockspec.in | cmp -s - "$spec" ||
  fail "$spec is stale: run 'make rockspec' and commit it"

grep -q '^  license = "MIT",$' "$spec" || fail "$spec names no MIT licence"
# luarocks must look for every library corio.so links: each NEEDED entry
# but the C library's own is an external dependency of the rockspec.
[ -f build/corio.so ] || fail "build/corio.so is missing: run make first"
for lib in $(readelf -d build/corio.so | sed -n 's/.*NEEDED.*\[lib\([^]]*\)\.so.*\]/\1/p'); do
  case $lib in c|m|dl|rt|pthread|ld-linux*) continue ;; esac
  grep -q "library = \"$lib\"" "$spec" ||
    fail "corio.so links lib$lib, which $spec does not list in external_dependencies"
done

# lua-cjson is linked into corio.so (the Makefile's build/cjson.a).
! readelf -d build/corio.so | grep -q 'NEEDED.*cjson' ||
  fail "corio.so needs a shared lua-cjson"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
luarocks --lua-version=5.4 --tree="$tmp/tree" make "$spec" >"$tmp/log" 2>&1 ||
  { cat "$tmp/log" >&2; fail "luarocks make failed"; }
eval "$(luarocks --lua-version=5.4 --tree="$tmp/tree" path)"
out=$(lua5.4 -e '
  local corio = require "corio"
  print(corio.run(function()
    local t = corio.spawn(function() corio.sleep(0.01) return "rock ok" end)
    return t:await()
  end))')
[ "$out" = "rock ok" ] || fail "lua5.4 printed: $out"
out=$("$tmp/tree/bin/corio" -e 'print(require("corio").version)')
[ "$out" = "$(cat VERSION)" ] || fail "the rock's corio printed: $out"
echo "check-rock: luarocks installed $spec into a tree; lua5.4 ran a task"
