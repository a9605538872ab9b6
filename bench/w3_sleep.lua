-- W3 sleepers: 100,000 tasks each sleeping a pseudo-random 0..1000 ms.
local corio = require "corio"
local N = 100000

-- Deterministic LCG (seed 42), identical in every runtime.
local delays, x = {}, 42
for i = 1, N do
  x = (x * 1103515245 + 12345) % 2147483648
  delays[i] = x % 1001
end

local function sleeper(ms)
  corio.sleep(ms / 1000)
  return ms
end

local t0 = corio.now()
local tasks = {}
for i = 1, N do tasks[i] = corio.spawn(sleeper, delays[i]) end
local total = 0
for i = 1, N do total = total + tasks[i]:await() end
local t1 = corio.now()

print(string.format("time=%.6f check=%d", t1 - t0, total))
