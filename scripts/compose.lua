--[[
corio.compose -- running several awaitables together: gather, wait,
wait_for, timeout scopes, shield, as_completed and task groups.  corio
re-exports them (corio.gather, ...).

An awaitable is a Task or a Future; where a list is taken, a function is
spawned as a new task.  Python's asyncio is the model; where it is
inconsistent corio is structured: whatever spawns or owns children does
not return before they have finished, and a failing child cancels its
siblings (gather, group).  See docs/API-composition.md.

Cancellation bookkeeping relies on task:cancelling() / task:uncancel()
(asyncio 3.11's counters, in the core): a timeout scope or a group that
cancels a task to interrupt it takes its request back when it is done, so
it can tell its own cancellation from anyone else's, and an outer cancel
always passes through untouched.
]]
local core = require "corio.core"

local spawn, future, current, call_later, yield = core.spawn, core.future,
  core.current, core.call_later, core.yield
local Error, is_cancelled = core.Error, core.is_cancelled
local has_pending_cancel = core._cancel_pending
local getmetatable, setmetatable, type, error, pcall, select, next =
  getmetatable, setmetatable, type, error, pcall, select, next
local pack, unpack, sort = table.pack, table.unpack, table.sort

local M = {}

local registry = debug.getregistry()
local TASK_MT, FUTURE_MT = registry["corio.Task"], registry["corio.Future"]


-- {====================================================================
-- Argument helpers
-- =====================================================================

local args = require "corio._args"
local typename, argerror = args.typename, args.argerror
local check = args.check_self               -- check(self, class, fname)

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt ~= TASK_MT and mt ~= FUTURE_MT and
    mt.__call ~= nil
end

local function is_fut(v)
  local mt = getmetatable(v)
  return mt == TASK_MT or mt == FUTURE_MT
end

local function check_delay(v, n, fname, optional)
  if v == nil and optional then return nil end
  if type(v) ~= "number" or v ~= v then
    argerror(n, fname, "number expected, got " ..
      (type(v) == "number" and "NaN" or typename(v)), 3)
  end
  return v < 0 and 0 or v
end

-- Waiting for the current task could never end (it would wait for its own
-- end): refused like task:await() refuses it.
local function not_self(f, op)
  if f == current() then
    error(Error("INVALID_STATE", "a task cannot await itself", { op = op }))
  end
end

local function need_task(op)
  local t = current()
  if t == nil then
    error(Error("INVALID_STATE", op .. ": not inside a task (start one " ..
      "with corio.run or corio.spawn)", { op = op }), 3)
  end
  return t
end

-- Checks the awaitables of list[1..n] (argument `argn` of `fname`) before
-- anything is spawned, then returns the futures (functions spawned).  With
-- `all` (the caller needs every one to finish) the current task is refused.
local function to_futs(list, n, fname, argn, what, all)
  for i = 1, n do
    local v = list[i]
    if not is_fut(v) and not is_callable(v) then
      argerror(argn or i, fname, ("%sTask, Future or function expected, " ..
        "got %s"):format(what and what:format(i) or "", typename(v)), 3)
    end
  end
  if all then
    for i = 1, n do not_self(list[i], fname) end
  end
  local futs = {}
  for i = 1, n do
    local v = list[i]
    futs[i] = is_fut(v) and v or spawn(v)
  end
  return futs
end

-- list, n for the two calling forms f(list, opts) and f(a, b, ...).
local function list_args(fname, ...)
  local first = ...
  if type(first) == "table" and not is_callable(first) then
    local opts = select(2, ...)
    if opts ~= nil and type(opts) ~= "table" then
      argerror(2, fname, "table expected, got " .. typename(opts), 3)
    end
    return first, first.n or #first, opts or {}, 1, "list item #%d: "
  end
  return pack(...), select("#", ...), {}, nil, nil
end

local function cancel_pending(futs, msg)
  for i = 1, #futs do
    local f = futs[i]
    if not f:done() then f:cancel(msg) end
  end
end

-- }====================================================================


-- {====================================================================
-- Timeout scopes
--
-- A scope notes the task's cancelling() count when it is entered (its
-- level).  When its deadline passes it marks itself expired and cancels
-- the task; every expired scope asks, even while another request is
-- outstanding, and each request is counted (as asyncio 3.11's Timeout).
-- At exit an expired scope takes its own request back (uncancel) and turns
-- CANCELLED into TIMEOUT if the only requests newer than its entry were
-- made by scopes: its own and those of enclosing scopes that expired
-- after it was entered.  So the innermost expired scope reports (asyncio
-- reports from the outermost; see docs/API-composition.md), and the
-- enclosing scopes' cancellation is requested anew, reaching the enclosing
-- body at its next await.  Anyone else's cancel passes through.
--
-- Scopes expire "together" when their requests were pending at the same
-- time (one CANCELLED delivers them all): a scope that expires while no
-- request of the task is pending opens a new round, one that expires
-- while a request is pending joins the current round.  Only enclosing
-- scopes of the same round count as expiring with an inner scope.  A
-- request of an earlier round was delivered (its CANCELLED caught) but is
-- still counted until its scope exits: the task is still being cancelled,
-- so an inner scope that expires later lets its CANCELLED through and
-- the outer scope reports TIMEOUT at its exit, as in asyncio
-- (tests/regress/timeout_after_swallowed_outer_cancel_spec.lua).  An
-- inner scope whose request was delivered before an enclosing scope
-- expired does not report that later CANCELLED, which is not its own
-- (tests/regress/inner_timeout_claims_outer_cancel_spec.lua).
--
-- Each scope remembers only its own request.  An earlier version kept one
-- "owed" flag per task and let a single scope request be outstanding;
-- after an outer scope's CANCELLED was delivered and swallowed by a pcall
-- the flag stayed set, and no inner scope could cancel the task any more
-- (tests/regress/nested_timeout_after_budget_spec.lua).
-- =====================================================================

local CANCEL_MSG = "deadline exceeded (timeout)"
local tops = setmetatable({}, { __mode = "k" })  -- task -> innermost scope
local rounds = setmetatable({}, { __mode = "k" }) -- task -> current round
local seq = 0                                     -- orders entries, expiries

local Scope = { __name = "corio.TimeoutScope" }
Scope.__index = Scope

local function expire(sc)
  sc.timer = nil
  if sc.closed then return end
  sc.passed = true
  local task = sc.task
  seq = seq + 1
  if not has_pending_cancel(task) then rounds[task] = seq end
  sc.requested, sc.req_seq, sc.round = task:cancel(CANCEL_MSG), seq,
    rounds[task]
end

local function enter(task, delay, op)
  seq = seq + 1
  local sc = setmetatable({ task = task, parent = tops[task],
    level = task:cancelling(), entered = seq, delay = delay, op = op,
    passed = false, requested = false, closed = false }, Scope)
  tops[task] = sc
  if delay then sc.timer = call_later(delay, expire, sc) end
  return sc
end

-- How many enclosing scopes of sc expired after sc was entered, in sc's
-- round, with their request still counted.
local function enclosing_requests(sc)
  local n, p = 0, sc.parent
  while p do
    if p.requested and p.round == sc.round and p.req_seq > sc.entered then
      n = n + 1
    end
    p = p.parent
  end
  return n
end

-- Closes the scope; returns the error to raise instead of err, or nil.
-- (corio's uncancel() also withdraws a request not yet delivered when the
-- count drops to 0, as asyncio does only from 3.13: a scope whose body
-- finished just as its deadline passed leaves no stray CANCELLED.)
local function exit(sc, err)
  if sc.closed then return nil end
  sc.closed = true
  if sc.timer then
    sc.timer:cancel()
    sc.timer = nil
  end
  local task = sc.task
  if tops[task] == sc then tops[task] = sc.parent end
  if not sc.requested then return nil end
  sc.requested = false
  local left = task:uncancel()
  if err == nil or not is_cancelled(err) then return nil end
  local others = enclosing_requests(sc)
  if left - others > sc.level then return nil end   -- not only scopes'
  if others > 0 then          -- deliver the enclosing scopes' cancel anew
    task:cancel(CANCEL_MSG)
    task:uncancel()
  end
  return Error("TIMEOUT", ("timed out after %g s"):format(sc.delay),
    { op = sc.op, cause = err })
end

function Scope:__close(err)
  local out = exit(check(self, Scope, "__close"), err)
  if out then error(out, 0) end
end

-- scope:expired() -> true once the deadline has passed.
function Scope:expired()
  return check(self, Scope, "expired").passed
end

function Scope:__tostring()
  check(self, Scope, "__tostring")
  return ("corio.TimeoutScope (%s s, %s)"):format(tostring(self.delay),
    self.closed and "closed" or self.passed and "expired" or "open")
end

--[[ timeout(s, fn, ...) -> fn's results.  Runs fn(...) in the current task
with a deadline s seconds away (nil: none).  At the deadline the pending
await inside raises CANCELLED (so cleanup runs), and TIMEOUT comes out of
the scope.  timeout(s) without fn returns the scope itself, for
    local _ <close> = corio.timeout(s) ]]
function M.timeout(s, fn, ...)
  s = check_delay(s, 1, "timeout", true)
  local task = need_task("timeout")
  if fn == nil and select("#", ...) == 0 then
    return enter(task, s, "timeout")
  end
  if not is_callable(fn) then
    argerror(2, "timeout", "function expected, got " .. typename(fn))
  end
  local _ <close> = enter(task, s, "timeout")
  return fn(...)
end

-- }====================================================================


-- {====================================================================
-- wait_for and shield
-- =====================================================================

--[[ wait_for(aw, s) -> aw's results.  Past the deadline, aw is cancelled
and awaited (a task unwinds first), then TIMEOUT is raised.  If aw still
finished with a result or an error of its own, that wins.  Cancelling the caller cancels aw
too. ]]
function M.wait_for(aw, s)
  if not is_fut(aw) and not is_callable(aw) then
    argerror(1, "wait_for", "Task, Future or function expected, got " ..
      typename(aw))
  end
  s = check_delay(s, 2, "wait_for", true)
  local task = need_task("wait_for")
  local f = is_fut(aw) and aw or spawn(aw)
  if f:done() then return f:await() end
  local sc = enter(task, s, "wait_for")
  local r = pack(pcall(f.await, f))
  local out
  if r[1] then out = exit(sc, nil) else out = exit(sc, r[2]) end
  if r[1] then return unpack(r, 2, r.n) end
  if getmetatable(f) == FUTURE_MT and not f:done() then
    f:cancel("wait_for was cancelled")
  end
  if out then
    -- Only a cancelled aw is a timeout: if it finished after all, with a
    -- result or an error of its own (raised while it unwound), that wins.
    if f:done() and not f:cancelled() then
      local got = pack(pcall(f.result, f))
      if got[1] then return unpack(got, 2, got.n) end
      error(got[2], 0)
    end
    error(out, 0)
  end
  error(r[2], 0)
end

--[[ shield(aw) -> aw's results.  Cancelling the caller interrupts only its
own wait: aw goes on.  (If the caller is cancelled, an error aw raises later
is dropped, as in asyncio.) ]]
function M.shield(aw)
  if not is_fut(aw) and not is_callable(aw) then
    argerror(1, "shield", "Task, Future or function expected, got " ..
      typename(aw))
  end
  if is_fut(aw) then not_self(aw, "shield") end
  local f = is_fut(aw) and aw or spawn(aw)
  if f:done() then return f:await() end
  local outer = future()
  f:add_done_callback(function(inner)
    if outer:done() then return end
    local r = pack(pcall(inner.result, inner))
    if r[1] then outer:set_result(unpack(r, 2, r.n))
    else outer:set_error(r[2]) end
  end)
  local r = pack(pcall(outer.await, outer))
  if not r[1] then
    if not outer:done() then outer:cancel() end
    error(r[2], 0)
  end
  return unpack(r, 2, r.n)
end

-- }====================================================================


-- {====================================================================
-- gather, wait, as_completed
-- =====================================================================

-- Waits until st.left == 0 (the work was cancelled and unwinds), however
-- often the waiting task is cancelled meanwhile; returns the first error
-- that interrupted the wait.  As in asyncio only CANCELLED is waited
-- through.  The one other error an await of a private future can raise
-- is the runtime's deadlock report: nothing can wake the task, so the
-- work can never finish, and awaiting again would raise it again at once,
-- forever (a busy loop).
local function wait_all(st)
  local err
  while st.left > 0 do
    local sig = future()
    st.sig = sig
    local ok, e = pcall(sig.await, sig)
    if not ok then
      if err == nil then err = e end
      if not is_cancelled(e) then break end
    end
  end
  st.sig = nil
  return err
end

-- Called as a wait that was cancelled (and so cancelled its work and
-- waited for it to unwind) raises its CANCELLED: a request that came after
-- the work's end woke the wait, in the same loop turn, is answered by that
-- CANCELLED too, as one that came a moment earlier was (the wait took it
-- and went on).  Left pending, it would be raised again at the next await
-- and the outcome would hang on which came first, one hop apart (asyncio
-- answers both with one CancelledError).
-- tests/regress/group_cancel_as_last_child_ends_spec.lua
local function answer_late_cancel()
  if has_pending_cancel(current()) then pcall(yield) end  -- raises at once
end

local function signal(st)
  local sig = st.sig
  if sig and not sig:done() then sig:set_result() end
end

-- Waits until everything finished or one failed (st.failed); returns the
-- error that interrupted the caller's wait, if any.
local function wait_all_or_first(st)
  while st.left > 0 and not st.failed do
    local sig = future()
    st.sig = sig
    local ok, e = pcall(sig.await, sig)
    st.sig = nil
    if not ok then return e end
  end
  return nil
end

--[[ gather(a, b, ...) or gather(list, {return_errors=}) -> results.
The results list holds each awaitable's first result, in order (`n` is
the count).  On the first error the others are cancelled and the error is
raised once they have all finished; with return_errors the errors are put
in the list instead.  Cancelling the caller cancels them all, and raises
once they have finished. ]]
function M.gather(...)
  local list, n, opts, argn, what = list_args("gather", ...)
  local return_errors = opts.return_errors
  local futs = to_futs(list, n, "gather", argn, what, true)
  local results = { n = n }
  if n == 0 then return results end
  local st = { left = n }
  for i = 1, n do
    futs[i]:add_done_callback(function(f)
      st.left = st.left - 1
      local ok, v = pcall(f.result, f)
      if ok or return_errors then
        results[i] = v
      elseif not st.failed then
        st.failed, st.err = true, v
        signal(st)
      end
      if st.left == 0 then signal(st) end
    end)
  end
  local err = wait_all_or_first(st)
  if err ~= nil or st.failed then
    cancel_pending(futs, err ~= nil and "gather was cancelled"
      or "gather: another awaitable failed")
    local e2 = wait_all(st)
    if err == nil then err = e2 end
    if err ~= nil and is_cancelled(err) then answer_late_cancel() end
    if err == nil then err = st.err end
    error(err, 0)
  end
  return results
end

local WHEN = { all = true, first = true, first_error = true }

--[[ wait(list, {timeout=, return_when=}) -> done, pending.  Waits until
all (the default), the first ("first") or the first failed ("first_error",
else all) of the awaitables finished, or the timeout passed; nothing is
cancelled.  Both results are lists, in the order of `list`. ]]
function M.wait(list, opts)
  if type(list) ~= "table" or is_callable(list) then
    argerror(1, "wait", "table expected, got " .. typename(list))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "wait", "table expected, got " .. typename(opts))
  end
  opts = opts or {}
  local delay = check_delay(opts.timeout, 2, "wait", true)
  local when = opts.return_when or "all"
  if not WHEN[when] then
    argerror(2, "wait", "return_when must be \"all\", \"first\" or " ..
      "\"first_error\", got " .. tostring(when))
  end
  local n = list.n or #list
  local futs = to_futs(list, n, "wait", 1, "list item #%d: ")
  local st = { left = 0 }
  local function satisfied()
    if st.left == 0 then return true end
    if when == "first" then return st.left < n end
    return when == "first_error" and st.failed
  end
  for i = 1, n do
    if not futs[i]:done() then st.left = st.left + 1 end
  end
  for i = 1, n do
    local f = futs[i]
    if f:done() then
      if not f:cancelled() and f:error() ~= nil then st.failed = true end
    else
      f:add_done_callback(function(g)
        st.left = st.left - 1
        if not g:cancelled() and not pcall(g.result, g) then
          st.failed = true
        end
        if satisfied() then signal(st) end
      end)
    end
  end
  if not satisfied() and not st.timed_out then
    need_task("wait")
    local timer = delay and call_later(delay, function()
      st.timed_out = true
      signal(st)
    end)
    local _ <close> = timer and setmetatable({}, { __close = function()
      timer:cancel()
    end })
    while not satisfied() and not st.timed_out do
      local sig = future()
      st.sig = sig
      sig:await()
      st.sig = nil
    end
  end
  local done, pending = {}, {}
  for i = 1, n do
    local f = futs[i]
    if f:done() then done[#done + 1] = f else pending[#pending + 1] = f end
  end
  return done, pending
end

--[[ as_completed(list, {timeout=}) -> iterator of futures in the order
they finish:  for f in corio.as_completed(list) do ... f:result() end.
Past the timeout the iterator raises TIMEOUT.  Leaving the loop early
stops the timer. ]]
function M.as_completed(list, opts)
  if type(list) ~= "table" or is_callable(list) then
    argerror(1, "as_completed", "table expected, got " .. typename(list))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "as_completed", "table expected, got " .. typename(opts))
  end
  local delay = check_delay((opts or {}).timeout, 2, "as_completed", true)
  local n = list.n or #list
  local futs = to_futs(list, n, "as_completed", 1, "list item #%d: ")
  local st = { left = 0 }
  local ready, head, tail = {}, 1, 0
  for i = 1, n do
    futs[i]:add_done_callback(function(f)
      tail = tail + 1
      ready[tail] = f
      signal(st)
    end)
  end
  local timer = delay and n > 0 and call_later(delay, function()
    st.timed_out = true
    signal(st)
  end)
  local function stop()
    if timer then
      timer:cancel()
      timer = nil
    end
  end
  local given = 0
  local function iter()
    if given == n then
      stop()
      return nil
    end
    while head > tail do
      if st.timed_out then
        error(Error("TIMEOUT", ("timed out after %g s"):format(delay),
          { op = "as_completed" }), 2)
      end
      local sig = future()
      st.sig = sig
      local ok, e = pcall(sig.await, sig)
      st.sig = nil
      if not ok then
        stop()
        error(e, 0)
      end
    end
    local f = ready[head]
    ready[head] = nil
    head = head + 1
    given = given + 1
    if given == n then stop() end
    return f
  end
  return iter, nil, nil, setmetatable({}, { __close = stop })
