-- Regression (issue 15, point 3; found by tests/diff, seeds 100566 and
-- 101962 of diff.py): an outer timeout scope expires and its CANCELLED is
-- caught inside an inner scope entered before; then the inner deadline
-- passes.  The inner scope counted the outer request (delivered, but still
-- counted until the outer scope exits) as expiring together with its own:
-- it raised TIMEOUT and requested the outer cancellation anew, so the next
-- await raised a second, stray CANCELLED for a deadline whose CANCELLED
-- had already been delivered.  The task is still being cancelled: the
-- inner scope lets its CANCELLED through, and the outer scope reports
-- TIMEOUT if that reaches it, as in asyncio.
local corio = require "corio"

describe("regress: a timeout after an outer scope's swallowed CANCELLED",
         function()
  it("passes CANCELLED and re-delivers nothing", function()
    local log = {}
    local t = corio.spawn(function()
      local ok1, e1 = pcall(corio.timeout, 0.05, function()
        local ok2, e2 = pcall(corio.timeout, 0.8, function()
          local ok, e = pcall(corio.sleep, 5)   -- the outer deadline
          log[#log + 1] = ok and "slept" or e.code
          corio.sleep(5)                        -- the inner deadline
        end)
        log[#log + 1] = ok2 and "inner ok" or e2.code
        local ok3, e3 = pcall(corio.sleep, 0.01)  -- nothing left to raise
        log[#log + 1] = ok3 and "slept" or e3.code
      end)
      log[#log + 1] = ok1 and "outer ok" or e1.code
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "CANCELLED", "CANCELLED", "slept", "outer ok" }, log)
  end)

  it("the outer scope reports TIMEOUT for the inner CANCELLED", function()
    local log = {}
    local t = corio.spawn(function()
      local ok1, e1 = pcall(corio.timeout, 0.05, function()
        local ok2, e2 = pcall(corio.timeout, 0.8, function()
          local ok, e = pcall(corio.sleep, 5)   -- the outer deadline
          log[#log + 1] = ok and "slept" or e.code
          corio.sleep(5)                        -- the inner deadline
        end)
        log[#log + 1] = ok2 and "inner ok" or e2.code
        if not ok2 then error(e2, 0) end
      end)
      log[#log + 1] = ok1 and "outer ok" or e1.code
      log[#log + 1] = corio.current():cancelling()
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "CANCELLED", "CANCELLED", "TIMEOUT", 0 }, log)
  end)
end)
