#!/usr/bin/python3
"""W14h: WebSocket opening handshakes, corio against Node (npm `ws`) and
Python websockets.

    /usr/bin/python3 bench/ws_handshake.py [--corio build/corio]
        [--rounds 3] [--conns 2000] [--par 8] [--node-modules DIR]
    /usr/bin/python3 bench/ws_handshake.py --callgrind [--conns 500]

Each connection: TCP connect, the upgrade request, the 101, a masked
close frame, the server's close and EOF -- a whole short-lived WebSocket,
`--par` of them at a time.  The load client is asyncio on raw sockets with
one fixed request, the same for every server; the figure compared is the
server's CPU time (every thread's time on CPU, /proc/PID/task/*/schedstat,
in ns: a short run is too short for clock ticks) per connection, rounds
interleaved.  Servers: corio._ws.serve (`w14_ws_echo.lua`), corio.http +
req:websocket() (`w14_ws_http_echo.lua`), Node + ws, Python websockets
(asyncio, and uvloop when installed).

--callgrind runs only the corio servers under valgrind's callgrind: after
a warm-up the counters are zeroed (callgrind_control -z), --conns
connections run, and the dump's instruction count (callgrind_control -d)
divided by --conns is printed: the stable figure on a noisy machine.
"""
import argparse
import asyncio
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from _proc import cpu_ns_seconds as cpu  # noqa: E402
from ws_echo import node_modules, PEERS, PY  # noqa: E402

KEY = b"\x11\x22\x33\x44"
UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"User-Agent: ws-handshake-bench\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
CLOSE = b"\x88\x82" + KEY + bytes([0x03 ^ 0x11, 0xe8 ^ 0x22])


async def one(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(UPGRADE)
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101") and ACCEPT in head, head
    w.write(CLOSE)
    try:
        await asyncio.wait_for(r.read(), 5)   # the close frame, then EOF
    except asyncio.TimeoutError:
        pass
    w.close()


async def load(port, conns, par):
    left = [conns]

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            await one(port)
    await asyncio.gather(*(worker() for _ in range(par)))


def start(cmd, env=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()
    return p, int(line.strip().split("=")[1])


def measure(cmd, env, conns, par):
    p, port = start(cmd, env)
    try:
        asyncio.run(load(port, 50, par))      # warm-up
        c0, t0 = cpu(p.pid), time.monotonic()
        asyncio.run(load(port, conns, par))
        c1, t1 = cpu(p.pid), time.monotonic()
        return (c1 - c0) / conns * 1e6, conns / (t1 - t0)
    finally:
        p.kill()
        p.wait()


def callgrind(cmd, conns, par):
    d = tempfile.mkdtemp(prefix="corio-cg-")
    out = os.path.join(d, "cg.out")
    p, port = start(["valgrind", "--tool=callgrind", "-q", "--compress-strings=no",
                     "--callgrind-out-file=" + out] + cmd)
    try:
        asyncio.run(load(port, 100, par))     # warm-up
        subprocess.run(["callgrind_control", "-z", str(p.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        asyncio.run(load(port, conns, par))
        subprocess.run(["callgrind_control", "-d", str(p.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        dumps = sorted(f for f in glob.glob(out + "*") if f != out)
        ir = None
        with open(dumps[-1]) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    ir = int(line.split()[1])
        return ir / conns, dumps[-1]
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corio", default="build/corio")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--par", type=int, default=8)
    ap.add_argument("--node-modules")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--before", help="another corio binary (an older "
                    "build) to run the same corio servers with")
    ap.add_argument("--only", help="comma-separated name prefixes to run")
    a = ap.parse_args()
    runs = {
        "corio _ws.serve": ([a.corio, os.path.join(BENCH, "w14_ws_echo.lua")], None),
        "corio http.serve + req:websocket":
        ([a.corio, os.path.join(BENCH, "w14_ws_http_echo.lua")], None),
    }
    if a.before:
        for name, (cmd, env) in list(runs.items()):
            runs[name + " (before)"] = ([a.before] + cmd[1:], env)
    if a.callgrind:
        for name, (cmd, _) in runs.items():
            ir, f = callgrind(cmd, a.conns, a.par)
            print("%s: %.0f instructions per connection (%s)" % (name, ir, f))
        return
    nm = node_modules(a.node_modules)
    if nm:
        runs["node (ws)"] = (["node", os.path.join(PEERS, "w14_ws_echo.js")],
                             dict(os.environ, NODE_PATH=nm))
    else:
        print("node ws: not available", file=sys.stderr)
    runs["python websockets"] = ([PY, os.path.join(PEERS, "w14_ws_echo.py")], None)
    try:
        import uvloop  # noqa: F401
        runs["python websockets + uvloop"] = (
            [PY, os.path.join(PEERS, "w14_ws_echo.py"), "uvloop"], None)
    except ImportError:
        pass
    if a.only:
        want = a.only.split(",")
        runs = {k: v for k, v in runs.items() if any(k.startswith(w) for w in want)}
    res = {k: [] for k in runs}
    for _ in range(a.rounds):
        for name, (cmd, env) in runs.items():
            res[name].append(measure(cmd, env, a.conns, a.par))
    base = statistics.median(c for c, _ in res["corio _ws.serve"]) \
        if "corio _ws.serve" in res else None
    print("W14h WebSocket handshakes, %d connections, %d at a time (%d rounds)"
          % (a.conns, a.par, a.rounds))
    print("| server | server CPU us/connection (rounds) | connections/s | vs corio |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in res.items():
        c = statistics.median(x for x, _ in r)
        t = statistics.median(y for _, y in r)
        print("| %s | %.1f (%s) | %.0f | %s |" % (
            name, c, " ".join("%.1f" % x for x, _ in r), t,
            "%.2f" % (c / base) if base else "-"))


if __name__ == "__main__":
    main()
