"""Random scenarios for the differential test (see README.md).

A scenario is a JSON tree that tests/diff/run_asyncio.py and
tests/diff/run_corio.lua both execute.  generate(seed) is deterministic:
the same seed gives the same scenario on every machine.

Delays are whole (virtual) seconds: the j-th timed statement of a scenario
waits k*4096 + 2**j seconds (k in 1..8, j < 12).  Every instant is then the
sum of a set of distinct delays, and its low 12 bits tell which: two timers
of a scenario never fall due at the same instant unless one causes the
other, so the outcome never hangs on how a loop orders simultaneous timers.
"""
import random

MAX_TIMED = 12
UNIT = 4096


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.timed = 0
        self.ids = 0
        self.tasks = 0
        self.names = []          # every task name made so far (for cancel)
        self.stmts = 0

    def delay(self):
        if self.timed >= MAX_TIMED:
            return None
        j = self.timed
        self.timed += 1
        return self.r.randint(1, 8) * UNIT + 2 ** j

    def sid(self):
        self.ids += 1
        return "s%d" % self.ids

    def newtask(self):
        self.tasks += 1
        n = "t%d" % self.tasks
        return n

    def block(self, depth, own, me):
        """A list of statements; own: names this task spawned (awaitable)."""
        r = self.r
        out = []
        for _ in range(r.randint(1, 4 if depth < 3 else 2)):
            if self.stmts > 40:
                break
            self.stmts += 1
            out.append(self.stmt(depth, own, me))
        return out

    def stmt(self, depth, own, me):
        r = self.r
        kinds = ["sleep", "sleep", "wait", "set", "set", "raise", "cancel"]
        if own:
            kinds += ["await"]
        if depth < 4:
            kinds += ["spawn", "timeout", "timeout", "wait_for", "shield",
                      "group", "try", "try"]
        k = r.choice(kinds)
        i = self.sid()
        if k in ("sleep",):
            d = self.delay()
            if d is None:
                return ["set", i, r.choice(EVENTS)]
            return ["sleep", i, d]
        if k == "wait":
            return ["wait", i, r.choice(EVENTS)]
        if k == "set":
            return ["set", i, r.choice(EVENTS)]
        if k == "raise":
            return ["raise", i, "x" + i[1:]]
        if k == "cancel":
            # mostly tasks made earlier; sometimes the current task itself
            if self.names and r.random() < 0.9:
                return ["cancel", i, r.choice(self.names)]
            return ["cancel", i, me]
        if k == "await":
            return ["await", i, r.choice(own)]
        if k == "spawn":
            n = self.newtask()
            self.names.append(n)
            body = self.block(depth + 1, [], n)
            own.append(n)
            return ["spawn", i, n, body]
        if k == "timeout":
            d = self.delay()
            if d is None:
                return ["try", i, self.block(depth + 1, own, me)]
            return ["timeout", i, d, self.block(depth + 1, own, me)]
        if k == "wait_for":
            d = self.delay()
            n = self.newtask()
            self.names.append(n)
            body = self.block(depth + 1, [], n)
            return ["wait_for", i, d if d is not None else UNIT * 100, n, body]
        if k == "shield":
            n = self.newtask()
            self.names.append(n)
            body = self.block(depth + 1, [], n)
            return ["shield", i, n, body]
        if k == "group":
            kids = []
            for _ in range(r.randint(1, 3)):
                n = self.newtask()
                self.names.append(n)
                kids.append([n, self.block(depth + 1, [], n)])
            return ["group", i, kids, self.block(depth + 1, own, me)]
        if k == "try":
            return ["try", i, self.block(depth + 1, own, me)]
        raise AssertionError(k)


EVENTS = ["e1", "e2"]


def generate(seed):
    g = Gen(seed)
    body = g.block(0, [], "t0")
    horizon = 1024 * UNIT          # past every instant a scenario reaches
    return {"seed": seed, "events": EVENTS, "main": body, "horizon": horizon}
