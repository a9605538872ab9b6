-- Futures: corio.future() and its methods.
local corio = require "corio"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("corio.future", function()
  it("starts pending", function()
    local f = corio.future()
    assert.is_false(f:done())
    assert.is_false(f:cancelled())
    assert.matches("^corio%.Future %(pending%)", tostring(f))
  end)

  it("passes several values of set_result through await", function()
    local f = corio.future()
    local t = corio.spawn(function() return table.pack(f:await()) end)
    corio.yield()
    f:set_result(1, nil, "three", nil)
    local r = t:await()
    assert.equal(4, r.n)
    assert.same({ 1, nil, "three", nil }, { r[1], r[2], r[3], r[4] })
  end)

  it("passes zero values through await", function()
    local f = corio.future()
    corio.call_soon(function() f:set_result() end)
    assert.equal(0, select("#", f:await()))
  end)

  it("returns the values at once when already done", function()
    local f = corio.future()
    f:set_result("a", "b")
    assert.same({ "a", "b" }, { f:await() })
    assert.same({ "a", "b" }, { f:result() })
    assert.is_true(f:done())
    assert.matches("%(done%)", tostring(f))
  end)

  it("wakes its awaiters in the order they started waiting", function()
    local f = corio.future()
    local order = {}
    local tasks = {}
    for i = 1, 10 do
      tasks[i] = corio.spawn(function()
        f:await()
        order[#order + 1] = i
      end)
    end
    corio.yield()
    f:set_result()
    for i = 1, 10 do tasks[i]:await() end
    for i = 1, 10 do assert.equal(i, order[i]) end
  end)

  it("runs the awaiter in the same loop turn as set_result", function()
    local f = corio.future()
    local log = {}
    local t = corio.spawn(function()
      f:await()
      log[#log + 1] = "woken"
    end)
    corio.yield()
    f:set_result()
    log[#log + 1] = "set"
    corio.yield()            -- the next turn: the woken task ran before it
    log[#log + 1] = "next turn"
    t:await()
    assert.same({ "set", "woken", "next turn" }, log)
  end)

  it("raises the error of set_error unchanged through await", function()
    local f = corio.future()
    local e = corio.Error("ECONNRESET", "connection reset by peer",
                          { op = "read", host = "example", port = 80 })
    corio.call_soon(function() f:set_error(e) end)
    local err = S.raises(f.await, f)
    assert.equal(e, err)
    assert.equal("ECONNRESET", err.code)
    assert.equal("connection reset by peer", err.message)
    assert.equal(e, f:error())
    assert.equal(e, S.raises(f.result, f))
    assert.is_false(f:cancelled())
    assert.matches("%(failed%)", tostring(f))
  end)

  it("keeps a non-table error value as it is", function()
    for _, v in ipairs { "plain string", 42, true } do
      local f = corio.future()
      f:set_error(v)
      assert.equal(v, S.raises(f.await, f))
    end
  end)

  it("raises INVALID_STATE when set twice", function()
    local cases = {
      function(f) f:set_result(1) end,
      function(f) f:set_error("x") f:error() end,
      function(f) f:cancel() end,
    }
    for _, first in ipairs(cases) do
      local f = corio.future()
      first(f)
      S.is_error(S.raises(f.set_result, f, 2), "INVALID_STATE")
      S.is_error(S.raises(f.set_error, f, "y"), "INVALID_STATE")
    end
    local f = corio.future()
    f:set_result("first")
    pcall(f.set_result, f, "second")
    assert.equal("first", f:result())
  end)

  it("cancel() returns true once and makes await raise CANCELLED", function()
    local f = corio.future()
    local t = corio.spawn(function() return pcall(f.await, f) end)
    corio.yield()
    assert.is_true(f:cancel("no longer needed"))
    assert.is_false(f:cancel())
    local ok, err = t:await()
    assert.is_false(ok)
    S.is_error(err, "CANCELLED")
    assert.is_true(corio.is_cancelled(err))
    assert.matches("no longer needed", err.message)
    assert.is_true(f:cancelled())
    assert.is_true(f:done())
    assert.matches("%(cancelled%)", tostring(f))
  end)

  it("cancel() on a done future returns false and changes nothing", function()
    local f = corio.future()
    f:set_result(1)
    assert.is_false(f:cancel())
    assert.equal(1, f:result())
  end)

  it("set_error with a CANCELLED error makes it cancelled", function()
    local f = corio.future()
    f:set_error(corio.Error("CANCELLED", "gone"))
    assert.is_true(f:cancelled())
    S.is_error(S.raises(f.await, f), "CANCELLED")
  end)

  it("result() and error() raise INVALID_STATE while pending", function()
    local f = corio.future()
    local err = S.is_error(S.raises(f.result, f), "INVALID_STATE")
    assert.matches("not ready", err.message)
    S.is_error(S.raises(f.error, f), "INVALID_STATE")
  end)

  it("error() is nil after success", function()
    local f = corio.future()
    f:set_result(false)
    assert.is_nil(f:error())
    assert.is_false(f:result())
  end)

  it("raises a clear error when awaited outside a task", function()
    local f = corio.future()
    local out = corio.future()
    corio.call_soon(function() out:set_result(pcall(f.await, f)) end)
    local ok, err = out:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("not inside a task", err.message)
  end)

  it("a cancelled awaiter leaves the future pending for others", function()
    local f = corio.future()
    local a = corio.spawn(function() return f:await() end)
    local b = corio.spawn(function() return f:await() end)
    corio.yield()
    a:cancel()
    S.is_error(S.raises(a.await, a), "CANCELLED")
    assert.is_false(f:done())
    f:set_result("v")
    assert.equal("v", b:await())
  end)
end)

describe("Future:add_done_callback", function()
  it("runs the callback with the future after it completes", function()
    local f = corio.future()
    local got = corio.future()
    f:add_done_callback(function(x) got:set_result(x, x:result()) end)
    corio.call_soon(function() f:set_result(9) end)
    local x, v = got:await()
    assert.equal(f, x)
    assert.equal(9, v)
  end)

  it("runs callbacks in the order they were added", function()
    local f = corio.future()
    local log = {}
    local all = corio.future()
    for i = 1, 5 do
      f:add_done_callback(function()
        log[#log + 1] = i
        if i == 5 then all:set_result() end
      end)
    end
    f:set_result()
    all:await()
    assert.same({ 1, 2, 3, 4, 5 }, log)
  end)

  it("on a done future runs the callback later, not at once", function()
    local f = corio.future()
    f:set_result()
    local ran = corio.future()
    f:add_done_callback(function() ran:set_result(true) end)
    assert.is_false(ran:done())
    assert.is_true(ran:await())
  end)

  it("runs when the future is cancelled or fails", function()
    for _, finish in ipairs {
      function(f) f:cancel() end,
      function(f) f:set_error("e") end,
    } do
      local f = corio.future()
      local ran = corio.future()
      f:add_done_callback(function(x) ran:set_result(x:done()) end)
      finish(f)
      assert.is_true(ran:await())
    end
  end)

  it("reports a raising callback and goes on", function()
    local f = corio.future()
    local after = corio.future()
    local reports = S.capture(function()
      f:add_done_callback(function() error("callback broke") end)
      f:add_done_callback(function() after:set_result("still ran") end)
      f:set_result()
      assert.equal("still ran", after:await())
    end)
    assert.equal(1, #reports)
    assert.equal("callback", reports[1].kind)
    assert.matches("callback broke", reports[1].err)
  end)

  it("accepts a callable table", function()
    local f = corio.future()
    local ran = corio.future()
    f:add_done_callback(setmetatable({}, {
      __call = function(_, x) ran:set_result(x) end }))
    f:set_result()
    assert.equal(f, ran:await())
  end)
end)

describe("Future argument checks", function()
  it("raise bad argument for wrong types", function()
    local f = corio.future()
    S.bad_argument(1, "add_done_callback",
                   function() f:add_done_callback(42) end)
    S.bad_argument(1, "add_done_callback",
                   function() f:add_done_callback() end)
    S.bad_argument(1, "set_error", function() f:set_error() end)
    S.bad_argument(1, "cancel", function() f:cancel({}) end)
    S.bad_argument(1, "set_result", function() f.set_result(42) end)
    S.bad_argument(1, "set_result", function() f.set_result({}) end)
    S.bad_argument(1, "set_error", function() f.set_error("x", "y") end)
    S.bad_argument(1, "cancel", function() f.cancel(nil) end)
    S.bad_argument(1, "await", function() f.await(1) end)
    S.bad_argument(1, "done", function() f.done("x") end)
    S.bad_argument(1, "cancelled", function() f.cancelled({}) end)
    S.bad_argument(1, "result", function() f.result() end)
    S.bad_argument(1, "error", function() f.error(2) end)
    assert.is_false(f:done())
  end)

  it("refuses Future-only setters on a Task", function()
    local f = corio.future()
    local t = corio.spawn(function() return 1 end)
    S.bad_argument(1, "set_result", function() f.set_result(t, 2) end)
    assert.equal(1, t:await())
  end)
end)

describe("unobserved failures", function()
  it("a failed future that nobody looked at is reported once when collected",
     function()
    local reports = S.capture(function()
      local f = corio.future()
      f:set_error(corio.Error("EXAMPLE", "never retrieved"))
      f = nil
      S.flush()
      S.flush()
    end)
    assert.equal(1, #reports)
    assert.equal("future", reports[1].kind)
    assert.equal("EXAMPLE", reports[1].err.code)
  end)

  it("a failed future whose error was read is not reported", function()
    local reports = S.capture(function()
      local f = corio.future()
      f:set_error("seen")
      assert.equal("seen", f:error())
      f = nil
      S.flush()
    end)
    assert.equal(0, #reports)
  end)

  it("a cancelled future is not reported", function()
    local reports = S.capture(function()
      local f = corio.future()
      f:cancel()
      f = nil
      S.flush()
    end)
    assert.equal(0, #reports)
  end)
end)
