#!/bin/sh
# deps.sh PKG... -- install the Debian packages that are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && $cmd -qq >/dev/null && exit 0
  echo "deps: '$cmd' failed" >&2
  exit 1
fi
echo "corio needs these Debian packages:$missing" >&2
echo "run:  sudo apt-get update && sudo $cmd" >&2
exit 1