end

-- }====================================================================


-- {====================================================================
-- Task groups
--
--     local g <close> = corio.group()
--     g:spawn(fn, ...)            -- children
--     ...                         -- the body
--   at scope exit (or g:wait()) every child has finished.  When a child
--   fails, every other child is cancelled, and so is the body (the task
--   that created the group) unless it is already waiting for the group;
--   once all have unwound the first error is raised (g:errors() lists
--   them all).  A cancelled child is not an error.  If the body is
--   cancelled from outside, the children are cancelled and, once they
--   have unwound, CANCELLED passes on.
-- =====================================================================

local Group = { __name = "corio.TaskGroup" }
Group.__index = Group

-- _level: the requests the parent had seen (their CANCELLED delivered)
-- when the group was made; a request above it is someone else's when the
-- group's own comes back.  A request still pending then is not counted:
-- it is delivered inside the group, and may arrive as one CANCELLED with
-- the group's own; counted, it was taken for the group's and swallowed
-- (tests/regress/group_swallows_cancel_pending_at_creation_spec.lua).
local function level_of(parent)
  if parent == nil then return 0 end
  local n = parent:cancelling()
  if n > 0 and has_pending_cancel(parent) then n = n - 1 end
  return n
end

function M.group()
  local parent = current()
  return setmetatable({ _parent = parent, _tasks = {}, _spawned = 0,
    left = 0, _errors = {}, _raised = 0, _aborting = false, _closed = false,
    _waiting = false, _parent_cancel = false, _level = level_of(parent) },
    Group)
end

-- Cancels the children in the order they were spawned (g._tasks maps a
-- child to its spawn number): a table's own order follows the tasks'
-- addresses, and which child sees its CANCELLED first would depend on
-- what was allocated before (tests/diff found one scenario that diverged
-- only after another one).
local function by_number(a, b) return a[2] < b[2] end

local function abort(g, msg)
  if g._aborting then return end
  g._aborting = true
  local list, n = {}, 0
  for t, i in next, g._tasks do
    n = n + 1
    list[n] = { t, i }
  end
  sort(list, by_number)
  for k = 1, n do
    local t = list[k][1]
    if not t:done() then t:cancel(msg) end
  end
end

local function child_done(g, t)
  g._tasks[t] = nil
  g.left = g.left - 1
  if not t:cancelled() then
    local ok, err = pcall(t.result, t)
    if not ok then
      local errs = g._errors
      errs[#errs + 1] = err
      if not g._aborting then
        abort(g, "task group: another task failed")
        local p = g._parent
        if p and not g._waiting and not g._parent_cancel and not p:done()
           and p:cancel("task group: a child task failed") then
          g._parent_cancel = true
        end
      end
    end
  end
  if g.left == 0 then signal(g) end
end

function Group:spawn(fn, ...)
  check(self, Group, "spawn")
  if not is_callable(fn) then
    argerror(1, "spawn", "function expected, got " .. typename(fn))
  end
  if self._closed or self._aborting then
    error(Error("INVALID_STATE", self._closed and "task group is closed"
      or "task group is shutting down (its children were cancelled)",
      { op = "spawn" }), 2)
  end
  local t = spawn(fn, ...)
  local n = self._spawned + 1
  self._spawned = n
  self._tasks[t] = n
  self.left = self.left + 1
  t:add_done_callback(function(task) child_done(self, task) end)
  return t
end

-- Waits for every child (cancelling them all if the waiting task is
-- cancelled meanwhile), then raises what there is to raise.  An error
-- other than CANCELLED is the runtime's deadlock report (see wait_all):
-- the children are cancelled at the first one, and if they are stuck even
-- so, the second one ends the wait instead of a busy loop.
local function join(g, body_err)
  g._waiting = true
  while g.left > 0 do
    local sig = future()
    g.sig = sig
    local ok, e = pcall(sig.await, sig)
    g.sig = nil
    if not ok then
      if not is_cancelled(e) and g._aborting then
        if body_err == nil then body_err = e end
        break
      end
      if is_cancelled(e) and g._parent_cancel and current() == g._parent then
        -- our own request, delivered late: not a reason to give up,
        -- unless someone else asked to cancel the task too
        g._parent_cancel = false
        if g._parent:uncancel() > g._level then body_err = e end
      elseif body_err == nil or is_cancelled(e) then
        body_err = e
      end
      abort(g, "task group was cancelled")
    end
  end
  g._waiting = false
  if g._parent_cancel and current() == g._parent then
    g._parent_cancel = false
    if g._parent:uncancel() <= g._level and body_err ~= nil and
       is_cancelled(body_err) then
      body_err = nil                            -- it was ours
    end
  end
  if body_err ~= nil and is_cancelled(body_err) then
    answer_late_cancel()
    error(body_err, 0)                          -- cancellation wins
  end
  local errs = g._errors
  if #errs > g._raised then
    local e = errs[g._raised + 1]
    g._raised = #errs
    error(e, 0)
  end
  if body_err ~= nil then error(body_err, 0) end
end

-- g:wait(): waits for every child spawned so far; raises the first error.
function Group:wait()
  check(self, Group, "wait")
  need_task("wait")
  return join(self, nil)
end

local function close(self, err)
  if self._closed then return end
  self._closed = true
  if err ~= nil then
    if not is_cancelled(err) then
      local errs = self._errors
      errs[#errs + 1] = err           -- raised below like a child's
    end
    abort(self, "task group: the body failed")
  end
  join(self, err ~= nil and is_cancelled(err) and err or nil)
end

-- Scope exit: `err` is the error leaving the body, if any.
function Group:__close(err)
  return close(check(self, Group, "__close"), err)
end

-- g:close(): what leaving the scope normally does (waits for every child,
-- raises the first error; no more spawns).  It takes no error: the one
-- passed to __close would be raised as the body's.
function Group:close(v)
  check(self, Group, "close")
  if v ~= nil then
    argerror(1, "close", "no value expected, got " .. typename(v))
  end
  return close(self, nil)
end

-- g:cancel_children([msg]): cancels every child still running, in spawn
-- order, as a failing child does, but not the body; the group takes no
-- new child, and its exit still waits for them to unwind.  A cancelled
-- child is not an error.  The same abort as a failure's: a child is never
-- cancelled twice by its group, whatever comes after (a failure, the
-- body's error at close, an outer cancellation).
function Group:cancel_children(msg)
  check(self, Group, "cancel_children")
  if msg ~= nil and type(msg) ~= "string" then
    argerror(1, "cancel_children", "string expected, got " .. typename(msg))
  end
  abort(self, msg or "task group: children cancelled")
end

-- g:errors() -> every error so far (children's, then the body's), in order.
function Group:errors()
  check(self, Group, "errors")
  return { unpack(self._errors) }
end

function Group:__tostring()
  check(self, Group, "__tostring")
  return ("corio.TaskGroup (%d running, %d errors%s)"):format(self.left,
    #self._errors, self._closed and ", closed" or "")
end

-- }====================================================================

return M
