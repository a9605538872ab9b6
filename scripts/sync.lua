--[[
corio.sync -- synchronization primitives for tasks (asyncio's Lock, Event,
Condition, Semaphore, BoundedSemaphore, Barrier and queues).

The hot primitives (Lock, the semaphores, the queues) and the wait list are
C (bindings/sync.c, bindings/queue.c: corio._sync); Event, Condition and
Barrier are built here on WaitList.  Common rules:

  * waiters are served FIFO, and a release hands the lock, permit or item
    straight to the first waiter, so nobody can barge ahead of it;
  * a waiter cancelled while it waits is removed at once and never
    swallows a wake-up meant for another; a waiter that was already handed
    something when it is cancelled still gets it (its wait returns) and
    the CANCELLED comes at its next await: nothing is lost or duplicated;
  * misuse (releasing an unlocked Lock, over-releasing a BoundedSemaphore,
    notify without the lock, task_done too often) raises INVALID_STATE.
]]
local core = require "corio.core"
local C = require "corio._sync"

local waitlist = C.waitlist
local Error = core.Error
local is_cancelled = core.is_cancelled
local getmetatable, setmetatable, type, error, pcall =
  getmetatable, setmetatable, type, error, pcall

local M = {
  Lock = C.Lock,
  Semaphore = C.Semaphore,
  BoundedSemaphore = C.BoundedSemaphore,
  Queue = C.Queue,
  LifoQueue = C.LifoQueue,
  PriorityQueue = C.PriorityQueue,
}

local args = require "corio._args"
local typename, argerror = args.typename, args.argerror
local check = args.check_self               -- check(self, class, fname)

local function is_callable(fn)
  if type(fn) == "function" then return true end
  local mt = getmetatable(fn)
  return type(mt) == "table" and mt.__call ~= nil
end

local function invalid(op, msg)
  return Error("INVALID_STATE", msg, { op = op })
end


