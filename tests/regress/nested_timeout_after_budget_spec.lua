-- Regression (issue 15, point 2): a per-attempt timeout nested in an
-- overall budget that expired (its CANCELLED caught by a pcall) must still
-- fire.  compose.lua's expire() remembered the budget's cancel as owed
-- after it had been delivered and swallowed, and refused every later
-- scope's cancel: attempt 4 waited on its Event for ever.  Python 3.11's
-- asyncio ends attempts 4 and 5 after 0.1 s each.
local corio = require "corio"

describe("regress: nested timeout after an expired budget", function()
  it("per-attempt timeouts still fire once the budget expired", function()
    local log = {}
    -- Run in a task of its own, bounded: a hang fails instead.
    local t = corio.spawn(function()
      local budget <close> = corio.timeout(0.25)
      for attempt = 1, 5 do
        local ok, err = pcall(corio.timeout, 0.1, function()
          corio.sync.Event():wait()           -- never set
        end)
        log[attempt] = ok and "ok" or err.code
      end
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "TIMEOUT", "TIMEOUT", "CANCELLED", "TIMEOUT",
                      "TIMEOUT" }, log)
  end)

  it("wait_for inside an expired budget still times out", function()
    local log = {}
    local t = corio.spawn(function()
      local budget <close> = corio.timeout(0.05)
      pcall(corio.sleep, 1)                   -- the budget expires here
      for i = 1, 2 do
        local ok, err = pcall(corio.wait_for, function()
          corio.sync.Event():wait()
        end, 0.05)
        log[i] = ok and "ok" or err.code
      end
    end)
    corio.wait_for(t, 10)
    assert.are.same({ "TIMEOUT", "TIMEOUT" }, log)
  end)
end)
