#!/usr/bin/python3
"""W4: TCP echo, corio against its peers, all driven by one C load client.

    /usr/bin/python3 bench/echo.py [--corio build/corio] [--build build]
        [--rounds 3] [--quick] [--runtimes corio,c,node,...] [rt bulk idle]

Modes (bench/echo_client.c does the driving):
  rt    100 connections x 2,000 round trips of 64 bytes -> round trips/s
  bulk  512 MiB streamed through one connection and back -> MiB/s
  idle  10,000 connections held open after one round trip each ->
        server memory per connection (VmRSS growth / 10,000)

Every server is started fresh for each measurement, prints "port=N" and
serves until its stdin closes.  Rounds are interleaved (round 1 of every
runtime, then round 2, ...); tables show medians and "vs corio", which is
above 1 when corio does better (corio / peer for throughput, peer / corio
for memory), as in bench/run.py.
"""
import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PEERS = os.path.join(BENCH, "peers")
PY = "/usr/bin/python3"

ORDER = ["corio", "c", "luv", "node", "uvloop", "uvloop-streams", "asyncio",
         "asyncio-streams"]
LABEL = {
    "corio": "corio (streams)",
    "c": "C libuv (callbacks)",
    "luv": "lua5.4 + luv (callbacks)",
    "node": "node (net, callbacks)",
    "uvloop": "python uvloop (protocol)",
    "uvloop-streams": "python uvloop (streams)",
    "asyncio": "python asyncio (protocol)",
    "asyncio-streams": "python asyncio (streams)",
}


def commands(args):
    return {
        "corio": [args.corio, os.path.join(BENCH, "w4_echo.lua")],
        "c": [os.path.join(args.build, "w4_echo_uv")],
        "luv": ["lua5.4", os.path.join(PEERS, "w4_echo_luv.lua")],
        "node": ["node", os.path.join(PEERS, "w4_echo.js")],
        "uvloop": [PY, os.path.join(PEERS, "w4_echo.py"), "uvloop", "protocol"],
        "uvloop-streams": [PY, os.path.join(PEERS, "w4_echo.py"), "uvloop",
                           "streams"],
        "asyncio": [PY, os.path.join(PEERS, "w4_echo.py"), "asyncio",
                    "protocol"],
        "asyncio-streams": [PY, os.path.join(PEERS, "w4_echo.py"), "asyncio",
                            "streams"],
    }


def available(name, cmd):
    exe = cmd[0]
    if os.path.sep in exe:
        if not os.access(exe, os.X_OK):
            return f"{exe} not built"
    elif shutil.which(exe) is None:
        return f"{exe} not installed"
    if name.startswith("uvloop"):
        r = subprocess.run([PY, "-c", "import uvloop"], capture_output=True)
        if r.returncode != 0:
            return "uvloop not installed"
    if name == "luv":
        r = subprocess.run(["lua5.4", "-e", "require 'luv'"],
                           capture_output=True)
        if r.returncode != 0:
            return "luv not installed"
    return None


def vmrss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def start_server(cmd, timeout=20):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    buf = b""
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 256)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf and buf.startswith(b"port="):
                return p, int(buf.split(b"\n")[0][5:])
        if p.poll() is not None:
            break
    stop_server(p)
    raise RuntimeError("server did not start: %r" % buf)


def stop_server(p):
    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def parse(out):
    kv = {}
    for part in out.split():
        if "=" in part:
            k, v = part.split("=", 1)
            kv[k] = v
    return kv


def run_once(cmd, mode, args):
    client = os.path.join(args.build, "echo_client")
    p, port = start_server(cmd)
    try:
        if mode == "idle":
            base = vmrss(p.pid)
            c = subprocess.Popen([client, "127.0.0.1", str(port), "idle",
                                  str(args.idle)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            line = c.stdout.readline()
            if line.strip() != "ready":
                c.kill()
                raise RuntimeError("idle client failed: %r" % line)
            time.sleep(0.5)
            held = vmrss(p.pid)
            c.stdin.close()
            c.wait(30)
            return (held - base) / args.idle
        extra = (["rt", str(args.conns), str(args.trips), "64"]
                 if mode == "rt" else ["bulk", str(args.mib)])
        r = subprocess.run([client, "127.0.0.1", str(port)] + extra,
                           capture_output=True, text=True,
                           timeout=args.timeout)
        kv = parse(r.stdout)
        if r.returncode != 0 or kv.get("check") != "ok":
            raise RuntimeError("client failed: %s %s" % (r.stdout.strip(),
                                                         r.stderr.strip()))
        return float(kv["rt_per_s" if mode == "rt" else "mib_per_s"])
    finally:
        stop_server(p)


def fmt(mode, v):
    if mode == "rt":
        return f"{v:,.0f}"
    if mode == "bulk":
        return f"{v:,.0f}"
    return f"{v:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corio", default=os.path.join(ROOT, "build", "corio"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 round")
    ap.add_argument("--runtimes", default=",".join(ORDER))
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--trips", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("modes", nargs="*", default=["rt", "bulk", "idle"])
    args = ap.parse_args()
    if args.quick:
        args.rounds = 1
    cmds = commands(args)
    names = [n for n in args.runtimes.split(",") if n in cmds]
    missing = {n: available(n, cmds[n]) for n in names}
    titles = {
        "rt": f"W4 round trips/s: {args.conns} connections x {args.trips:,} "
              "round trips of 64 bytes (higher is better)",
        "bulk": f"W4 bulk MiB/s: {args.mib} MiB through one connection and "
                "back (higher is better)",
        "idle": f"W4 idle: bytes of server RSS per connection, "
                f"{args.idle:,} idle connections (lower is better)",
    }
    for mode in args.modes:
        results = {n: [] for n in names}
        errors = {}
        for _ in range(args.rounds):
            for n in names:
                if missing[n] or n in errors:
                    continue
                try:
                    results[n].append(run_once(cmds[n], mode, args))
                except Exception as e:  # noqa: BLE001 -- reported in table
                    errors[n] = str(e)[:80]
        med = {n: statistics.median(v) for n, v in results.items() if v}
        print(f"\n### {titles[mode]}\n")
        unit = {"rt": "round trips/s", "bulk": "MiB/s", "idle": "bytes/conn"}
        print(f"| runtime | {unit[mode]} (median) | min | max | vs corio |")
        print("|---|---:|---:|---:|---:|")
        for n in names:
            if n not in med:
                why = missing[n] or errors.get(n, "no result")
                print(f"| {LABEL[n]} | n/a ({why}) | | | |")
                continue
            v = results[n]
            ratio = ""
            if "corio" in med and med["corio"] > 0 and med[n] > 0:
                r = (med["corio"] / med[n] if mode != "idle"
                     else med[n] / med["corio"])
                ratio = f"{r:.2f}"
            print(f"| {LABEL[n]} | {fmt(mode, med[n])} | {fmt(mode, min(v))} "
                  f"| {fmt(mode, max(v))} | {ratio} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
