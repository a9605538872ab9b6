-- Regression (issue 15, point 3; tests/diff seeds 197514 and 75534 of
-- diff.py): a group counted a cancel request still pending when it was
-- made (the task had cancelled itself and not awaited since) among those
-- the task had already seen.  That request is delivered inside the group;
-- when it arrived as one CANCELLED together with the group's own request
-- (a child failed meanwhile), the group took that CANCELLED for its own,
-- took it back and raised the child's error: the task's cancellation was
-- swallowed.  A request pending at creation is not counted as seen.
local corio = require "corio"

describe("regress: a group does not swallow a cancel pending when it was made", function()
  it("raises CANCELLED, not the child's error", function()
    local t = corio.spawn(function()
      local me = corio.current()
      me:cancel("outer")                    -- pending: made while running
      local ok, e = pcall(function()
        local g <close> = corio.group()
        g:spawn(function() error("child failed", 0) end)
        -- An inner group's wait takes the pending CANCELLED and goes on
        -- waiting for its child; meanwhile the outer child fails and
        -- cancels this task (the outer group is not waited for yet), and
        -- the inner group raises one CANCELLED for both.
        local inner <close> = corio.group()
        inner:spawn(function() corio.yield() end)
        error("body failed", 0)
      end)
      return ok, e, me:cancelling()
    end)
    local ok, e, n = t:await()
    assert.is_false(ok)
    assert.is_true(corio.is_cancelled(e), tostring(e))
    assert.are.equal(1, n)                  -- the group took its own back
  end)

  it("still takes back a request it made itself", function()
    local t = corio.spawn(function()
      local ok, e = pcall(function()
        local g <close> = corio.group()
        g:spawn(function() error("child failed", 0) end)
        corio.sleep(1)                      -- cancelled by the group
      end)
      return ok, e, corio.current():cancelling()
    end)
    assert.are.same({ false, "child failed", 0 }, { t:await() })
  end)
end)
