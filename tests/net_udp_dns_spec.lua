-- UDP sockets and DNS.
local corio = require "corio"
local net = require "corio.net"

local function errcode(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return type(err) == "table" and err.code or tostring(err), err
end

describe("net udp", function()
  it("round trip with sendto / recvfrom", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local b = net.udp()
    local host, port = a:sockname()
    assert.equal("127.0.0.1", host)
    b:sendto("ping", "127.0.0.1", port)
    local data, fh, fp = a:recvfrom()
    assert.equal("ping", data)
    assert.equal("127.0.0.1", fh)
    a:sendto("pong", fh, fp)
    local back, bh, bp = b:recvfrom()
    assert.equal("pong", back)
    assert.equal(port, bp)
    assert.equal("127.0.0.1", bh)
    a:close()
    b:close()
  end)

  it("connect sets the peer for send; peername reports it", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local _, port = a:sockname()
    local b = net.udp()
    b:connect("127.0.0.1", port)
    assert.equal(port, select(2, b:peername()))
    b:send("hello")
    assert.equal("hello", (a:recvfrom()))
    a:close()
    b:close()
  end)

  it("queues datagrams that arrive before recvfrom, in order", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local _, port = a:sockname()
    local b = net.udp()
    -- Start receiving, then let datagrams pile up.
    local first = corio.spawn(function() return (a:recvfrom()) end)
    corio.sleep(0.01)
    for i = 1, 10 do b:sendto("d" .. i, "127.0.0.1", port) end
    assert.equal("d1", first:await())
    corio.sleep(0.02)
    for i = 2, 10 do assert.equal("d" .. i, (a:recvfrom())) end
    a:close()
    b:close()
  end)

  it("empty and maximum-size datagrams; oversize raises EMSGSIZE", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local _, port = a:sockname()
    local b = net.udp()
    b:sendto("", "127.0.0.1", port)
    assert.equal("", (a:recvfrom()))
    local big = string.rep("u", 65507)
    b:sendto(big, "127.0.0.1", port)
    assert.equal(big, (a:recvfrom()))
    assert.equal("EMSGSIZE", (errcode(b.sendto, b, string.rep("o", 70000),
      "127.0.0.1", port)))
    a:close()
    b:close()
  end)

  it("close wakes a blocked recvfrom with CLOSED; a second reader gets BUSY", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local t = corio.spawn(function() return a:recvfrom() end)
    corio.sleep(0.01)
    assert.equal("BUSY", (errcode(a.recvfrom, a)))
    a:close()
    a:close()
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("CLOSED", err.code)
    assert.equal("CLOSED", (errcode(a.sendto, a, "x", "127.0.0.1", 9)))
    assert.equal("CLOSED", (errcode(a.recvfrom, a)))
  end)

  it("a cancelled recvfrom loses no datagram", function()
    local a = net.udp({ host = "127.0.0.1", port = 0 })
    local _, port = a:sockname()
    local t = corio.spawn(function() return a:recvfrom() end)
    corio.sleep(0.01)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    local b = net.udp()
    b:sendto("kept", "127.0.0.1", port)
    assert.equal("kept", (a:recvfrom()))
    a:close()
    b:close()
  end)

  it("IPv6 datagrams", function()
    local ok, a = pcall(net.udp, { host = "::1", port = 0 })
    if not ok then
      pending("no IPv6 loopback here")
      return
    end
    local _, port = a:sockname()
    local b = net.udp({ family = "inet6" })
    b:sendto("v6", "::1", port)
    local data, host = a:recvfrom()
    assert.equal("v6", data)
    assert.equal("::1", host)
    a:close()
    b:close()
  end)

  it("broadcast, TTL and multicast options", function()
    local a = net.udp({ host = "0.0.0.0", port = 0, broadcast = true })
    a:set_broadcast(false)
    a:set_ttl(16)
    a:set_multicast_ttl(2)
    a:set_multicast_loop(true)
    -- Joining a group needs a multicast-capable interface; either it
    -- works or it fails with a libuv error, never anything else.
    local ok, err = pcall(a.add_membership, a, "239.255.0.1")
    if ok then
      a:drop_membership("239.255.0.1")
    else
      assert.is_string(err.code)
    end
    assert.equal("EINVAL", (errcode(a.add_membership, a, "not-an-ip")))
    a:close()
  end)

  it("a name works where an address does", function()
    local a = net.udp({ host = "localhost", port = 0, family = "inet" })
    local _, port = a:sockname()
    local b = net.udp()
    b:sendto("by name", "localhost", port)
    assert.equal("by name", (a:recvfrom()))
    a:close()
    b:close()
  end)

  it("a GC'd socket is closed", function()
    local port
    do
      local a = net.udp({ host = "127.0.0.1", port = 0 })
      port = select(2, a:sockname())
      assert.equal("EADDRINUSE", (errcode(net.udp, { host = "127.0.0.1", port = port })))
    end
    collectgarbage()
    collectgarbage()
    local b = net.udp({ host = "127.0.0.1", port = port })   -- free again
    b:close()
  end)

  it("rejects bad arguments", function()
    local a = net.udp()
    local function msg(f) return select(2, pcall(f)) end
    assert.matches("bad argument #1 to 'udp'", msg(function() net.udp(5) end))
    assert.matches("bad argument #1 to 'udp'", msg(function() net.udp({ family = "x" }) end))
    assert.matches("bad argument #1 to 'sendto'", msg(function() a:sendto({}, "h", 1) end))
    assert.matches("bad argument #3 to 'sendto'", msg(function() a:sendto("x", "127.0.0.1", -1) end))
    assert.matches("bad argument #2 to 'bind'", msg(function() a:bind("127.0.0.1") end))
    assert.matches("bad argument #1 to 'set_ttl'", msg(function() a:set_ttl("x") end))
    a:close()
  end)

  it("rejects non-integer float ports with bad argument", function()
    local a = net.udp()
    local function msg(f) return select(2, pcall(f)) end
    for _, port in ipairs { 1e300, math.huge, -math.huge, 2 ^ 63, 0 / 0 } do
      assert.matches("bad argument #2 to 'bind' %(port must be an integer " ..
        "0%-65535, got ", msg(function() return a:bind("127.0.0.1", port) end))
      assert.matches("bad argument #2 to 'connect' %(port must be an integer",
        msg(function() return a:connect("127.0.0.1", port) end))
      assert.matches("bad argument #3 to 'sendto' %(port must be an integer",
        msg(function() return a:sendto("x", "127.0.0.1", port) end))
      assert.matches("bad argument #1 to 'udp' %(port must be an integer",
        msg(function() return net.udp({ port = port }) end))
    end
    a:close()
  end)
end)

describe("net dns", function()
  it("resolves localhost", function()
    local list = net.resolve("localhost")
    assert.is_true(#list >= 1)
    local seen = {}
    for _, a in ipairs(list) do
      assert.is_string(a.addr)
      assert.is_true(a.family == "inet" or a.family == "inet6")
      seen[a.addr] = true
    end
    assert.is_true(seen["127.0.0.1"] or seen["::1"])
  end)

  it("filters by family and passes a port through", function()
    local list = net.resolve("localhost", { family = "inet", port = 80 })
    for _, a in ipairs(list) do
      assert.equal("inet", a.family)
      assert.equal(80, a.port)
    end
    assert.equal("127.0.0.1", net.resolve("127.0.0.1")[1].addr)
  end)

  it("an unknown name raises an EAI_ error with the host", function()
    local code, err = errcode(net.resolve, "no-such-host.invalid")
    assert.matches("^EAI_", code)
    assert.equal("no-such-host.invalid", err.host)
  end)

  it("reverse looks up a name", function()
    local host = net.reverse("127.0.0.1")
    assert.is_string(host)
    assert.is_true(#host > 0)
  end)

  it("a cancelled lookup leaves nothing behind", function()
    local t = corio.spawn(function() return net.resolve("localhost") end)
    corio.yield()
    t:cancel()
    pcall(t.await, t)
  end)

  it("rejects bad arguments", function()
    local function msg(f) return select(2, pcall(f)) end
    assert.matches("bad argument #1 to 'resolve'", msg(function() net.resolve(1) end))
    assert.matches("bad argument #2 to 'resolve'", msg(function() net.resolve("x", { family = 5 }) end))
    assert.matches("bad argument #1 to 'reverse'", msg(function() net.reverse("x") end))
  end)

  it("is_ip and reverse reject bad arguments", function()
    local function msg(f) return select(2, pcall(f)) end
    assert.is_true(net.is_ip("::1"))
    assert.is_false(net.is_ip("localhost"))
    assert.matches("bad argument #1 to 'is_ip' %(string expected, got no value%)",
      msg(function() return net.is_ip() end))
    assert.matches("bad argument #1 to 'is_ip' %(string expected, got number%)",
      msg(function() return net.is_ip(5) end))
    for _, port in ipairs { 1e300, math.huge, -math.huge, 2 ^ 63, 0 / 0 } do
      assert.matches("bad argument #2 to 'reverse' %(port must be an integer",
        msg(function() return net.reverse("127.0.0.1", port) end))
    end
  end)
end)
