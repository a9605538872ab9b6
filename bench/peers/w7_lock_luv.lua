-- W7 lock on luv: 100 coroutine tasks each taking one shared mutex 1,000
-- times, with a yield to the event loop inside the critical section.  The
-- scheduler: an idle handle drains the ready queue each loop turn; a
-- coroutine woken while it drains (a mutex hand-off) runs in the same turn,
-- and yield() waits for the next turn.  The mutex hands itself to the first
-- waiter (FIFO).
local uv = require "luv"
local TASKS, ROUNDS = 100, 1000

local ready, rh, rt = {}, 1, 0
local later, nlater = {}, 0
local idle, idling = uv.new_idle(), false

local function run_ready()
  for i = 1, nlater do                  -- the yields of the last turn
    rt = rt + 1
    ready[rt] = later[i]
    later[i] = nil
  end
  nlater = 0
  while rh <= rt do
    local co = ready[rh]
    ready[rh] = nil
    rh = rh + 1
    assert(coroutine.resume(co))
  end
  rh, rt = 1, 0
  if nlater == 0 then idle:stop(); idling = false end
end

local function kick()
  if not idling then idling = true; idle:start(run_ready) end
end

local function wake(co)
  rt = rt + 1
  ready[rt] = co
  kick()
end

local function yield()
  nlater = nlater + 1
  later[nlater] = coroutine.running()
  kick()
  coroutine.yield()
end

local function spawn(fn)
  local task = { done = false }
  wake(coroutine.create(function()
    task.value = fn()
    task.done = true
    if task.waiter then wake(task.waiter) end
  end))
  return task
end

local function await(task)
  if not task.done then
    task.waiter = coroutine.running()
    coroutine.yield()
  end
  return task.value
end

local mutex = { locked = false, waiters = {}, h = 1, t = 0 }

local function acquire(m)
  if not m.locked then m.locked = true; return end
  m.t = m.t + 1
  m.waiters[m.t] = coroutine.running()
  coroutine.yield()                     -- woken holding the mutex
end

local function release(m)
  if m.h <= m.t then
    local co = m.waiters[m.h]
    m.waiters[m.h] = nil
    m.h = m.h + 1
    if m.h > m.t then m.h, m.t = 1, 0 end
    wake(co)
  else
    m.locked = false
  end
end

local count = 0

local function work()
  for _ = 1, ROUNDS do
    acquire(mutex)
    local c = count
    yield()
    count = c + 1
    release(mutex)
  end
end

spawn(function()
  local t0 = uv.hrtime()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = spawn(work) end
  for i = 1, TASKS do await(tasks[i]) end
  local t1 = uv.hrtime()
  print(string.format("time=%.6f check=%d", (t1 - t0) / 1e9, count))
end)
uv.run()
