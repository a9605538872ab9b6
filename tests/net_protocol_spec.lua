-- The protocol / transport API (create_server, create_connection).
local corio = require "corio"
local net = require "corio.net"

-- A protocol class that records its calls.
local function recorder(extra)
  local P = {}
  P.__index = P
  function P.new()
    local self = setmetatable({ log = {}, data = {}, lost = corio.future() }, P)
    return self
  end
  function P:connection_made(t)
    self.t = t
    self.log[#self.log + 1] = "made"
  end
  function P:data_received(d)
    self.data[#self.data + 1] = d
    if self.on_data then self:on_data(d) end
  end
  function P:eof_received()
    self.log[#self.log + 1] = "eof"
    return self.keep_open
  end
  function P:connection_lost(err)
    self.log[#self.log + 1] = "lost"
    self.lost:set_result(err or false)
  end
  for k, v in pairs(extra or {}) do P[k] = v end
  return P
end

local function echo_server()
  local Echo = recorder({ on_data = function(self, d) self.t:write(d) end })
  local protos = {}
  local srv = net.create_server(function()
    local p = Echo.new()
    protos[#protos + 1] = p
    return p
  end, "127.0.0.1", 0)
  return srv, protos
end

describe("net protocols", function()
  it("echo: connection_made, data_received, connection_lost in order", function()
    local srv <close>, protos = echo_server()
    local _, port = srv:address()
    local Client = recorder()
    local got = corio.future()
    local t, p = net.create_connection(function()
      local c = Client.new()
      c.on_data = function(self, d) if not got:done() then got:set_result(d) end end
      return c
    end, "127.0.0.1", port)
    assert.same({ "made" }, p.log)                 -- before it returns
    t:write("hello")
    assert.equal("hello", got:await())
    t:close()
    assert.is_false(p.lost:await())
    assert.same({ "made", "lost" }, p.log)
    assert.is_false(protos[1].lost:await())
    assert.same({ "made", "eof", "lost" }, protos[1].log)
    assert.is_true(t:is_closing())
    srv:close()
    srv:wait_closed()
  end)

  it("eof_received returning true keeps the transport open for writing", function()
    local srv <close> = net.create_server(function()
      local P = recorder({ keep_open = true })
      local p = P.new()
      p.eof_received = function(self)
        self.t:write("after eof")
        self.t:close()
        return true
      end
      return p
    end, "127.0.0.1", 0)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    c:shutdown()
    assert.equal("after eof", c:read("a"))
    c:close()
    srv:close()
    srv:wait_closed()
  end)

  it("connection_lost gets the error of a reset", function()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      s:write("x")
      s:read(1)
      s:abort()
    end)
    local _, port = srv:address()
    local t, p = net.create_connection(function() return recorder().new() end,
      "127.0.0.1", port)
    corio.sleep(0.02)
    t:write("unread data")               -- the abort then resets
    local err = p.lost:await()
    assert.is_true(err == false or err.code == "ECONNRESET", tostring(err))
    srv:close()
    srv:wait_closed()
  end)

  it("pause_reading stops data_received until resume_reading", function()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      s:write("one")
      s:read("l")
      s:write("two")
      s:read("a")
    end)
    local _, port = srv:address()
    local Client = recorder()
    local t, p = net.create_connection(function()
      local c = Client.new()
      c.on_data = function(self) self.t:pause_reading() end
      return c
    end, "127.0.0.1", port)
    corio.sleep(0.02)
    assert.same({ "one" }, p.data)
    assert.is_false(t:is_reading())
    t:write("go\n")
    corio.sleep(0.05)
    assert.same({ "one" }, p.data)       -- "two" waits
    t:resume_reading()
    corio.sleep(0.02)
    assert.same({ "one", "two" }, p.data)
    t:close()
    p.lost:await()
    srv:close()
    srv:wait_closed()
  end)

  it("pause_writing / resume_writing follow the write buffer", function()
    local release = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      release:await()                  -- reads nothing for a while
      s:read("a")
    end)
    local _, port = srv:address()
    local calls = {}
    local P = recorder({
      pause_writing = function() calls[#calls + 1] = "pause" end,
      resume_writing = function() calls[#calls + 1] = "resume" end,
    })
    local t, p = net.create_connection(function() return P.new() end,
      "127.0.0.1", port, { high_water = 65536 })
    local chunk = string.rep("w", 1024 * 1024)
    for _ = 1, 16 do t:write(chunk) end
    assert.same({ "pause" }, calls)
    assert.is_true(t:get_write_buffer_size() > 65536)
    release:set_result()
    for _ = 1, 100 do
      if #calls == 2 then break end
      corio.sleep(0.02)
    end
    assert.same({ "pause", "resume" }, calls)
    t:close()
    p.lost:await()
    srv:close()
    srv:wait_closed()
  end)

  it("get_extra_info, write_eof, abort", function()
    local srv <close>, protos = echo_server()
    local _, port = srv:address()
    local t, p = net.create_connection(function() return recorder().new() end,
      "127.0.0.1", port)
    local host, pport = t:get_extra_info("peername")
    assert.equal("127.0.0.1", host)
    assert.equal(port, pport)
    assert.is_not_nil(t:get_extra_info("stream"))
    assert.equal("dflt", t:get_extra_info("nope", "dflt"))
    assert.is_true(t:can_write_eof())
    t:writelines({ "a", "b" })
    t:write_eof()
    corio.sleep(0.05)
    t:abort()
    p.lost:await()
    srv:close()
    srv:wait_closed()
  end)
end)

describe("net protocols, failures", function()
  -- Collects what reaches the error handler.  settle(srv) closes the
  -- server, lets failed tasks nobody awaited be collected and reported,
  -- and puts the old handler back.
  local function watch_reports()
    local reported = {}
    local old = corio.set_error_handler(function(err)
      reported[#reported + 1] = err
    end)
    return reported, function(srv)
      srv:close()
      srv:wait_closed()
      collectgarbage()
      collectgarbage()
      corio.sleep(0.01)
      corio.set_error_handler(old)
    end
  end

  it("a failing callback aborts the connection and is reported", function()
    local reported, settle = watch_reports()
    local lost = corio.future()
    local srv <close> = net.create_server(function()
      return {
        data_received = function() error("protocol bug") end,
        connection_lost = function(_, err) lost:set_result(err) end,
      }
    end, "127.0.0.1", 0)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    c:write("x")
    assert.matches("protocol bug", tostring(lost:await()))
    pcall(c.read, c, "a")               -- aborted: EOF or a reset
    c:close()
    settle(srv)
    assert.equal(1, #reported)
    assert.matches("protocol bug", tostring(reported[1]))
  end)

  it("write, writelines and write_eof raise CLOSED after close or abort", function()
    local srv <close> = net.serve("127.0.0.1", 0, function(s) s:read("a") end)
    local _, port = srv:address()
    for _, how in ipairs { "close", "abort" } do
      local t, p = net.create_connection(function() return recorder().new() end,
        "127.0.0.1", port)
      t[how](t)
      for _, call in ipairs { { "write", "late" }, { "writelines", { "a" } },
          { "write_eof" } } do
        local ok, err = pcall(t[call[1]], t, call[2])
        assert.is_false(ok, how .. " " .. call[1])
        assert.equal("CLOSED", err.code, how .. " " .. call[1])
        assert.equal(call[1], err.op)
      end
      assert.is_false(t:is_reading())
      t:pause_reading()                   -- no-ops once closing
      t:resume_reading()
      p.lost:await()
    end
    srv:close()
    srv:wait_closed()
  end)

  it("data that waited while reading was paused is not delivered after close", function()
    local reported, settle = watch_reports()
    local go = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      go:await()
      s:write("late")
      s:read("a")
    end)
    local _, port = srv:address()
    local Echo = recorder({ on_data = function(self, d) self.t:write(d) end })
    local t, p = net.create_connection(function() return Echo.new() end,
      "127.0.0.1", port)
    corio.sleep(0.02)                     -- its reading task waits in read
    t:pause_reading()
    go:set_result()
    corio.sleep(0.05)                     -- "late" read, held while paused
    t:close()
    assert.is_false(p.lost:await())
    assert.same({}, p.data)
    settle(srv)
    assert.same({}, reported)
  end)

  it("a write after close in connection_made ends the handler quietly", function()
    local reported, settle = watch_reports()
    local srv <close> = net.create_server(function()
      return { connection_made = function(_, t) t:close() t:write("late") end }
    end, "127.0.0.1", 0)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    assert.equal("", c:read("a"))
    c:close()
    settle(srv)
    assert.same({}, reported)
  end)

  it("create_connection: a factory returning no table raises and closes the connection", function()
    local ended = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      ended:set_result((pcall(s.read, s, "a")))
    end)
    local _, port = srv:address()
    local made = 0
    for _, ret in ipairs { "nil", "number" } do
      local ok, err = pcall(net.create_connection, function()
        made = made + 1
        return ret == "number" and 42 or nil
      end, "127.0.0.1", port)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'create_connection' %(protocol factory " ..
        "returned " .. ret .. ", a protocol table expected%)", err)
      -- closed at once (not when the GC gets to it): the peer sees the end
      assert.is_true(corio.wait_for(ended, 1) ~= nil)
      ended = corio.future()
    end
    assert.equal(2, made)
    srv:close()
    srv:wait_closed()
  end)

  it("create_server: a factory returning nil fails that connection only", function()
    local reported, settle = watch_reports()
    local n = 0
    local srv <close> = net.create_server(function()
      n = n + 1
      if n == 1 then return nil end
      return { data_received = function(self, d) self.t:write(d) end,
               connection_made = function(self, t) self.t = t end }
    end, "127.0.0.1", 0)
    local _, port = srv:address()
    local c1 = net.connect("127.0.0.1", port)
    assert.equal("", c1:read("a"))           -- closed by the server
    c1:close()
    collectgarbage()                         -- reported when the task goes
    collectgarbage()
    corio.sleep(0.01)
    assert.equal(1, #reported)
    assert.matches("bad argument #1 to 'create_server' %(protocol factory " ..
      "returned nil, a protocol table expected%)", tostring(reported[1]))
    assert.is_true(srv:is_serving())
    local c2 = net.connect("127.0.0.1", port)  -- the server goes on
    c2:write("ping")
    assert.equal("ping", c2:read(4))
    c2:close()
    settle(srv)
    assert.equal(1, #reported)
  end)

  it("rejects bad ports and options with bad argument", function()
    local function msg(f)                  -- closes what wrongly opened
      local ok, r = pcall(f)
      if ok and type(r) == "table" and r.close then r:close() end
      return r
    end
    local function factory() return {} end
    for _, port in ipairs { 1e300, math.huge, -math.huge, 2 ^ 63, 0 / 0, 0.5 } do
      assert.matches("bad argument #3 to 'create_connection' %(port must be " ..
        "an integer 0%-65535", msg(function()
          return net.create_connection(factory, "127.0.0.1", port) end))
      assert.matches("bad argument #3 to 'create_server' %(port must be " ..
        "an integer 0%-65535", msg(function()
          return net.create_server(factory, "127.0.0.1", port) end))
    end
    assert.matches("bad argument #4 to 'create_server' %(option 'limit' must " ..
      "be an integer >= 1, got %-1%)", msg(function()
        return net.create_server(factory, "127.0.0.1", 0, { limit = -1 }) end))
    assert.matches("bad argument #4 to 'create_connection' %(option 'limit'",
      msg(function()
        return net.create_connection(factory, "127.0.0.1", 1, { limit = 0 }) end))
    assert.matches("bad argument #2 to 'create_connection' %(string expected",
      msg(function() return net.create_connection(factory, 5, 1) end))
  end)

  it("Transport methods check self", function()
    local function msg(f) return select(2, pcall(f)) end
    local T = net.Transport
    assert.matches("bad argument #1 to 'write' %(corio.Transport expected, got nil%)",
      msg(function() T.write(nil, "x") end))
    -- write_eof({}) used to return and fail later, in a task of its own
    assert.matches("bad argument #1 to 'write_eof' %(corio.Transport expected, got table%)",
      msg(function() T.write_eof({}) end))
    for _, m in ipairs { "writelines", "close", "abort", "is_closing",
        "pause_reading", "resume_reading", "is_reading", "can_write_eof",
        "get_write_buffer_size", "set_write_buffer_limits", "get_extra_info" } do
      assert.matches("bad argument #1 to '" .. m .. "' %(corio.Transport expected",
        msg(function() T[m]({}) end), m)
    end
  end)
end)
