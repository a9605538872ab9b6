-- W3 reference without an event loop: the memory floor of a sleeping task.
-- 100,000 coroutines, each suspended where a corio task sleeps: a Lua body
-- called through a yieldable protected call (pcall, as corio's task_main)
-- and yielding from a C function (coroutine.yield, as corio.sleep).  The
-- same `delays` and `tasks` tables as W3, nothing else.  No timers: once
-- all are suspended they are resumed in spawn order, so `time` means
-- little; the figure that matters is the peak RSS, which run.py turns into
-- bytes per task exactly as for W3 (with glibc's malloc, whose per-block
-- overhead corio's slab allocator does not have).
local N = 100000

local delays, x = {}, 42
for i = 1, N do
  x = (x * 1103515245 + 12345) % 2147483648
  delays[i] = x % 1001
end

local function sleeper(ms)
  coroutine.yield(ms)
  return ms
end

local t0 = os.clock()
local tasks = {}
for i = 1, N do
  local co = coroutine.create(pcall)
  assert(coroutine.resume(co, sleeper, delays[i]))
  tasks[i] = co
end
local total = 0
for i = 1, N do
  local _, ok, ms = coroutine.resume(tasks[i])
  assert(ok)
  total = total + ms
end
local t1 = os.clock()
print(string.format("time=%.6f check=%d", t1 - t0, total))
