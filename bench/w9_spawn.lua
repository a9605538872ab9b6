-- W9: spawn 1,000 `true` processes, 16 at a time, and wait for each.
-- Prints time=<s> check=<sum of exit codes + count>.
local corio = require "corio"
local process = require "corio.process"

local N, FLIGHT = 1000, 16
local t0 = corio.now()
local started, done = 0, 0
local function worker()
  while started < N do
    started = started + 1
    local code = process.spawn({ "true" }):wait()
    if code == 0 then done = done + 1 end
  end
end
local tasks = {}
for i = 1, FLIGHT do tasks[i] = corio.spawn(worker) end
for i = 1, FLIGHT do tasks[i]:await() end
print(string.format("time=%.4f check=%d", corio.now() - t0, done))
