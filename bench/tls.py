#!/usr/bin/python3
"""corio.tls benchmark (issue 11, point 9), interleaved rounds, ratios.

(a) handshakes: new TLS 1.3 connections with an ECDSA P-256 certificate
    against a "hello" server, driven by `openssl s_time -new -tls1_3`
    (a client nobody here wrote): server CPU microseconds per connection.
(b) bulk: 256 MiB over one TLS connection, fetched by curl: MiB/s and
    server CPU seconds per GiB.

Servers: corio (bench/tls_server.lua), nginx (nginx-light, one worker, a
temp config on loopback), Node tls (bench/peers/tls_server.js), Python
asyncio ssl and asyncio+uvloop (bench/peers/tls_server.py).  Server CPU is
utime+stime from /proc of the server's whole process group.

    /usr/bin/python3 bench/tls.py [--corio build/corio] [--rounds 3]
                                  [--seconds 4] [--runtimes corio,nginx,...]
"""
import argparse, os, re, signal, statistics, subprocess, sys, tempfile, time

BENCH = os.path.dirname(os.path.abspath(__file__))
from _proc import TICK, free_port, nginx_path


def group_cpu(pgid):
    total = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[2]) == pgid:          # field 5: pgrp
            total += int(st[11]) + int(st[12])   # utime, stime
    return total / TICK


NGINX_CONF = """
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{port} ssl backlog=1024;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root {d}/www;
    location = / {{ return 200 "hello"; }}
    location = /bulk {{ default_type application/octet-stream; }}
  }}
}}
"""



def start(rt, d, corio):
    portfile = os.path.join(d, rt + ".port")
    if os.path.exists(portfile):
        os.unlink(portfile)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if rt == "nginx":
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, port=port))
        argv = [nginx_path(), "-c", conf, "-p", d, "-g", "daemon off;"]
    elif rt == "corio":
        argv = [corio, os.path.join(BENCH, "tls_server.lua"), cert, key, portfile]
    elif rt == "node":
        argv = ["node", os.path.join(BENCH, "peers", "tls_server.js"), cert, key, portfile]
    else:
        argv = ["/usr/bin/python3", os.path.join(BENCH, "peers", "tls_server.py"),
                cert, key, portfile] + (["--uvloop"] if rt == "uvloop" else [])
    p = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        if rt == "nginx":
            if subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"],
                              input=b"", capture_output=True).returncode == 0:
                return p, port
        elif os.path.exists(portfile) and open(portfile).read().strip():
            return p, int(open(portfile).read())
        time.sleep(0.1)
    raise RuntimeError(rt + " did not start")


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    p.wait()


def handshakes(port, pgid, seconds):
    c0 = group_cpu(pgid)
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}",
                          "-new", "-tls1_3", "-www", "/", "-time", str(seconds)],
                         capture_output=True, text=True).stdout
    cpu = group_cpu(pgid) - c0
    m = re.search(r"(\d+) connections in [\d.]+s", out) or \
        re.search(r"(\d+) connections in ([\d.]+) real", out)
    n = int(m.group(1))
    return cpu / n * 1e6, n


def bulk(port, pgid):
    c0 = group_cpu(pgid)
    t0 = time.time()
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{size_download}",
                        f"https://127.0.0.1:{port}/bulk"], capture_output=True, text=True)
    dt = time.time() - t0
    cpu = group_cpu(pgid) - c0
    size = int(float(r.stdout or 0))
    assert size == 256 * 1024 * 1024, f"got {size} bytes"
    return size / 2**20 / dt, cpu / (size / 2**30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corio", default=os.path.join(os.path.dirname(BENCH), "build", "corio"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--runtimes", default="corio,nginx,node,asyncio,uvloop")
    a = ap.parse_args()
    rts = a.runtimes.split(",")
    d = tempfile.mkdtemp(prefix="corio-tlsbench.")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                   check=True, capture_output=True)
    os.chmod(d, 0o755)                  # nginx's worker is not root
    os.makedirs(f"{d}/www")
    with open(f"{d}/www/bulk", "wb") as f:
        f.truncate(256 * 1024 * 1024)
    res = {rt: {"hs": [], "n": [], "mibs": [], "cpugib": []} for rt in rts}
    for rnd in range(a.rounds):
        for rt in rts:
            p, port = start(rt, d, a.corio)
            try:
                us, n = handshakes(port, p.pid, a.seconds)
                mibs, cg = bulk(port, p.pid)
            finally:
                stop(p)
            r = res[rt]
            r["hs"].append(us); r["n"].append(n); r["mibs"].append(mibs); r["cpugib"].append(cg)
            print(f"round {rnd + 1} {rt}: {us:.0f} us/conn ({n} conns), "
                  f"{mibs:.0f} MiB/s, {cg:.2f} CPU s/GiB", file=sys.stderr)
    med = {rt: {k: statistics.median(v) for k, v in r.items()} for rt, r in res.items()}
    c = med.get("corio")
    print("\n(a) new TLS 1.3 connections (ECDSA P-256), server CPU per connection; "
          "ratio = corio / peer (< 1: corio uses less)\n")
    print("| server | CPU µs/conn | conns in run | corio / peer |")
    print("| --- | ---: | ---: | ---: |")
    for rt in rts:
        m = med[rt]
        print(f"| {rt} | {m['hs']:.0f} | {m['n']:.0f} | {c['hs'] / m['hs']:.2f} |")
    print("\n(b) 256 MiB over one TLS connection (curl client); ratio = corio / peer "
          "throughput per CPU second (> 1: corio better)\n")
    print("| server | MiB/s | server CPU s/GiB | corio / peer (per core) |")
    print("| --- | ---: | ---: | ---: |")
    for rt in rts:
        m = med[rt]
        print(f"| {rt} | {m['mibs']:.0f} | {m['cpugib']:.2f} | {m['cpugib'] / c['cpugib']:.2f} |")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
