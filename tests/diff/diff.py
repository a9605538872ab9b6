#!/usr/bin/env python3
"""Differential test: random scenarios on corio and on Python's asyncio.

    python3 tests/diff/diff.py [--seed S] [--count N] [--corio build/corio]
                               [--show] [--strict-order]

Scenario i has seed S+i; a divergence prints its seed, and
    python3 tests/diff/diff.py --seed <that seed> --count 1 --show
replays it alone and prints both traces.  See README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import scenarios  # noqa: E402


def per_task(trace):
    """The trace as each task saw it: task -> its records, in order."""
    out = {}
    for r in trace:
        if r[0] == "horizon":
            out.setdefault("*horizon", []).append(sorted(r[1]))
        else:
            out.setdefault(r[1], []).append(r)
    return out


class RunnerFailed(Exception):
    def __init__(self, msg, hung_runner=None, seed=None):
        super().__init__(msg)
        self.hung_runner, self.seed = hung_runner, seed


def hung(runner, out, scs):
    """A runner went past its time: name the scenario it was stuck in (each
    runner prints a trace per scenario as it finishes it)."""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    done = len((out or "").splitlines())
    seed = scs[0]["seed"] + done
    return RunnerFailed("the %s runner hung in scenario seed %d (%d of its "
                        "batch finished before it)" % (runner, seed, done),
                        runner, seed)


# Scenarios per corio process.  corio's clock is the process's virtual
# CLOCK_MONOTONIC (vclock.c), which only moves forward: each scenario
# takes it past its horizon (4.2 million seconds) up to 5 times, and
# libuv's nanosecond clock wraps after 584 years (vclock.c stops the
# process at 146, 4.6e9 s).  150 scenarios stay below 3.2e9 s even if
# every one takes all 5 waits.  (asyncio runs each scenario on a fresh
# loop.)
CORIO_BATCH = 150


def _write(scs):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(scs, f)
        return f.name


def run_both(scs, corio, vclock, timeout=300):
    """Runs the scenarios on corio (in batches of CORIO_BATCH, one process
    each) and on asyncio (one process, alongside); returns both lists of
    traces (one per scenario) or raises RunnerFailed.  timeout: seconds
    each runner may take for all the scenarios."""
    deadline = time.monotonic() + timeout
    path = _write(scs)
    paths = [path]
    py = subprocess.Popen([PYTHON, os.path.join(HERE, "run_asyncio.py"), path],
                          stdout=subprocess.PIPE, text=True)
    try:
        env = dict(os.environ, LD_PRELOAD=vclock)
        L = []
        for i in range(0, len(scs), CORIO_BATCH):
            batch = scs[i:i + CORIO_BATCH]
            bpath = _write(batch)
            paths.append(bpath)
            lua = subprocess.Popen([corio, os.path.join(HERE, "run_corio.lua"),
                                    bpath], stdout=subprocess.PIPE, env=env,
                                   text=True)
            try:
                out, _ = lua.communicate(
                    timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                lua.kill()
                out, _ = lua.communicate()
                raise hung("corio", out, batch)
            if lua.returncode != 0:
                raise RunnerFailed("the corio runner failed (%s) in the batch "
                                   "from seed %d" % (lua.returncode,
                                                     batch[0]["seed"]))
            L += [json.loads(x) for x in out.splitlines()]
        try:
            py_out, _ = py.communicate(
                timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            py.kill()
            py_out, _ = py.communicate()
            raise hung("asyncio", py_out, scs)
    finally:
        if py.poll() is None:
            py.kill()
            py.communicate()
        for p in paths:
            os.unlink(p)
    if py.returncode != 0:
        raise RunnerFailed("the asyncio runner failed (%s); seed %d"
                           % (py.returncode, scs[0]["seed"]))
    P = [json.loads(x) for x in py_out.splitlines()]
    if len(L) != len(scs) or len(P) != len(scs):
        raise RunnerFailed("%d corio traces, %d asyncio traces for %d scenarios;"
                           " seed %d" % (len(L), len(P), len(scs), scs[0]["seed"]))
    return L, P


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("DIFF_SEED", time.time_ns() % 10**9)))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--corio", default=os.path.join(ROOT, "build", "corio"))
    ap.add_argument("--vclock", default=os.path.join(ROOT, "build", "vclock.so"))
    ap.add_argument("--show", action="store_true", help="print every trace")
    ap.add_argument("--strict-order", action="store_true",
                    help="compare the order of records across tasks too")
    ap.add_argument("--max-report", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds each runner may take for all scenarios")
    ap.add_argument("--report-only", action="store_true",
                    help="exit 0 on divergences (still 2 if a runner fails)")
    a = ap.parse_args()

    t_start = time.monotonic()
    scs = [scenarios.generate(a.seed + i) for i in range(a.count)]
    try:
        L, P = run_both(scs, a.corio, a.vclock, a.timeout)
    except RunnerFailed as e:
        print("diff: " + str(e))
        if e.hung_runner:
            print("replay it: python3 tests/diff/diff.py --seed %d --count 1 --show"
                  % e.seed)
        return 2
    bad = []
    for sc, l, p in zip(scs, L, P):
        if a.strict_order:
            same = l["trace"] == p["trace"]
        else:
            same = per_task(l["trace"]) == per_task(p["trace"])
        if a.show or not same:
            if not same:
                bad.append(sc["seed"])
            if a.show or len(bad) <= a.max_report:
                print("== seed %d%s" % (sc["seed"], "" if same else ": DIVERGES"))
                print("scenario:", json.dumps(sc["main"]))
                print("corio:  ", json.dumps(l["trace"]))
                print("asyncio:", json.dumps(p["trace"]))
    took = time.monotonic() - t_start
    print("diff: %d scenarios from seed %d (seeds %d..%d), %d diverge, %.1f s"
          % (a.count, a.seed, a.seed, a.seed + a.count - 1, len(bad), took))
    if bad:
        print("diverging seeds:", " ".join(map(str, bad[:50])))
        print("replay one: python3 tests/diff/diff.py --seed %d --count 1 --show" % bad[0])
        return 0 if a.report_only else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
