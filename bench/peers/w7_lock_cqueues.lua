-- W7 lock on cqueues: 100 tasks each taking one shared mutex 1,000 times,
-- with a yield to the controller (cqueues.poll() with no arguments) inside
-- the critical section.  The mutex is a flag and a cqueues.condition.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local TASKS, ROUNDS = 100, 1000

local cq = cqueues.new()

local mutex = { locked = false, cond = condition.new() }

local function acquire(m)
  while m.locked do m.cond:wait() end
  m.locked = true
end

local function release(m)
  m.locked = false
  m.cond:signal(1)
end

local count = 0

local function spawn(fn)
  local task = { done = false }
  cq:wrap(function()
    task.value = fn()
    task.done = true
    if task.cond then task.cond:signal() end
  end)
  return task
end

local function await(task)
  if not task.done then
    task.cond = task.cond or condition.new()
    repeat task.cond:wait() until task.done
  end
  return task.value
end

local function work()
  for _ = 1, ROUNDS do
    acquire(mutex)
    local c = count
    cqueues.poll()
    count = c + 1
    release(mutex)
  end
end

cq:wrap(function()
  local t0 = cqueues.monotime()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = spawn(work) end
  for i = 1, TASKS do await(tasks[i]) end
  local t1 = cqueues.monotime()
  print(string.format("time=%.6f check=%d", t1 - t0, count))
end)
assert(cq:loop())
