#!/usr/bin/python3
"""W14: WebSocket echo, corio against Node (npm `ws`) and Python websockets.

    /usr/bin/python3 bench/ws_echo.py [--corio build/corio] [--rounds 3]
        [--conns 50] [--trips 2000] [--node-modules DIR] [--client c|python]

50 connections x 2,000 round trips of a 32-byte text message.  The load
client is the same for every server and does no framing work of its own
(one pre-masked frame, the 34-byte echo compared): by default
bench/echo_client.c in its ws mode (C on libuv, built into --build), as
wrk is for W11; --client python is the first W14 client, asyncio on raw
sockets, which the faster servers outrun (their round trips/s are its
ceiling, and a server that waits on its client polls more often per
message).  The figure that compares servers is
the server's CPU time (every thread's time on CPU,
/proc/PID/task/*/schedstat, in ns) per round trip, since on a 2-core
machine the client shares the CPUs.  "corio Stream floor" is
w14_stream_floor.lua: the same loop on a raw Stream with no framing at all
(what bounds any WebSocket server on corio's Streams).  "raw C floor" is
peers/w14_floor_uv.c, the same loop in plain C on libuv: one read and one
write per round trip and nothing else, which is what every server here
makes the kernel do -- its CPU is the kernel's share of every row, and
"raw C floor / X" is the lowest ratio to X any server could reach.  Rounds
are interleaved; the table shows medians and "vs corio" = peer CPU / corio
CPU (above 1: corio does better).

Node's `ws` is not in Debian: it is taken from --node-modules (default
$WS_NODE_MODULES, else /tmp/corio-bench-node/node_modules, installed there
with `npm install ws` when missing and npm works).
"""
import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(BENCH, "peers")
PY = "/usr/bin/python3"
from _proc import build_c, cpu_ns_seconds as cpu, cpu_user_sys

PAYLOAD = b"0123456789abcdef0123456789abcdef"
KEY = b"\x11\x22\x33\x44"
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + KEY + bytes(
    b ^ KEY[i % 4] for i, b in enumerate(PAYLOAD))
REPLY = len(PAYLOAD) + 2
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


async def one(port, trips):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(UPGRADE)
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    for _ in range(trips):
        w.write(FRAME)
        got = await r.readexactly(REPLY)
        assert got[2:] == PAYLOAD, got
    w.write(b"\x88\x82" + KEY + bytes([0x03 ^ 0x11, 0xe8 ^ 0x22]))
    await w.drain()
    try:
        await asyncio.wait_for(r.read(), 5)
    except asyncio.TimeoutError:
        pass
    w.close()


async def load(port, conns, trips):
    await asyncio.gather(*(one(port, trips) for _ in range(conns)))



CLIENT = None   # the C load client (echo_client ws), or None: asyncio
USER_SYS = {}   # command -> [(user, sys) us per round trip], from ticks


def measure(cmd, env, conns, trips):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.strip().split("=")[1])
        c0, t0, us0 = cpu(p.pid), time.monotonic(), cpu_user_sys(p.pid)
        if CLIENT:
            out = subprocess.run([CLIENT, "127.0.0.1", str(port), "ws",
                                  str(conns), str(trips)], check=True,
                                 capture_output=True, text=True).stdout
            assert "check=ok" in out, out
        else:
            asyncio.run(load(port, conns, trips))
        c1, t1, us1 = cpu(p.pid), time.monotonic(), cpu_user_sys(p.pid)
        n = conns * trips
        USER_SYS.setdefault(" ".join(cmd), []).append(
            ((us1[0] - us0[0]) / n * 1e6, (us1[1] - us0[1]) / n * 1e6))
        return (c1 - c0) / n * 1e6, n / (t1 - t0)
    finally:
        p.kill()
        p.wait()


