-- Tasks: corio.spawn, corio.current and the Task methods.
local corio = require "corio"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("corio.spawn", function()
  it("returns a Task that has not run yet", function()
    local ran = false
    local t = corio.spawn(function() ran = true end)
    assert.equal("userdata", type(t))
    assert.is_false(ran)
    assert.is_false(t:done())
    t:await()
    assert.is_true(ran)
  end)

  it("runs tasks in the order they were spawned", function()
    local order = {}
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = corio.spawn(function() order[#order + 1] = i end)
    end
    for i = 1, 20 do tasks[i]:await() end
    for i = 1, 20 do assert.equal(i, order[i]) end
  end)

  it("keeps first-run order for tasks spawned by tasks", function()
    local order = {}
    local function rec(name) return function() order[#order + 1] = name end end
    local a = corio.spawn(function()
      order[#order + 1] = "a"
      return corio.spawn(rec("a1")), corio.spawn(rec("a2"))
    end)
    local b = corio.spawn(rec("b"))
    local a1, a2 = a:await()
    b:await(); a1:await(); a2:await()
    assert.same({ "a", "b", "a1", "a2" }, order)
  end)

  it("passes every argument, nil holes included", function()
    local t = corio.spawn(function(...)
      return select("#", ...), ...
    end, 1, nil, "x", nil)
    assert.same({ 4, 1, nil, "x", nil }, { t:await() })
    assert.equal(5, select("#", t:await()))
  end)

  it("passes a single argument", function()
    assert.equal("one", corio.spawn(function(x) return x end, "one"):await())
  end)

  it("accepts a callable table", function()
    local obj = setmetatable({}, { __call = function(self, x) return x * 2 end })
    assert.equal(42, corio.spawn(obj, 21):await())
  end)

  it("raises bad argument for a value that is not callable", function()
    S.bad_argument(1, "spawn", function() corio.spawn() end)
    S.bad_argument(1, "spawn", function() corio.spawn(42) end)
    S.bad_argument(1, "spawn", function() corio.spawn({}) end)
    S.bad_argument(1, "spawn", function() corio.spawn("print") end)
  end)

  it("does not run the child inside the parent (no nested resume)", function()
    local log = {}
    local t = corio.spawn(function() log[#log + 1] = "child" end)
    log[#log + 1] = "parent"
    t:await()
    assert.same({ "parent", "child" }, log)
  end)
end)

describe("Task:await", function()
  it("returns every return value of the task", function()
    local t = corio.spawn(function() return 1, "two", nil, false end)
    local r = table.pack(t:await())
    assert.equal(4, r.n)
    assert.same({ 1, "two", nil, false }, { r[1], r[2], r[3], r[4] })
  end)

  it("returns nothing for a task that returns nothing", function()
    local t = corio.spawn(function() end)
    assert.equal(0, select("#", t:await()))
  end)

  it("returns the results again when awaited after it finished", function()
    local t = corio.spawn(function() return 7, 8 end)
    assert.same({ 7, 8 }, { t:await() })
    assert.same({ 7, 8 }, { t:await() })
    assert.same({ 7, 8 }, { t:result() })
  end)

  it("passes many return values through", function()
    local t = corio.spawn(function()
      local r = {}
      for i = 1, 200 do r[i] = i end
      corio.sleep(0)
      return table.unpack(r)
    end)
    local r = table.pack(t:await())
    assert.equal(200, r.n)
    assert.equal(200, r[200])
  end)

  it("wakes every awaiter, each with all the values", function()
    local f = corio.future()
    local t = corio.spawn(function() f:await() return "a", "b" end)
    local got = {}
    local waiters = {}
    for i = 1, 5 do
      waiters[i] = corio.spawn(function() got[i] = { t:await() } end)
    end
    corio.yield()
    f:set_result()
    for i = 1, 5 do waiters[i]:await() end
    for i = 1, 5 do assert.same({ "a", "b" }, got[i]) end
  end)

  it("raises the task's error unchanged", function()
    local e = corio.Error("EXAMPLE", "custom failure")
    local t = corio.spawn(function() corio.sleep(0) error(e) end)
    local err = S.raises(t.await, t)
    assert.equal(e, err)
  end)

  it("raises a clear error when a task awaits itself", function()
    local t
    t = corio.spawn(function()
      corio.yield()
      return pcall(t.await, t)
    end)
    local ok, err = t:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("itself", err.message)
  end)

  it("raises a clear error for a cycle of tasks awaiting each other", function()
    local a, b
    local f = corio.future()
    a = corio.spawn(function() f:await() return b:await() end)
    b = corio.spawn(function()
      f:set_result()
      corio.yield()                     -- a now waits on b
      return pcall(a.await, a)
    end)
    local ok, err = b:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("deadlock", err.message)
    a:await()
  end)

  it("raises a clear error outside a task (in a callback)", function()
    local t = corio.spawn(function() return 1 end)
    local f = corio.future()
    corio.call_soon(function() f:set_result(pcall(t.await, t)) end)
    local ok, err = f:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("not inside a task", err.message)
    t:await()
  end)

  it("raises a clear error inside a plain coroutine within a task", function()
    local t = corio.spawn(function() return 1 end)
    local co = coroutine.wrap(function() return pcall(t.await, t) end)
    local ok, err = co()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("coroutine", err.message)
    t:await()
  end)

  it("raises bad argument on a value that is not a Task", function()
    local t = corio.spawn(function() end)
    S.bad_argument(1, "await", function() t.await(42) end)
    S.bad_argument(1, "await", function() t.await({}) end)
    S.bad_argument(1, "await", function() t.await(corio.future) end)
    t:await()
  end)
end)

describe("Task methods", function()
  it("done/cancelled/result/error follow the task's life", function()
    local f = corio.future()
    local t = corio.spawn(function() f:await() return "r" end)
    assert.is_false(t:done())
    assert.is_false(t:cancelled())
    S.is_error(S.raises(t.result, t), "INVALID_STATE")
    S.is_error(S.raises(t.error, t), "INVALID_STATE")
    f:set_result()
    assert.equal("r", t:await())
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
    assert.equal("r", t:result())
    assert.is_nil(t:error())
  end)

  it("error() returns the error of a failed task and result() raises it", function()
    local t = corio.spawn(function() error("bad thing", 0) end)
    S.raises(t.await, t)
    assert.equal("bad thing", t:error())
    assert.equal("bad thing", S.raises(t.result, t))
    assert.is_false(t:cancelled())
  end)

  it("has a default name Task-<n> and set_name changes it", function()
    local t = corio.spawn(function() end)
    assert.matches("^Task%-%d+$", t:name())
    t:set_name("worker")
    assert.equal("worker", t:name())
    assert.matches("worker", tostring(t))
    t:await()
  end)

  it("set_name raises bad argument for a non-string", function()
    local t = corio.spawn(function() end)
    S.bad_argument(2, "set_name", function() t.set_name(t, {}) end)
    S.bad_argument(1, "set_name", function() t:set_name() end)
    S.bad_argument(1, "set_name", function() t.set_name(1, "x") end)
    S.bad_argument(1, "name", function() t.name(1) end)
    t:await()
  end)

  it("tostring shows the name and the state", function()
    local f = corio.future()
    local t = corio.spawn(function() f:await() end)
    assert.matches("^corio%.Task Task%-%d+ %(pending%)$", tostring(t))
    corio.yield()
    assert.matches("%(waiting%)$", tostring(t))
    f:set_result()
    t:await()
    assert.matches("%(done%)$", tostring(t))
    local c = corio.spawn(function() corio.sleep(10) end)
    c:cancel()
    pcall(c.await, c)
    assert.matches("%(cancelled%)$", tostring(c))
    local e = corio.spawn(function() error("x") end)
    pcall(e.await, e)
    assert.matches("%(failed%)$", tostring(e))
  end)

  it("traceback() of a failed task names the failing line", function()
    local line
    local t = corio.spawn(function()
      corio.sleep(0)
      line = debug.getinfo(1, "l").currentline + 1
      error("it broke")
    end)
    local err = S.raises(t.await, t)
    assert.matches("it broke", err)
    local tb = t:traceback()
    assert.is_string(tb)
    assert.matches("stack traceback:", tb, 1, true)
    assert.matches("task_spec.lua:" .. line .. ":", tb, 1, true)
  end)

  it("traceback() of a suspended task shows where it waits", function()
    local f = corio.future()
    local t = corio.spawn(function() f:await() end)
    corio.yield()
    local tb = t:traceback()
    assert.is_string(tb)
    assert.matches("await", tb)
    assert.matches("task_spec.lua", tb)
    f:set_result()
    t:await()
  end)

  it("traceback() is nil for a task that finished well", function()
    local t = corio.spawn(function() return 1 end)
    t:await()
    assert.is_nil(t:traceback())
  end)

  it("methods raise bad argument on a wrong self", function()
    local t = corio.spawn(function() end)
    S.bad_argument(1, "cancel", function() t.cancel({}) end)
    S.bad_argument(1, "traceback", function() t.traceback("x") end)
    S.bad_argument(1, "done", function() t.done(nil) end)
    S.bad_argument(1, "result", function() t.result(3) end)
    S.bad_argument(1, "cancelled", function() t.cancelled(true) end)
    S.bad_argument(1, "error", function() t.error({}) end)
    S.bad_argument(1, "add_done_callback",
                   function() t.add_done_callback(1, print) end)
    S.bad_argument(2, "cancel", function() t.cancel(t, {}) end)
    S.bad_argument(1, "cancel", function() t:cancel({}) end)   -- method call
    S.bad_argument(1, "add_done_callback",
                   function() t:add_done_callback(42) end)
    t:await()
  end)

  it("add_done_callback runs with the task once it finishes", function()
    local seen = corio.future()
    local t = corio.spawn(function() corio.sleep(0) return 5 end)
    t:add_done_callback(function(x) seen:set_result(x) end)
    local x = seen:await()
    assert.equal(t, x)
    assert.equal(5, x:result())
  end)
end)

describe("corio.current", function()
  it("returns the running task", function()
    local me
    local t = corio.spawn(function() me = corio.current() end)
    t:await()
    assert.equal(t, me)
  end)

  it("returns a full Task in the binary's main task", function()
    -- test bodies run in the main task of `corio test`
    local me = corio.current()
    assert.matches("^corio%.Task ", tostring(me))
    assert.is_string(me:name())
    assert.is_false(me:done())
  end)

  it("returns nil in a callback", function()
    local f = corio.future()
    corio.call_soon(function() f:set_result(corio.current()) end)
    assert.is_nil(f:await())
  end)

  it("returns nil inside a plain coroutine", function()
    local co = coroutine.wrap(function() return corio.current() end)
    assert.is_nil(co())
    assert.is_not_nil(corio.current())
  end)
end)

describe("a bare coroutine.yield in a task", function()
  it("acts like corio.yield", function()
    local log = {}
    local t = corio.spawn(function()
      log[#log + 1] = 1
      coroutine.yield("ignored")
      log[#log + 1] = 3
    end)
    local u = corio.spawn(function() log[#log + 1] = 2 end)
    t:await(); u:await()
    assert.same({ 1, 2, 3 }, log)
  end)
end)

describe("finished tasks", function()
  it("let go of their coroutine so it can be reused cleanly", function()
    -- A coroutine that failed is not reused; one that returned is, and the
    -- next task on it sees no trace of the last (no stale locals or stack).
    for _ = 1, 3 do
      local t = corio.spawn(function(...) return select("#", ...) end)
      assert.equal(0, t:await())
      local e = corio.spawn(function() error("x") end)
      pcall(e.await, e)
    end
    local threads = {}
    for i = 1, 50 do
      threads[i] = corio.spawn(function() return coroutine.running() end)
    end
    for i = 1, 50 do threads[i] = threads[i]:await() end
    for i = 1, 50 do assert.equal("thread", type(threads[i])) end
  end)

  it("do not pass a debug hook on to later tasks", function()
    corio.spawn(function() debug.sethook(function() end, "l") end):await()
    for _ = 1, 5 do
      assert.is_nil(corio.spawn(function() return debug.gethook() end):await())
    end
  end)

  it("let go of their coroutine even while the Task is kept", function()
    -- 1,000 tasks alive at once need 1,000 coroutines; once they finish,
    -- only a bounded pool of coroutines may stay (the Tasks are kept).
    local threads = setmetatable({}, { __mode = "k" })
    local tasks = {}
    local gate = corio.future()
    for i = 1, 1000 do
      tasks[i] = corio.spawn(function()
        threads[coroutine.running()] = true
        gate:await()
        return i
      end)
    end
    corio.yield()
    gate:set_result()
    for i = 1, 1000 do assert.equal(i, tasks[i]:await()) end
    collectgarbage(); collectgarbage()
    local left = 0
    for _ in pairs(threads) do left = left + 1 end
    assert.is_true(left <= 300, left .. " coroutines kept")
  end)

  it("are collected once nothing refers to them", function()
    local weak = setmetatable({}, { __mode = "k" })
    for _ = 1, 10 do
      local t = corio.spawn(function() return {} end)
      weak[t] = true
      t:await()
    end
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak))
  end)
end)
