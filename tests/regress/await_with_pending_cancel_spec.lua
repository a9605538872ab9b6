-- Regression (issue 15, point 3; found by tests/diff, seed 445 of
-- diff.py): a task with a cancel request pending (it cancelled itself, or
-- was cancelled while it ran) that then awaited a running task raised
-- CANCELLED at once and left that task running.  corio.wait_for(fn, s)
-- spawned fn and orphaned it: nobody cancelled or awaited it.  A request
-- arriving during the wait is passed on to the awaited task (as asyncio
-- does); one pending when the wait starts now is too, and the awaiter
-- raises CANCELLED once the awaited task has unwound.
local corio = require "corio"

describe("regress: an await that starts with a cancel pending", function()
  it("wait_for cancels the task it spawned and waits for it", function()
    local log = {}
    local inner
    local t = corio.spawn(function()
      corio.current():cancel()                -- pending: no await yet
      local ok, err = pcall(corio.wait_for, function()
        inner = corio.current()
        log[#log + 1] = "inner started"
        corio.sleep(10)
      end, 5)
      log[#log + 1] = ok and "ok" or err.code
      log[#log + 1] = inner == nil and "inner never ran" or
        (inner:done() and "inner done" or "inner running")
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "CANCELLED", "inner never ran" }, log)
  end)

  it("await passes the request to a started task and waits", function()
    local ev = corio.sync.Event()
    local unwound = false
    local inner = corio.spawn(function()
      local ok = pcall(corio.sleep, 10)
      assert(not ok)
      ev:wait()                               -- cleanup that awaits
      unwound = true
      return "late"
    end)
    corio.yield()                             -- inner is now sleeping
    local t = corio.spawn(function()
      corio.current():cancel()
      local ok, err = pcall(inner.await, inner)
      return ok and "ok" or err.code, unwound
    end)
    corio.yield()
    assert.is_false(t:done())                 -- waits for inner's cleanup
    ev:set()
    local code, was_unwound = corio.wait_for(t, 10)
    assert.are.equal("CANCELLED", code)
    assert.is_true(was_unwound)
    assert.are.equal("late", inner:result())
  end)

  it("awaiting itself with a request pending raises CANCELLED", function()
    local t = corio.spawn(function()
      local me = corio.current()
      me:cancel()
      local ok, err = pcall(me.await, me)
      return ok and "ok" or err.code
    end)
    assert.are.equal("CANCELLED", corio.wait_for(t, 10))
  end)
end)
