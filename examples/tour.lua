-- A short tour of corio: run it with `make run` or `build/corio examples/tour.lua`.
local corio = require "corio"

local t0 = corio.now()
local function say(fmt, ...)
  print(string.format("[%5.3fs] " .. fmt, corio.now() - t0, ...))
end

-- 1. Tasks: spawn starts a function as a task on a later loop turn;
--    await returns every value it returned.  The top level of a script is
--    itself a task, so it can await.
local function brew(what, seconds)
  corio.sleep(seconds)
  return what, seconds
end

local tea = corio.spawn(brew, "tea", 0.05)
say("spawned %s", tea:name())
say("%s is ready after %.2fs", tea:await())

-- 2. A future: a value that some other code provides later.
local answer = corio.future()
corio.call_later(0.02, function() answer:set_result(42) end)
say("the answer is %d", answer:await())

-- 3. Several tasks at once: they run concurrently, so gathering them takes
--    as long as the slowest, not the sum.  gather returns their first
--    results in order (and if one fails, cancels the others).
local orders = {}
for i, drink in ipairs { "espresso", "latte", "mocha" } do
  orders[i] = corio.spawn(brew, drink, 0.03 * i)
end
local started = corio.now()
local served = corio.gather(orders)
say("served %s in %.2fs", table.concat(served, ", "), corio.now() - started)

-- 4. Cancellation: the task's pending await raises CANCELLED inside it, so
--    its cleanup (`<close>` variables, pcall) runs -- and may itself await.
local worker = corio.spawn(function()
  local cleanup <close> = setmetatable({}, { __close = function()
    corio.sleep(0.01)
    say("worker cleaned up")
  end })
  say("worker starts a long job")
  corio.sleep(60)
  say("never printed")
end)
corio.sleep(0.02)
worker:cancel("no longer needed")
local ok, err = pcall(worker.await, worker)
say("worker ended: %s (cancelled: %s)", tostring(err), tostring(corio.is_cancelled(err)))

-- 5. A deadline: wait_for gives a slow job 50 ms, then cancels it (its
--    cleanup runs) and raises TIMEOUT.
local slow = corio.spawn(brew, "cold brew", 10)
local ok2, err2 = pcall(corio.wait_for, slow, 0.05)
say("slow job: %s (timeout: %s, job cancelled: %s)", tostring(err2),
  tostring(corio.is_timeout(err2)), tostring(slow:cancelled()))

-- 6. Errors are values with a code: they travel through await unchanged.
local failing = corio.spawn(function()
  error(corio.Error("EXAMPLE", "something went wrong"))
end)
local ok3, err3 = pcall(failing.await, failing)
say("caught %s (code %s)", tostring(err3), err3.code)

say("tour finished")
