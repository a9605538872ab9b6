#!/usr/bin/python3
"""W13: keep-alive HTTP client, corio against Node (http.Agent, fetch),
aiohttp (asyncio and uvloop) and Go net/http (GOMAXPROCS=1).

    /usr/bin/python3 bench/http_client.py [--corio build/corio] [--rounds 5]
        [--requests 20000] [--conc 16] [--runtimes corio,node-agent,...]

Each client GETs a local nginx (`return 200 "hello"`, one worker, started
by this driver with a temp config on loopback) N times from CONC
concurrent loops on one keep-alive pool, after a warm-up.  Each program
prints its wall time and its own CPU time (user + system, /proc/self/stat)
for the timed part; the table shows medians, the spread (min-max), and
"vs corio" = peer / corio for CPU per request (above 1: corio uses less)
and peer / corio for requests/s (below 1: corio is faster).
Rounds are interleaved: round 1 of every client,
then round 2, ...  On a 2-core machine nginx and the client share the
cores, so CPU per request is the figure that compares clients.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _proc import build_go, free_port, nginx_path

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PEERS = os.path.join(BENCH, "peers")
PY = "/usr/bin/python3"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "hello"; }}
  }}
}}
"""



def start_nginx():
    d = tempfile.mkdtemp(prefix="corio-w13-")
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port))
    p = subprocess.Popen([nginx_path(), "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")],
                         stderr=subprocess.DEVNULL)
    import socket
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return p, port, d
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("nginx did not start")


def runtimes(corio, before=None):
    rts = [("corio", [corio, os.path.join(BENCH, "w13_http_client.lua")], {})]
    if before:
        rts.append(("corio-before", [before, os.path.join(BENCH, "w13_http_client.lua")], {}))
    if shutil.which("node"):
        js = os.path.join(PEERS, "w13_http_client.js")
        rts.append(("node-agent", ["node", js, "agent"], {}))
        rts.append(("node-fetch", ["node", js, "fetch"], {}))
    py = os.path.join(PEERS, "w13_http_client.py")
    rts.append(("aiohttp", [PY, py], {}))
    rts.append(("aiohttp-uvloop", [PY, py, "--uvloop"], {}))
    if shutil.which("go"):
        rts.append(("go", [build_go(os.path.join(PEERS, "w13_http_client.go"),
                                    os.path.join(ROOT, "build", "bench", "w13_http_client_go"))],
                    {"GOMAXPROCS": "1"}))
    return rts


TITLES = {
    "corio": "corio (corio.http client)",
    "node-agent": "Node 20 http.Agent keepAlive",
    "node-fetch": "Node 20 fetch (undici)",
    "aiohttp": "aiohttp 3.8 (asyncio)",
    "aiohttp-uvloop": "aiohttp 3.8 + uvloop",
    "go": "Go 1.19 net/http (GOMAXPROCS=1)",
}


def run_one(cmd, extra_env, url, n, conc):
    env = dict(os.environ)
    env.update(extra_env)
    out = subprocess.run(cmd + [url, str(n), str(conc)], capture_output=True, text=True,
                         env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd, out.stderr[-2000:]))
    vals = dict(kv.split("=") for kv in out.stdout.split() if "=" in kv)
    ok = int(vals["ok"])
    if ok != n:
        raise RuntimeError("%s: %d of %d answers were right" % (cmd, ok, n))
    return float(vals["time"]), float(vals["cpu"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corio", default=os.path.join(ROOT, "build", "corio"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--runtimes", default="")
    ap.add_argument("--before", help="another corio binary (an older build) to run beside it")
    a = ap.parse_args()
    rts = runtimes(a.corio, a.before)
    if a.runtimes:
        want = a.runtimes.split(",")
        rts = [r for r in rts if r[0] in want]
    ng, port, d = start_nginx()
    url = "http://127.0.0.1:%d/" % port
    res = {name: [] for name, _, _ in rts}
    try:
        for rnd in range(a.rounds):
            for name, cmd, env in rts:
                t, c = run_one(cmd, env, url, a.requests, a.conc)
                res[name].append((c / a.requests * 1e6, a.requests / t))
                print("round %d %-15s cpu/req %6.1f us  %8.0f req/s" %
                      (rnd + 1, name, res[name][-1][0], res[name][-1][1]), file=sys.stderr)
    finally:
        ng.terminate()
        ng.wait()
        shutil.rmtree(d, ignore_errors=True)
    base_cpu = statistics.median(x[0] for x in res["corio"]) if "corio" in res else None
    base_rps = statistics.median(x[1] for x in res["corio"]) if "corio" in res else None
    print("\n### W13: %d keep-alive GETs, %d concurrent, against nginx (median of %d)\n"
          % (a.requests, a.conc, a.rounds))
    print("| client | CPU µs / request | spread | requests/s | spread | CPU vs corio | req/s vs corio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _, _ in rts:
        cs = [x[0] for x in res[name]]
        rs = [x[1] for x in res[name]]
        mc, mr = statistics.median(cs), statistics.median(rs)
        print("| %s | %.1f | %.1f-%.1f | %s | %s-%s | %s | %s |" % (
            TITLES.get(name, name), mc, min(cs), max(cs), format(round(mr), ","),
            format(round(min(rs)), ","), format(round(max(rs)), ","),
            "%.2f" % (mc / base_cpu) if base_cpu else "-",
            "%.2f" % (mr / base_rps) if base_rps else "-"))


if __name__ == "__main__":
    main()
