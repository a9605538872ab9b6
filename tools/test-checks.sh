#!/bin/sh
# test-checks.sh BUILD -- the packaging checks must fail when they should:
# a check that cannot fail guards nothing.  Each case breaks one thing in
# a scratch copy and expects the check to refuse it, naming the culprit.
set -eu
cd "$(dirname "$0")/.."
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
types="types/corio.lua types/corio/*.lua"
fail() { echo "test-checks: $*" >&2; exit 1; }

# expect_fail WHAT PATTERN CMD...: CMD fails and its stderr has PATTERN.
expect_fail() {
  what=$1 pattern=$2; shift 2
  if "$@" >/dev/null 2>"$tmp/err"; then fail "$what: the check passed"; fi
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err" >&2; fail "$what: no '$pattern'"; }
}

# A method without a definition.
cp -r types "$tmp/t1"
sed -i '/^function Barrier:broken/d' "$tmp/t1/corio/sync.lua"
expect_fail "untyped method" "corio.Barrier.broken" \
  "$build/corio" tools/check-types.lua "$tmp/t1/corio.lua" "$tmp"/t1/corio/*.lua

# A module the binary gains later (a corio.yaml here) fails until typed.
# shellcheck disable=SC2086
expect_fail "untyped module" "corio.yaml (module" "$build/corio" \
  -e 'package.preload["corio.yaml"] = function() return {encode = print} end' \
  tools/check-types.lua $types

# A typed function the runtime does not export.
cp -r types "$tmp/t2"
sed -i 's/^function sync.Event()/function sync.Gone()/' "$tmp/t2/corio/sync.lua"
expect_fail "stale definition" "corio.sync.Gone (defined" \
  "$build/corio" tools/check-types.lua "$tmp/t2/corio.lua" "$tmp"/t2/corio/*.lua

# A definition file that is not Lua.
cp -r types "$tmp/t3"
echo 'function (' >> "$tmp/t3/corio/fs.lua"
expect_fail "syntax error" "fs.lua" \
  "$build/corio" tools/check-types.lua "$tmp/t3/corio.lua" "$tmp"/t3/corio/*.lua

# The exported symbols drifting from corio.symbols, both ways.
grep -v '^corio_spawn$' corio.symbols > "$tmp/fewer.symbols"
expect_fail "symbol added" "+corio_spawn" \
  sh tools/check-symbols.sh "$build/libcorio.so" "$tmp/fewer.symbols"
{ cat corio.symbols; echo corio_gone; } > "$tmp/more.symbols"
expect_fail "symbol removed" "-corio_gone" \
  sh tools/check-symbols.sh "$build/libcorio.so" "$tmp/more.symbols"

# A library with Lua inside (libcorio.a holds no Lua, the binary does).
expect_fail "static Lua copy" "a static Lua inside" \
  sh tools/check-symbols.sh "$build/corio" corio.symbols

# A man page that falls behind corio --help.
sed '/^\.B \\-i$/d' "$build/corio.1" > "$tmp/corio.1"
expect_fail "option missing from corio(1)" "option -i" \
  sh tools/check-man.sh "$build/corio" "$tmp/corio.1"

echo "test-checks: check-types, check-symbols and check-man refuse all 8 broken cases"
