-- corio composition: gather, wait, wait_for, timeout scopes, shield,
-- as_completed, group.
local corio = require "corio"
local core = require "corio.core"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers/sync_helpers.lua")
local S = dofile(here .. "support.lua")

-- Runs `body` in a child corio that must end within 20 s (a hang or a busy
-- loop fails the test instead of hanging the suite); returns its stdout.
local function child(body)
  local r = S.run('local corio = require "corio"\n' .. body,
    { timeout = 20 })
  S.cleanup()
  assert(r.code == 0, ("child exited with %s: %s"):format(r.code, r.err))
  return r.out
end

-- A task body that ignores its cancellation and then waits for ever.
local STUBBORN = [[
local function stubborn()
  pcall(corio.future().await, corio.future())
  corio.future():await()
end
]]

-- A task body that records, in `log`, that its cleanup ran (and awaited).
local function sleeper(log, name, s)
  return function()
    local _ <close> = setmetatable({}, { __close = function()
      corio.yield()                     -- cleanup may await
      log[#log + 1] = name
    end })
    corio.sleep(s or 10)
    return name
  end
end


-- Deadlines are whole milliseconds: two 20 ms timers armed at t0 and t1
-- fire in the same loop turn only if they round to the same one.  Specs of
-- such races check that from the clock and try again otherwise.
local function same_ms(t0, t1)
  return math.ceil((t0 + 0.02) * 1000) == math.ceil((t1 + 0.02) * 1000)
end

describe("corio.gather", function()
  it("returns first results in order (both calling forms)", function()
    local f = corio.future()
    local t = corio.spawn(function() corio.sleep(0.01); return "t", "x" end)
    corio.call_soon(function() f:set_result("f") end)
    local r = corio.gather(function() corio.sleep(0.02); return 1 end, t, f,
      function() return nil end)
    assert.are.same({ 1, "t", "f", n = 4 }, r)
    local r2 = corio.gather({ function() return "a" end, t }, {})
    assert.are.same({ "a", "t", n = 2 }, r2)
    assert.are.same({ n = 0 }, corio.gather())
    assert.are.same({ n = 0 }, corio.gather({}))
  end)

  it("on the first error cancels the rest and raises once they unwound",
    function()
    local log = {}
    local e = H.err(corio.gather, sleeper(log, "a"), sleeper(log, "b"),
      function() corio.sleep(0.01); error("boom", 0) end)
    assert.are.equal("boom", e)
    table.sort(log)
    assert.are.same({ "a", "b" }, log)
  end)

  it("return_errors puts errors in the list and cancels nothing", function()
    local r = corio.gather({
      function() error("e1", 0) end,
      function() corio.sleep(0.02); return "ok" end,
    }, { return_errors = true })
    assert.are.same({ "e1", "ok", n = 2 }, r)
  end)

  it("a cancelled child counts as an error", function()
    local t = corio.spawn(function() corio.sleep(10) end)
    corio.call_soon(function() t:cancel() end)
    local e = H.err(corio.gather, t, function() return 1 end)
    assert.is_true(corio.is_cancelled(e))
  end)

  it("cancelling the caller cancels the children, then raises", function()
    local log = {}
    local g = corio.spawn(function()
      return corio.gather(sleeper(log, "a"), sleeper(log, "b"))
    end)
    H.turns()
    g:cancel("stop")
    local e = H.cancelled(g)
    assert.matches("stop", e.message)
    table.sort(log)
    assert.are.same({ "a", "b" }, log)
  end)

  it("rejects what it cannot await", function()
    H.message("bad argument #1 to 'gather' (Task, Future or function " ..
      "expected, got number)", function() corio.gather(1) end)
    H.message("bad argument #2 to 'gather'", function()
      corio.gather(function() end, "x") end)
    H.message("bad argument #1 to 'gather' (list item #2: ", function()
      corio.gather({ function() end, true }) end)
    H.message("bad argument #2 to 'gather' (table expected", function()
      corio.gather({}, 5) end)
  end)

  it("refuses the current task, alone or in a list, like await", function()
    -- In a child: without the check the main task cancelled itself and
    -- spun at 100% CPU, and a spawned task hung.
    local out = child([[
local ran = false
local function try(...) print(pcall(corio.gather, ...)) end
try(corio.current())
corio.spawn(function()
  local me = corio.current()
  try(function() ran = true end, me)
  try({ me })
end):await()
print("ran", ran)]])
    local line = "false\tINVALID_STATE: a task cannot await itself " ..
      "(gather)\n"
    assert.are.equal(line:rep(3) .. "ran\tfalse\n", out)
  end)

  it("does not spin when the cancelled work can never finish", function()
    -- The main task's deadlock report cancels the work; it swallows the
    -- CANCELLED and waits for ever, so the second report ends the wait.
    local out = child(STUBBORN .. "print(pcall(corio.gather, stubborn))")
    assert.matches("false\tINVALID_STATE: deadlock", out)
  end)
end)


describe("corio.wait", function()
  it("waits for all by default; cancels nothing", function()
    local a = corio.spawn(function() corio.sleep(0.01); return 1 end)
    local b = corio.spawn(function() return 2 end)
    local done, pending = corio.wait({ a, b })
    assert.are.same({ a, b }, done)
    assert.are.same({}, pending)
  end)

  it("return_when = first and a timeout", function()
    local slow = corio.spawn(function() corio.sleep(10) end)
    local fast = corio.spawn(function() corio.sleep(0.01) end)
    local done, pending = corio.wait({ slow, fast }, { return_when = "first" })
    assert.are.same({ fast }, done)
    assert.are.same({ slow }, pending)
    done, pending = corio.wait({ slow }, { timeout = 0.02 })
    assert.are.same({}, done)
    assert.are.same({ slow }, pending)
    assert.is_false(slow:done())       -- nothing was cancelled
    slow:cancel()
    H.cancelled(slow)
  end)

  it("return_when = first_error", function()
    local slow = corio.spawn(function() corio.sleep(10) end)
    local bad = corio.spawn(function() corio.sleep(0.01); error("bad", 0) end)
    local done, pending = corio.wait({ slow, bad },
      { return_when = "first_error" })
    assert.are.same({ bad }, done)
    assert.are.same({ slow }, pending)
    assert.are.equal("bad", bad:error())
    local ok = corio.spawn(function() return 1 end)
    done = corio.wait({ ok }, { return_when = "first_error" })
    assert.are.same({ ok }, done)       -- no error: waits for all
    slow:cancel()
    H.cancelled(slow)
  end)

  it("returns at once when already satisfied", function()
    local f = corio.future()
    f:set_result(1)
    local done, pending = corio.wait({ f }, { timeout = 5 })
    assert.are.same({ f }, done)
    assert.are.same({}, pending)
    assert.are.same({}, (corio.wait({})))
  end)

  it("rejects bad options", function()
    H.message("bad argument #2 to 'wait' (return_when", function()
      corio.wait({}, { return_when = "any" }) end)
    H.message("bad argument #2 to 'wait' (number expected", function()
      corio.wait({}, { timeout = "1" }) end)
    H.message("bad argument #1 to 'wait' (table expected", function()
      corio.wait(5) end)
  end)
end)


describe("corio.wait_for", function()
  it("returns every result", function()
    assert.are.same({ 1, 2, 3 },
      { corio.wait_for(function() return 1, 2, 3 end, 1) })
    local f = corio.future()
    corio.call_soon(function() f:set_result("f") end)
    assert.are.equal("f", corio.wait_for(f, nil))
  end)

  it("on expiry cancels the work, awaits it, then raises TIMEOUT",
    function()
    local log = {}
    local t = corio.spawn(sleeper(log, "inner"))
    local e = H.code("TIMEOUT", corio.wait_for, t, 0.02)
    assert.are.equal("wait_for", e.op)
    assert.are.same({ "inner" }, log)   -- unwound before TIMEOUT
    assert.is_true(t:cancelled())
  end)

  it("cancels a plain future on expiry", function()
    local f = corio.future()
    H.code("TIMEOUT", corio.wait_for, f, 0.01)
    assert.is_true(f:cancelled())
  end)

  it("an outer cancel cancels the work and raises CANCELLED", function()
    local log = {}
    local inner = corio.spawn(sleeper(log, "inner"))
    local outer = corio.spawn(function() return corio.wait_for(inner, 5) end)
    H.turns()
    outer:cancel()
    H.cancelled(outer)
    assert.is_true(inner:cancelled())
    assert.are.same({ "inner" }, log)
  end)

  it("a result that races the deadline wins", function()
    -- the future is resolved and the deadline passes in the same turn;
    -- the resolution is queued first
    local f = corio.future()
    corio.call_later(0.02, function() f:set_result("won") end)
    assert.are.equal("won", corio.wait_for(f, 0.02))
    corio.sleep(0)                      -- no stray cancellation
    -- and queued second (armed in the same loop turn, after the scope's
    -- timer): the work finished, so its result still wins over TIMEOUT
    for _ = 1, 20 do
      local g, t0, t1 = corio.future()
      local t = corio.spawn(function()
        corio.call_soon(function()
          -- (a mistimed round times out first and cancels g: then the
          -- late result has nowhere to go, and must not raise in a callback)
          corio.call_later(0.02, function() if not g:done() then g:set_result("late") end end)
          t1 = corio.now()
        end)
        t0 = corio.now()
        return corio.wait_for(g, 0.02)
      end)
      local ok, r = pcall(t.await, t)    -- mistimed: TIMEOUT, try again
      if same_ms(t0, t1) then
        assert.is_true(ok, tostring(r))
        assert.are.equal("late", r)
        return
      end
    end
    error("the deadline and the result never fell in the same millisecond")
  end)

  it("a cancel that races completion is neither swallowed nor loses the " ..
    "result", function()
    local f = corio.future()
    local got
    local t = corio.spawn(function()
      got = corio.wait_for(f, 5)
      corio.yield()                     -- the cancel lands here
      return "not reached"
    end)
    H.turns()
    f:set_result("value")               -- t is woken with the value ...
    t:cancel()                          -- ... and cancelled, same turn
    H.cancelled(t)
    assert.are.equal("value", got)
  end)

  it("rejects bad arguments", function()
    H.message("bad argument #1 to 'wait_for'", function()
      corio.wait_for(5, 1) end)
    H.message("bad argument #2 to 'wait_for' (number expected, got string)",
      function() corio.wait_for(corio.future(), "1") end)
  end)
end)


describe("corio.timeout", function()
  it("returns fn's results when in time", function()
    assert.are.same({ "a", "b" }, { corio.timeout(1, function(x)
      corio.sleep(0.01)
      return x, "b"
    end, "a") })
    assert.are.equal(3, corio.timeout(nil, function() return 3 end))
  end)

  it("cancels the pending await and raises TIMEOUT out of the scope",
    function()
    local inside
    local e = H.code("TIMEOUT", corio.timeout, 0.02, function()
      local ok, err = pcall(corio.sleep, 10)
      inside = err
      error(err, 0)
    end)
    assert.is_true(corio.is_cancelled(inside))
    assert.is_true(corio.is_timeout(e))
    assert.are.equal("timeout", e.op)
    assert.are.equal(inside, e.cause)
  end)

  it("a body that swallows the CANCELLED returns normally", function()
    local r = corio.timeout(0.01, function()
      pcall(corio.sleep, 10)
      return "swallowed"
    end)
    assert.are.equal("swallowed", r)
    corio.sleep(0.02)                   -- nothing pending
  end)

  it("a deadline passing after the wake-up is withdrawn", function()
    local f = corio.future()
    corio.call_later(0.02, function() f:set_result("v") end)
    local r = corio.timeout(0.02, function() return f:await() end)
    assert.are.equal("v", r)
    corio.sleep(0)                      -- the withdrawn cancel is gone
    assert.are.equal(0, corio.current():cancelling())
  end)

  it("nests: the inner deadline raises from the inner scope", function()
    local inner
    local r = corio.timeout(5, function()
      inner = H.err(corio.timeout, 0.02, corio.sleep, 10)
      corio.sleep(0.01)                 -- the outer scope is unaffected
      return "outer ok"
    end)
    assert.are.equal("outer ok", r)
    assert.is_true(corio.is_timeout(inner))
  end)

  it("nests: an outer deadline passes through the inner scope", function()
    local seen
    local e = H.code("TIMEOUT", corio.timeout, 0.02, function()
      local ok, err = pcall(corio.timeout, 5, corio.sleep, 10)
      seen = err
      error(err, 0)
    end)
    assert.is_true(corio.is_cancelled(seen))   -- not the inner's TIMEOUT
    assert.is_true(corio.is_timeout(e))
  end)

  it("nests: when both expire together the innermost wins, and the " ..
    "outer still times out", function()
    -- "Together" means the same millisecond (deadlines are whole ms): if
    -- the two scopes are entered across a millisecond boundary, the outer
    -- expires first and the case is another one (the CANCELLED then goes
    -- through the inner scope untouched).  Such an attempt is detected
    -- from the clock around the two entries and made again.
    for _ = 1, 20 do
      local inner, t1
      local t0 = corio.now()
      local ok, e = pcall(corio.timeout, 0.02, function()
        inner = H.err(corio.timeout, 0.02, function()
          t1 = corio.now()
          corio.sleep(10)
        end)
        corio.sleep(1)                  -- the outer's deadline lands here
      end)                              -- (a mistimed attempt: it ends)
      if same_ms(t0, t1) then
        assert.is_false(ok)
        assert.is_true(corio.is_timeout(inner), tostring(inner))
        assert.is_true(corio.is_timeout(e), tostring(e))
        assert.are.equal(0, corio.current():cancelling())
        return
      end
    end
    error("the two scopes never fell in the same millisecond")
  end)

  it("an outer cancel passes through untouched", function()
    local t = corio.spawn(function()
      return corio.timeout(0.02, corio.sleep, 10)
    end)
    H.turns()
    t:cancel("from outside")
    local e = H.cancelled(t)
    assert.matches("from outside", e.message)
    -- and when the deadline and the cancel land in the same turn, in
    -- either order
    local t2 = corio.spawn(function()
      local me = corio.current()
      corio.call_later(0.02, function() me:cancel("cancel first") end)
      return corio.timeout(0.02, corio.sleep, 10)
    end)
    assert.matches("cancel first", H.cancelled(t2).message)
    for _ = 1, 20 do
      local t0, t1
      local t3 = corio.spawn(function()
        local me = corio.current()
        t0 = corio.now()
        return corio.timeout(0.02, function()
          corio.call_later(0.02, function() me:cancel("deadline first") end)
          t1 = corio.now()
          corio.sleep(10)
        end)
      end)
      pcall(t3.await, t3)         -- a mistimed attempt times out instead
      if same_ms(t0, t1) then
        H.cancelled(t3)
        return
      end
    end
    error("the deadline and the cancel never fell in the same millisecond")
  end)

  it("works as a <close> scope", function()
    local e = H.code("TIMEOUT", function()
      local scope <close> = corio.timeout(0.02)
      corio.sleep(10)
    end)
    assert.is_true(corio.is_timeout(e))
    do
      local scope <close> = corio.timeout(1)
      corio.sleep(0.01)
      assert.is_false(scope:expired())
    end
  end)

  it("10,000 random timeouts around random sleeps: one outcome each",
    function()
    local x = 99
    local function rand()
      x = (x * 1103515245 + 12345) % 2147483648
      return (x % 1000) / 100000        -- 0 .. 10 ms
    end
    local outcomes = { ok = 0, timeout = 0 }
    local tasks = {}
    for i = 1, 10000 do
      local limit, nap = rand(), rand()
      tasks[i] = corio.spawn(function()
        local ok, e = pcall(corio.timeout, limit, function()
          corio.sleep(nap)
          return "done"
        end)
        if ok then
          assert(e == "done")
          outcomes.ok = outcomes.ok + 1
        else
          assert(corio.is_timeout(e), tostring(e))
          outcomes.timeout = outcomes.timeout + 1
        end
        corio.sleep(0)                  -- no stray cancellation after
        assert(corio.current():cancelling() == 0)
        return true
      end)
    end
    for i = 1, 10000 do assert.is_true(tasks[i]:await()) end
    assert.are.equal(10000, outcomes.ok + outcomes.timeout)
    assert.are.equal(0, core.stats().timers)
  end)

  it("timeouts around queue puts and gets never lose or duplicate items",
    function()
    local sync = require "corio.sync"
    local q = sync.Queue(5)
    local x = 5
    local function rand(n)
      x = (x * 1103515245 + 12345) % 2147483648
      return (x >> 16) % n
    end
    local got, timeouts, alive = {}, 0, 200
    local consumers = {}
    for c = 1, 200 do
      local limit = rand(20) / 1000
      consumers[c] = corio.spawn(function()
        for _ = 1, 10 do
          local ok, v = pcall(corio.timeout, limit, q.get, q)
          if ok then
            assert(not got[v], "duplicate")
            got[v] = true
          else
            assert(corio.is_timeout(v), tostring(v))
            timeouts = timeouts + 1
          end
        end
        alive = alive - 1
      end)
    end
    local put = 0
    for i = 1, 1000 do
      while alive > 0 do
        local ok, e = pcall(corio.timeout, rand(10) / 1000, q.put, q, i)
        if ok then put = i; break end
        assert(corio.is_timeout(e), tostring(e))
      end
      if alive == 0 then break end
      if rand(10) == 0 then corio.sleep(rand(5) / 1000) end
    end
    for c = 1, 200 do consumers[c]:await() end
    local n = 0
    for _ in pairs(got) do n = n + 1 end
    assert.are.equal(put, n + q:qsize())
    assert.is_true(timeouts > 0)
  end)

  it("needs a task and checks its arguments", function()
    local ok, e = H.outside(corio.timeout, 1, function() end)
    assert.is_false(ok)
    assert.are.equal("INVALID_STATE", e.code)
    H.message("bad argument #1 to 'timeout' (number expected, got string)",
      function() corio.timeout("1", function() end) end)
    H.message("bad argument #1 to 'timeout' (number expected, got NaN)",
      function() corio.timeout(0 / 0, function() end) end)
    H.message("bad argument #2 to 'timeout' (function expected",
      function() corio.timeout(1, 5) end)
  end)

  it("scope methods check self", function()
    local sc <close> = corio.timeout(10)
    H.message("bad argument #1 to 'expired' (corio.TimeoutScope expected, " ..
      "got nil)", sc.expired)
    H.message("bad argument #1 to 'expired' (corio.TimeoutScope expected, " ..
      "got table)", sc.expired, {})
    H.message("bad argument #1 to '__close' (corio.TimeoutScope expected",
      sc.__close)
    H.message("bad argument #1 to '__tostring'", sc.__tostring, 1)
    assert.is_false(sc:expired())
  end)
end)


describe("corio.shield", function()
  it("keeps the work running when the caller is cancelled", function()
    local gate = corio.future()
    local t = corio.spawn(function() gate:await(); return "kept" end)
    local e = H.code("TIMEOUT", corio.wait_for, function()
      return corio.shield(t)
    end, 0.01)
    assert.is_true(corio.is_timeout(e))
    assert.is_false(t:done())
    gate:set_result()
    assert.are.equal("kept", t:await())
  end)

  it("returns results and raises errors of the work", function()
    assert.are.same({ 1, 2 }, { corio.shield(function() return 1, 2 end) })
    assert.are.equal("bad", H.err(corio.shield,
      function() corio.yield(); error("bad", 0) end))
    H.message("bad argument #1 to 'shield'", function() corio.shield(1) end)
  end)

  it("refuses the current task, like await", function()
    local t = corio.spawn(function()
      return H.code("INVALID_STATE", corio.shield, corio.current())
    end)
    local e = corio.wait_for(t, 5)
    assert.are.equal("shield", e.op)
    assert.matches("cannot await itself", e.message)
  end)
end)


describe("corio.as_completed", function()
  it("yields futures in the order they finish", function()
    local order = {}
    for f in corio.as_completed({
      function() corio.sleep(0.03); return "c" end,
      function() corio.sleep(0.01); return "a" end,
      function() corio.sleep(0.02); return "b" end,
    }) do
      order[#order + 1] = f:result()
    end
    assert.are.same({ "a", "b", "c" }, order)
  end)

  it("raises TIMEOUT past its timeout; leaving early stops the timer",
    function()
    local slow = corio.spawn(function() corio.sleep(10) end)
    local e = H.code("TIMEOUT", function()
      for _ in corio.as_completed({ slow }, { timeout = 0.01 }) do end
    end)
    assert.are.equal("as_completed", e.op)
    for f in corio.as_completed({ function() return 1 end, slow },
      { timeout = 5 }) do
      assert.are.equal(1, f:result())
      break
    end
    slow:cancel()
    H.cancelled(slow)
  end)

  it("rejects bad arguments", function()
    H.message("bad argument #1 to 'as_completed'", function()
      corio.as_completed(1) end)
    H.message("bad argument #1 to 'as_completed' (list item #1", function()
      corio.as_completed({ 1 }) end)
  end)
end)


describe("corio.group", function()
  it("waits for every child at scope exit", function()
    local log = {}
    local a, b
    do
      local g <close> = corio.group()
      a = g:spawn(function() corio.sleep(0.02); log[#log + 1] = "a"
        return "A" end)
      b = g:spawn(function() log[#log + 1] = "b"; return "B" end)
    end
    assert.are.same({ "b", "a" }, log)
    assert.are.equal("A", a:result())
    assert.are.equal("B", b:result())
  end)

  it("a failing child cancels its siblings and the body", function()
    local log = {}
    local reached = false
    local e = H.err(function()
      local g <close> = corio.group()
      g:spawn(sleeper(log, "sibling"))
      g:spawn(function() corio.sleep(0.01); error("child failed", 0) end)
      corio.sleep(10)                   -- the body is cancelled here
      reached = true
    end)
    assert.are.equal("child failed", e)
    assert.is_false(reached)
    assert.are.same({ "sibling" }, log)
    assert.are.equal(0, corio.current():cancelling())
  end)

  it("a body that catches the group's cancellation still gets the error",
    function()
    local caught
    local e = H.err(function()
      local g <close> = corio.group()
      g:spawn(function() corio.yield(); error("child", 0) end)
      local ok, err = pcall(corio.sleep, 10)
      caught = err
      corio.sleep(0.01)                 -- the body carries on
    end)
    assert.are.equal("child", e)
    assert.is_true(corio.is_cancelled(caught))
    assert.are.equal(0, corio.current():cancelling())
  end)

  it("reports every error; raises the first", function()
    local g = corio.group()
    local e = H.err(function()
      local _ <close> = g
      g:spawn(function() corio.yield(); error("first", 0) end)
      g:spawn(function()
        local _ <close> = setmetatable({}, { __close = function()
          error("second", 0) end })
        corio.sleep(10)
      end)
    end)
    assert.are.equal("first", e)
    assert.are.same({ "first", "second" }, g:errors())
  end)

  it("a failing body cancels the children and is raised after", function()
    local log = {}
    local e = H.err(function()
      local g <close> = corio.group()
      g:spawn(sleeper(log, "child"))
      corio.yield()
      error("body failed", 0)
    end)
    assert.are.equal("body failed", e)
    assert.are.same({ "child" }, log)
  end)

  it("an outer cancel cancels the children and passes on", function()
    local log = {}
    local t = corio.spawn(function()
      local g <close> = corio.group()
      g:spawn(sleeper(log, "child"))
      corio.sleep(10)
    end)
    H.turns()
    t:cancel("outer")
    local e = H.cancelled(t)
    assert.matches("outer", e.message)
    assert.are.same({ "child" }, log)
  end)

  it("a cancelled child is not an error", function()
    local g = corio.group()
    local c = g:spawn(function() corio.sleep(10) end)
    local d = g:spawn(function() corio.sleep(0.01); return "d" end)
    H.turns()
    c:cancel()
    g:wait()
    assert.are.equal("d", d:result())
    assert.are.same({}, g:errors())
  end)

  it("wait() raises the first error once all finished", function()
    local g = corio.group()
    local log = {}
    g:spawn(sleeper(log, "s"))
    g:spawn(function() error("oops", 0) end)
    assert.are.equal("oops", H.err(g.wait, g))
    assert.are.same({ "s" }, log)
    assert.are.equal(0, corio.current():cancelling())  -- waiting: not cancelled
    H.code("INVALID_STATE", g.spawn, g, function() end)
    g:__close()                         -- already reported: no re-raise
  end)

  it("inside a timeout scope: TIMEOUT, after the children unwound",
    function()
    local log = {}
    local e = H.code("TIMEOUT", corio.timeout, 0.02, function()
      local g <close> = corio.group()
      g:spawn(sleeper(log, "c1"))
      g:spawn(sleeper(log, "c2"))
      corio.sleep(10)
    end)
    assert.is_true(corio.is_timeout(e))
    table.sort(log)
    assert.are.same({ "c1", "c2" }, log)
  end)

  it("cancel_children cancels the children in spawn order, not the body; the exit waits for them", function()
    local log, seen = {}, {}
    local kids = {}
    local g <close> = corio.group()
    for i = 1, 3 do
      kids[i] = g:spawn(function()
        local ok, e = pcall(corio.sleep, 10)
        seen[#seen + 1] = i .. ":" .. (ok and "ok" or e.code .. ":" .. e.message)
        corio.yield()                   -- unwinding may await
        log[#log + 1] = i
        error(e, 0)
      end)
    end
    corio.yield()                       -- every child waits in its sleep
    g:cancel_children("enough")
    assert.are.same({}, seen)           -- requested: delivered by the loop
    H.code("INVALID_STATE", g.spawn, g, function() end)
    corio.sleep(0)                      -- the body goes on, not cancelled
    assert.are.same({ "1:CANCELLED:enough", "2:CANCELLED:enough",
                      "3:CANCELLED:enough" }, seen)
    g:close()                           -- no error: cancelled is not failed
    assert.are.same({ 1, 2, 3 }, log)
    for i = 1, 3 do assert.is_true(kids[i]:cancelled()) end
    assert.are.same({}, g:errors())
    assert.are.equal(0, corio.current():cancelling())
  end)

  it("cancel_children cancels a child once, whatever comes after", function()
    local g = corio.group()
    local stop = corio.future()
    local t = g:spawn(function()
      pcall(corio.sleep, 10)            -- swallows the group's cancel
      stop:await()
      return "done"
    end)
    corio.yield()
    g:cancel_children()
    g:cancel_children()                 -- again: nothing more
    corio.sleep(0)
    assert.are.equal(1, t:cancelling())
    corio.call_soon(function() stop:set_result() end)
    assert.are.equal("body", H.err(g.__close, g, "body"))  -- no second cancel
    assert.are.equal("done", t:result())
    assert.are.equal(1, t:cancelling())
    H.message("bad argument #1 to 'cancel_children' (string expected, got number)",
      g.cancel_children, g, 5)
  end)

  it("refuses new children once closed, and bad arguments", function()
    local g = corio.group()
    g:__close()
    H.code("INVALID_STATE", g.spawn, g, function() end)
    H.message("bad argument #1 to 'spawn' (function expected", function()
      corio.group():spawn(5) end)
    H.message("bad argument #1 to 'wait' (corio.TaskGroup expected",
      function() corio.group().wait({}) end)
  end)

  it("methods check self", function()
    local g = corio.group()
    for _, m in ipairs({ "close", "__close", "spawn", "wait", "errors",
                         "cancel_children", "__tostring" }) do
      H.message("bad argument #1 to '" .. m .. "' (corio.TaskGroup " ..
        "expected, got nil)", g[m])
      H.message("(corio.TaskGroup expected, got table)", g[m], {})
    end
    g:close()
  end)

  it("close() is a normal scope exit and takes no error", function()
    local g = corio.group()
    for _, v in ipairs({ true, 0, {}, "boom" }) do
      H.message("bad argument #1 to 'close' (no value expected", g.close, g, v)
    end
    local t = g:spawn(function() corio.sleep(0.01); return "done" end)
    g:close()                       -- waits for the child
    assert.are.equal("done", t:result())
    H.code("INVALID_STATE", g.spawn, g, function() end)
    g:close()                       -- again: nothing to do
    local g2 = corio.group()
    g2:spawn(function() error("child", 0) end)
    assert.are.equal("child", H.err(g2.close, g2))
    -- __close keeps passing the body's error
    local g3 = corio.group()
    assert.are.equal("body", H.err(g3.__close, g3, "body"))
  end)

  it("does not spin when a cancelled child can never finish", function()
    local out = child(STUBBORN .. [[
print(pcall(function()
  local g <close> = corio.group()
  g:spawn(stubborn)
end))]])
    assert.matches("false\tINVALID_STATE: deadlock", out)
  end)
end)
