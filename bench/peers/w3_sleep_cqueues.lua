-- W3 sleepers on cqueues: 100,000 tasks each sleeping a pseudo-random
-- 0..1000 ms with cqueues.sleep, awaited in order.
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local N = 100000

-- Deterministic LCG (seed 42), identical in every runtime.
local delays, x = {}, 42
for i = 1, N do
  x = (x * 1103515245 + 12345) % 2147483648
  delays[i] = x % 1001
end

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

local function sleeper(ms)
  cqueues.sleep(ms / 1000)
  return ms
end

cq:wrap(function()
  local t0 = cqueues.monotime()
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(sleeper, delays[i]) end
  local total = 0
  for i = 1, N do total = total + await(tasks[i]) end
  local t1 = cqueues.monotime()
  print(string.format("time=%.6f check=%d", t1 - t0, total))
end)
assert(cq:loop())
