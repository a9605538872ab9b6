#!/bin/sh
# check-deb.sh DIR -- installs the .debs of `make deb` (dpkg -i; needs
# root), uses each as its user would, then removes them:
#   corio        corio -e, corio(1), and the type definitions in
#                /usr/share/corio
#   libcorio-dev a host built with pkg-config and run with no
#                LD_LIBRARY_PATH (dpkg's ldconfig trigger made it findable)
#   lua-corio    stock lua5.4 requires "corio" from the system path
set -eu
cd "$(dirname "$0")/.."
dir=$1
version=$(cat VERSION)
pkgs="corio libcorio0 libcorio-dev lua-corio"
fail() { echo "check-deb: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
for p in $pkgs; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    fail "$p is already installed; remove it first (this check removes what it installs)"
  fi
done

tmp=$(mktemp -d)
cleanup() { dpkg -P $pkgs >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
dpkg -i "$dir"/corio_"$version"_*.deb "$dir"/libcorio0_"$version"_*.deb \
  "$dir"/libcorio-dev_"$version"_*.deb "$dir"/lua-corio_"$version"_*.deb \
  >/dev/null

out=$(/usr/bin/corio -e 'print(require("corio").version)')
[ "$out" = "$version" ] || fail "corio -e printed: $out"
[ -f /usr/share/corio/types/corio.lua ] || fail "no types in /usr/share/corio"
# (the package's contents: a minimal image's dpkg may skip /usr/share/man)
dpkg-deb -c "$dir"/corio_"$version"_*.deb | grep -q ' \./usr/share/man/man1/corio\.1' ||
  fail "the corio package does not ship corio(1)"

# shellcheck disable=SC2046
cc -o "$tmp/host" tests/install/host.c $(pkg-config --cflags --libs corio)
out=$(env -u LD_LIBRARY_PATH "$tmp/host")
[ "$out" = "host: task gave 42, corio $version" ] || fail "host printed: $out"

out=$(env -u LUA_CPATH -u LUA_CPATH_5_4 lua5.4 -e '
  local corio = require "corio"
  print(corio.run(function() corio.sleep(0.01) return "lua-corio ok" end))')
[ "$out" = "lua-corio ok" ] || fail "lua5.4 printed: $out"

# Each package names its licence (dh installs debian/copyright).
for p in $pkgs; do
  grep -q '^License: Expat$' "/usr/share/doc/$p/copyright" ||
    fail "/usr/share/doc/$p/copyright does not name the Expat (MIT) licence"
done

dpkg -P $pkgs >/dev/null
for p in $pkgs; do
  ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
    fail "$p is still installed after dpkg -P"
done
[ ! -e /usr/bin/corio ] || fail "/usr/bin/corio left after removal"
echo "check-deb: $pkgs installed, used (binary, pkg-config host, lua5.4) and removed"
