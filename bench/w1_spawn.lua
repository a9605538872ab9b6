-- W1 spawn: spawn 1,000,000 tasks each returning its index, await all in order.
local corio = require "corio"
local N = 1000000

local function work(i) return i end

local t0 = corio.now()
local tasks = {}
for i = 1, N do tasks[i] = corio.spawn(work, i) end
local sum = 0
for i = 1, N do sum = sum + tasks[i]:await() end
local t1 = corio.now()

print(string.format("time=%.6f check=%d", t1 - t0, sum))
