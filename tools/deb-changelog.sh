#!/bin/sh
# deb-changelog.sh VERSION -- debian/changelog for `make deb`, written from
# VERSION so the packages carry the one version corio has.  A native
# package: the Debian revision is part of nothing else.
set -eu
cat <<EOF2
corio ($1) unstable; urgency=medium

  * Built from the corio source tree by make deb.

 -- corio developers <corio@localhost>  $(date -R)
EOF2
