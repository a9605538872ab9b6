#!/usr/bin/python3
"""W11: HTTP hello servers under wrk -t1 -c50, interleaved and repeated.

Each server runs on a fixed loopback port; wrk loads it for --duration
seconds; the server's CPU time (utime+stime from /proc/<pid>/stat, summed
over its threads) over the run divided by the requests wrk completed is
the figure to compare (wrk itself is the bottleneck on a small machine).
Reported: median CPU us/request and req/s per server, with the spread,
and both as ratios to the raw C libuv server (the floor).

    /usr/bin/python3 bench/http.py --corio build/corio --build build [--rounds 5]

It builds the raw C floor and the Go peer itself (into --build, again when
their source is newer), and runs aiohttp with Debian's /usr/bin/python3,
where python3-aiohttp and python3-uvloop are installed (not whatever
python3 comes first on PATH).
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
from _proc import build_c, build_go, cpu_seconds, free_port, nginx_path, wait_port

PEERS = os.path.join(HERE, "peers")
PY = "/usr/bin/python3"


def servers(a):
    out = {}
    raw = build_c(os.path.join(PEERS, "w11_http_hello_uv.c"), os.path.join(a.build, "w11_http_hello_uv"))
    out["raw C (libuv)"] = lambda p: ([raw, str(p)], {})
    out["corio.http"] = lambda p: ([a.corio, os.path.join(HERE, "w11_http_hello.lua"), str(p)], {})
    out["corio raw net"] = lambda p: ([a.corio, os.path.join(HERE, "w11_http_raw.lua"), str(p)], {})
    if nginx_path():
        def nginx(p):
            d = tempfile.mkdtemp(prefix="w11nginx")
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""daemon off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log; events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};
  fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{p}; location / {{ default_type text/plain;
    return 200 "hello world\\n"; }} }} }}
""")
            return ([nginx_path(), "-p", d, "-c", conf], {"worker": True})
        out["nginx"] = nginx
    if shutil.which("node"):
        out["Node http"] = lambda p: (["node", os.path.join(PEERS, "w11_http_hello.js"), str(p)], {})
    if shutil.which("go"):
        gobin = build_go(os.path.join(PEERS, "w11_http_hello.go"), os.path.join(a.build, "w11_http_hello_go"))
        out["Go net/http"] = lambda p: ([gobin, str(p)], {"env": {"GOMAXPROCS": "1"}})
    try:
        subprocess.run([PY, "-c", "import aiohttp, uvloop"], check=True, stderr=subprocess.DEVNULL)
        out["aiohttp+uvloop"] = lambda p: ([PY, os.path.join(PEERS, "w11_http_hello.py"), str(p)], {})
    except (OSError, subprocess.CalledProcessError):
        print("aiohttp+uvloop: not installed (python3-aiohttp, python3-uvloop), skipped", file=sys.stderr)
    return out


def worker_pid(master):
    # nginx: the request work is in its one worker process
    for _ in range(100):
        kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise RuntimeError("no nginx worker")


def one(cmd_of, a):
    port = free_port()
    cmd, extra = cmd_of(port)
    env = dict(os.environ, **extra.get("env", {}))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_port(port, proc)
        pid = worker_pid(proc.pid) if extra.get("worker") else proc.pid
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["wrk", "-t1", "-c50", "-d1s", url], capture_output=True)   # warm up
        c0 = cpu_seconds(pid)
        r = subprocess.run(["wrk", "-t1", "-c50", f"-d{a.duration}s", url],
                           capture_output=True, text=True, check=True)
        c1 = cpu_seconds(pid)
        m = re.search(r"(\d+) requests in", r.stdout)
        n = int(m.group(1))
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", r.stdout)
        if errs:
            print("  wrk reported:", errs.group(0), file=sys.stderr)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
        return (c1 - c0) * 1e6 / n, rps
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corio", default="build/corio")
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", help="comma-separated server names")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk)")
    srv = servers(a)
    if a.only:
        srv = {k: v for k, v in srv.items() if k in a.only.split(",") or k == "raw C (libuv)"}
    res = {k: [] for k in srv}
    for rnd in range(a.rounds):          # interleaved: every server once per round
        for name, cmd_of in srv.items():
            res[name].append(one(cmd_of, a))
        print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr)
    base_cpu = statistics.median(c for c, _ in res["raw C (libuv)"])
    base_rps = statistics.median(r for _, r in res["raw C (libuv)"])
    print(f"W11 HTTP hello, wrk -t1 -c50 -d{a.duration}s, {a.rounds} interleaved rounds (median [min-max])")
    print(f"{'server':16} {'CPU us/req':>22} {'x raw C':>7} {'req/s':>24} {'x raw C':>7}")
    for name, rs in res.items():
        cpu = sorted(c for c, _ in rs)
        rps = sorted(r for _, r in rs)
        mc, mr = statistics.median(cpu), statistics.median(rps)
        print(f"{name:16} {mc:8.2f} [{cpu[0]:5.2f}-{cpu[-1]:5.2f}] {mc / base_cpu:7.2f} "
              f"{mr:9.0f} [{rps[0]:6.0f}-{rps[-1]:6.0f}] {mr / base_rps:7.2f}")


if __name__ == "__main__":
    main()