--[[ Lock, Semaphore, BoundedSemaphore (C) --------------------------------
acquire() returns the object itself, and its __close releases it, so
    local _ <close> = lock:acquire()
holds the lock to the end of the block; lock:with(fn, ...) does the same
around one call and returns fn's results. ]]
local lock_mt = getmetatable(C.Lock())
local sem_mt = getmetatable(C.Semaphore())     -- BoundedSemaphore's too

-- `lock` is known to be a Lock or a Semaphore here.
local function with(lock, fn, ...)
  if not is_callable(fn) then
    argerror(1, "with", "function expected, got " .. typename(fn))
  end
  local _ <close> = lock:acquire()
  return fn(...)
end

function C.lock_methods.with(self, fn, ...)
  return with(check(self, lock_mt, "with"), fn, ...)
end

function C.semaphore_methods.with(self, fn, ...)
  return with(check(self, sem_mt, "with"), fn, ...)
end


--[[ Event ------------------------------------------------------------------
set() wakes every waiter; wait() returns true at once while it is set. ]]
local Event = { __name = "corio.Event" }
Event.__index = Event

function M.Event()
  return setmetatable({ _set = false, _w = waitlist() }, Event)
end

function Event:set()
  check(self, Event, "set")
  if not self._set then
    self._set = true
    self._w:wake_all(true)
  end
end

function Event:clear()
  check(self, Event, "clear")._set = false
end

function Event:is_set()
  return check(self, Event, "is_set")._set
end

function Event:wait()
  check(self, Event, "wait")
  if self._set then return true end
  return self._w:wait()
end

function Event:__tostring()
  check(self, Event, "__tostring")
  return ("corio.Event (%s, %d waiting)"):format(
    self._set and "set" or "clear", self._w:count())
end


--[[ Condition --------------------------------------------------------------
Condition(lock?) shares `lock` (a new Lock by default).  wait() releases the
lock, waits for a notify, and takes the lock back before it returns or
raises -- even when it is cancelled.  A waiter that was notified and is
cancelled while it takes the lock back passes the notification on to the
next waiter, so no notify is lost. ]]
local Condition = { __name = "corio.Condition" }
Condition.__index = Condition

function M.Condition(lock)
  if lock == nil then
    lock = C.Lock()
  elseif getmetatable(lock) ~= lock_mt then
    argerror(1, "Condition", "corio.Lock expected, got " .. typename(lock))
  end
  return setmetatable({ _lock = lock, _w = waitlist() }, Condition)
end

function Condition:acquire()
  check(self, Condition, "acquire")._lock:acquire()
  return self
end

function Condition:release()
  check(self, Condition, "release")._lock:release()
end
Condition.__close = Condition.release

function Condition:locked()
  return check(self, Condition, "locked")._lock:locked()
end

function Condition:with(fn, ...)
  check(self, Condition, "with")
  return with(self._lock, fn, ...)
end

-- Wakes up to n waiters (FIFO); returns how many.
local function notify(self, n)
  local w, k = self._w, 0
  while k < n and w:wake(true) do k = k + 1 end
  return k
end

function Condition:wait()
  check(self, Condition, "wait")
  local lock = self._lock
  if not lock:locked() then
    error(invalid("wait", "wait: the condition's lock is not acquired"))
  end
  lock:release()
  local ok, err = pcall(self._w.wait, self._w)
  local cancel
  while true do                 -- the lock comes back in every case
    local got, e = pcall(lock.acquire, lock)
    if got then break end
    if not is_cancelled(e) then error(e, 0) end
    cancel = cancel or e
  end
  if not ok then error(err, 0) end
  if cancel then
    notify(self, 1)
    error(cancel, 0)
  end
  return true
end

function Condition:wait_for(pred)
  check(self, Condition, "wait_for")
  if not is_callable(pred) then
    argerror(1, "wait_for", "function expected, got " .. typename(pred))
  end
  local r = pred()
  while not r do
    self:wait()
    r = pred()
  end
  return r
end

function Condition:notify(n)
  check(self, Condition, "notify")
  if n == nil then
    n = 1
  elseif math.type(n) ~= "integer" then
    argerror(1, "notify", "integer expected, got " .. typename(n))
  end
  if not self._lock:locked() then
    error(invalid("notify", "notify: the condition's lock is not acquired"))
  end
  return notify(self, n)
end

function Condition:notify_all()
  check(self, Condition, "notify_all")
  if not self._lock:locked() then
    error(invalid("notify_all",
      "notify_all: the condition's lock is not acquired"))
  end
  return self._w:wake_all(true)
end

function Condition:__tostring()
  check(self, Condition, "__tostring")
  return ("corio.Condition (%s, %d waiting)"):format(
    self._lock:locked() and "locked" or "unlocked", self._w:count())
end


--[[ Barrier ----------------------------------------------------------------
Barrier(n): wait() blocks until n tasks wait, then releases them all and
returns each one's arrival index (0 .. n-1); the barrier is then ready for
the next round.  A waiter cancelled before the round completes leaves it.
abort() breaks the barrier: current and later waiters raise INVALID_STATE
("barrier is broken"); reset() breaks the current round only. ]]
local Barrier = { __name = "corio.Barrier" }
Barrier.__index = Barrier

function M.Barrier(parties)
  if math.type(parties) ~= "integer" or parties < 1 then
    argerror(1, "Barrier", "integer >= 1 expected, got " ..
      (math.type(parties) == "integer" and parties or typename(parties)))
  end
  return setmetatable({ _parties = parties, _count = 0, _gen = 0,
    _broken = false, _w = waitlist() }, Barrier)
end

local function broken_error()
  return invalid("wait", "barrier is broken")
end

function Barrier:wait()
  check(self, Barrier, "wait")
  if self._broken then error(broken_error()) end
  local index, gen = self._count, self._gen
  if index + 1 == self._parties then
    self._count, self._gen = 0, gen + 1
    self._w:wake_all(true)
    return index
  end
  self._count = index + 1
  local ok, err = pcall(self._w.wait, self._w)
  if not ok then
    if self._gen == gen then self._count = self._count - 1 end
    error(err, 0)
  end
  return index
end

-- Breaks the round in progress: its waiters raise INVALID_STATE.
local function break_round(self)
  self._count, self._gen = 0, self._gen + 1
  self._w:throw_all(broken_error())
end

function Barrier:abort()
  check(self, Barrier, "abort")._broken = true
  break_round(self)
end

function Barrier:reset()
  check(self, Barrier, "reset")
  break_round(self)
  self._broken = false
end

function Barrier:parties()
  return check(self, Barrier, "parties")._parties
end

function Barrier:n_waiting()
  return check(self, Barrier, "n_waiting")._count
end

function Barrier:broken()
  return check(self, Barrier, "broken")._broken
end

function Barrier:__tostring()
  check(self, Barrier, "__tostring")
  return ("corio.Barrier (%d/%d waiting%s)"):format(self._count,
    self._parties, self._broken and ", broken" or "")
end

return M
