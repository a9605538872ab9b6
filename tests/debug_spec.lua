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
    assert.equal(1, S.count(r.err, "Stream was garbage-collected while open"))
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
end)
