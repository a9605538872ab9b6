-- Regression (issue 15, point 3; found by tests/diff, seed 1018 of
-- diff.py): a task awaiting another task passes a cancel request on to it;
-- a second request while the first was "on its way" (the awaiter raises
-- once the awaited task has finished) was counted but not passed on.  If
-- the awaited task had swallowed the first one, nothing interrupted it any
-- more: a wait_for whose caller had been cancelled once no longer stopped
-- the task at its deadline (it ran its full length).  asyncio passes every
-- request on (Task.cancel cancels the future the task waits for).
local corio = require "corio"

describe("regress: a second cancel reaches the awaited task", function()
  it("wait_for's deadline still interrupts a task that swallowed a cancel",
     function()
    local log = {}
    local inner = corio.spawn(function()
      local ok = pcall(corio.sleep, 10)
      log[#log + 1] = ok and "slept" or "first cancel swallowed"
      local ok2, e2 = pcall(corio.sleep, 2)
      log[#log + 1] = ok2 and "slept 2 s" or e2.code
      if not ok2 then error(e2, 0) end
    end)
    local t1 = corio.spawn(corio.wait_for, inner, 0.2)
    corio.yield()
    corio.yield()                             -- t1 waits for inner
    local t0 = corio.now()
    t1:cancel()                               -- passed on, swallowed
    local ok, err = pcall(corio.wait_for, t1, 1)
    assert.is_false(ok)
    assert.are.equal("CANCELLED", err.code)
    assert.are.same({ "first cancel swallowed", "CANCELLED" }, log)
    assert.is_true(corio.now() - t0 < 1)
  end)

  it("a plain second cancel is passed on too", function()
    local n = 0
    local inner = corio.spawn(function()
      for _ = 1, 2 do
        if not pcall(corio.sleep, 10) then n = n + 1 end
      end
      return "done"
    end)
    local outer = corio.spawn(function() return inner:await() end)
    corio.yield()
    corio.yield()
    outer:cancel()
    corio.yield()
    outer:cancel()
    local ok, err = pcall(corio.wait_for, outer, 5)
    assert.is_false(ok)
    assert.are.equal("CANCELLED", err.code)
    assert.are.equal(2, n)
    assert.are.equal("done", inner:result())
  end)
end)
