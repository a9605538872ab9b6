#!/usr/bin/env python3
"""Buckets diverging scenarios by their first differing record.

    python3 tests/diff/triage.py [--seed S] [--count N] [--examples K]

For each diverging scenario, takes the first task (in spawn order) whose
records differ, and the first record where they differ; the bucket is the
statement kind there (sleep, await, group, ...) with what each side saw,
task names and error tags generalised (`ok:r:t3` -> `ok:r:T`, `E:x7` ->
`E:X`).  Prints the buckets, largest first, with a few seeds each: replay
one with `python3 tests/diff/diff.py --seed N --count 1 --show`.
"""
import argparse
import os
import re
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import diff       # noqa: E402
import scenarios  # noqa: E402


def ops(body, out):
    """sid -> statement kind, over the whole scenario tree."""
    for st in body:
        out[st[1]] = st[0]
        for x in st[2:]:
            if isinstance(x, list):
                if x and isinstance(x[0], list) and x[0] and \
                        isinstance(x[0][0], str) and re.match(r"t\d+$", x[0][0]):
                    for kid in x:                  # a group's [name, body]s
                        ops(kid[1], out)
                elif x and isinstance(x[0], list):
                    ops(x, out)
    return out


def general(what):
    if what is None:
        return "-"
    if not isinstance(what, str):
        return str(what)
    what = re.sub(r"r:t\d+", "r:T", what)
    return re.sub(r"E:x\d+", "E:X", what)


def first_difference(sc, l, p):
    """(bucket, detail) for one diverging scenario."""
    L, P = diff.per_task(l["trace"]), diff.per_task(p["trace"])
    kinds = ops(sc["main"], {})
    names = sorted(set(L) | set(P), key=lambda n: (n[0] == "*", len(n), n))
    for n in names:
        a, b = L.get(n, []), P.get(n, [])
        if a == b:
            continue
        if n == "*horizon":
            return "horizon %s / %s" % (len(a), len(b)), (n, a, b)
        for i in range(max(len(a), len(b))):
            ra = a[i] if i < len(a) else None
            rb = b[i] if i < len(b) else None
            if ra == rb:
                continue
            if ra and rb and ra[2] != rb[2]:
                return ("order: %s(%s) / %s(%s)" % (
                    kinds.get(ra[2], ra[2]), general(ra[3]),
                    kinds.get(rb[2], rb[2]), general(rb[3])), (n, ra, rb))
            r = ra or rb
            kind = kinds.get(r[2], r[2])
            if ra and rb and ra[3] == rb[3]:
                return "%s: time %s / %s" % (kind, ra[0], rb[0]), (n, ra, rb)
            return ("%s: corio %s / asyncio %s" % (
                kind, general(ra and ra[3]), general(rb and rb[3])),
                (n, ra, rb))
    return "?", None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--corio", default=os.path.join(diff.ROOT, "build", "corio"))
    ap.add_argument("--vclock", default=os.path.join(diff.ROOT, "build", "vclock.so"))
    a = ap.parse_args()
    scs = [scenarios.generate(a.seed + i) for i in range(a.count)]
    L, P = diff.run_both(scs, a.corio, a.vclock)
    buckets = defaultdict(list)
    for sc, l, p in zip(scs, L, P):
        if diff.per_task(l["trace"]) != diff.per_task(p["trace"]):
            b, _ = first_difference(sc, l, p)
            buckets[b].append(sc["seed"])
    total = sum(len(v) for v in buckets.values())
    print("%d of %d scenarios diverge (seeds %d..%d)"
          % (total, a.count, a.seed, a.seed + a.count - 1))
    for b, seeds in sorted(buckets.items(), key=lambda kv: -len(kv[1])):
        print("%5d  %s   e.g. %s" % (len(seeds), b,
                                     " ".join(map(str, seeds[:a.examples]))))


if __name__ == "__main__":
    main()
