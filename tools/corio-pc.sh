#!/bin/sh
# corio-pc.sh VERSION PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR -- writes
# corio.pc to stdout.
#
# The prefix is written relative to the .pc file (${pcfiledir}, which
# pkg-config and pkgconf both define), so a tree staged with DESTDIR or
# moved elsewhere is found with PKG_CONFIG_PATH alone.  PKG_CONFIG_SYSROOT_DIR
# would not do: it prefixes lua5.4's and libuv's folders too, which are
# not in the staged tree.  A folder outside PREFIX is written as is.
#
# Requires (not Requires.private) names lua5.4 and libuv: a host calls
# both APIs, and `pkg-config --libs corio` must give -llua5.4 and -luv.
set -eu
version=$1 prefix=$2 libdir=$3 includedir=$4 pcdir=$5

# rel DIR: DIR as ${prefix}/..., or DIR itself when outside PREFIX.
rel() {
  case $1 in
    "$prefix"/*) printf '${prefix}/%s' "${1#"$prefix"/}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# The prefix, as ${pcfiledir} followed by one /.. per folder below it.
case $pcdir in
  "$prefix"/*)
    up=$(printf '%s' "${pcdir#"$prefix"/}" | sed 's|[^/][^/]*|..|g')
    pcprefix="\${pcfiledir}/$up" ;;
  *) pcprefix=$prefix ;;
esac

cat <<PC
prefix=$pcprefix
libdir=$(rel "$libdir")
includedir=$(rel "$includedir")

Name: corio
Description: asyncio for Lua 5.4 on libuv (embeddable runtime)
Version: $version
Requires: lua5.4 libuv >= 1.44
Cflags: -I\${includedir}
Libs: -L\${libdir} -lcorio
Libs.private: -lwslay -lhttp_parser -lz -lm -ldl -lpthread
PC
