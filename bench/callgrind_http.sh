#!/bin/sh
# Instructions per request of a W11 server under callgrind (stable on a
# shared machine, unlike CPU time): warm up, zero the counters, load with
# wrk -t1 -c50 for DURATION s, dump, divide the Ir total by the requests.
#   bench/callgrind_http.sh [SCRIPT] [DURATION]     (SCRIPT: bench/w11_http_hello.lua)
set -e
script=${1:-bench/w11_http_hello.lua}
dur=${2:-5}
corio=${CORIO:-build/corio}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" "$corio" "$script" "$port" \
  >"$out/log" 2>&1 &
vpid=$!
for i in $(seq 200); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then break; fi
  sleep 0.1
done
wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1
callgrind_control -z "$vpid" >/dev/null 2>&1
n=$(wrk -t1 -c50 -d"${dur}s" "http://127.0.0.1:$port/" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
callgrind_control -d "$vpid" >/dev/null 2>&1
kill "$vpid"; wait "$vpid" 2>/dev/null || true
f=$(ls "$out"/cg.*.1)
ir=$(callgrind_annotate "$f" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "requests=$n Ir=$ir Ir/request=$((ir / n))  (profile: $f)"
