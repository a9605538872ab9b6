-- W2 yields on cqueues: 1,000 tasks each yielding to the controller 1,000
-- times.  cqueues.poll() with no arguments yields and is resumed on the next
-- controller step (same semantics as cqueues.sleep(0), which additionally
-- arms a timer and measured ~3x slower).
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local TASKS, YIELDS = 1000, 1000

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

local function work()
  for _ = 1, YIELDS do cqueues.poll() end
  return YIELDS
end

cq:wrap(function()
  local t0 = cqueues.monotime()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = spawn(work) end
  local total = 0
  for i = 1, TASKS do total = total + await(tasks[i]) end
  local t1 = cqueues.monotime()
  print(string.format("time=%.6f check=%d", t1 - t0, total))
end)
assert(cq:loop())
