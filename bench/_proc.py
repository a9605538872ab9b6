"""Helpers the bench drivers share: a free loopback port, a server's CPU
time, waiting for a server to listen, finding nginx, building a C or Go peer."""
import os
import shutil
import socket
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")


def nginx_path():
    """nginx on PATH, else in the sbin folders (Debian installs it in
    /usr/sbin, which a user's PATH often leaves out); None if absent."""
    return shutil.which("nginx", path=os.environ.get("PATH", "") +
                        ":/usr/local/sbin:/usr/sbin:/sbin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    """utime + stime of one process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_port(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def cpu_user_sys(pid):
    """(utime, stime) of one process, in seconds (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_ns_seconds(pid):
    """Time on CPU of every thread of a process, in seconds, from
    /proc/PID/task/*/schedstat (nanoseconds: finer than the clock ticks
    of cpu_seconds, for short runs); falls back to cpu_seconds."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass   # a thread that just ended
    except FileNotFoundError:
        return cpu_seconds(pid)
    return total / 1e9


def stale(out, src):
    return not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src)


def build_c(src, out):
    """Compiles a C libuv peer into out when it is missing or older than src,
    so a driver never measures a binary left from another revision."""
    if stale(out, src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        libs = subprocess.run(["pkg-config", "--libs", "libuv"], capture_output=True,
                              text=True).stdout.split() or ["-luv"]
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", out, src] + libs, check=True)
    return out


def build_go(src, out):
    """Builds a single-file Go peer into out when stale; the build cache and
    GOPATH go to /tmp so a root-less or HOME-less run still builds."""
    if stale(out, src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        env = dict(os.environ, GO111MODULE="off")
        env.setdefault("GOCACHE", "/tmp/corio-bench-gocache")
        env.setdefault("GOPATH", "/tmp/corio-bench-gopath")
        subprocess.run(["go", "build", "-o", out, src], check=True, env=env)
    return out
