-- W2 yields: 1,000 tasks each yielding to the event loop 1,000 times.
local corio = require "corio"
local TASKS, YIELDS = 1000, 1000

local function work()
  for _ = 1, YIELDS do corio.yield() end
  return YIELDS
end

local t0 = corio.now()
local tasks = {}
for i = 1, TASKS do tasks[i] = corio.spawn(work) end
local total = 0
for i = 1, TASKS do total = total + tasks[i]:await() end
local t1 = corio.now()

print(string.format("time=%.6f check=%d", t1 - t0, total))
