-- W7 lock: 100 tasks each taking one shared Lock 1,000 times, with a
-- yield() to the event loop inside the critical section.
local corio = require "corio"
local sync = require "corio.sync"
local TASKS, ROUNDS = 100, 1000

local lock = sync.Lock()
local count = 0

local function work()
  for _ = 1, ROUNDS do
    lock:acquire()
    local c = count
    corio.yield()
    count = c + 1                       -- lost updates if exclusion failed
    lock:release()
  end
end

local t0 = corio.now()
local tasks = {}
for i = 1, TASKS do tasks[i] = corio.spawn(work) end
for i = 1, TASKS do tasks[i]:await() end
local t1 = corio.now()

print(string.format("time=%.6f check=%d", t1 - t0, count))
