#!/bin/sh
# check-man.sh CORIO MANPAGE -- the man page renders with `man -l` without
# a groff warning, and names every option `corio --help` lists, so the
# page cannot fall behind the binary.
set -eu
corio=$1
page=$2
fail() { echo "check-man: $*" >&2; exit 1; }
command -v man >/dev/null || fail "man is not installed (Debian: man-db)"
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$page" >"$out" 2>"$err" ||
  fail "man -l $page failed: $(cat "$err")"
[ ! -s "$err" ] || fail "groff warnings for $page: $(cat "$err")"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"; do
  grep -q "^$section" "$out" || fail "no $section section"
done
grep -q "$(cat VERSION)" "$out" || fail "the page does not carry version $(cat VERSION)"
# every option of the usage text: "  -e stat", "  --debug", "  -h, --help"
opts=$("$corio" --help 2>&1 | sed -n 's/^  \(-[-a-z]*\).*/\1/p')
[ -n "$opts" ] || fail "no option found in corio --help"
for o in $opts; do
  grep -q -- "$o" "$out" || fail "option $o of corio --help is not in the page"
done
for cmd in "corio test" "corio bundle"; do
  grep -q "$cmd" "$out" || fail "'$cmd' is not in the page"
done
echo "check-man: $page renders cleanly and names every option of corio --help"
