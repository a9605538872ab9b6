#!/bin/sh
# check-install.sh -- installs corio as a new user would and uses it.
#
#   make install DESTDIR=$tmp PREFIX=/usr/local
#
# then, exactly as docs/INSTALL.md says: builds a C host with
# `cc host.c $(pkg-config --cflags --libs corio)` (PKG_CONFIG_PATH pointing
# at the staged tree) and runs it (LD_LIBRARY_PATH, since ld.so's cache
# knows nothing of a staged tree); runs the installed binary; loads
# corio.so into stock lua5.4; checks the file names and links; uninstalls
# and checks that nothing is left.  Also checks the PREFIX=/usr layout
# (the multiarch libdir).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$(cat VERSION)
major=${version%%.*}
make=${MAKE:-make}
fail() { echo "check-install: $*" >&2; exit 1; }

$make --no-print-directory -s install DESTDIR="$tmp/root" PREFIX=/usr/local \
  >/dev/null
root=$tmp/root/usr/local
lib=$root/lib

# The files and links a host and ld.so look for.
for f in bin/corio include/corio.h lib/libcorio.a lib/libcorio.so.$version \
         lib/pkgconfig/corio.pc lib/lua/5.4/corio.so \
         share/corio/types/corio.lua share/man/man1/corio.1; do
  [ -f "$root/$f" ] || fail "missing $f"
done
[ "$(readlink "$lib/libcorio.so.$major")" = "libcorio.so.$version" ] ||
  fail "libcorio.so.$major does not point at libcorio.so.$version"
[ "$(readlink -f "$lib/libcorio.so")" = "$(readlink -f "$lib/libcorio.so.$version")" ] ||
  fail "libcorio.so does not lead to libcorio.so.$version"
readelf -d "$lib/libcorio.so.$version" | grep -q "SONAME.*\[libcorio.so.$major\]" ||
  fail "soname is not libcorio.so.$major"

# A host, built and run as docs/INSTALL.md says.
export PKG_CONFIG_PATH="$lib/pkgconfig"
[ "$(pkg-config --modversion corio)" = "$version" ] || fail "corio.pc version"
# shellcheck disable=SC2046
${CC:-cc} -o "$tmp/host" tests/install/host.c $(pkg-config --cflags --libs corio)
out=$(LD_LIBRARY_PATH="$lib" "$tmp/host")
[ "$out" = "host: task gave 42, corio $version" ] || fail "host printed: $out"
LD_LIBRARY_PATH="$lib" ldd "$tmp/host" | grep -q "libcorio.so.$major => $lib/" ||
  fail "the host did not load the staged libcorio.so.$major"

# The same host with libcorio.a linked in (docs/INSTALL.md): it runs
# without the library path and does not load libcorio.so.
# shellcheck disable=SC2046
${CC:-cc} -o "$tmp/host-static" tests/install/host.c \
  $(pkg-config --cflags corio) "$(pkg-config --variable=libdir corio)/libcorio.a" \
  $(pkg-config --static --libs corio | sed 's/-lcorio\b//')
out=$("$tmp/host-static")
[ "$out" = "host: task gave 42, corio $version" ] || fail "static host printed: $out"
! ldd "$tmp/host-static" | grep -q libcorio || fail "the static host loads libcorio.so"

# The installed binary, and corio.so in stock lua5.4.
out=$("$root/bin/corio" -e 'print(require("corio").version)')
[ "$out" = "$version" ] || fail "corio -e printed: $out"
out=$(LUA_CPATH="$lib/lua/5.4/?.so" lua5.4 -e '
  local corio = require "corio"
  print(corio.run(function() corio.sleep(0.01) return "lua5.4 ok" end))')
[ "$out" = "lua5.4 ok" ] || fail "lua5.4 printed: $out"

# Uninstall leaves nothing but empty folders.
$make --no-print-directory -s uninstall DESTDIR="$tmp/root" PREFIX=/usr/local
left=$(find "$tmp/root" ! -type d)
[ -z "$left" ] || fail "uninstall left: $left"

# PREFIX=/usr: the multiarch libdir, where Debian's lua5.4 looks too.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null ||
            gcc -print-multiarch)
$make --no-print-directory -s install DESTDIR="$tmp/usr" PREFIX=/usr >/dev/null
for f in lib/$multiarch/libcorio.so.$version lib/$multiarch/pkgconfig/corio.pc \
         lib/$multiarch/lua/5.4/corio.so; do
  [ -e "$tmp/usr/usr/$f" ] || fail "PREFIX=/usr: missing $f"
done
echo "check-install: staged install, pkg-config hosts (shared and static)," \
     "binary, lua5.4, uninstall and the /usr layout all work"
