-- Regression (issue 15, point 11): a process-pool job cancelled while its
-- worker process was still starting was never interrupted.  The interrupt
-- is SIGURG, ignored by default: sent before the child had installed its
-- handler it was lost, the job (a loop that never ends) ran on, and the
-- worker never came back to the pool, so the next job waited for ever.
-- `make tsan` stalled on it (a TSan child takes ~0.2 s to start, the
-- executor spec cancels after 0.2 s); natively a cancel right after the
-- spawn did it.  Now a worker says hello once it takes interrupts, and
-- the parent holds an interrupt until then.
local corio = require "corio"
local executor = require "corio.executor"

describe("regress: cancelling a job while its worker process starts", function()
  it("interrupts the job: the worker takes the next one", function()
    local pool = executor.process_pool(1)
    for round = 1, 3 do
      local t = corio.spawn(function()
        return pool:run(function() while true do end end)
      end)
      corio.yield()                  -- the job is sent; the worker starts
      t:cancel()
      assert.is_false(pcall(t.await, t))
      -- Bounded: before the fix this waited for ever.
      assert.are.equal(round, corio.wait_for(corio.spawn(function()
        return pool:run(function(x) return x end, round)
      end), 20))
      pool:close()
      pool = executor.process_pool(1)  -- a new worker, starting again
    end
    pool:close()
  end)
end)
