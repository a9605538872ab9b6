#!/usr/bin/python3
"""corio benchmark driver.

Runs every implementation of each workload `--rounds` times, interleaved
(round 1 of every runtime, then round 2, ...), and prints one Markdown table
per workload: median time, spread, median peak RSS and the ratio to corio
(peer_time / corio_time, so > 1 means corio is faster).

    /usr/bin/python3 bench/run.py [--corio build/corio] [--rounds 5] [--quick]
                                  [--runtimes corio,node,...] [W1 ... W11]

Time is what each program prints (`time=<s>`, measured around the work inside
the program), except W5 (startup) where it is the whole process wall time.

Peak RSS: the kernel's ru_maxrss of a process that was exec'd from this driver
is floored at the *driver's* RSS (~10 MiB), because exec() folds the old
(forked/vforked) address space's high-water mark into the new process's
maxrss.  That would hide the real footprint of small runtimes (lua5.4 starts
at ~2 MiB).  So each child is started through GNU time (`/usr/bin/time`, a
~1 MiB process), which forks the real program itself and reports its
wait4() ru_maxrss.  Without GNU time we fall back to our own os.wait4()
rusage and say so.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PEERS = os.path.join(BENCH, "peers")


def lcg_check(n=100000):
    x, total = 42, 0
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2**31
        total += x % 1001
    return str(total)


# name -> (title, file base name, expected check= value or None, timing source)
WORKLOADS = {
    "W1": ("spawn 1,000,000 tasks, await all in order", "w1_spawn",
           "500000500000", "internal"),
    "W2": ("1,000 tasks x 1,000 yields to the event loop", "w2_yield",
           "1000000", "internal"),
    "W3": ("100,000 tasks sleeping 0-1000 ms (LCG seed 42), await all",
           "w3_sleep", lcg_check(), "internal"),
    "W5": ("startup: empty program, whole-process wall time", "w5_empty",
           None, "wall"),
    "W6": ("1,000,000 items through Queue(1), one producer and one consumer task",
           "w6_queue", "500000500000", "internal"),
    "W7": ("100 tasks x 1,000 acquisitions of one shared Lock, yield() inside",
           "w7_lock", "100000", "internal"),
    "W10": ("executor: primes below 5,000,000 by trial division as two jobs, on 1 "
            "then 2 workers; then 10,000 empty jobs one at a time", "w10_executor",
            "348513", "internal"),
    "W8": ("read 10,000 files of 1 KiB, 64 reads in flight", "w8_readfiles",
           "10240000", "internal"),
    "W9": ("spawn 1,000 `true` processes, 16 at a time", "w9_spawn",
           "1000", "internal"),
    "W11": ("copy a 1 GiB file", "w11_copy", str(1 << 30), "internal"),
}
# W5 first: it is cheap and W3's bytes-per-task column needs its RSS baseline.
RUN_ORDER = ["W5", "W1", "W2", "W3", "W6", "W7", "W8", "W9", "W10", "W11"]
W3_TASKS = 100000
W5_ROUND_FACTOR = 5   # W5 runs are ~10-100 ms: take 5x as many samples

RUNTIME_ORDER = ["corio", "node", "asyncio", "uvloop", "luv", "cqueues", "lua", "c"]
RUNTIME_LABEL = {
    "corio": "corio",
    "node": "node",
    "asyncio": "python asyncio",
    "uvloop": "python uvloop",
    "luv": "lua5.4 + luv",
    "cqueues": "lua5.4 + cqueues",
    "lua": "lua5.4 (plain, no loop)",
    "c": "C on libuv (W11: cp)",
}
# native references: a C program on libuv (built on first use), or cp(1)
NATIVE = {"W8": "w8_readfiles.c", "W9": "w9_spawn.c", "W11": "w11_copy_cp.sh"}
# workloads cqueues has no implementation of (no file pool, no spawn)
NO_CQUEUES = {"W8", "W9", "W11"}
# W11's source file, made once by the driver and removed at the end
BIG_FILE = os.environ.get("CORIO_BENCH_1G", "/tmp/corio-bench-1g.bin")
# plain Lua reference exists only for these workloads
PLAIN_LUA = {"W2": "w2_plain_lua.lua", "W3": "w3_plain_lua.lua",
             "W5": "w5_plain_lua.lua"}


def first_existing(*cands):
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
        if c and not os.path.isabs(c):
            w = shutil.which(c)
            if w:
                return w
    return None


class Runtimes:
    """Resolves interpreters, probes modules once, builds argv per workload."""

    def __init__(self, args):
        self.corio = os.path.join(ROOT, args.corio) if not os.path.isabs(args.corio) else args.corio
        self.node = first_existing(args.node, "/usr/bin/node", "node")
        self.python = first_existing(args.python, "/usr/bin/python3")
        self.lua = first_existing(args.lua, "/usr/bin/lua5.4", "lua5.4")
        self.timeout = args.timeout
        self._probe = {}

    def probe(self, rt):
        """Return None if runtime `rt` is usable, else a reason string."""
        if rt in self._probe:
            return self._probe[rt]
        why = None
        if rt == "corio":
            if not (os.path.isfile(self.corio) and os.access(self.corio, os.X_OK)):
                why = "binary %s not found (build it first)" % os.path.relpath(self.corio, ROOT)
        elif rt == "node":
            why = None if self.node else "node not found"
        elif rt in ("asyncio", "uvloop"):
            if not self.python:
                why = "/usr/bin/python3 not found"
            elif rt == "uvloop":
                why = self._try([self.python, "-c", "import uvloop"], "python module uvloop missing")
        elif rt == "c":
            why = None if shutil.which("cc") else "cc not found"
        elif rt in ("luv", "cqueues", "lua"):
            if not self.lua:
                why = "lua5.4 not found"
            elif rt != "lua":
                why = self._try([self.lua, "-e", 'require "%s"' % rt], "lua module %s missing" % rt)
        self._probe[rt] = why
        return why

    @staticmethod
    def _try(argv, msg):
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            return None if r.returncode == 0 else msg
        except (OSError, subprocess.TimeoutExpired):
            return msg

    def argv(self, rt, w):
        """argv for runtime `rt` on workload `w`, or None if it has no implementation."""
        base = WORKLOADS[w][1]
        if rt == "corio":
            return [self.corio, os.path.join("bench", base + ".lua")]
        if rt == "node":
            return [self.node, os.path.join(PEERS, base + ".js")]
        if rt in ("asyncio", "uvloop"):
            return [self.python, os.path.join(PEERS, base + ".py"), rt]
        if rt == "cqueues" and w in NO_CQUEUES:
            return None
        if rt in ("luv", "cqueues"):
            return [self.lua, os.path.join(PEERS, "%s_%s.lua" % (base, rt))]
        if rt == "lua":
            return [self.lua, os.path.join(PEERS, PLAIN_LUA[w])] if w in PLAIN_LUA else None
        if rt == "c":
            return self.native(w) if w in NATIVE else None
        raise ValueError(rt)

    def native(self, w):
        """argv of the native reference of w; builds a C peer if stale."""
        src = os.path.join(PEERS, NATIVE[w])
        if src.endswith(".sh"):
            return ["/bin/sh", src]
        exe = os.path.join(ROOT, "build", "bench", NATIVE[w][:-2])
        if not os.path.isfile(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            os.makedirs(os.path.dirname(exe), exist_ok=True)
            subprocess.run(["cc", "-O2", "-o", exe, src, "-luv"], check=False)
        return [exe, src]


GNU_TIME = "/usr/bin/time"
RSS_RE = re.compile(r"^MAXRSS_KB=(\d+)\s*$", re.M)
TIME_RE = re.compile(r"\btime=([-+0-9.eE]+)")
CHECK_RE = re.compile(r"\bcheck=(\S+)")
# W10 prints more than one figure: 1-worker and 2-worker times, round trip.
EXTRA_RE = re.compile(r"\b(t1|t2|rtt_us)=([-+0-9.eE]+)")


def have_gnu_time():
    if not os.access(GNU_TIME, os.X_OK):
        return False
    try:
        r = subprocess.run([GNU_TIME, "-f", "MAXRSS_KB=%M", "true"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
        return r.returncode == 0 and RSS_RE.search(r.stderr.decode(errors="replace")) is not None
    except (OSError, subprocess.TimeoutExpired):
        return False


class Result:
    def __init__(self, ok, time=None, rss_kb=None, error=None, extra=None):
        self.ok, self.time, self.rss_kb, self.error = ok, time, rss_kb, error
        self.extra = extra or {}


CURRENT_CHILD = [None]


def run_child(argv, timeout, use_gnu_time):
    """Run argv from ROOT; return (exit_status_text|None, stdout, stderr, wall_s, rss_kb)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as rssf:
        full = ([GNU_TIME, "-q", "-f", "MAXRSS_KB=%M", "-o", rssf.name] + argv) if use_gnu_time else argv
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass

        t0 = time.perf_counter()
        p = subprocess.Popen(full, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)
        CURRENT_CHILD[0] = p
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
            CURRENT_CHILD[0] = None
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped ourselves
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        rss_kb = ru.ru_maxrss
        if use_gnu_time:
            m = RSS_RE.search(rssf.read())
            rss_kb = int(m.group(1)) if m else None
        if killed:
            failure = "timed out after %g s" % timeout
        elif p.returncode != 0:
            failure = ("killed by signal %d" % -p.returncode) if p.returncode < 0 \
                else "exit status %d" % p.returncode
        else:
            failure = None
        return failure, stdout, stderr, wall, rss_kb


