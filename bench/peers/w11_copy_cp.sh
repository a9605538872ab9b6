#!/bin/sh
# W11 copy a 1 GiB file with coreutils cp (the reference speed).
src=${CORIO_BENCH_1G:-/tmp/corio-bench-1g.bin}
dst=$src.cp-copy
sync
t0=$(date +%s.%N)
cp "$src" "$dst" || exit 1
t1=$(date +%s.%N)
size=$(stat -c %s "$dst")
rm -f "$dst"
echo "time=$(awk "BEGIN { printf \"%.4f\", $t1 - $t0 }") check=$size"
