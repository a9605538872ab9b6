-- Stream: reading like a Lua file, readexactly / readuntil, limits,
-- writing with backpressure, half-close, close / abort / GC, errors.
local corio = require "corio"
local net = require "corio.net"

-- A connected pair of Streams (client, server side) over loopback TCP.
local function pair(opts)
  local fut, hold = corio.future(), corio.future()
  local srv <close> = net.serve("127.0.0.1", 0, function(s)
    fut:set_result(s)
    hold:await()                    -- keep the handler (and s) alive
  end, opts)
  local _, port = srv:address()
  local c = net.connect("127.0.0.1", port, opts)
  local s = fut:await()
  srv:close()
  local function done()
    c:abort()
    if not hold:done() then hold:set_result() end
    srv:wait_closed()
  end
  return c, s, done
end

local function rss()
  local f = io.open("/proc/self/statm")
  local _, res = f:read("n", "n")
  f:close()
  return res * 4096
end

local function errcode(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return type(err) == "table" and err.code or tostring(err), err
end

describe("net stream", function()
  it("reads lines with and without the newline, and all", function()
    local c, s, done = pair()
    c:write("one\ntwo\r\nthree")
    c:shutdown()
    assert.equal("one", s:read("l"))
    assert.equal("two\r\n", s:read("L"))
    assert.equal("three", s:read("a"))
    assert.equal("", s:read("a"))
    assert.is_nil(s:read("l"))
    assert.is_nil(s:read("L"))
    assert.is_nil(s:read(5))
    done()
  end)

  it("read(n) returns what is there, at least one byte, at most n", function()
    local c, s, done = pair()
    c:write("abcdef")
    local got = s:read(4)
    assert.is_true(#got >= 1 and #got <= 4)
    assert.equal(("abcdef"):sub(1, #got), got)
    local rest = ""
    while #got + #rest < 6 do rest = rest .. s:read(100) end
    assert.equal("abcdef", got .. rest)
    c:shutdown()
    assert.is_nil(s:read(1))
    done()
  end)

  it("read(0) gives an empty string while open and nil at EOF", function()
    local c, s, done = pair()
    c:write("x")
    assert.equal("", s:read(0))
    assert.equal("x", s:read(1))
    c:shutdown()
    assert.is_nil(s:read(0))
    done()
  end)

  it("accepts old-style formats and several formats at once", function()
    local c, s, done = pair()
    c:write("a\nb\nc\n")
    c:shutdown()
    local x, y = s:read("*l", "L")
    assert.equal("a", x)
    assert.equal("b\n", y)
    local p, q, r = s:read("l", "l", "l")
    assert.equal("c", p)
    assert.is_nil(q)
    assert.is_nil(r)
    done()
  end)

  it("iterates with lines()", function()
    local c, s, done = pair()
    c:write("x\ny\nz")
    c:shutdown()
    local got = {}
    for line in s:lines() do got[#got + 1] = line end
    assert.same({ "x", "y", "z" }, got)
    done()
  end)

  it("lines(fmt) passes the format", function()
    local c, s, done = pair()
    c:write("x\ny\n")
    c:shutdown()
    local got = {}
    for line in s:lines("L") do got[#got + 1] = line end
    assert.same({ "x\n", "y\n" }, got)
    done()
  end)

  it("readexactly waits for exactly n bytes", function()
    local c, s, done = pair()
    corio.spawn(function()
      for i = 1, 10 do
        c:write(tostring(i % 10))
        corio.sleep(0.001)
      end
    end)
    assert.equal("1234567890", s:readexactly(10))
    assert.equal("", s:readexactly(0))
    done()
  end)

  it("readexactly raises INCOMPLETE with the partial data at EOF", function()
    local c, s, done = pair()
    c:write("abc")
    c:shutdown()
    local code, err = errcode(s.readexactly, s, 5)
    assert.equal("INCOMPLETE", code)
    assert.equal("abc", err.partial)
    assert.is_nil(s:readexactly(1))    -- clean EOF: nil
    done()
  end)

  it("readuntil returns data up to and with the separator", function()
    local c, s, done = pair()
    corio.spawn(function()
      for ch in ("head\r\n\r\nbody"):gmatch(".") do
        c:write(ch)
        corio.yield()
      end
      c:shutdown()
    end)
    assert.equal("head\r\n\r\n", s:readuntil("\r\n\r\n"))
    local code, err = errcode(s.readuntil, s, "\r\n")
    assert.equal("INCOMPLETE", code)
    assert.equal("body", err.partial)
    assert.is_nil(s:readuntil("x"))
    done()
  end)

  it("readuntil defaults to a newline", function()
    local c, s, done = pair()
    c:write("a\nb")
    assert.equal("a\n", s:readuntil())
    done()
  end)

  it("gives the same lines whatever the chunking", function()
    local c, s, done = pair()
    local text = "alpha\nbeta gamma\n\ndelta\nlast"
    corio.spawn(function()
      for i = 1, #text do
        c:write(text:sub(i, i))
        if i % 3 == 0 then corio.yield() end
      end
      c:shutdown()
    end)
    local got = {}
    for line in s:lines() do got[#got + 1] = line end
    assert.same({ "alpha", "beta gamma", "", "delta", "last" }, got)
    done()
  end)

  it("raises LIMIT for a line past the limit and stays usable", function()
    local c, s, done = pair({ limit = 100 })
    c:write(string.rep("x", 150) .. "\nshort\n")
    local code, err = errcode(s.read, s, "l")
    assert.equal("LIMIT", code)
    assert.equal(100, err.limit)
    -- Nothing was consumed: the data can still be read in pieces.
    local skipped = 0
    while skipped < 151 do skipped = skipped + #s:read(151 - skipped) end
    assert.equal("short", s:read("l"))
    done()
  end)

  it("raises LIMIT when the separator is beyond the limit", function()
    local c, s, done = pair({ limit = 10 })
    c:write("0123456789ABC|")
    assert.equal("LIMIT", (errcode(s.readuntil, s, "|")))
    assert.equal("0123456789", s:readexactly(10))
    assert.equal("ABC|", s:readuntil("|"))
    done()
  end)

  it("a line exactly at the limit is fine", function()
    local c, s, done = pair({ limit = 10 })
    c:write("123456789\n12345678901")
    assert.equal("123456789", s:read("l"))
    assert.equal("LIMIT", (errcode(s.read, s, "l")))
    done()
  end)

  it("a peer sending 100 MB without a newline gets LIMIT, RSS flat", function()
    local c, s, done = pair()
    local before = rss()
    local writer = corio.spawn(function()
      local chunk = string.rep("n", 1024 * 1024)
      for _ = 1, 100 do c:write(chunk) end
    end)
    assert.equal("LIMIT", (errcode(s.read, s, "l")))
    corio.sleep(0.3)                    -- the writer pushes as it can
    assert.is_true(rss() - before < 32 * 1024 * 1024,
      "RSS grew by " .. (rss() - before))
    assert.is_false(writer:done())      -- blocked: nobody reads any more
    writer:cancel()
    pcall(writer.await, writer)
    done()
  end)

  it("read('a') is not bounded by the limit", function()
    local c, s, done = pair({ limit = 16 })
    corio.spawn(function()
      c:write(string.rep("z", 100000))
      c:shutdown()
    end)
    assert.equal(100000, #s:read("a"))
    done()
  end)

  it("echoes 1 MiB byte-exact", function()
    local c, s, done = pair()
    local parts = {}
    for i = 1, 1024 do
      parts[i] = string.char(i % 256):rep(1024 - 7) .. string.format("%07d", i)
    end
    local blob = table.concat(parts)
    corio.spawn(function()
      while true do
        local d = s:read(65536)
        if not d then break end
        s:write(d)
      end
      s:shutdown()
    end)
    corio.spawn(function()
      c:write(blob)
      c:shutdown()
    end)
    local back = c:read("a")
    assert.equal(#blob, #back)
    assert.is_true(back == blob)
    done()
  end)

  it("half-close: the peer reads EOF and can still answer", function()
    local c, s, done = pair()
    c:write("question")
    c:shutdown()
    assert.equal("question", s:read("a"))
    s:write("answer")
    s:shutdown()
    assert.equal("answer", c:read("a"))
    assert.is_true(c:at_eof())
    done()
  end)

  it("write after shutdown raises CLOSED; shutdown twice is fine", function()
    local c, s, done = pair()
    c:shutdown()
    c:shutdown()
    assert.equal("CLOSED", (errcode(c.write, c, "x")))
    done()
  end)

  it("write waits above the high-water mark: memory stays bounded", function()
    local c, s, done = pair({ high_water = 65536 })
    local chunk = string.rep("w", 1024 * 1024)
    local before = rss()
    local written = 0
    local writer = corio.spawn(function()
      for _ = 1, 100 do                 -- 100 MiB into a peer that never reads
        c:write(chunk)
        written = written + #chunk
      end
    end)
    corio.sleep(0.3)
    assert.is_true(written < 100 * #chunk, "the writer should be blocked")
    assert.is_true(c:get_write_buffer_size() <= 2 * #chunk)
    assert.is_true(rss() - before < 32 * 1024 * 1024,
      "RSS grew by " .. (rss() - before))
    writer:cancel()
    pcall(writer.await, writer)
    done()
  end)

  it("drain waits until everything is written", function()
    local c, s, done = pair()
    local blob = string.rep("d", 4 * 1024 * 1024)
    local reader = corio.spawn(function() return #s:readexactly(#blob) end)
    c:write_nowait(blob)
    c:drain()
    assert.equal(0, c:get_write_buffer_size())
    assert.equal(#blob, reader:await())
    done()
  end)

  it("write buffer limits, write_nowait, close_nowait, at_eof", function()
    local c, s, done = pair()
    assert.same({ 65536, 32768 }, { c:get_write_buffer_limits() })
    c:set_write_buffer_limits(1000)
    assert.same({ 1000, 500 }, { c:get_write_buffer_limits() })
    c:set_write_buffer_limits(1000, 10)
    assert.same({ 1000, 10 }, { c:get_write_buffer_limits() })
    assert.matches("bad argument #2 to 'set_write_buffer_limits'",
      select(2, pcall(function() c:set_write_buffer_limits(10, 20) end)))
    assert.is_number(c:write_nowait("abc"))
    assert.is_false(s:at_eof())
    c:close_nowait()
    assert.is_true(c:closed())
    assert.equal("abc", s:read("a"))
    assert.is_true(s:at_eof())
    done()
  end)

  it("pending: data, eof or nil, without reading", function()
    local c, s, done = pair()
    -- until it is true (the bytes cross loopback at once; a slow machine
    -- gets a few turns)
    local function soon(want)
      for _ = 1, 500 do
        if s:pending() == want then return true end
        corio.sleep(0.01)
      end
      return false
    end
    assert.is_nil(s:pending())
    c:write("x")
    assert.is_true(soon("data"))
    assert.equal("data", s:pending())          -- peeking takes nothing
    assert.equal("x", s:read(10))
    assert.is_nil(s:pending())
    c:close()
    assert.is_true(soon("eof"))
    assert.is_nil(s:read(10))
    assert.equal("eof", s:pending())
    s:close()
    assert.equal("CLOSED", select(2, pcall(s.pending, s)).code)
    assert.matches("invalid option 'nope'", select(2, pcall(s.abort, s, "nope")))
    done()
  end)

  it("write returns the stream and accepts numbers", function()
    local c, s, done = pair()
    assert.equal(c, c:write("a", 1, 2.5, "\n"))
    assert.equal("a12.5", s:read("l"))
    done()
  end)

  it("a peer reset reaches the reader as ECONNRESET", function()
    local c, s, done = pair()
    s:write("x")
    assert.equal("x", c:read(1))
    -- Unread data at close makes the kernel send a reset.
    c:write("unread")
    corio.sleep(0.05)
    s:abort()
    local code = errcode(function()
      while true do
        assert(c:read(100))
      end
    end)
    assert.is_true(code == "ECONNRESET" or code == "EPIPE", code)
    done()
  end)

  it("writing to a reset peer raises EPIPE or ECONNRESET", function()
    local c, s, done = pair()
    s:write("junk")                    -- unread by s: its close resets
    c:write("data")
    corio.sleep(0.05)
    s:abort()
    corio.sleep(0.05)
    local code = errcode(function()
      for _ = 1, 100 do
        c:write(string.rep("p", 65536))
        corio.sleep(0.001)
      end
    end)
    assert.is_true(code == "EPIPE" or code == "ECONNRESET", code)
    -- The error sticks.
    assert.is_true((errcode(c.write, c, "x")) == code)
    done()
  end)

  it("closing a stream wakes a blocked reader with CLOSED", function()
    local c, s, done = pair()
    local reader = corio.spawn(function() return s:read("l") end)
    corio.sleep(0.01)
    s:close()
    local ok, err = pcall(reader.await, reader)
    assert.is_false(ok)
    assert.equal("CLOSED", err.code)
    done()
  end)

  it("abort wakes a blocked writer with CLOSED", function()
    local c, s, done = pair({ high_water = 1024 })
    local writer = corio.spawn(function()
      while true do c:write(string.rep("a", 65536)) end
    end)
    corio.sleep(0.1)
    c:abort()
    local ok, err = pcall(writer.await, writer)
    assert.is_false(ok)
    assert.equal("CLOSED", err.code)
    done()
  end)

  it("two readers at once: the second gets BUSY", function()
    local c, s, done = pair()
    local first = corio.spawn(function() return s:read("l") end)
    corio.sleep(0.01)
    assert.equal("BUSY", (errcode(s.read, s, "l")))
    c:write("line\n")
    assert.equal("line", first:await())
    done()
  end)

  it("a cancelled read loses no data", function()
    local c, s, done = pair()
    local reader = corio.spawn(function() return s:read("l") end)
    corio.sleep(0.01)
    c:write("part")
    corio.sleep(0.01)
    reader:cancel()
    assert.is_false(pcall(reader.await, reader))
    c:write("ial\n")
    assert.equal("partial", s:read("l"))
    done()
  end)

  it("every method of a closed stream raises CLOSED; close is idempotent", function()
    local c, s, done = pair()
    c:close()
    c:close()
    c:abort()
    assert.is_true(c:closed())
    for _, m in ipairs { "read", "readexactly", "readuntil", "write", "drain",
      "shutdown", "peername", "sockname", "lines" } do
      assert.equal("CLOSED", (errcode(c[m], c, 1)), m)
    end
    assert.matches("closed", tostring(c))
    done()
  end)

  it("close flushes what is queued before closing", function()
    local c, s, done = pair()
    local blob = string.rep("f", 3 * 1024 * 1024)
    local reader = corio.spawn(function() return s:read("a") end)
    c:write_nowait(blob)
    c:close()
    assert.equal(#blob, #reader:await())
    done()
  end)

  it("a forgotten stream is closed by the GC", function()
    local fut = corio.future()
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      fut:set_result(s:read("a"))
    end)
    local _, port = srv:address()
    do
      local c = net.connect("127.0.0.1", port)
      c:write("bye")
      c = nil
    end
    collectgarbage()
    collectgarbage()
    assert.equal("bye", fut:await())
    srv:close()
    srv:wait_closed()
  end)

  it("rejects bad arguments with bad argument errors", function()
    local c, s, done = pair()
    local function msg(f) return select(2, pcall(f)) end
    assert.matches("bad argument #1 to 'read'", msg(function() c:read("x") end))
    assert.matches("bad argument #1 to 'read'", msg(function() c:read(-1) end))
    assert.matches("bad argument #2 to 'read'",
      msg(function() c:read("l", {}) end))
    assert.matches("bad argument #1 to 'readexactly'",
      msg(function() c:readexactly("a") end))
    assert.matches("bad argument #1 to 'readuntil'",
      msg(function() c:readuntil("") end))
    assert.matches("bad argument #1 to 'write'", msg(function() c:write({}) end))
    assert.matches("bad argument #1 to 'lines'", msg(function() c:lines("q") end))
    assert.matches("bad argument", msg(function() c.read(42) end))
    done()
  end)

  it("peername and sockname give host and port", function()
    local c, s, done = pair()
    local h1, p1 = c:peername()
    local h2, p2 = s:sockname()
    assert.equal("127.0.0.1", h1)
    assert.equal(p1, p2)
    assert.equal(h1, h2)
    local h3, p3 = c:sockname()
    local h4, p4 = s:peername()
    assert.equal(h3, h4)
    assert.equal(p3, p4)
    c:set_nodelay(false)
    c:set_keepalive(true, 30)
    done()
  end)

  it("waiting outside a task raises INVALID_STATE", function()
    local c, s, done = pair()
    local err
    corio.call_soon(function() err = select(2, pcall(s.read, s, "l")) end)
    corio.sleep(0.01)
    assert.equal("INVALID_STATE", err.code)
    corio.call_soon(function() err = select(2, pcall(net.connect, "127.0.0.1", 1)) end)
    corio.sleep(0.01)
    assert.equal("INVALID_STATE", err.code)
    done()
  end)

  it("a cancelled drain leaves the data queued; a cancelled close aborts", function()
    local c, s, done = pair()
    c:write_nowait(string.rep("q", 8 * 1024 * 1024))   -- s never reads
    local drainer = corio.spawn(function() c:drain() end)
    corio.sleep(0.02)
    drainer:cancel()
    assert.is_false(pcall(drainer.await, drainer))
    assert.is_true(c:get_write_buffer_size() > 0)
    local closer = corio.spawn(function() c:close() end)
    corio.sleep(0.02)
    assert.is_false(closer:done())              -- waiting for the flush
    closer:cancel()
    assert.is_false(pcall(closer.await, closer))
    assert.is_true(c:closed())
    done()
  end)

  it("a cancelled shutdown is harmless", function()
    local c, s, done = pair()
    local t = corio.spawn(function() c:shutdown() end)
    t:cancel()
    pcall(t.await, t)
    corio.sleep(0.01)
    done()
  end)

  it("reading outside a task works when data is buffered", function()
    local c, s, done = pair()
    c:write("hello\nworld\n")
    assert.equal("hello", s:read("l"))
    local got
    corio.call_soon(function() got = s:read("l") end)
    corio.sleep(0.01)
    assert.equal("world", got)
    done()
  end)
end)