def measure(argv, w, timeout, use_gnu_time):
    try:
        failure, stdout, stderr, wall, rss_kb = run_child(argv, timeout, use_gnu_time)
    except OSError as e:
        return Result(False, error="cannot start: %s" % e)
    if failure:
        tail = stderr.strip().splitlines()[-1:] or [""]
        return Result(False, error=("%s %s" % (failure, tail[0][:120])).strip())
    want = WORKLOADS[w][2]
    if want is not None:
        m = CHECK_RE.search(stdout)
        if not m or m.group(1) != want:
            return Result(False, error="bad check: got %s, want %s" % (m.group(1) if m else "none", want))
    if WORKLOADS[w][3] == "wall":
        t = wall
    else:
        m = TIME_RE.search(stdout)
        if not m:
            return Result(False, error="no time= line in output")
        t = float(m.group(1))
    extra = {k: float(v) for k, v in EXTRA_RE.findall(stdout)}
    return Result(True, t, rss_kb, extra=extra)


def fmt_time(t, w):
    if t is None:
        return "n/a"
    return "%.1f ms" % (t * 1e3) if w == "W5" else "%.3f s" % t


def mib(kb):
    return "%.1f" % (kb / 1024.0) if kb is not None else "n/a"


def summarize(samples):
    times = [r.time for r in samples if r.ok]
    rss = [r.rss_kb for r in samples if r.ok and r.rss_kb is not None]
    return (statistics.median(times) if times else None,
            min(times) if times else None, max(times) if times else None,
            statistics.median(rss) if rss else None)


