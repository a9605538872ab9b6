-- Cancellation: Task:cancel at every await point, cleanup through pcall
-- and <close> (which may itself await), and the cancel rules.
local corio = require "corio"
local core = require "corio.core"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

-- Every kind of await a task can be suspended in; each returns a function
-- that suspends, and a function that releases anything it set up.
local points = {
  sleep = function()
    return function() corio.sleep(30) end
  end,
  ["sleep(0)"] = function()
    return function() while true do corio.sleep(0) end end
  end,
  yield = function()
    return function() while true do corio.yield() end end
  end,
  future = function()
    local f = corio.future()
    return function() f:await() end
  end,
  task = function()
    local inner
    return function()
      inner = corio.spawn(corio.sleep, 30)
      inner:await()
    end
  end,
  ["core.wait"] = function()
    return function()
      core.waiter()
      core.wait()
    end
  end,
}

local names = {}
for name in pairs(points) do names[#names + 1] = name end
table.sort(names)

for _, name in ipairs(names) do
  describe("cancelling a task in " .. name, function()
    it("raises CANCELLED in it, which pcall catches", function()
      local wait = points[name]()
      local t = corio.spawn(function()
        local ok, err = pcall(wait)
        return ok, err
      end)
      corio.yield()
      assert.is_true(t:cancel("stop now"))
      local ok, err = t:await()
      assert.is_false(ok)
      S.is_error(err, "CANCELLED")
      assert.is_true(corio.is_cancelled(err))
      assert.matches("stop now", err.message)
      -- it swallowed the cancel: the task ends well
      assert.is_false(t:cancelled())
    end)

    it("runs <close> cleanup, which may await, and ends cancelled", function()
      local wait = points[name]()
      local log = {}
      local t = corio.spawn(function()
        local guard <close> = setmetatable({}, { __close = function(_, e)
          log[#log + 1] = corio.is_cancelled(e) and "close(cancelled)"
                                                 or "close(?)"
          corio.sleep(0.01)                  -- cleanup may await
          log[#log + 1] = "closed"
        end })
        wait()
        log[#log + 1] = "not reached"
      end)
      corio.yield()
      assert.is_true(t:cancel())
      local err = S.raises(t.await, t)
      S.is_error(err, "CANCELLED")
      assert.is_true(t:cancelled())
      assert.same({ "close(cancelled)", "closed" }, log)
    end)

    it("lets pcall cleanup await and the task go on", function()
      local wait = points[name]()
      local t = corio.spawn(function()
        local ok = pcall(wait)
        corio.sleep(0.01)
        corio.yield()
        local f = corio.future()
        corio.call_soon(function() f:set_result("after") end)
        return ok, f:await()
      end)
      corio.yield()
      t:cancel()
      assert.same({ false, "after" }, { t:await() })
    end)

    it("leaves nothing behind", function()
      local wait = points[name]()
      local t = corio.spawn(wait)
      corio.yield()
      t:cancel()
      pcall(t.await, t)
      corio.yield()
      local s = core.stats()
      assert.equal(1, s.tasks)               -- only the test runner
      assert.equal(0, s.timers)
      assert.equal(0, s.callbacks)
    end)
  end)
end

describe("Task:cancel", function()
  it("returns false for a finished task", function()
    local ok = corio.spawn(function() return 1 end)
    local bad = corio.spawn(function() error("x") end)
    local gone = corio.spawn(corio.sleep, 10)
    ok:await()
    pcall(bad.await, bad)
    corio.yield()
    assert.is_true(gone:cancel())
    pcall(gone.await, gone)
    assert.is_false(ok:cancel())
    assert.is_false(bad:cancel())
    assert.is_false(gone:cancel())
    assert.equal(1, ok:result())
  end)

  it("before the task starts: its body never runs", function()
    local ran = false
    local t = corio.spawn(function() ran = true end)
    assert.is_true(t:cancel("early"))
    local err = S.is_error(S.raises(t.await, t), "CANCELLED")
    assert.matches("early", err.message)
    assert.is_false(ran)
    assert.is_true(t:cancelled())
  end)

  it("raises CANCELLED only once, however often it is called", function()
    local caught = 0
    local t = corio.spawn(function()
      for _ = 1, 3 do
        local ok = pcall(corio.sleep, 10)
        if not ok then caught = caught + 1 end
        if caught == 1 then break end
      end
      corio.sleep(0.02)          -- not cancelled again
      return "survived"
    end)
    corio.yield()
    assert.is_true(t:cancel())
    assert.is_true(t:cancel())
    assert.is_true(t:cancel())
    assert.equal("survived", t:await())
    assert.equal(1, caught)
  end)

  it("a second cancel interrupts a cleanup that awaits", function()
    local log = {}
    local t = corio.spawn(function()
      local c <close> = setmetatable({}, { __close = function()
        log[#log + 1] = "cleanup starts"
        local ok, err = pcall(corio.sleep, 30)
        log[#log + 1] = "cleanup interrupted: " .. tostring(not ok and err.code)
      end })
      corio.sleep(30)
    end)
    corio.yield()
    assert.is_true(t:cancel("first"))
    corio.yield()
    assert.same({ "cleanup starts" }, log)
    assert.is_true(t:cancel("second"))
    S.is_error(S.raises(t.await, t), "CANCELLED")
    assert.same({ "cleanup starts", "cleanup interrupted: CANCELLED" }, log)
  end)

  it("a task can cancel itself: its next await raises", function()
    local t = corio.spawn(function()
      local me = corio.current()
      local taken = me:cancel("self")
      local ok, err = pcall(corio.yield)
      return taken, ok, err.code, err.message
    end)
    assert.same({ true, false, "CANCELLED", "self" }, { t:await() })
  end)

  it("uses a default message without one", function()
    local t = corio.spawn(corio.sleep, 10)
    corio.yield()
    t:cancel()
    local err = S.raises(t.await, t)
    assert.equal("CANCELLED", err.code)
    assert.is_string(err.message)
    assert.matches("^CANCELLED: ", tostring(err))
  end)

  it("of a woken task keeps the value and cancels its next await", function()
    local f = corio.future()
    local t = corio.spawn(function()
      local v = f:await()
      local ok, err = pcall(corio.sleep, 10)
      return v, ok, err.code
    end)
    corio.yield()
    f:set_result("value")          -- t is now queued to resume
    t:cancel()
    assert.same({ "value", false, "CANCELLED" }, { t:await() })
  end)

  it("of a task awaiting another cancels that one first", function()
    local log = {}
    local inner = corio.spawn(function()
      local guard <close> = setmetatable({}, { __close = function()
        corio.sleep(0.02)
        log[#log + 1] = "inner unwound"
      end })
      corio.sleep(30)
    end)
    local outer = corio.spawn(function()
      local ok, err = pcall(inner.await, inner)
      log[#log + 1] = "outer got " .. err.code
      return ok
    end)
    corio.yield()
    assert.is_true(outer:cancel("from above"))
    assert.is_false(outer:await())
    assert.is_true(inner:cancelled())
    assert.same({ "inner unwound", "outer got CANCELLED" }, log)
    assert.matches("from above", inner:error().message)
  end)

  it("of the head of a 100,000-task await chain reaches its tail", function()
    -- In a child with a 1 MiB C stack: cancelling must not recurse along
    -- the chain.  Each level catches the CANCELLED error, so that
    -- unwinding does not build 100,000 tracebacks.
    local d = S.tmpdir()
    local script = S.write(d .. "/chain.lua", [[
      local corio = require "corio"
      local core = require "corio.core"
      local N = 100000
      local tail_cancelled = false
      local function level(n)
        if n == 0 then
          local ok, err = pcall(corio.sleep, 60)
          tail_cancelled = not ok and corio.is_cancelled(err)
          return
        end
        local inner = corio.spawn(level, n - 1)
        local ok = pcall(inner.await, inner)
        return ok
      end
      local head = corio.spawn(level, N)
      while core.stats().timers == 0 do corio.yield() end
      print(core.stats().tasks, head:cancel("stop the chain"), head:await(),
            tail_cancelled, core.stats().tasks)
    ]])
    local out, code = S.sh("ulimit -s 1024 && " .. S.shquote(S.corio) .. " " ..
                           S.shquote(script) .. " 2>&1")
    S.cleanup()
    assert.equal(0, code)
    assert.equal("100002" .. "\ttrue\tfalse\ttrue\t1\n", out)
  end)

  it("of a task awaiting a future leaves the future alone", function()
    local f = corio.future()
    local t = corio.spawn(function() f:await() end)
    corio.yield()
    t:cancel()
    pcall(t.await, t)
    assert.is_false(f:done())
  end)

  it("a cancelled task ends with the error its cleanup raised", function()
    local t = corio.spawn(function()
      local ok = pcall(corio.sleep, 10)
      assert(not ok)
      error(corio.Error("CLEANUP", "cleanup failed"))
    end)
    corio.yield()
    t:cancel()
    local err = S.raises(t.await, t)
    assert.equal("CLEANUP", err.code)
    assert.is_false(t:cancelled())
  end)

  it("a cancelled task that nobody awaits is not reported", function()
    local reports = S.capture(function()
      local t = corio.spawn(corio.sleep, 10)
      corio.yield()
      t:cancel()
      t = nil
      corio.yield()
      corio.yield()
    end)
    assert.equal(0, #reports)
  end)

  it("a stale core.wake after cancel is dropped", function()
    local task, token, token2
    local t = corio.spawn(function()
      task, token = core.waiter()
      local ok = pcall(core.wait)
      local task2
      task2, token2 = core.waiter()       -- a new wait, a new token
      assert(task2 == task and token2 ~= token)
      return ok, core.wait()
    end)
    corio.yield()
    t:cancel()
    corio.yield()
    assert.is_false(core.wake(task, token, "stale"))
    assert.is_false(core.throw(task, token, "stale"))
    assert.is_true(core.wake(task, token2, "fresh"))
    assert.is_false(core.wake(task, token2, "twice"))
    assert.same({ false, "fresh" }, { t:await() })
  end)
end)