def callgrind(cmd, conns, trips):
    """Instructions per round trip of a corio server under callgrind: a
    warm-up, the counters zeroed, conns x trips, a dump."""
    import glob
    import tempfile
    d = tempfile.mkdtemp(prefix="corio-cg-")
    out = os.path.join(d, "cg.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "-q",
                          "--compress-strings=no",
                          "--callgrind-out-file=" + out] + cmd,
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().strip().split("=")[1])
        asyncio.run(load(port, conns, 200))
        subprocess.run(["callgrind_control", "-z", str(p.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        asyncio.run(load(port, conns, trips))
        subprocess.run(["callgrind_control", "-d", str(p.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        dump = sorted(f for f in glob.glob(out + "*") if f != out)[-1]
        with open(dump) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1]) / (conns * trips), dump
    finally:
        p.kill()
        p.wait()


def node_modules(arg):
    d = arg or os.environ.get("WS_NODE_MODULES") or "/tmp/corio-bench-node/node_modules"
    if os.path.isdir(os.path.join(d, "ws")):
        return d
    if shutil.which("npm"):
        top = os.path.dirname(d)
        os.makedirs(top, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "ws@8"],
                       cwd=top, stdout=subprocess.DEVNULL)
    return d if os.path.isdir(os.path.join(d, "ws")) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corio", default="build/corio")
    ap.add_argument("--build", default="build", help="where the C floor is built")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--trips", type=int, default=2000)
    ap.add_argument("--node-modules")
    ap.add_argument("--client", choices=("c", "python"), default="c",
                    help="the load client: c (bench/echo_client.c, ws mode) "
                    "or python (asyncio, the first W14 client)")
    ap.add_argument("--only", help="comma-separated server names to run "
                    "(prefixes: node,python); the corio rows always run")
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per round trip of the corio servers "
                    "under callgrind (10 x 1,000 unless --conns/--trips)")
    ap.add_argument("--before", help="another corio binary (an older build) "
                    "to run beside build/corio")
    a = ap.parse_args()
    if a.callgrind:
        conns = a.conns if a.conns != 50 else 10
        trips = a.trips if a.trips != 2000 else 1000
        cmds = [("corio", a.corio, "w14_ws_echo.lua"),
                ("corio Stream floor", a.corio, "w14_stream_floor.lua")]
        if a.before:
            cmds.insert(1, ("corio before", a.before, "w14_ws_echo.lua"))
        for name, binary, script in cmds:
            ir, dump = callgrind([binary, os.path.join(BENCH, script)],
                                 conns, trips)
            print("%s: %.0f instructions per round trip (%s)" % (name, ir, dump))
        return
    global CLIENT
    if a.client == "c":
        CLIENT = build_c(os.path.join(BENCH, "echo_client.c"),
                         os.path.join(a.build, "echo_client"))
    runs = {"corio": ([a.corio, os.path.join(BENCH, "w14_ws_echo.lua")], None),
            "corio Stream floor (no framing)":
            ([a.corio, os.path.join(BENCH, "w14_stream_floor.lua")], None),
            "raw C floor (libuv, no framing)":
            ([build_c(os.path.join(PEERS, "w14_floor_uv.c"),
                      os.path.join(a.build, "w14_floor_uv"))], None)}
    if a.before:
        runs["corio before"] = ([a.before, os.path.join(BENCH, "w14_ws_echo.lua")], None)
    nm = node_modules(a.node_modules)
    if nm and shutil.which("node"):
        env = dict(os.environ, NODE_PATH=nm)
        runs["node (ws)"] = (["node", os.path.join(PEERS, "w14_ws_echo.js")], env)
    else:
        print("node ws: not available (npm install ws failed)", file=sys.stderr)
    runs["python websockets"] = ([PY, os.path.join(PEERS, "w14_ws_echo.py")], None)
    try:
        import uvloop  # noqa: F401
        runs["python websockets + uvloop"] = (
            [PY, os.path.join(PEERS, "w14_ws_echo.py"), "uvloop"], None)
    except ImportError:
        pass
    if a.only:
        want = a.only.split(",")
        runs = {k: v for k, v in runs.items()
                if k.startswith(("corio", "raw C")) or any(k.startswith(w) for w in want)}
    res = {k: [] for k in runs}
    for _ in range(a.rounds):
        for name, (cmd, env) in runs.items():
            res[name].append(measure(cmd, env, a.conns, a.trips))
    base = statistics.median(c for c, _ in res["corio"])
    print("W14 WebSocket echo, %d connections x %d round trips (%d rounds, "
          "%s load client)" % (a.conns, a.trips, a.rounds, a.client))
    print("| server | server CPU us/round trip (rounds) | round trips/s | vs corio |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in res.items():
        c = statistics.median(x for x, _ in r)
        t = statistics.median(y for _, y in r)
        print("| %s | %.2f (%s) | %.0f | %.2f |" % (
            name, c, " ".join("%.2f" % x for x, _ in r), t, c / base))
    for name, (cmd, _) in runs.items():
        us = USER_SYS.get(" ".join(cmd), [])
        if us:
            print("%s: user %s, sys %s us/round trip (clock ticks)" % (
                name, " ".join("%.1f" % u for u, _ in us),
                " ".join("%.1f" % y for _, y in us)))
    # corio / peer per round (the rounds are interleaved: each pair ran
    # close in time), for the spread of the ratio
    for name, r in res.items():
        if name.startswith("corio"):
            continue
        for num in ("corio", "raw C floor (libuv, no framing)"):
            if num == name or num not in res:
                continue
            q = [cr[0] / pr[0] for cr, pr in zip(res[num], r)]
            print("%s / %s per round: %s (median %.2f)" % (
                num, name, " ".join("%.2f" % x for x in q), statistics.median(q)))


if __name__ == "__main__":
    main()
