-- Regression (issue 15, point 3; found by tests/diff, seed 1134 of
-- diff.py): an inner timeout scope whose deadline passed, and whose
-- CANCELLED was caught inside it, raised TIMEOUT for the CANCELLED of an
-- enclosing scope's later deadline, as if both had expired together.
-- A scope reports TIMEOUT only for its own request (docs/
-- API-composition.md): the outer cancel passes the inner scope as
-- CANCELLED and the outer scope reports TIMEOUT, as in asyncio.
local corio = require "corio"

describe("regress: an inner timeout does not claim an outer deadline",
         function()
  it("passes the outer CANCELLED after its own was swallowed", function()
    local log = {}
    local t = corio.spawn(function()
      local ok1, e1 = pcall(corio.timeout, 0.4, function()
        local ok2, e2 = pcall(corio.timeout, 0.1, function()
          pcall(corio.sleep, 5)               -- the inner deadline, caught
          corio.sleep(5)                      -- the outer deadline
        end)
        log[#log + 1] = ok2 and "inner ok" or e2.code
        if not ok2 then error(e2, 0) end
      end)
      log[#log + 1] = ok1 and "outer ok" or e1.code
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "CANCELLED", "TIMEOUT" }, log)
  end)

  it("still reports from the inner scope when both expire together",
     function()
    local log = {}
    local t = corio.spawn(function()
      local ok1, e1 = pcall(corio.timeout, 0.1, function()
        local ok2, e2 = pcall(corio.timeout, 0.05, function()
          -- Both deadlines pass while the task runs without awaiting:
          -- they fire in the same loop turn, before it runs again.
          local c = os.clock()
          while os.clock() - c < 0.2 do end
          corio.sleep(5)
        end)
        log[#log + 1] = ok2 and "inner ok" or e2.code
        local ok3, e3 = pcall(corio.sleep, 5)  -- the outer one, re-armed
        log[#log + 1] = ok3 and "slept" or e3.code
        if not ok3 then error(e3, 0) end
      end)
      log[#log + 1] = ok1 and "outer ok" or e1.code
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "TIMEOUT", "CANCELLED", "TIMEOUT" }, log)
  end)
end)
