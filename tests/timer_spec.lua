-- Time: corio.sleep, corio.yield, corio.now and plain callbacks
-- (call_soon / call_later / call_at -> Handle).
local corio = require "corio"
local core = require "corio.core"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("corio.now", function()
  it("is a monotonic clock in seconds", function()
    local a = corio.now()
    assert.is_number(a)
    corio.sleep(0.02)
    local b = corio.now()
    assert.is_true(b >= a + 0.02)
    assert.is_true(b - a < 5)
  end)
end)

describe("corio.sleep", function()
  it("waits at least the given time and returns nothing", function()
    local t0 = corio.now()
    local n = select("#", corio.sleep(0.05))
    assert.is_true(corio.now() - t0 >= 0.05)
    assert.equal(0, n)
  end)

  it("lets other tasks run meanwhile", function()
    local ran = false
    local t = corio.spawn(function() ran = true end)
    corio.sleep(0.01)
    assert.is_true(ran)
    t:await()
  end)

  it("wakes sleepers in deadline order", function()
    local order = {}
    local tasks = {}
    for i, d in ipairs { 0.06, 0.02, 0.04, 0.01, 0.05, 0.03 } do
      tasks[i] = corio.spawn(function()
        corio.sleep(d)
        order[#order + 1] = d
      end)
    end
    for _, t in ipairs(tasks) do t:await() end
    assert.same({ 0.01, 0.02, 0.03, 0.04, 0.05, 0.06 }, order)
  end)

  it("wakes sleepers of equal duration in the order they slept", function()
    local order = {}
    local tasks = {}
    for i = 1, 50 do
      tasks[i] = corio.spawn(function()
        corio.sleep(0.02)
        order[#order + 1] = i
      end)
    end
    for _, t in ipairs(tasks) do t:await() end
    for i = 1, 50 do assert.equal(i, order[i]) end
  end)

  it("sleep(0) and a negative sleep wait for the next loop turn", function()
    for _, d in ipairs { 0, -1 } do
      local log = {}
      local t = corio.spawn(function()
        log[#log + 1] = "a"
        -- queued in this turn, after the sleep: runs before we resume
        corio.call_soon(function() log[#log + 1] = "soon" end)
        corio.sleep(d)
        log[#log + 1] = "a resumed"
      end)
      t:await()
      assert.same({ "a", "soon", "a resumed" }, log)
    end
  end)

  it("accepts a numeric string", function()
    local t0 = corio.now()
    corio.sleep("0.01")
    assert.is_true(corio.now() - t0 >= 0.01)
  end)

  it("a very long sleep can be cancelled", function()
    for _, d in ipairs { 1e9, math.huge, 2^63 } do
      local t = corio.spawn(corio.sleep, d)
      corio.yield()
      assert.equal(1, core.stats().timers)
      assert.is_true(t:cancel())
      S.is_error(S.raises(t.await, t), "CANCELLED")
      assert.equal(0, core.stats().timers)
    end
  end)

  it("raises bad argument for a non-number", function()
    S.bad_argument(1, "sleep", function() corio.sleep() end)
    S.bad_argument(1, "sleep", function() corio.sleep("soon") end)
    S.bad_argument(1, "sleep", function() corio.sleep({}) end)
    S.bad_argument(1, "sleep", function() corio.sleep(0 / 0) end)
  end)

  it("raises a clear error outside a task", function()
    local out = corio.future()
    corio.call_soon(function() out:set_result(pcall(corio.sleep, 0.01)) end)
    local ok, err = out:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("sleep: not inside a task", err.message)
    assert.equal("sleep", err.op)
  end)

  it("a cancelled sleeper never resumes a second time", function()
    local resumes = 0
    local second
    local t = corio.spawn(function()
      local ok, err = pcall(corio.sleep, 0.05)
      resumes = resumes + 1
      assert(not ok and corio.is_cancelled(err))
      local t0 = corio.now()
      corio.sleep(0.15)         -- the old 0.05 deadline must not end it
      second = corio.now() - t0
      resumes = resumes + 1
    end)
    corio.yield()
    t:cancel()
    corio.sleep(0.1)            -- past the first deadline
    assert.equal(1, resumes)
    t:await()
    assert.equal(2, resumes)
    assert.is_true(second >= 0.15)
  end)
end)

describe("corio.yield", function()
  it("returns nothing and resumes on the next loop turn", function()
    local log = {}
    local f = corio.future()
    local waiter = corio.spawn(function() f:await() log[#log + 1] = "woken" end)
    local t = corio.spawn(function()
      log[#log + 1] = "t"
      corio.call_soon(function() log[#log + 1] = "soon" end)
      f:set_result()
      local n = select("#", corio.yield())
      log[#log + 1] = "t resumed " .. n
    end)
    t:await()
    waiter:await()
    assert.same({ "t", "soon", "woken", "t resumed 0" }, log)
  end)

  it("alternates tasks that yield in turn", function()
    local log = {}
    local function worker(name)
      for i = 1, 3 do
        log[#log + 1] = name .. i
        corio.yield()
      end
    end
    local a, b = corio.spawn(worker, "a"), corio.spawn(worker, "b")
    a:await(); b:await()
    assert.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
  end)

  it("lets timers fire while a task spins on yield", function()
    local fired = false
    local h = corio.call_later(0.02, function() fired = true end)
    local t0 = corio.now()
    while not fired and corio.now() - t0 < 5 do corio.yield() end
    assert.is_true(fired)
    assert.is_false(h:cancel())
  end)

  it("raises a clear error outside a task", function()
    local out = corio.future()
    corio.call_soon(function() out:set_result(pcall(corio.yield)) end)
    local ok, err = out:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("yield: not inside a task", err.message)
  end)
end)

describe("corio.call_soon", function()
  it("runs callbacks in FIFO order with their arguments", function()
    local log = {}
    local done = corio.future()
    for i = 1, 10 do
      corio.call_soon(function(a, b, c)
        log[#log + 1] = { a, b, c }
        if i == 10 then done:set_result() end
      end, i, nil, "x")
    end
    done:await()
    for i = 1, 10 do assert.same({ i, nil, "x" }, log[i]) end
  end)

  it("does not run the callback before the caller suspends", function()
    local ran = false
    corio.call_soon(function() ran = true end)
    assert.is_false(ran)
    corio.yield()
    assert.is_true(ran)
  end)

  it("returns a Handle whose cancel stops the callback", function()
    local ran = false
    local h = corio.call_soon(function() ran = true end)
    assert.matches("^corio%.Handle %(pending%)", tostring(h))
    assert.is_false(h:cancelled())
    assert.is_true(h:cancel())
    assert.is_false(h:cancel())
    assert.is_true(h:cancelled())
    assert.matches("%(cancelled%)", tostring(h))
    corio.yield()
    corio.yield()
    assert.is_false(ran)
  end)

  it("cancel after the callback ran returns false", function()
    local h = corio.call_soon(function() end)
    corio.yield()
    assert.is_false(h:cancel())
    assert.is_false(h:cancelled())
    assert.matches("%(done%)", tostring(h))
  end)

  it("a callback may cancel a later one queued in the same turn", function()
    local ran = false
    local later
    corio.call_soon(function() later:cancel() end)
    later = corio.call_soon(function() ran = true end)
    corio.yield()
    corio.yield()
    assert.is_false(ran)
  end)

  it("accepts a callable table", function()
    local f = corio.future()
    corio.call_soon(setmetatable({}, {
      __call = function(_, v) f:set_result(v) end }), "v")
    assert.equal("v", f:await())
  end)

  it("raises bad argument for a value that is not callable", function()
    S.bad_argument(1, "call_soon", function() corio.call_soon() end)
    S.bad_argument(1, "call_soon", function() corio.call_soon(1) end)
    S.bad_argument(1, "call_soon", function() corio.call_soon("f") end)
  end)

  it("callbacks cannot await: sleep inside one raises", function()
    local out = corio.future()
    corio.call_soon(function()
      local ok, err = pcall(corio.sleep, 0)
      out:set_result(ok, err)
    end)
    local ok, err = out:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
  end)

  it("a raising callback is reported and the loop goes on", function()
    local after = corio.future()
    local line
    local reports = S.capture(function()
      corio.call_soon(function()
        line = debug.getinfo(1, "l").currentline + 1
        error("callback failed")
      end)
      corio.call_soon(function() after:set_result("went on") end)
      assert.equal("went on", after:await())
    end)
    assert.equal(1, #reports)
    assert.equal("callback", reports[1].kind)
    assert.matches("timer_spec.lua:" .. line .. ": callback failed",
                   reports[1].err, 1, true)
    assert.matches("stack traceback:", reports[1].traceback, 1, true)
    assert.matches("timer_spec.lua:" .. line, reports[1].traceback, 1, true)
  end)

  it("a callback raising a non-string value is reported", function()
    local reports = S.capture(function()
      corio.call_soon(function() error(setmetatable({}, {
        __tostring = function() error("tostring broke too") end })) end)
      corio.call_soon(function() error(nil) end)
      corio.call_soon(function() error(corio.Error("X", "y")) end)
      corio.yield(); corio.yield()
    end)
    assert.equal(3, #reports)
    assert.equal("X", reports[3].err.code)
  end)
end)

describe("corio.call_later and corio.call_at", function()
  it("run the callback after the delay with its arguments", function()
    local f = corio.future()
    local t0 = corio.now()
    corio.call_later(0.05, function(a, b) f:set_result(a, b) end, 1, 2)
    assert.same({ 1, 2 }, { f:await() })
    assert.is_true(corio.now() - t0 >= 0.05)
  end)

  it("fire in deadline order", function()
    local order = {}
    local done = corio.future()
    for _, d in ipairs { 0.05, 0.01, 0.04, 0.02, 0.03 } do
      corio.call_later(d, function()
        order[#order + 1] = d
        if #order == 5 then done:set_result() end
      end)
    end
    done:await()
    assert.same({ 0.01, 0.02, 0.03, 0.04, 0.05 }, order)
  end)

  it("fire callbacks with equal deadlines in the order they were made",
     function()
    local at = corio.now() + 0.03
    local order = {}
    local done = corio.future()
    for i = 1, 100 do
      corio.call_at(at, function()
        order[#order + 1] = i
        if i == 100 then done:set_result() end
      end)
    end
    done:await()
    for i = 1, 100 do assert.equal(i, order[i]) end
  end)

  it("keep deadline order through random arms and cancels", function()
    -- Exercises the timer heap: 2,000 callbacks at random whole-ms
    -- deadlines, half of them cancelled in random order; those left must
    -- fire in (deadline, creation) order, the cancelled never.
    local seed = 99
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local base = math.ceil(corio.now() * 1000) / 1000 + 0.02
    local handles, fired, expect = {}, {}, {}
    local N = 2000
    for i = 1, N do
      local at = base + rnd(60) / 1000
      handles[i] = { at = at, i = i, h = corio.call_at(at, function()
        fired[#fired + 1] = i
      end) }
    end
    local order = {}
    for i = 1, N do order[i] = i end
    for i = N, 2, -1 do
      local j = rnd(i)
      order[i], order[j] = order[j], order[i]
    end
    local cancelled = {}
    for k = 1, N // 2 do
      local i = order[k]
      assert(handles[i].h:cancel())
      cancelled[i] = true
    end
    for i = 1, N do
      if not cancelled[i] then expect[#expect + 1] = handles[i] end
    end
    -- deadlines are whole ms, rounded up (as corio rounds them)
    local function ms(at) return math.ceil(at * 1000.0) end
    table.sort(expect, function(a, b)
      if ms(a.at) ~= ms(b.at) then return ms(a.at) < ms(b.at) end
      return a.i < b.i
    end)
    while #fired < #expect and corio.now() < base + 5 do corio.sleep(0.01) end
    assert.equal(#expect, #fired)
    for k = 1, #expect do
      if fired[k] ~= expect[k].i then
        error(("callback #%d: fired %d, expected %d"):format(k, fired[k],
                                                             expect[k].i))
      end
    end
    assert.equal(0, core.stats().timers)
  end)

  it("call_at runs no earlier than the given corio.now() time", function()
    local at = corio.now() + 0.05
    local f = corio.future()
    corio.call_at(at, function() f:set_result(corio.now()) end)
    assert.is_true(f:await() >= at)
  end)

  it("run soon for a past deadline or a negative delay", function()
    local f1, f2, f3 = corio.future(), corio.future(), corio.future()
    corio.call_at(corio.now() - 10, function() f1:set_result(1) end)
    corio.call_at(-5, function() f2:set_result(2) end)
    corio.call_later(-1, function() f3:set_result(3) end)
    assert.equal(1, f1:await())
    assert.equal(2, f2:await())
    assert.equal(3, f3:await())
  end)

  it("cancel removes the timer at once", function()
    local ran = false
    local h = corio.call_later(10, function() ran = true end)
    assert.equal(1, core.stats().timers)
    assert.equal(1, core.stats().callbacks)
    assert.is_true(h:cancel())
    assert.equal(0, core.stats().timers)
    assert.equal(0, core.stats().callbacks)
    assert.is_false(h:cancel())
    assert.is_false(ran)
  end)

  it("cancel of a fired callback waiting in the queue stops it", function()
    -- A blocks the loop past every deadline, so C and h fire in one pass
    -- and are queued together: C runs first and cancels the queued h.
    local ran, cancelled = false, nil
    local done = corio.future()
    local h
    corio.call_later(0.01, function()
      local t0 = corio.now()
      while corio.now() - t0 < 0.04 do end
    end)
    corio.call_later(0.015, function() cancelled = h:cancel() end)
    h = corio.call_later(0.02, function() ran = true end)
    corio.call_later(0.025, function() done:set_result() end)
    done:await()
    corio.yield()
    assert.is_true(cancelled)
    assert.is_false(ran)
    assert.is_true(h:cancelled())
  end)

  it("a raising timer callback is reported and later ones still fire",
     function()
    local f = corio.future()
    local reports = S.capture(function()
      corio.call_later(0.01, function() error("late failure") end)
      corio.call_later(0.02, function() f:set_result("fired") end)
      assert.equal("fired", f:await())
    end)
    assert.equal(1, #reports)
    assert.matches("late failure", reports[1].err)
  end)

  it("raise bad argument for wrong types", function()
    local fn = function() end
    S.bad_argument(1, "call_later", function() corio.call_later("x", fn) end)
    S.bad_argument(1, "call_later", function() corio.call_later(nil, fn) end)
    S.bad_argument(1, "call_later", function() corio.call_later(0 / 0, fn) end)
    S.bad_argument(2, "call_later", function() corio.call_later(1) end)
    S.bad_argument(2, "call_later", function() corio.call_later(1, 2) end)
    S.bad_argument(1, "call_at", function() corio.call_at({}, fn) end)
    S.bad_argument(1, "call_at", function() corio.call_at(0 / 0, fn) end)
    S.bad_argument(2, "call_at", function() corio.call_at(1) end)
    S.bad_argument(2, "call_at", function() corio.call_at(1, "fn") end)
    assert.equal(0, core.stats().callbacks)
    assert.equal(0, core.stats().timers)
  end)

  it("fires 5,000 timers with colliding deadlines in (deadline, arm) order, never a cancelled one", function()
    -- Many entries share a millisecond, some deadlines lie a day ahead
    -- and a third are cancelled at random points: the heap's order and
    -- its removal from the middle are checked against a sort.
    math.randomseed(7)
    local base = corio.now() + 0.02
    local armed, fired, handles = {}, {}, {}
    local done = corio.future()
    local live = 0
    for i = 1, 5000 do
      local far = math.random(50) == 1
      local at = far and base + 86400 + math.random(0, 3)
                     or base + math.random(0, 40) / 1000
      armed[i] = { due = math.ceil(at * 1000), i = i, far = far }
      handles[i] = corio.call_at(at, function()
        fired[#fired + 1] = i
        live = live - 1
        if live == 0 then done:set_result() end
      end)
      if not far then live = live + 1 end
      local victim = math.random(i)
      if math.random(3) == 1 and not armed[victim].far
         and handles[victim]:cancel() then
        armed[victim].cancelled = true
        live = live - 1
      end
    end
    done:await()
    local expect = {}
    for _, a in ipairs(armed) do
      if not a.cancelled and not a.far then expect[#expect + 1] = a end
    end
    table.sort(expect, function(x, y)
      if x.due ~= y.due then return x.due < y.due end
      return x.i < y.i
    end)
    local order = {}
    for k, a in ipairs(expect) do order[k] = a.i end
    assert.same(order, fired)
    local far = 0
    for i, a in ipairs(armed) do
      if a.far then far = far + 1; assert.is_true(handles[i]:cancel()) end
    end
    assert.is_true(far > 0)
    assert.equal(0, core.stats().timers)
  end)
end)

describe("Handle", function()
  it("methods raise bad argument on a wrong self", function()
    local h = corio.call_soon(function() end)
    S.bad_argument(1, "cancel", function() h.cancel(1) end)
    S.bad_argument(1, "cancel", function() h.cancel(corio.future()) end)
    S.bad_argument(1, "cancelled", function() h.cancelled({}) end)
    corio.yield()
  end)
end)
