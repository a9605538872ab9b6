"""Runs scenarios (a JSON list on stdin or in a file) on Python's asyncio,
with a virtual clock, and prints one JSON trace per scenario.

The loop's clock only moves when the loop would sleep: the selector finds
nothing ready and jumps the clock to the next timer.  See README.md.
"""
import asyncio
import json
import selectors
import sys
from asyncio.timeouts import _State as TState


class VirtualSelector(selectors.DefaultSelector):
    def __init__(self):
        super().__init__()
        self.now = 1000.0
        self.loop = None

    def select(self, timeout=None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        sched = self.loop._scheduled
        if sched:                       # jump to the next timer (the loop
            when = sched[0].when()      # caps its timeout at 24 h)
            if when > self.now:
                self.now = when
            return ready
        if timeout is None:
            return super().select(None)
        self.now += timeout
        return ready


class Task313(asyncio.tasks._PyTask):
    """A task with Python 3.13's uncancel(), which corio's follows
    (docs/API-composition.md, corio.timeout): when the count drops to 0,
    a request not delivered yet is withdrawn.  3.11
    leaves it pending, so a scope or group that took its own request back
    could still leave a CancelledError for the next await.  (The C Task
    does not let _must_cancel be written: this is the Python one.)"""

    def uncancel(self):
        keep = self.__dict__.pop("_keep_pending", False)  # TaskGroup313
        n = super().uncancel()
        if n == 0 and not keep:
            self._must_cancel = False
        return n


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        sel = VirtualSelector()
        super().__init__(sel)
        sel.loop = self
        self._vsel = sel
        # Delays are whole seconds and the clock reaches ~2**24 s, where a
        # float ulp is ~4e-9: a finer resolution would leave a timer due
        # "now" unpopped forever (asyncio pops when < now + resolution).
        self._clock_resolution = 1e-3
        self.set_task_factory(lambda loop, coro: Task313(coro, loop=loop))

    def time(self):
        return self._vsel.now


class Timeout312(asyncio.Timeout):
    """asyncio.timeout with Python 3.12's exit rule (gh-102780), which corio
    follows (docs/API-composition.md, "Checked against asyncio"): at exit an
    expired scope turns CancelledError into TimeoutError when, after taking
    its own request back, no more cancel requests are left than there were
    when it was entered.  3.11 demands none at all, so once a task has
    swallowed a CancelledError no timeout in it ever reports TimeoutError."""

    async def __aenter__(self):
        r = await super().__aenter__()
        self._level = self._task.cancelling()
        return r

    async def __aexit__(self, et, exc, tb):
        if self._timeout_handler is not None:
            self._timeout_handler.cancel()
            self._timeout_handler = None
        if self._state is TState.EXPIRING:
            self._state = TState.EXPIRED
            if (self._task.uncancel() <= self._level and et is not None
                    and issubclass(et, asyncio.CancelledError)):
                raise TimeoutError from exc
        elif self._state is TState.ENTERED:
            self._state = TState.EXITED
        return None


def timeout312(delay):
    return Timeout312(asyncio.get_running_loop().time() + delay)


async def wait_for312(aw, delay):
    """Python 3.12's wait_for (gh-96764): a timeout scope around the await.
    3.11's own wait_for returns the result and drops the caller's
    cancellation when the awaited task is done by the time the cancel is
    delivered; 3.12's and corio's raise CancelledError.  (Delays here are
    always > 0, so 3.12's special case for delay <= 0 is not needed.)"""
    async with timeout312(delay):
        return await aw


class TaskSet(dict):
    """The set of a TaskGroup's children, in the order they were created.
    TaskGroup keeps them in a set() and cancels them in its iteration
    order, which follows the tasks' addresses: the order in which the
    children see their CANCELLED then depends on what the process
    allocated before (the same scenario gave another trace after another
    scenario).  corio cancels a group's children in the order they were
    spawned; so does this."""

    def add(self, t):
        self[t] = None

    def discard(self, t):
        self.pop(t, None)


class TaskGroup313(asyncio.TaskGroup):
    """asyncio.TaskGroup with corio's rule "a child failure does not cancel
    a body that is already waiting for the group" (docs/API-composition.md,
    corio.group; "Checked against asyncio"), and its children cancelled in
    spawn order (TaskSet).  asyncio cancels the task even while it waits in
    __aexit__: that only wakes it earlier (it goes on waiting), which
    changes the order of what runs at that instant, and 3.11 leaves that
    request counted for ever (its uncancel() ran at the top of __aexit__;
    gh-116720, fixed in 3.13), so that no timeout scope around the group
    reported TimeoutError any more.  Here a child failing during __aexit__
    cancels the other children only."""

    def __init__(self):
        super().__init__()
        self._tasks = TaskSet()

    async def __aenter__(self):
        r = await super().__aenter__()
        # The requests the task had seen: corio's group level (compose.lua
        # level_of), without one still pending.
        task = self._parent_task
        self._level = task.cancelling() - (1 if task._must_cancel else 0)
        return r

    async def __aexit__(self, et, exc, tb):
        """Python 3.13's rule for a cancelled group with errors (gh-116720):
        3.11 raises the ExceptionGroup and drops the cancellation; 3.13
        requests it again (uncancel(), cancel(): the count is unchanged)
        so that it reaches the task's next await, as corio does.  Narrowed
        as corio's rule is: only when this exit received a cancellation
        (the body's CancelledError, a request pending as the exit began,
        delivered into its wait, or one made while it waited) and requests
        newer than the group are left once it took its own back (3.13:
        any request left, also one delivered and swallowed before the
        group was entered)."""
        task = self._parent_task
        own = 1 if self._parent_cancel_requested else 0
        c0, pending = task.cancelling(), task._must_cancel
        if own:
            # 3.11 takes its own request back at the top of the exit, 3.13
            # after the wait; either way a pending request is delivered
            # into the wait (one loop turn), which 3.13's uncancel() at
            # the top would have withdrawn: that first call keeps it, and
            # what 3.13's call after the wait withdraws is withdrawn then.
            task._keep_pending = True

        def taken_back():
            task.__dict__.pop("_keep_pending", None)
            if own and task.cancelling() == 0:
                task._must_cancel = False

        try:
            r = await super().__aexit__(et, exc, tb)
        except BaseExceptionGroup:
            taken_back()
            body = et is not None and issubclass(et, asyncio.CancelledError)
            n = task.cancelling()
            if n > self._level and (body or pending or n > c0 - own):
                task.uncancel()
                task.cancel()
            raise
        except BaseException:
            taken_back()
            raise
        taken_back()
        return r

    def _on_task_done(self, task):
        if not self._exiting or self._parent_cancel_requested:
            return super()._on_task_done(task)
        # The flag makes the base class leave the parent alone (and skip
        # its abort, done here instead); it is read nowhere else from now.
        self._parent_cancel_requested = True
        try:
            super()._on_task_done(task)
        finally:
            self._parent_cancel_requested = False
        if (not task.cancelled() and task.exception() is not None
                and not self._aborting):
            self._abort()


class UserError(Exception):
    def __init__(self, tag):
        super().__init__(tag)
        self.tag = tag


def kind(e):
    if isinstance(e, BaseExceptionGroup):
        return kind(e.exceptions[0])
    if isinstance(e, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(e, TimeoutError):
        return "TIMEOUT"
    if isinstance(e, UserError):
        return "E:" + e.tag
    return "OTHER:" + type(e).__name__ + ":" + str(e)


class Scenario:
    def __init__(self, sc, loop):
        self.sc = sc
        self.loop = loop
        self.trace = []
        self.tasks = {}
        self.order = []
        self.events = {e: asyncio.Event() for e in sc["events"]}
        self.t0 = loop.time()

    def rec(self, me, sid, what):
        self.trace.append([round(self.loop.time() - self.t0), me, sid, what])

    def spawn(self, name, body, tg=None):
        coro = self.task_main(name, body)
        t = tg.create_task(coro) if tg else asyncio.ensure_future(coro)
        self.tasks[name] = t
        self.order.append(name)
        return t

    async def task_main(self, name, body):
        try:
            await self.block(body, name)
        except BaseException as e:
            self.rec(name, "end", kind(e))
            raise
        self.rec(name, "end", "ok")
        return "r:" + name

    async def block(self, body, me):
        for st in body:
            await self.stmt(st, me)

    async def stmt(self, st, me):
        op, sid = st[0], st[1]
        try:
            res = await self.do(op, st, me)
        except BaseException as e:
            self.rec(me, sid, kind(e))
            raise
        self.rec(me, sid, "ok" if res is None else "ok:" + str(res))

    async def do(self, op, st, me):
        if op == "sleep":
            await asyncio.sleep(st[2])
        elif op == "wait":
            await self.events[st[2]].wait()
        elif op == "set":
            self.events[st[2]].set()
        elif op == "raise":
            raise UserError(st[2])
        elif op == "cancel":
            t = self.tasks.get(st[2])
            if t is None:
                return "none"
            return "true" if t.cancel() else "false"
        elif op == "await":
            if st[2] not in self.tasks:     # its spawn was skipped
                raise UserError("unspawned")
            return await self.tasks[st[2]]
        elif op == "spawn":
            self.spawn(st[2], st[3])
        elif op == "timeout":
            async with timeout312(st[2]):
                await self.block(st[3], me)
        elif op == "wait_for":
            t = self.spawn(st[3], st[4])
            return await wait_for312(t, st[2])
        elif op == "shield":
            t = self.spawn(st[2], st[3])
            return await asyncio.shield(t)
        elif op == "group":
            async with TaskGroup313() as tg:
                for name, body in st[2]:
                    self.spawn(name, body, tg)
                await self.block(st[3], me)
        elif op == "try":
            try:
                await self.block(st[2], me)
            except BaseException as e:
                return "caught " + kind(e)
        else:
            raise AssertionError(op)

    async def run(self):
        self.spawn("t0", self.sc["main"])
        # Rounds of: wait past every instant, cancel what is left.  A task
        # that swallows its CANCELLED and waits again gets another round;
        # after 4 rounds and a last wait, what is left stays (the runner
        # moves on).
        for round in range(1, 6):
            await asyncio.sleep(self.sc["horizon"])
            left = [n for n in self.order if not self.tasks[n].done()]
            if not left or round == 5:      # 5: what is left stays
                break
            self.trace.append(["horizon", left])
            for n in left:
                self.tasks[n].cancel()
        # A copy: tasks woken before the loop stops would add to it.
        return list(self.trace)


async def main(scs):
    loop = asyncio.get_running_loop()
    out = []
    for sc in scs:
        out.append({"seed": sc["seed"], "trace": await Scenario(sc, loop).run()})
    return out


def run_all(scs):
    loop = VirtualLoop()
    # An unawaited task error is reported by the loop: keep it quiet (the
    # trace has it already).
    loop.set_exception_handler(lambda loop, ctx: None)
    try:
        return loop.run_until_complete(main(scs))
    finally:
        loop.close()


if __name__ == "__main__":
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    # A fresh loop per scenario: tasks a scenario leaves behind (after
    # its rounds of cancels) cannot disturb the next one.
    for sc in json.load(src):
        for r in run_all([sc]):
            print(json.dumps(r, separators=(",", ":")), flush=True)
