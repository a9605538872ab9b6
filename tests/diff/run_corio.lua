-- Runs scenarios (a JSON list in the file named by arg[1]) on corio and
-- prints one JSON trace per scenario, as tests/diff/run_asyncio.py does
-- on asyncio.  Run it under tests/diff/vclock.c (LD_PRELOAD) so that time
-- is virtual: see README.md.
local corio = require "corio"
local json = corio.json
local Event = corio.sync.Event

local function kind(e)
  if type(e) == "table" and e.user then return "E:" .. e.user end
  if corio.Error.is(e) then return e.code end
  return "OTHER:" .. tostring(e)
end

-- Normalisation of the documented rule "a cancel racing a completion"
-- (docs/API-composition.md, "Checked against asyncio"): when a cancel
-- request reaches a task whose await has already been woken with a value
-- or an error (a sleep's end, an Event, a task's or future's outcome, a
-- group's last child), corio delivers that and raises CANCELLED at the
-- next await,
-- and a task whose function returns first ends with its result; asyncio
-- raises CANCELLED from that await, and such a task ends cancelled.  The
-- runner applies asyncio's outcome at exactly these points, and only when
-- the request was made during that await and is still pending (the
-- runtime's flag, core._cancel_pending): it delivers it at once (an await
-- with a request pending raises without a loop turn).
local core = require "corio.core"
local cancel_pending = core._cancel_pending

local function deliver(task, before)
  if task:cancelling() > before and cancel_pending(task) then
    local ok, e = pcall(corio.yield)
    assert(not ok, "a pending cancel was not delivered")
    return e
  end
end

local Scenario = {}
Scenario.__index = Scenario

local function new_scenario(sc)
  local self = setmetatable({ sc = sc, trace = {}, tasks = {}, order = {},
                              events = {}, awaiter = {}, at_done = {}, scopes = {},
                              t0 = corio.now() }, Scenario)
  for _, e in ipairs(sc.events) do self.events[e] = Event() end
  return self
end

function Scenario:rec(me, sid, what)
  local t = math.floor(corio.now() - self.t0 + 0.5)
  self.trace[#self.trace + 1] = { t, me, sid, what }
end

function Scenario:task_main(name, body)
  local ok, e = pcall(self.block, self, body, name)
  if ok then
    self:rec(name, "end", "ok")
    -- A request pending as the function returns (normalised as above;
    -- any request counts: the task did not await since it was made).
    local task = corio.current()
    if cancel_pending(task) then ok, e = false, deliver(task, -1) end
  else
    self:rec(name, "end", kind(e))
  end
  -- The count of the task awaiting this one as it finishes: requests
  -- made before were passed on to this task, later ones race its
  -- completion (see awaited_outcome).
  local w = self.awaiter[name]
  if w then self.at_done[name] = w:cancelling() end
  if not ok then error(e, 0) end
  return "r:" .. name
end

function Scenario:spawn(name, body, g)
  local t
  if g then
    t = g:spawn(self.task_main, self, name, body)
  else
    t = corio.spawn(self.task_main, self, name, body)
  end
  self.tasks[name] = t
  self.order[#self.order + 1] = name
  return t
end

function Scenario:scopes_of(me)
  local scopes = self.scopes[me]
  if scopes == nil then
    scopes = {}
    self.scopes[me] = scopes
  end
  return scopes
end

function Scenario:block(body, me)
  for _, st in ipairs(body) do self:stmt(st, me) end
end

-- Normalisation of the documented rule "a pending cancel is raised at
-- once": a request made while the task runs (it cancelled itself) is
-- raised by corio at the task's next await call, at once, even by an await
-- that would not suspend (a finished task); asyncio raises it only when the
-- task next suspends, and one loop turn later (the tasks ready by then run
-- first).  Before an await that suspends in asyncio, with a request
-- pending, the runner takes that loop turn (core._requeue: behind the
-- tasks ready now, as asyncio's wakeup) with the request withdrawn and
-- then makes it again; an await of a finished task takes its result
-- without awaiting.  (An await of a running task passes the request on to
-- it at once on both sides, and its unwinding takes the turns: no
-- normalisation there.)
local function asyncio_turn(task)
  if not cancel_pending(task) then return false end
  local n = task:cancelling()
  for _ = 1, n do task:uncancel() end       -- 0 withdraws the request
  pcall(core._requeue)     -- a cancel meanwhile is counted and raised here
  for _ = 1, n do task:cancel() end         -- pending again
  return true
end

-- After that turn asyncio's await raises CANCELLED whatever happened
-- meanwhile (it had already cancelled what it waited for).
local function raise_pending(task)
  local ok, e = pcall(corio.yield)          -- raises at once: pending
  assert(not ok, "a pending cancel was not delivered")
  error(e, 0)
end

-- Normalisation of the documented rule "cancelling a task that awaits a
-- task": both sides pass the request on to the awaited task; once that
-- one has finished, corio raises CANCELLED in the awaiter, asyncio gives
-- the awaited task's outcome (its result or error; CANCELLED only if it
-- ended cancelled).  f() is the await; t the awaited task.  A request
-- made after t finished is not passed on: asyncio raises CANCELLED for it
-- (a cancel racing a completion), so does the runner.  late() tells
-- whether one was made: the awaiter's count is above its count when t
-- finished (self.at_done), less the requests its own scope (wait_for's)
-- took back meanwhile.
local function awaited_outcome(t, late, f, ...)
  local r = table.pack(pcall(f, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  if corio.is_cancelled(r[2]) and t:done() and not t:cancelled() and
     not late() then
    return t:result()             -- raises the task's error if it failed
  end
  error(r[2], 0)
end

-- The same rule for wait_for: a deadline that passes while the awaited
-- task runs is passed on to it too, and when it swallows the CANCELLED
-- and finishes with a result or an error, corio's wait_for returns that
-- (the result wins over TIMEOUT) but keeps the requests of enclosing
-- scopes that expired meanwhile pending; asyncio loses them all.  After a
-- wait_for of t, with a request pending and none made since t finished,
-- the runner takes the pending request as asyncio does: delivered into
-- nothing, the count unchanged.  A request made after t finished is left
-- for the race rule above.
local function drop_passed_on(task, t, late)
  if not t:done() or t:cancelled() or not cancel_pending(task) or late() then
    return
  end
  local ok = pcall(corio.yield)             -- raises at once: pending
  assert(not ok, "a pending cancel was not delivered")
end

-- Normalisation of the documented difference "simultaneous expiry": when
-- the deadlines of nested scopes pass while their requests are pending
-- together (the task has not seen a CANCELLED since the first), corio's
-- innermost expired scope raises TIMEOUT and requests the enclosing
-- scopes' cancellation anew (pending: it reaches the enclosing body at its
-- next await); asyncio's inner scope raises CANCELLED, its request was
-- delivered, and the outermost expired scope reports TIMEOUT.  When a
-- scope of the runner (a timeout or a wait_for) raises its own TIMEOUT
-- (not one passed on from its body or awaited task) with a request
-- pending and an enclosing timeout scope of the task past its
-- deadline, the runner takes the request as asyncio does (delivered into
-- nothing, the count unchanged) and raises CANCELLED instead.  scopes: the
-- task's open timeout statements, innermost last.
local function expired_together(task, scopes, e)
  if not (corio.Error.is(e) and e.code == "TIMEOUT") or
     not cancel_pending(task) then
    return nil
  end
  local now = corio.now()
  for i = #scopes, 1, -1 do
    if now - scopes[i].entered >= scopes[i].delay then
      local ok, c = pcall(corio.yield)      -- raises at once: pending
      assert(not ok, "a pending cancel was not delivered")
      return c
    end
  end
  return nil
end

-- The statements whose last await wakes the task with a value.
local WAKES = { sleep = true, wait = true, await = true, shield = true,
                wait_for = true }

function Scenario:stmt(st, me)
  local task = WAKES[st[1]] and corio.current()
  local before = task and task:cancelling()
  local ok, res = pcall(self.run_op, self, st, me)
  if task then
    -- woken with a value or an error (a CANCELLED error too: asyncio's
    -- one CancelledError then stands for both)
    local e = deliver(task, before)
    if e then ok, res = false, e end
  end
  if not ok then
    self:rec(me, st[2], kind(res))
    error(res, 0)
  end
  self:rec(me, st[2], res == nil and "ok" or "ok:" .. tostring(res))
end

function Scenario:run_op(st, me)
  local op = st[1]
  if op == "sleep" then
    if asyncio_turn(corio.current()) then raise_pending(corio.current()) end
    corio.sleep(st[3])
  elseif op == "wait" then
    if not self.events[st[3]]:is_set() and asyncio_turn(corio.current()) then
      raise_pending(corio.current())
    end
    self.events[st[3]]:wait()
  elseif op == "set" then
    self.events[st[3]]:set()
  elseif op == "raise" then
    error({ user = st[3] }, 0)
  elseif op == "cancel" then
    local t = self.tasks[st[3]]
    if t == nil then return "none" end
    return t:cancel() and "true" or "false"
  elseif op == "await" then
    local t = self.tasks[st[3]]
    if t == nil then error({ user = "unspawned" }, 0) end   -- spawn skipped
    if t:done() and cancel_pending(corio.current()) then
      return (t:result())            -- asyncio does not suspend: no raise
    end
    local me = corio.current()
    self.awaiter[st[3]] = me
    return (awaited_outcome(t, function()   -- (no count: t had finished)
      return me:cancelling() > (self.at_done[st[3]] or -1)
    end, t.await, t))
  elseif op == "spawn" then
    self:spawn(st[3], st[4])
  elseif op == "timeout" then
    local task, scopes = corio.current(), self:scopes_of(me)
    scopes[#scopes + 1] = { entered = corio.now(), delay = st[3] }
    local passed            -- the body's error: not the scope's TIMEOUT
    local ok, e = pcall(corio.timeout, st[3], function()
      local ok_b, e_b = pcall(self.block, self, st[4], me)
      if not ok_b then
        passed = e_b
        error(e_b, 0)
      end
    end)
    scopes[#scopes] = nil
    if not ok then
      error(e ~= passed and expired_together(task, scopes, e) or e, 0)
    end
  elseif op == "wait_for" then
    local task = corio.current()
    local t = self:spawn(st[4], st[5])
    self.awaiter[st[4]] = task
    local t_enter = corio.now()
    local function late()         -- the scope's request, if it expired,
      local own = corio.now() - t_enter >= st[3] and 1 or 0  -- taken back
      return task:cancelling() > self.at_done[st[4]] - own
    end
    local r = table.pack(pcall(awaited_outcome, t, late, corio.wait_for, t,
                               st[3]))
    drop_passed_on(task, t, late)
    if not r[1] then
      local own = not (t:done() and r[2] == select(2, pcall(t.result, t)))
      error(own and expired_together(task, self:scopes_of(me), r[2]) or r[2],
            0)
    end
    return r[2]
  elseif op == "shield" then
    local t = self:spawn(st[3], st[4])
    if asyncio_turn(corio.current()) then raise_pending(corio.current()) end
    return (corio.shield(t))
  elseif op == "group" then
    -- What `local g <close> = corio.group()` around the body does, with
    -- the body's error at hand for the normalisation below.
    local g = corio.group()
    local left = 0       -- children whose done callbacks have not run yet
    local function child_done() left = left - 1 end
    local ok, body_err = pcall(function()
      for _, kid in ipairs(st[3]) do
        self:spawn(kid[1], kid[2], g):add_done_callback(child_done)
        left = left + 1
      end
      self:block(st[4], me)
    end)
    local task = corio.current()
    -- asyncio takes the turn of a pending request inside the group's
    -- exit, at its first wait for the children left (a child leaves in
    -- its done callback, as here: child_done runs right after the
    -- group's own); corio's wait raises a pending request at once.  If
    -- the body failed, asyncio's exit cancels the children first (in
    -- spawn order, as corio's abort; not again if the group is aborting
    -- already: cancel_children is then a no-op, and the close does not
    -- cancel them again either), then takes the turn, while they unwind
    -- and their done callbacks run; the runner does the same.  In the
    -- turn the group does not count as waited for yet (asyncio's does):
    -- a child failing then cancels the task too, a request the group's
    -- wait takes back as its own, which leaves the same count and the
    -- same CANCELLED there.
    if left > 0 and not ok and cancel_pending(task) then
      g:cancel_children("task group: the body failed")
    end
    local turned = left > 0 and asyncio_turn(task)
    local before = task:cancelling()
    local closed, e = pcall(g.__close, g, (not ok) and body_err or nil)
    if closed then
      if turned and cancel_pending(task) then raise_pending(task) end
      e = deliver(task, before)
      if e then error(e, 0) end
      return
    end
    -- Documented difference "a group with errors that is cancelled": when
    -- the children or the body failed, asyncio raises an ExceptionGroup of
    -- those errors even if the task was cancelled, and 3.13 (emulated by
    -- run_asyncio.py) requests the cancellation again, for the task's next
    -- await; corio raises CANCELLED.  And an ExceptionGroup lists the
    -- children's errors in the order they failed, then the body's: its
    -- first leaf (what run_asyncio.py compares) is the first child error,
    -- else the body's.
    local first
    for _, x in ipairs(g:errors()) do
      if first == nil and (ok or x ~= body_err) then first = x end
    end
    if first == nil and not ok and not corio.is_cancelled(body_err) then
      first = body_err
    end
    if first ~= nil and corio.is_cancelled(e) then
      task:cancel()              -- 3.13: uncancel(), cancel(): pending
      task:uncancel()            -- again, the count unchanged
      error(first, 0)
    end
    error(first ~= nil and first or e, 0)
  elseif op == "try" then
    local ok, e = pcall(self.block, self, st[3], me)
    if not ok then return "caught " .. kind(e) end
  else
    error("unknown op " .. tostring(op))
  end
end

function Scenario:run()
  self:spawn("t0", self.sc.main)
  -- Rounds of: wait past every instant, cancel what is left (as
  -- run_asyncio.py does); after the 4th cancel, a last wait lets the
  -- tasks react to it (the trace is then complete on both sides).
  for round = 1, 5 do
    corio.sleep(self.sc.horizon)
    local left = {}
    for _, n in ipairs(self.order) do
      if not self.tasks[n]:done() then left[#left + 1] = n end
    end
    if #left == 0 or round == 5 then break end   -- 5: what is left stays
    self.trace[#self.trace + 1] = { "horizon", left }
    for _, n in ipairs(left) do self.tasks[n]:cancel() end
  end
  for _, n in ipairs(self.order) do       -- errors retrieved: no report
    local t = self.tasks[n]
    if t:done() then pcall(t.await, t) end
  end
  return self.trace
end

io.stdout:setvbuf("line")   -- diff.py names a hung scenario by the lines so far
local f = assert(io.open(arg[1]))
local scs = json.decode(f:read("a"))
f:close()
for _, sc in ipairs(scs) do
  local trace = new_scenario(sc):run()
  io.write(json.encode({ seed = sc.seed, trace = json.array(trace) }), "\n")
end
