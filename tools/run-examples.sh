#!/bin/sh
# run-examples.sh CORIO -- runs every examples/*.lua with a time bound.
#
# An example may carry a line `-- ci: ARGS` giving the arguments that make
# it finish on its own (a server example, for instance, serves a scripted
# client and stops).  Each must exit 0 within its bound (default 60 s,
# `-- ci-timeout: N` to change it).
corio=${1:-build/corio}
fail=0
pass=0
for f in examples/*.lua; do
  args=$(sed -n 's/^-- ci: //p' "$f" | head -n 1)
  bound=$(sed -n 's/^-- ci-timeout: //p' "$f" | head -n 1)
  out=$(mktemp)
  # shellcheck disable=SC2086
  if timeout "${bound:-60}" "$corio" "$f" $args </dev/null >"$out" 2>&1; then
    pass=$((pass + 1))
    echo "ok    $f"
  else
    fail=$((fail + 1))
    echo "FAIL  $f (exit $?)"
    sed 's/^/      /' "$out" | tail -n 20
  fi
  rm -f "$out"
done
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
