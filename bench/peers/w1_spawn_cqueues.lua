-- W1 spawn on cqueues: 1,000,000 tasks (one cq:wrap coroutine each) returning
-- their index, awaited in order.  A task is a tiny future; the awaiter blocks
-- on a cqueues.condition created lazily, only if the task is not done yet.
-- (cqueues.promise does the same but eagerly allocates a condition + pcall per
-- task and measured ~1.7x slower here.)
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local N = 1000000

local cq = cqueues.new()

local function spawn(fn, arg)
  local task = { done = false }
  cq:wrap(function()
    task.value = fn(arg)
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

local function work(i) return i end

cq:wrap(function()
  local t0 = cqueues.monotime()
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(work, i) end
  local sum = 0
  for i = 1, N do sum = sum + await(tasks[i]) end
  local t1 = cqueues.monotime()
  print(string.format("time=%.6f check=%d", t1 - t0, sum))
end)
assert(cq:loop())
