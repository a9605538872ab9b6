-- corio.debug: live tasks with state, await point and (under --debug)
-- creation site; the summary of what is still running.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "support.lua")

describe("corio.debug", function()
  after_each(S.cleanup)

  it("tasks() lists every live task with name, state and await point",
     function()
    local ev = corio.sync.Event()
    local t = corio.spawn(function() ev:wait() end)
    t:set_name("waiter")
    corio.yield()
    local found
    for _, i in ipairs(corio.debug.tasks()) do
      if i.task == t then found = i end
    end
    assert.truthy(found)
    assert.equal("waiter", found.name)
    assert.equal("waiting", found.state)
    assert.truthy(found.where:find("debug_spec.lua:13", 1, true))
    ev:set()
    t:await()
    for _, i in ipairs(corio.debug.tasks()) do
      assert.are_not.equal(t, i.task)
    end
  end)

  it("records where a task was spawned only under --debug", function()
    local script = [[
      local t = corio.spawn(corio.sleep, 0.05)
      for _, i in ipairs(corio.debug.tasks()) do
        if i.task == t then print(i.state, i.created) end
      end
      print(corio.debug.enabled())
    ]]
    local r = S.run(script)
    assert.equal("new\tnil\nfalse\n", r.out)
    r = S.run(script, { pre = { "--debug" } })
    assert.truthy(r.out:find("^new\t/.-script%.lua:1\ntrue\n"))
    r = S.run(script, { limit = "export CORIO_DEBUG=1" })
    assert.truthy(r.out:find("true\n", 1, true))
  end)

  it("--debug says what still runs once the main chunk is done", function()
    local r = S.run([[
      local function idle() corio.sleep(0.1) end
      corio.spawn(idle):set_name("idler")
    ]], { pre = { "--debug" } })
    assert.equal(0, r.code)
    assert.truthy(r.err:find("still running", 1, true))
    assert.truthy(r.err:find("task idler %(new%), spawned at .-script%.lua:2"))
  end)

  it("--debug reports a Stream collected while open, not a closed one",
     function()
    local script = [[
      local srv = corio.net.serve("127.0.0.1", 0, function(s)
        s:read("a") s:close()
      end)
      local _, port = srv:address()
      do local c = corio.net.connect("127.0.0.1", port) end
      collectgarbage() collectgarbage()
      local c2 = corio.net.connect("127.0.0.1", port)
      c2:close()
      c2 = nil
      collectgarbage() collectgarbage()
      srv:close()
      print("done")
    ]]
    local r = S.run(script, { pre = { "--debug" } })
    assert.equal("done\n", r.out)
    assert.equal(1, S.count(r.err, "was garbage-collected while open"))
    r = S.run(script)
    assert.equal("", r.err)
  end)

  it("--debug reports a Future or Task collected without being awaited",
     function()
    local script = [[
      local function lost() corio.future() end
      lost()
      corio.spawn(function() end)
      local t = corio.spawn(function() return 1 end)
      local f = corio.future()
      f:set_result(1)
      assert(f:result() == 1)
      local g = corio.future()
      g:add_done_callback(function() end)
      g:set_result(2)
      corio.sleep(0.01)
      f, g = nil, nil
      collectgarbage() collectgarbage()
      print(t:await())
    ]]
    local r = S.run(script, { pre = { "--debug" } })
    assert.equal("1\n", r.out)
    assert.equal(2, S.count(r.err, "without ever being awaited"))
    assert.truthy(r.err:find("a Future created at .-script%.lua:1 "))
    assert.truthy(r.err:find("a Task created at .-script%.lua:3 "))
    r = S.run(script)
    assert.equal("", r.err)
  end)

  it("--debug reports a Lock still held when its task ends", function()
    local script = [[
      local sync = corio.sync
      local lock = sync.Lock()
      local fine = sync.Lock()
      local pool = sync.BoundedSemaphore(3)
      local signal = sync.Semaphore(0)
      local t = corio.spawn(function()
        lock:acquire()
        pool:acquire() pool:acquire()
        fine:with(function() end)
        local _ <close> = fine:acquire()
        signal:release()
      end)
      t:set_name("worker")
      t:await()
      signal:acquire()
      local got = corio.future()
      local w = corio.spawn(function()
        lock:acquire()           -- waits: handed over by the release below
        got:set_result(true)
      end)
      corio.yield()
      lock:release()             -- released by a task that does not hold it
      got:await()
      w:await()
      local c = corio.spawn(function()
        pool:acquire()
        pool:release()
        local ok = lock:locked()
        lock:release()
        return ok
      end)
      print(c:await(), lock:locked(), pool:value())
    ]]
    local r = S.run(script, { pre = { "--debug" } })
    assert.equal(0, r.code)
    assert.equal("true\tfalse\t1\n", r.out)
    assert.equal(3, S.count(r.err, "[debug]"))
    assert.truthy(r.err:find("task worker ended holding a Lock created at "
      .. "[^\n]-script%.lua:2 %(acquired at [^\n]-script%.lua:7%)"))
    assert.truthy(r.err:find("task worker ended holding 2 permits of a "
      .. "BoundedSemaphore created at [^\n]-script%.lua:4 %(first acquired "
      .. "at [^\n]-script%.lua:8%)"))
    -- the hand-off names the waiter's acquire, and its task
    assert.truthy(r.err:find("task Task%-%d+ ended holding a Lock created "
      .. "at [^\n]-script%.lua:2 %(acquired at [^\n]-script%.lua:18%)"))
    r = S.run(script)
    assert.equal("true\tfalse\t1\n", r.out)
    assert.equal("", r.err)
  end)

  it("--debug does not report a Lock released, a cancelled holder's "
     .. "cleanup, or a Condition's wait", function()
    local r = S.run([[
      local sync = corio.sync
      local lock = sync.Lock()
      local cond = sync.Condition()
      local started = corio.future()
      local t = corio.spawn(function()
        local _ <close> = lock:acquire()
        started:set_result(true)
        corio.sleep(60)
      end)
      started:await()
      t:cancel()
      pcall(t.await, t)
      local ready = false
      local waiter = corio.spawn(function()
        cond:with(function()
          while not ready do cond:wait() end
        end)
      end)
      corio.yield()
      cond:with(function() ready = true cond:notify_all() end)
      waiter:await()
      lock:with(function() end)
      print(lock:locked(), cond:locked())
    ]], { pre = { "--debug" } })
    assert.equal(0, r.code)
    assert.equal("false\tfalse\n", r.out)
    assert.equal("", r.err)
  end)

  it("--debug: the summary groups open handles by kind and creation site",
     function()
    local r = S.run([[
      local srv = corio.net.serve("127.0.0.1", 0, function(s) s:read("a") end)
      local _, port = srv:address()
      local conns = {}
      for i = 1, 2 do conns[i] = corio.net.connect("127.0.0.1", port) end
      corio.call_later(0.2, function()
        srv:close()
        for _, c in ipairs(conns) do c:close() end
      end)
      print(#corio.debug.handles())
    ]], { pre = { "--debug" } })
    assert.equal(0, r.code)
    assert.equal("6\n", r.out)
    local want = {
      "still running",
      "1 Server created at [^\n]-script%.lua:1\n",
      "2 Stream %(accepted%) created at [^\n]-script%.lua:1\n",
      "1 Timer created at [^\n]-script%.lua:5\n",
    }
    for _, w in ipairs(want) do assert.truthy(r.err:find(w), w) end
    -- the clients do not keep the program alive (nothing reads them)
    assert.falsy(r.err:find("Stream created at", 1, true))
    assert.falsy(r.err:find("still open at exit", 1, true))
    assert.falsy(r.err:find("never", 1, true))     -- handler tasks
  end)

  it("--debug lists at exit what the script opened and never closed",
     function()
    local script = [[
      local srv = corio.net.serve("127.0.0.1", 0, function(s) end)
      local _, port = srv:address()
      a = corio.net.connect("127.0.0.1", port)
      b = corio.net.connect("127.0.0.1", port)
      local c = corio.net.connect("127.0.0.1", port)
      c:close()
      f = corio.fs.open(arg[0])
      local g <close> = corio.fs.open(arg[0])
      corio.sleep(0.05)
      srv:close()
      print(#corio.debug.handles())
    ]]
    local r = S.run(script, { pre = { "--debug" } })
    assert.equal(0, r.code)
    assert.equal("4\n", r.out)
    assert.truthy(r.err:find("still open at exit", 1, true))
    assert.truthy(r.err:find("  2 Stream created at [^\n]-script%.lua:3\n")
      or r.err:find("  1 Stream created at [^\n]-script%.lua:3\n  1 Stream "
      .. "created at [^\n]-script%.lua:4\n"))
    assert.truthy(r.err:find("  1 File created at [^\n]-script%.lua:7\n"))
    assert.falsy(r.err:find("script%.lua:[568]\n"))
    assert.falsy(r.err:find("still running", 1, true))
    r = S.run(script)
    assert.equal("", r.err)
    assert.equal("0\n", r.out)
  end)

  it("--debug: a Stream collected while open names where it was made",
     function()
    local r = S.run([[
      local srv = corio.net.serve("127.0.0.1", 0, function(s) end)
      local _, port = srv:address()
      do local c = corio.net.connect("127.0.0.1", port) end
      collectgarbage() collectgarbage()
      srv:close()
    ]], { pre = { "--debug" } })
    assert.truthy(r.err:find("a Stream created at [^\n]-script%.lua:3 was "
      .. "garbage%-collected while open"))
  end)

  it("--debug: a failing script's exit lists the handles it left open",
     function()
    local r = S.run([[
      local srv = corio.net.serve("127.0.0.1", 0, function(s) end)
      corio.spawn(corio.sleep, 60)     -- cancelled by the exit: no report
      error("boom")
    ]], { pre = { "--debug" } })
    assert.equal(1, r.code)
    assert.truthy(r.err:find("boom", 1, true))
    assert.truthy(r.err:find("still open at exit (closed by the exit, not by "
      .. "the script):\n  1 Server created at ", 1, true))
    assert.falsy(r.err:find("never", 1, true))
  end)
end)
