-- Regression (issue 15, point 3; found by tests/diff, seeds 126 and 864
-- of diff.py): when wait_for's deadline passed and the awaited task, while
-- unwinding from the cancel, failed with an error of its own, wait_for
-- raised TIMEOUT and the error was lost.  asyncio (3.11's wait_for and
-- 3.12's, built on timeout) raises the task's error: only a CANCELLED
-- becomes TIMEOUT, as corio.timeout's "only its own deadline" rule says.
local corio = require "corio"

describe("regress: wait_for keeps an error raised after its deadline", function()
  it("raises the task's error, not TIMEOUT", function()
    local t = corio.spawn(function()
      pcall(corio.sleep, 10)                  -- the deadline cancels this
      error({ user = "boom" }, 0)
    end)
    local ok, err = pcall(corio.wait_for, t, 0.01)
    assert.is_false(ok)
    assert.are.equal("boom", type(err) == "table" and err.user or err)
  end)

  it("still raises TIMEOUT when the task ends cancelled", function()
    local t = corio.spawn(function() corio.sleep(10) end)
    local ok, err = pcall(corio.wait_for, t, 0.01)
    assert.is_false(ok)
    assert.are.equal("TIMEOUT", err.code)
    assert.is_true(t:cancelled())
  end)

  it("still returns a result that raced the deadline", function()
    local t = corio.spawn(function()
      pcall(corio.sleep, 10)
      return "late"
    end)
    assert.are.equal("late", corio.wait_for(t, 0.01))
  end)
end)