def print_table(w, impls, results, skipped, w5_rss, rss_note):
    title = WORKLOADS[w][0]
    stats = {rt: summarize(results[rt]) for rt in impls if results.get(rt)}
    corio_t = stats.get("corio", (None,))[0]
    cols = ["runtime", "median time", "min - max", "peak RSS (MiB)", "vs corio"]
    if w == "W3":
        cols.append("bytes/task")
    if w == "W10":
        cols += ["1 worker", "2 workers", "speed-up", "empty job round trip"]
    print("\n### %s: %s\n" % (w, title))
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    for rt in impls:
        label = RUNTIME_LABEL[rt]
        if rt in skipped:
            print("| %s | n/a | | | |%s" % (label, " |" if w == "W3" else
                                          " | | | |" if w == "W10" else ""))
            continue
        med, lo, hi, rss = stats[rt]
        n = len([r for r in results[rt] if r.ok])
        ratio = "%.2fx" % (med / corio_t) if (med is not None and corio_t) else "-"
        row = [label, fmt_time(med, w),
               "%s - %s" % (fmt_time(lo, w), fmt_time(hi, w)) if n > 1 else "(1 run)",
               mib(rss), ratio]
        if w == "W3":
            base = w5_rss.get(rt)
            row.append("%.0f" % ((rss - base) * 1024.0 / W3_TASKS)
                       if rss is not None and base is not None else "n/a")
        if w == "W10":
            def med(key):
                v = [r.extra[key] for r in results[rt] if r.ok and key in r.extra]
                return statistics.median(v) if v else None
            t1, t2, rtt = med("t1"), med("t2"), med("rtt_us")
            row += [fmt_time(t1, w), fmt_time(t2, w),
                    "%.2fx" % (t1 / t2) if t1 and t2 else "n/a",
                    "%.1f us" % rtt if rtt is not None else "n/a"]
        print("| " + " | ".join(row) + " |")
    for rt in impls:
        if rt in skipped:
            print("\n- %s: n/a - %s" % (RUNTIME_LABEL[rt], skipped[rt]), end="")
    if skipped:
        print()
    if w == "W3":
        print("\nbytes/task = (median peak RSS of W3 - median peak RSS of the same runtime's W5 run)"
              " / %d." % W3_TASKS)
    if w == "W10":
        print("\nspeed-up = 1-worker time / 2-worker time (median of each). corio and luv run"
              " the same Lua code on worker threads; node uses worker_threads; python uses a"
              " ProcessPoolExecutor awaited with run_in_executor.")
    if w == "W5":
        print("\nTime is whole-process wall time as seen by the driver (includes exec of the"
              " %s wrapper, ~1 ms, equally for all)." % ("GNU time" if rss_note is None else "no"))
    if rss_note:
        print("\nNote: %s" % rss_note)
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workloads", nargs="*", metavar="W", help="W1 W2 W3 W5 W6 W7 W8 W9 W10 W11 (default: all)")
    ap.add_argument("--corio", default="build/corio", help="corio binary (default build/corio)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-child timeout in s")
    ap.add_argument("--runtimes", default=",".join(RUNTIME_ORDER),
                    help="comma-separated subset of: " + ",".join(RUNTIME_ORDER))
    ap.add_argument("--node")
    ap.add_argument("--python", help="python with uvloop (default /usr/bin/python3)")
    ap.add_argument("--lua")
    args = ap.parse_args()
    rounds = 1 if args.quick else max(1, args.rounds)

    wanted = [w.upper() for w in args.workloads] or list(WORKLOADS)
    bad = [w for w in wanted if w not in WORKLOADS]
    if bad:
        ap.error("unknown workload(s): %s" % " ".join(bad))
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    bad = [r for r in runtimes if r not in RUNTIME_ORDER]
    if bad:
        ap.error("unknown runtime(s): %s" % " ".join(bad))
    runtimes = [r for r in RUNTIME_ORDER if r in runtimes]
    todo = [w for w in RUN_ORDER if w in wanted]
    if "W3" in todo and "W5" not in todo:
        todo.insert(0, "W5")  # baseline for W3 bytes/task
        print("(W3 needs the W5 RSS baseline: running W5 too)", file=sys.stderr)

    rt = Runtimes(args)
    use_gnu_time = have_gnu_time()
    rss_note = None if use_gnu_time else (
        "GNU time not found: peak RSS is the driver's own os.wait4() ru_maxrss, which the kernel "
        "floors at the driver's RSS (~10 MiB); small runtimes are over-reported.")

    print("# corio benchmarks\n")
    print("rounds: %d (interleaved; W5: %d), timeout %g s, host: %s, %d CPU(s)"
          % (rounds, rounds * W5_ROUND_FACTOR, args.timeout, os.uname().nodename, os.cpu_count()))
    w5_rss = {}
    for w in todo:
        if w == "W11":
            make_big_file()
        impls, skipped, results = [], {}, {}
        for r in runtimes:
            argv = rt.argv(r, w)
            if argv is None:
                continue
            impls.append(r)
            why = rt.probe(r)
            script = argv[1] if r != "corio" else os.path.join(ROOT, argv[1])
            if why is None and not os.path.isfile(script):
                why = "program %s missing" % os.path.relpath(script, ROOT)
            if why:
                skipped[r] = why
            else:
                results[r] = []
        n_rounds = rounds * W5_ROUND_FACTOR if w == "W5" else rounds
        if w == "W5":  # one discarded warm-up run each (page cache, dynamic loader)
            for r in list(results):
                measure(rt.argv(r, w), w, args.timeout, use_gnu_time)
        for i in range(n_rounds):
            for r in list(results):
                res = measure(rt.argv(r, w), w, args.timeout, use_gnu_time)
                print("[%s round %d/%d] %-24s %s" % (
                    w, i + 1, n_rounds, RUNTIME_LABEL[r],
                    "%s, %s MiB" % (fmt_time(res.time, w), mib(res.rss_kb)) if res.ok
                    else "FAILED: " + res.error), file=sys.stderr)
                if res.ok:
                    results[r].append(res)
                else:  # don't keep re-running a broken implementation
                    skipped[r] = res.error
                    del results[r]
        if w == "W5":
            w5_rss = {r: summarize(v)[3] for r, v in results.items()}
        print_table(w, impls, results, skipped, w5_rss, rss_note)
        if w == "W11":
            try:
                os.unlink(BIG_FILE)
            except OSError:
                pass


def make_big_file():
    """W11's 1 GiB source: random bytes (so nothing is sparse or cheap)."""
    if os.path.isfile(BIG_FILE) and os.path.getsize(BIG_FILE) == 1 << 30:
        return
    chunk = os.urandom(1 << 20)
    with open(BIG_FILE + ".tmp", "wb") as f:
        for i in range(1024):
            f.write(chunk[i:] + chunk[:i])
    os.rename(BIG_FILE + ".tmp", BIG_FILE)
    os.sync()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        p = CURRENT_CHILD[0]
        if p is not None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        sys.exit(130)
