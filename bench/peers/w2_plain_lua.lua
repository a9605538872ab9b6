-- W2 reference without an event loop: 1,000 coroutines x 1,000
-- resume/yield round trips, round robin, in plain Lua 5.4.
-- os.clock() is CPU time; for this purely CPU-bound loop it tracks wall time.
local TASKS, YIELDS = 1000, 1000

local function work()
  for _ = 1, YIELDS do coroutine.yield() end
  return YIELDS
end

local t0 = os.clock()
local cos = {}
for i = 1, TASKS do cos[i] = coroutine.create(work) end
local total, live = 0, TASKS
while live > 0 do
  for i = 1, TASKS do
    local co = cos[i]
    if co then
      local ok, r = coroutine.resume(co)
      assert(ok, r)
      if coroutine.status(co) == "dead" then
        total, live, cos[i] = total + r, live - 1, false
      end
    end
  end
end
local t1 = os.clock()
print(string.format("time=%.6f check=%d", t1 - t0, total))
