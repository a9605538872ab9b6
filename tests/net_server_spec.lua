-- Servers and connections: TCP (IPv4, IPv6), unix sockets, connect
-- errors, server life, max_connections, reuseport, many connections.
local corio = require "corio"
local net = require "corio.net"

local function errcode(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return type(err) == "table" and err.code or tostring(err), err
end

local function echo(s)
  while true do
    local d = s:read(65536)
    if not d then return end
    s:write(d)
  end
end

local function mypid()
  local f = io.open("/proc/self/stat")
  local pid = f:read("n")
  f:close()
  return pid
end

-- The corio binary running the tests (for child processes).
local function corio_bin()
  local p = io.popen("readlink /proc/" .. mypid() .. "/exe")
  local path = p:read("l")
  p:close()
  return path
end

local function nfds()
  local p = io.popen("ls /proc/" .. mypid() .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

local function rss()
  local f = io.open("/proc/self/statm")
  local _, res = f:read("n", "n")
  f:close()
  return res * 4096
end

-- Under AddressSanitizer freed memory sits in a quarantine: RSS says
-- nothing about leaks there (ASan's own leak check does).
local function sanitized()
  local f = io.open("/proc/self/maps")
  local maps = f:read("a")
  f:close()
  return maps:find("asan", 1, true) ~= nil
end

local tmpdir = os.getenv("TMPDIR") or "/tmp"
local function sockpath(name)
  return ("%s/corio-test-%d-%s.sock"):format(tmpdir, math.random(1, 1e9), name)
end

describe("net server", function()
  it("port 0 picks a free port; address() reports it", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    local host, port = srv:address()
    assert.equal("127.0.0.1", host)
    assert.is_true(port > 0)
    local c = net.connect(host, port)
    c:write("ping\n")
    assert.equal("ping", c:read("l"))
    c:close()
    srv:close()
    srv:wait_closed()
  end)

  it("serves and connects over IPv6", function()
    local ok, srv = pcall(net.serve, "::1", 0, echo)
    if not ok then
      pending("no IPv6 loopback here: " .. tostring(srv))
      return
    end
    local host, port = srv:address()
    assert.equal("::1", host)
    local c = net.connect("::1", port)
    c:write("six\n")
    assert.equal("six", c:read("l"))
    c:close()
    srv:close()
    srv:wait_closed()
  end)

  it("connects to a name (localhost)", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    local _, port = srv:address()
    local c = net.connect("localhost", port, { family = "inet" })
    c:write("name\n")
    assert.equal("name", c:read("l"))
    c:close()
    srv:close()
  end)

  it("connection refused gives ECONNREFUSED with host and port", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    local _, port = srv:address()
    srv:close()
    local code, err = errcode(net.connect, "127.0.0.1", port)
    assert.equal("ECONNREFUSED", code)
    assert.equal("127.0.0.1", err.host)
    assert.equal(port, err.port)
    assert.matches("127.0.0.1:" .. port, tostring(err))
  end)

  it("a cancelled connect leaves nothing behind", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    local _, port = srv:address()
    for _ = 1, 20 do
      local t = corio.spawn(function() return net.connect("127.0.0.1", port) end)
      corio.yield()                    -- t is now waiting in connect
      t:cancel()
      local ok, res = pcall(t.await, t)
      if ok then res:close()           -- it won the race
      else assert.is_true(corio.is_cancelled(res), tostring(res)) end
    end
    srv:close()
    srv:wait_closed()
  end)

  it("binds the client to a local address and port", function()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      local h, p = s:peername()
      s:write(h, " ", p, "\n")
    end)
    local _, port = srv:address()
    local probe = net.serve("127.0.0.1", 0, echo)           -- a free port
    local lport = select(2, probe:address())
    probe:close()
    local c = net.connect("127.0.0.1", port, { local_host = "127.0.0.1",
      local_port = lport })
    assert.equal("127.0.0.1 " .. lport, c:read("l"))
    c:close()
    srv:close()
  end)

  it("close stops accepting, leaves handlers running; wait_closed waits for them", function()
    local release = corio.future()
    local finished = false
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      s:write("hi\n")
      release:await()
      s:write("bye\n")
      finished = true
    end)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    assert.equal("hi", c:read("l"))
    srv:close()
    srv:close()                                  -- idempotent
    assert.is_false(srv:is_serving())
    assert.equal("ECONNREFUSED", (errcode(net.connect, "127.0.0.1", port)))
    assert.equal("CLOSED", (errcode(srv.address, srv)))
    local waiter = corio.spawn(function() srv:wait_closed() return true end)
    corio.sleep(0.02)
    assert.is_false(waiter:done())
    assert.equal(1, srv:connections())
    release:set_result()
    assert.is_true(waiter:await())
    assert.is_true(finished)
    assert.equal("bye", c:read("l"))
    assert.is_nil(c:read("l"))                   -- closed when the handler ended
    c:close()
  end)

  it("close_clients: idle handlers see EOF after what was sent, reply, and their clients see EOF", function()
    local seen = {}
    local got_first = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      while true do
        local line = s:read("l")
        if line == nil then
          s:write("bye\n")                        -- still writable
          seen[#seen + 1] = "eof"
          return
        end
        seen[#seen + 1] = line
        if not got_first:done() then got_first:set_result() end
      end
    end)
    local _, port = srv:address()
    local c1 = net.connect("127.0.0.1", port)
    local c2 = net.connect("127.0.0.1", port)
    c1:write("one\n")
    got_first:await()
    while srv:connections() < 2 do corio.sleep(0.005) end
    srv:close()
    srv:close_clients()
    assert.equal("bye", c1:read("l"))
    assert.equal("bye", c2:read("l"))
    assert.is_nil(c1:read("l"))                  -- then closed
    assert.is_nil(c2:read("l"))
    srv:wait_closed()
    assert.equal(0, srv:connections())
    assert.same({ "one", "eof", "eof" }, seen)
    srv:close_clients()                          -- nothing left: no-op
    c1:close() c2:close()
  end)

  it("close_clients: what was already buffered is still read before EOF", function()
    local first = corio.future()
    local release = corio.future()
    local rest = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      first:set_result(s:read(1))                -- "a"; "b\n" stays buffered
      release:await()
      local lines = {}
      for line in s:lines() do lines[#lines + 1] = line end
      rest:set_result(lines)
    end)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    c:write("ab\n")
    assert.equal("a", first:await())
    srv:close_clients()
    c:write("never read\n")
    release:set_result()
    assert.same({ "b" }, rest:await())
    srv:close()
    srv:wait_closed()
    c:close()
  end)

  it("abort_clients closes every client now; handlers end quietly", function()
    local errors = {}
    corio.set_error_handler(function(e) errors[#errors + 1] = e end)
    local in_handler = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      in_handler:set_result()
      s:read("l")                                -- never answered
      error("not reached")
    end)
    local _, port = srv:address()
    local c = net.connect("127.0.0.1", port)
    in_handler:await()
    srv:close()
    srv:abort_clients()
    srv:wait_closed()
    assert.is_nil(c:read("l"))                   -- EOF or reset: nothing more
    c:close()
    corio.sleep(0)
    corio.set_error_handler(nil)
    assert.same({}, errors)
  end)

  it("serve_forever returns when the server is closed", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    corio.call_later(0.02, function() srv:close() end)
    srv:serve_forever()
    assert.is_false(srv:is_serving())
  end)

  it("cancelling serve_forever closes the server", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo)
    local t = corio.spawn(function() srv:serve_forever() end)
    corio.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.is_false(srv:is_serving())
  end)

  it("max_connections holds further clients until a handler ends", function()
    local active, peak = 0, 0
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      active = active + 1
      if active > peak then peak = active end
      s:read("l")
      active = active - 1
      s:write("done\n")
    end, { max_connections = 2 })
    local _, port = srv:address()
    local clients = {}
    for i = 1, 5 do clients[i] = net.connect("127.0.0.1", port) end
    corio.sleep(0.05)
    assert.equal(2, srv:connections())
    for i = 1, 5 do clients[i]:write("go\n") end
    for i = 1, 5 do assert.equal("done", clients[i]:read("l")) end
    assert.equal(2, peak)
    for i = 1, 5 do clients[i]:close() end
    srv:close()
    srv:wait_closed()
  end)

  it("reuseport lets two servers share a port", function()
    local a <close> = net.serve("127.0.0.1", 0, echo, { reuseport = true })
    local _, port = a:address()
    local b <close> = net.serve("127.0.0.1", port, echo, { reuseport = true })
    assert.equal(port, select(2, b:address()))
    assert.equal("EADDRINUSE", (errcode(net.serve, "127.0.0.1", port, echo)))
    a:close()
    b:close()
  end)

  it("a handler's peer errors end it quietly; other errors are reported", function()
    local reported = {}
    local old = corio.set_error_handler(function(err) reported[#reported + 1] = err end)
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      local line = s:read("l")
      if line == "boom" then error("handler bug") end
    end)
    local _, port = srv:address()
    local c1 = net.connect("127.0.0.1", port)
    c1:write("boom\n")
    assert.is_nil(c1:read("l"))
    c1:close()
    srv:close()
    srv:wait_closed()
    collectgarbage()
    collectgarbage()
    corio.sleep(0.01)
    corio.set_error_handler(old)
    assert.equal(1, #reported)
    assert.matches("handler bug", tostring(reported[1]))
  end)

  it("serves 1,000 concurrent connections", function()
    local srv <close> = net.serve("127.0.0.1", 0, echo, { backlog = 1024 })
    local _, port = srv:address()
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = corio.spawn(function()
        local c = net.connect("127.0.0.1", port)
        c:write("n" .. i .. "\n")
        local got = c:read("l")
        corio.sleep(0.05)                         -- all open at once
        c:close()
        return got
      end)
    end
    for i = 1, 1000 do assert.equal("n" .. i, tasks[i]:await()) end
    srv:close()
    srv:wait_closed()
  end)

  it("10,000 connect/close cycles leave fds and memory at baseline", function()
    local srv <close> = net.serve("127.0.0.1", 0, function(s) s:read("a") end)
    local _, port = srv:address()
    local function cycles(n)
      for _ = 1, n do
        local c = net.connect("127.0.0.1", port)
        c:close()
      end
    end
    cycles(500)
    corio.sleep(0.05)
    collectgarbage()
    collectgarbage()
    local fds, mem = nfds(), rss()
    cycles(10000)
    corio.sleep(0.1)
    collectgarbage()
    collectgarbage()
    local fds2, mem2 = nfds(), rss()
    srv:close()
    srv:wait_closed()
    assert.is_true(fds2 <= fds + 2, ("fds %d -> %d"):format(fds, fds2))
    if not sanitized() then
      assert.is_true(mem2 - mem < 8 * 1024 * 1024,
        ("rss grew by %d"):format(mem2 - mem))
    end
  end)

  it("out of fds, the server backs off instead of spinning, then accepts", function()
    -- The server runs in a child limited to 64 fds; the clients live here,
    -- so only the server's accept() runs out: connections wait in the
    -- backlog with EMFILE while the server must not spin.
    local script = [[
      local corio = require "corio"
      local net = require "corio.net"
      local accepted = 0
      local stat = io.open("/proc/self/stat")
      local srv <close> = net.serve("127.0.0.1", 0, function(s)
        accepted = accepted + 1
        s:read("a")
      end)
      local _, port = srv:address()
      local function cpu()
        stat:seek("set", 0)
        local line = stat:read("a")
        local u, s = line:match("^%d+ %b() %S+" .. (" %S+"):rep(10) .. " (%d+) (%d+)")
        return (tonumber(u) + tonumber(s)) / 100
      end
      corio.stdout:write(port .. "\n")
      corio.stdin:read("l")                      -- every client connected
      local last = -1
      while accepted ~= last do                  -- accepting until EMFILE
        last = accepted
        corio.sleep(0.1)
      end
      local c0, a0 = cpu(), accepted
      corio.sleep(0.5)
      corio.stdout:write(("accepted=%d cpu=%.2f\n"):format(a0, cpu() - c0))
      corio.stdin:read("l")                      -- ten clients closed
      for _ = 1, 250 do
        if accepted > a0 then break end
        corio.sleep(0.02)
      end
      corio.stdout:write(("more=%d\n"):format(accepted - a0))
      corio.stdin:read("l")
    ]]
    local process = require "corio.process"
    local proc = process.spawn({ "sh", "-c", 'ulimit -n 64 && exec "$0" -e "$1"',
                                 corio_bin(), script },
                               { stdin = "pipe", stdout = "pipe" })
    local port = assert(tonumber(proc.stdout:read("l")))
    local clients = {}
    for i = 1, 100 do clients[i] = net.connect("127.0.0.1", port) end
    proc.stdin:write("connected\n")
    local line = proc.stdout:read("l")
    local accepted, spent = line:match("^accepted=(%d+) cpu=([%d.]+)$")
    accepted = tonumber(accepted)
    assert.is_true(accepted > 0 and accepted < 100, line)   -- EMFILE did happen
    assert.is_true(tonumber(spent) < 0.25, line)            -- and it did not spin
    for i = 1, 10 do clients[i]:close() end
    proc.stdin:write("closed\n")
    line = proc.stdout:read("l")
    assert.is_true(tonumber(line:match("^more=(%d+)$")) > 0, line)  -- it retried
    for _, c in ipairs(clients) do c:abort() end
    proc.stdin:close()
    proc.stdout:close()
    assert.equal(0, proc:wait())
  end)

  it("rejects bad arguments", function()
    local function msg(f) return select(2, pcall(f)) end
    assert.matches("bad argument #1 to 'connect'", msg(function() net.connect(1, 2) end))
    assert.matches("bad argument #2 to 'connect'", msg(function() net.connect("h", "x") end))
    assert.matches("bad argument #2 to 'connect'", msg(function() net.connect("h", 70000) end))
    assert.matches("bad argument #3 to 'serve'", msg(function() net.serve("127.0.0.1", 0, 5) end))
    assert.matches("bad argument #4 to 'serve'", msg(function() net.serve("127.0.0.1", 0, echo, 5) end))
    assert.matches("bad argument #1 to 'serve_unix'", msg(function() net.serve_unix(nil, echo) end))
    assert.matches("bad argument #1 to 'connect_unix'", msg(function() net.connect_unix({}) end))
  end)

  -- The error f raises; what f wrongly opened instead is closed.
  local function raised(f)
    local ok, r = pcall(f)
    if ok and type(r) == "table" and r.close then r:close() end
    return r
  end

  it("rejects non-integer float ports with bad argument", function()
    for _, port in ipairs { 1e300, math.huge, -math.huge, 2 ^ 63, 0 / 0 } do
      assert.matches("bad argument #2 to 'connect' %(port must be an integer " ..
        "0%-65535, got ", raised(function() return net.connect("127.0.0.1", port) end))
      assert.matches("bad argument #2 to 'serve' %(port must be an integer " ..
        "0%-65535, got ", raised(function() return net.serve("127.0.0.1", port, echo) end))
    end
    local srv <close> = net.serve("127.0.0.1", 0.0, echo)
    local _, port = srv:address()
    net.connect("127.0.0.1", port + 0.0):close()   -- an integral float is a port
    srv:close()
    srv:wait_closed()
  end)

  it("rejects bad option values with bad argument naming the option", function()
    assert.matches("bad argument #4 to 'serve' %(option 'limit' must be an " ..
      "integer >= 1, got %-1%)", raised(function()
        return net.serve("127.0.0.1", 0, echo, { limit = -1 }) end))
    assert.matches("bad argument #4 to 'serve' %(option 'max_connections'",
      raised(function() return net.serve("127.0.0.1", 0, echo, { max_connections = -2 }) end))
    assert.matches("bad argument #4 to 'serve' %(option 'backlog'",
      raised(function() return net.serve("127.0.0.1", 0, echo, { backlog = "x" }) end))
    assert.matches("bad argument #3 to 'connect' %(option 'high_water'",
      raised(function() return net.connect("127.0.0.1", 1, { high_water = 1.5 }) end))
    assert.matches("bad argument #3 to 'connect' %(option 'local_port'",
      raised(function() return net.connect("127.0.0.1", 1, { local_port = 1e300 }) end))
    assert.matches("bad argument #3 to 'connect' %(option 'local_host'",
      raised(function() return net.connect("127.0.0.1", 1, { local_host = "localhost" }) end))
    assert.matches("bad argument #2 to 'connect_unix' %(option 'limit'",
      raised(function() return net.connect_unix("/nonexistent", { limit = 0 }) end))
    assert.matches("bad argument #3 to 'serve_unix' %(option 'high_water'",
      raised(function() return net.serve_unix("/nonexistent", echo, { high_water = -1 }) end))
  end)

  it("Server methods check self", function()
    local function msg(f) return select(2, pcall(f)) end
    assert.matches("bad argument #1 to 'close' %(corio.Server expected, got table%)",
      msg(function() return net.Server.close({}) end))
    for _, m in ipairs { "address", "is_serving", "connections", "wait_closed",
        "serve_forever", "__tostring", "close_clients", "abort_clients" } do
      assert.matches("bad argument #1 to '" .. m .. "' %(corio.Server expected, got nil%)",
        msg(function() return net.Server[m]() end), m)
    end
  end)
end)

describe("net unix sockets", function()
  it("serves and connects; names are paths; close unlinks the path", function()
    local path = sockpath("a")
    local srv <close> = net.serve_unix(path, echo)
    assert.equal(path, srv:address())
    local c = net.connect_unix(path)
    c:write("over unix\n")
    assert.equal("over unix", c:read("l"))
    assert.equal(path, c:peername())
    c:close()
    srv:close()
    srv:wait_closed()
    assert.is_nil(os.execute("test -e " .. path))
  end)

  it("a stale path is reused; a live one gives EADDRINUSE", function()
    local path = sockpath("stale")
    -- A child binds the path and exits without cleaning up.
    local cmd = ("%s -e 'require(\"corio.net\").serve_unix(%q, function() end) os.exit(0)'")
      :format(corio_bin(), path)
    assert.is_true(os.execute(cmd))
    assert.is_true(os.execute("test -S " .. path))   -- left behind
    local srv <close> = net.serve_unix(path, echo)
    assert.equal("EADDRINUSE", (errcode(net.serve_unix, path, echo)))
    local c = net.connect_unix(path)
    c:write("x\n")
    assert.equal("x", c:read("l"))
    c:close()
    srv:close()
  end)

  it("never removes a path that is not a socket", function()
    local path = sockpath("file")
    local f = assert(io.open(path, "w"))
    f:write("keep me")
    f:close()
    assert.equal("EADDRINUSE", (errcode(net.serve_unix, path, echo)))
    f = assert(io.open(path))
    assert.equal("keep me", f:read("a"))
    f:close()
    os.remove(path)
  end)

  it("connecting to a missing path gives ENOENT, a dead one ECONNREFUSED", function()
    local code, err = errcode(net.connect_unix, sockpath("missing"))
    assert.equal("ENOENT", code)
    assert.is_string(err.path)
  end)

  it("a path too long for sun_path gives ENAMETOOLONG", function()
    assert.equal("ENAMETOOLONG", (errcode(net.connect_unix, "/tmp/" .. ("x"):rep(200))))
  end)
end)
