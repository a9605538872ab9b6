-- corio.tls: a TLS connection is a Stream (every read format, limits,
-- backpressure, close semantics), verification, ALPN, resumption, SNI,
-- STARTTLS, timeouts, cancellation and errors.  Peers nobody here wrote
-- are in tls_interop_spec.lua.
local corio = require "corio"
local net = require "corio.net"
local tls = require "corio.tls"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers/tls_helpers.lua")

local function errof(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- A TLS server whose handler hands its stream out; returns the connected
-- client and server TlsStreams and a done() that ends both.
local function pair(sopts, copts)
  local fut, hold = corio.future(), corio.future()
  local srv = tls.serve("127.0.0.1", 0, function(s)
    fut:set_result(s)
    hold:await()
  end, H.server_opts(sopts))
  local _, port = srv:address()
  local c = tls.connect("localhost", port, H.client_opts(copts))
  local s = fut:await()
  local function done()
    c:abort()
    if not hold:done() then hold:set_result() end
    srv:close()
    srv:wait_closed()
  end
  return c, s, done, srv
end

describe("corio.tls", function()
  teardown(function() H.sh("rm -rf " .. H.certs()) end)

  describe("a TLS connection is a Stream", function()
    it("reads every format over TLS", function()
      local c, s, done = pair()
      c:write("one\ntwo\r\nthree:four;", "12345", "rest")
      c:shutdown()
      assert.equal("one", s:read("l"))
      assert.equal("two\r\n", s:read("L"))
      assert.equal("three:", s:readuntil(":"))
      assert.equal("four;", s:readuntil(";"))
      assert.equal("123", s:readexactly(3))
      assert.equal("4", s:read(1))
      assert.same({ "5", "rest" }, { s:read(1, "a") })
      assert.equal("", s:read("a"))
      assert.is_nil(s:read("l"))
      assert.is_true(s:at_eof())
      done()
    end)

    it("iterates lines and keeps its limit", function()
      local c, s, done = pair()
      s:set_write_buffer_limits(1024)
      c:write("a\nb\nc\n" .. string.rep("x", 300) .. "\n")
      local got = {}
      for l in s:lines() do
        got[#got + 1] = l
        if #got == 3 then break end
      end
      assert.same({ "a", "b", "c" }, got)
      done()
    end)

    it("raises LIMIT past the stream's limit", function()
      local c, s, done = pair({ limit = 100 })
      c:write(string.rep("y", 500) .. "\n")
      local err = errof(s.read, s, "l")
      assert.equal("LIMIT", err.code)
      done()
    end)

    it("moves 8 MiB both ways byte-exact", function()
      local c, s, done = pair()
      local chunk = {}
      for i = 1, 4096 do chunk[i] = string.char(i % 251) end
      chunk = table.concat(chunk)
      local big = string.rep(chunk, 2048)          -- 8 MiB
      local back = corio.spawn(function()
        local got = s:readexactly(#big)
        s:write(got)
        s:drain()
        return got == big
      end)
      local w = corio.spawn(function() c:write(big) c:drain() end)
      local echoed = c:readexactly(#big)
      assert.is_true(back:await())
      w:await()
      assert.is_true(echoed == big)
      done()
    end)

    it("bounds memory with a slow reader (backpressure)", function()
      local c, s, done = pair()
      c:set_write_buffer_limits(64 * 1024)
      local wrote = 0
      local writer = corio.spawn(function()
        local data = string.rep("z", 16384)
        while true do
          c:write(data)
          wrote = wrote + #data
        end
      end)
      corio.sleep(0.3)
      local stalled = wrote
      -- The writer waits on the queue: it cannot have written far ahead of
      -- the kernel buffers plus the high-water mark.
      assert.is_true(c:get_write_buffer_size() <= 64 * 1024 + 16384 + 16384 * 2)
      assert.is_true(stalled < 16 * 1024 * 1024)
      local n = 0
      while n < stalled do n = n + #s:read(65536) end
      writer:cancel()
      pcall(writer.await, writer)
      done()
    end)

    it("has peername, sockname and a TLS tostring", function()
      local c, s, done = pair()
      local h, p = c:peername()
      assert.equal("127.0.0.1", h)
      assert.equal(select(2, s:sockname()), p)
      assert.matches("corio.Stream %(tls%)", tostring(c))
      done()
    end)
  end)

  describe("tls_info", function()
    it("tells version, cipher, names and the peer certificate", function()
      local c, s, done = pair()
      local i = c:tls_info()
      assert.equal("TLSv1.3", i.version)
      assert.is_string(i.cipher)
      assert.equal("localhost", i.servername)
      assert.is_false(i.session_reused)
      assert.is_true(i.verified)
      assert.equal("CN=localhost", i.peer_cert.subject)
      assert.equal("CN=corio-test-ca", i.peer_cert.issuer)
      assert.same({ "localhost", "127.0.0.1", "::1" }, i.peer_cert.san)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", i.peer_cert.not_after)
      assert.matches("^%x+$", i.peer_cert.sha256)
      assert.equal(64, #i.peer_cert.sha256)
      local si = s:tls_info()
      assert.is_true(si.server)
      assert.equal("localhost", si.servername)
      assert.is_nil(si.peer_cert)
      done()
    end)

    it("is nil on a plain Stream", function()
      local fut = corio.future()
      local srv <close> = net.serve("127.0.0.1", 0, function(s)
        fut:set_result(true)
        s:read("a")
      end)
      local c = net.connect("127.0.0.1", select(2, srv:address()))
      assert.is_nil(c:tls_info())
      c:close()
    end)

    it("offers TLS 1.2 when asked", function()
      local c, _, done = pair(nil, { max_version = "1.2" })
      assert.equal("TLSv1.2", c:tls_info().version)
      done()
    end)
  end)

  describe("verification", function()
    local port, srv
    local function serve(extra)
      srv = tls.serve("127.0.0.1", 0, function(s) s:write("hi\n") end,
        H.server_opts(extra))
      port = select(2, srv:address())
    end
    after_each(function() if srv then srv:close() srv:wait_closed() end end)

    it("is on by default: a CA nobody trusts fails", function()
      serve()
      local err = errof(tls.connect, "localhost", port)
      assert.equal("TLS_VERIFY", err.code)
      assert.is_string(err.verify_error)
    end)

    it("checks the name", function()
      serve()
      local err = errof(tls.connect, "127.0.0.1", port,
        H.client_opts({ servername = "wrong.example" }))
      assert.equal("TLS_VERIFY", err.code)
      assert.equal("hostname mismatch", err.verify_error)
    end)

    it("checks an IP literal against the IP SANs", function()
      serve()
      local c = tls.connect("127.0.0.1", port, H.client_opts())
      assert.equal("hi", c:read("l"))
      assert.is_nil(c:tls_info().servername)   -- no SNI for an IP
      c:close()
      srv:close()
      serve({ certfile = H.path("other.pem"), keyfile = H.path("other.key") })
      local err = errof(tls.connect, "127.0.0.1", port, H.client_opts())
      assert.equal("TLS_VERIFY", err.code)
    end)

    it("names a self-signed certificate", function()
      serve({ certfile = H.path("self.pem"), keyfile = H.path("self.key") })
      local err = errof(tls.connect, "localhost", port, H.client_opts())
      assert.equal("TLS_VERIFY", err.code)
      assert.matches("self.signed certificate", err.verify_error)
    end)

    it("names an expired certificate", function()
      serve({ certfile = H.path("old.pem"), keyfile = H.path("old.key") })
      local err = errof(tls.connect, "localhost", port, H.client_opts())
      assert.equal("TLS_VERIFY", err.code)
      assert.equal("certificate has expired", err.verify_error)
    end)

    it("can be turned off explicitly", function()
      serve({ certfile = H.path("self.pem"), keyfile = H.path("self.key") })
      local c = tls.connect("localhost", port, { verify = false })
      assert.equal("hi", c:read("l"))
      assert.is_false(c:tls_info().verified)
      c:close()
    end)

    it("takes the CA as a PEM string, and cert/key as strings", function()
      srv = tls.serve("127.0.0.1", 0, function(s) s:write("hi\n") end,
        { cert = H.read("rsa.pem"), key = H.read("rsa.key") })
      port = select(2, srv:address())
      local c = tls.connect("localhost", port, { ca = H.read("ca.pem") })
      assert.equal("hi", c:read("l"))
      c:close()
    end)

    it("loads a key under a password", function()
      serve({ keyfile = H.path("leaf-enc.key"), password = "s3cret" })
      local c = tls.connect("localhost", port, H.client_opts())
      assert.equal("hi", c:read("l"))
      c:close()
    end)

    it("asks for and checks a client certificate (require_cert)", function()
      serve({ require_cert = true, cafile = H.path("ca.pem") })
      local c = tls.connect("localhost", port, H.client_opts({
        certfile = H.path("client.pem"), keyfile = H.path("client.key") }))
      assert.equal("hi", c:read("l"))
      c:close()
      assert.equal(0, srv:stats().tls_failures)
      -- Without one the server refuses (TLS 1.3: the client learns it on
      -- its first read).
      local ok, err = pcall(function()
        local c2 = tls.connect("localhost", port, H.client_opts())
        return c2:read("l")
      end)
      assert.is_false(ok)
      assert.equal("TLS", err.code)
    end)
  end)

  describe("context options", function()
    it("negotiates ALPN (the server picks from the client's list)", function()
      local c, s, done = pair({ alpn = { "h2", "http/1.1" } },
        { alpn = { "http/1.1", "h2" } })
      assert.equal("h2", c:tls_info().alpn)
      assert.equal("h2", s:tls_info().alpn)
      done()
      local c2, _, done2 = pair({ alpn = { "h2" } }, { alpn = { "spdy" } })
      assert.is_nil(c2:tls_info().alpn)
      done2()
    end)

    it("resumes sessions per host:port (TLS 1.3 tickets, and 1.2)", function()
      for _, v in ipairs({ "1.3", "1.2" }) do
        local srv = tls.serve("127.0.0.1", 0, function(s)
          s:write("x")
        end, H.server_opts())
        local port = select(2, srv:address())
        local ctx = tls.context(H.client_opts({ max_version = v }))
        local reused = {}
        for i = 1, 3 do
          local c = tls.connect("localhost", port, { context = ctx })
          assert.equal("x", c:read(1))
          reused[i] = c:tls_info().session_reused
          c:close()
        end
        assert.same({ false, true, true }, reused)
        srv:close()
        srv:wait_closed()
      end
    end)

    it("turns server tickets off with tickets = 0", function()
      local srv = tls.serve("127.0.0.1", 0, function(s) s:write("x") end,
        H.server_opts({ tickets = 0 }))
      local port = select(2, srv:address())
      local ctx = tls.context(H.client_opts())
      for _ = 1, 2 do
        local c = tls.connect("localhost", port, { context = ctx })
        assert.equal("x", c:read(1))
        assert.is_false(c:tls_info().session_reused)
        c:close()
      end
      srv:close()
    end)

    it("picks the server certificate by SNI (map and function)", function()
      local other = tls.context({ server = true,
        certfile = H.path("other.pem"), keyfile = H.path("other.key") })
      for _, sni in ipairs({ { ["other.example"] = other },
                             function(name)
                               if name == "other.example" then return other end
                             end }) do
        local srv = tls.serve("127.0.0.1", 0, function(s) s:write("x") end,
          H.server_opts({ sni = sni }))
        local port = select(2, srv:address())
        local c = tls.connect("127.0.0.1", port,
          H.client_opts({ servername = "other.example" }))
        assert.equal("CN=other.example", c:tls_info().peer_cert.subject)
        c:close()
        c = tls.connect("localhost", port, H.client_opts())
        assert.equal("CN=localhost", c:tls_info().peer_cert.subject)
        c:close()
        srv:close()
        srv:wait_closed()
      end
    end)

    it("writes the keylog file (and $SSLKEYLOGFILE)", function()
      local path = H.path("keys.log")
      local c, _, done = pair(nil, { keylog = path })
      done()
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      assert.matches("CLIENT_HANDSHAKE_TRAFFIC_SECRET %x+ %x+", text)
      local _ = c
    end)

    it("refuses bad options and files with clear errors", function()
      local err = errof(tls.context, { certfile = H.path("nope.pem"),
        keyfile = H.path("leaf.key"), server = true })
      assert.equal("ENOENT", err.code)
      assert.equal(H.path("nope.pem"), err.path)
      err = errof(tls.context, { cafile = "/nonexistent/ca.pem" })
      assert.equal("ENOENT", err.code)
      err = errof(tls.context, { cert = "not a pem", key = "x", server = true })
      assert.equal("TLS", err.code)
      err = errof(tls.context, { server = true, cert = H.read("leaf.pem"),
        key = H.read("other.key") })
      assert.equal("TLS", err.code)
      err = errof(tls.context, { server = true, certfile = H.path("leaf.pem"),
        keyfile = H.path("leaf-enc.key"), password = "wrong" })
      assert.equal("TLS", err.code)
      assert.matches("bad argument", errof(tls.context, 42))
      assert.matches("min_version", errof(tls.context, { min_version = "1.0" }))
      assert.matches("alpn", errof(tls.context, { alpn = "h2" }))
      assert.matches("verify", errof(tls.context, { verify = "yes" }))
      assert.matches("tickets", errof(tls.context, { server = true,
        tickets = -1 }))
      assert.matches("sni", errof(tls.context, { server = true, sni = 3 }))
      assert.matches("bad argument #1 to 'connect'", errof(tls.connect, 1, 2))
      assert.matches("bad argument #3 to 'connect'",
        errof(tls.connect, "localhost", 1, "x"))
      assert.matches("handshake_timeout", errof(tls.connect, "localhost", 1,
        { handshake_timeout = -1 }))
      assert.matches("context", errof(tls.connect, "localhost", 1,
        { context = {} }))
      assert.matches("bad argument #1 to 'upgrade'", errof(tls.upgrade, {}))
      assert.matches("bad argument #3 to 'serve'",
        errof(tls.serve, "127.0.0.1", 0, nil))
      assert.matches("tostring", tostring(tls.context()):gsub("corio.TlsContext", "tostring"))
    end)

    it("refuses an unknown option, naming it (typo protection)", function()
      local err = errof(tls.context, { verfy = false })
      assert.matches("bad argument #1 to 'context' %(unknown option 'verfy'%)",
        err)
      assert.matches("unknown option 'cafle'", errof(tls.context,
        { cafile = H.path("ca.pem"), cafle = "x" }))
      assert.matches("unknown option %(a number key%)",
        errof(tls.context, { "h2" }))
      -- the error is the caller's line, not corio's
      assert.matches("^[^:]*tls_spec.lua:%d+:", errof(tls.context,
        { server = true, tikets = 0 }))
      -- a `tls` table holds the context's options and the connection's
      assert.matches("bad argument #4 to 'create_connection' %(option 'tls' " ..
        "has an unknown key 'verfy'%)", errof(net.create_connection,
          function() return {} end, "localhost", 1, { tls = { verfy = false } }))
      assert.matches("bad argument #4 to 'create_server' %(option 'tls' " ..
        "has an unknown key 'certfle'%)", errof(net.create_server,
          function() return {} end, "127.0.0.1", 0, { tls = { certfle = "x" } }))
      -- every known one is accepted
      tls.context({ server = false, verify = true, require_cert = false,
        ca = H.read("ca.pem"), alpn = { "h2" }, min_version = "1.2",
        max_version = "1.3", ciphers = "HIGH", ciphersuites =
        "TLS_AES_128_GCM_SHA256", keylog = "" })
      tls.context(H.server_opts({ server = true, tickets = 1, sni = {} }))
    end)

    it("checks net.connect's and create_connection's tls options before connecting", function()
      local accepted = 0
      local srv = net.serve("127.0.0.1", 0, function() accepted = accepted + 1 end)
      local port = select(2, srv:address())
      local function factory() return {} end
      local bad = { { verify = "x" }, 5, { bogus = 1 },
        { shutdown_timeout = "x" }, { handshake_timeout = -1 },
        { servername = 3 }, { context = {} } }
      for _, t in ipairs(bad) do
        assert.matches("bad argument", errof(net.connect, "127.0.0.1", port,
          { tls = t }))
        assert.matches("bad argument", errof(net.create_connection, factory,
          "127.0.0.1", port, { tls = t }))
        if not (type(t) == "table" and t.servername) then  -- a client's
          assert.matches("bad argument", errof(net.serve, "127.0.0.1", 0,
            factory, { tls = t }))
        end
      end
      assert.matches("bad argument #3 to 'connect' %(option 'tls' must be",
        errof(net.connect, "127.0.0.1", port, { tls = 5 }))
      -- a bad option value is the caller's argument, not 'context''s
      assert.matches("^[^:]*tls_spec.lua:%d+: bad argument #3 to 'connect' " ..
        "%(option 'verify' must be a boolean%)",
        errof(net.connect, "127.0.0.1", port, { tls = { verify = "x" } }))
      assert.matches("bad argument #4 to 'create_connection' %(option " ..
        "'min_version'", errof(net.create_connection, factory, "127.0.0.1",
          port, { tls = { min_version = "1.0" } }))
      assert.matches("bad argument #3 to 'connect' %(option 'alpn'",
        errof(tls.connect, "127.0.0.1", port, { alpn = "h2" }))
      assert.equal("ENOENT", errof(tls.connect, "127.0.0.1", port,
        { cafile = "/nonexistent/ca.pem" }).code)
      assert.matches("bad argument #3 to 'connect' %(option 'shutdown_timeout'",
        errof(tls.connect, "127.0.0.1", port, { shutdown_timeout = "x" }))
      -- a connection that reaches the server's handler would count here:
      -- give one a chance to arrive behind a good plain connection
      local s = net.connect("127.0.0.1", port)
      s:close()
      local t0 = corio.now()
      while accepted < 1 and corio.now() - t0 < 20 do corio.sleep(0.01) end
      assert.equal(1, accepted)
      srv:close()
      srv:wait_closed()
    end)

    it("net.connect and net.serve with tls = opts make TLS streams", function()
      local got = corio.future()
      local srv = net.serve("127.0.0.1", 0, function(s)
        got:set_result(s:tls_info() ~= nil)
        s:write(s:read("l") .. "!\n")
      end, { tls = H.server_opts() })
      local port = select(2, srv:address())
      local c = net.connect("localhost", port, { tls = H.client_opts() })
      assert.is_table(c:tls_info())
      c:write("hi\n")
      assert.equal("hi!", c:read("l"))
      assert.is_true(corio.timeout(20, got.await, got))
      c:close()
      srv:close()
      srv:wait_closed()
    end)

    it("loads OpenSSL only when corio.tls (or WebSocket) is required", function()
      local process = require "corio.process"
      local code = [[
        local function ssl()
          local f = io.open("/proc/self/maps")
          local m = f:read("a")
          f:close()
          return m:find("libssl", 1, true) ~= nil
        end
        local before = ssl()
        require "corio.net"
        require "corio.http"
        local with_http = ssl()
        require "corio.tls"
        io.write(tostring(before), " ", tostring(with_http), " ", tostring(ssl()))
      ]]
      local r = process.exec({ process.execpath, "-e", code }, { timeout = 60 })
      assert.equal(0, r.code, r.stderr)
      assert.equal("false false true", r.stdout)
    end)

    it("raises connect errors as net.connect does", function()
      local srv = net.serve("127.0.0.1", 0, function() end)
      local port = select(2, srv:address())
      srv:close()
      srv:wait_closed()
      local err = errof(tls.connect, "127.0.0.1", port)
      assert.equal("ECONNREFUSED", err.code)
    end)
  end)

  describe("close semantics", function()
    it("close_notify gives clean_close = true", function()
      local c, s, done = pair()
      local closer = corio.spawn(function() s:close() end)
      assert.is_nil(c:read("l"))
      assert.is_true(c:tls_info().clean_close)
      c:close()
      closer:await()
      done()
    end)

    it("EOF without close_notify is EOF with clean_close = false", function()
      local c, s, done = pair()
      s:abort()                       -- no close_notify
      assert.is_nil(c:read("l"))
      assert.is_false(c:tls_info().clean_close)
      done()
    end)

    it("shutdown sends close_notify then FIN; the peer may answer", function()
      local c, s, done = pair()
      c:write("question")
      c:shutdown()
      assert.equal("question", s:read("a"))
      assert.is_true(s:tls_info().clean_close)
      s:write("answer")
      s:close()
      assert.equal("answer", c:read("a"))
      done()
    end)

    it("close waits at most shutdown_timeout for a silent peer", function()
      local c, s, done = pair({ shutdown_timeout = 0.2 })
      local t0 = corio.now()
      corio.timeout(10, s.close, s)   -- the client never answers
      local dt = corio.now() - t0
      assert.is_true(dt >= 0.15 and dt < 5, "took " .. dt)
      assert.is_true(s:closed())
      done()
      local _ = c
    end)

    it("a response written just before close is not lost", function()
      local srv = tls.serve("127.0.0.1", 0, function(s)
        s:read("l")
        s:write(string.rep("r", 200000))
      end, H.server_opts())
      local port = select(2, srv:address())
      for _ = 1, 5 do
        local c = tls.connect("localhost", port, H.client_opts())
        c:write("req\nmore data the server never reads\n")
        assert.equal(200000, #c:read("a"))
        c:close()
      end
      srv:close()
      srv:wait_closed()
    end)

    it("raises CLOSED after close and abort", function()
      local c, s, done = pair()
      -- the server answers the client's close_notify with its own, which
      -- close() waits for (else for its shutdown_timeout, 30 s)
      local peer = corio.spawn(function()
        assert.equal("", s:read("a"))
        s:shutdown()
      end)
      c:close()
      peer:await()
      assert.equal("CLOSED", errof(c.write, c, "x").code)
      assert.equal("CLOSED", errof(c.tls_info, c).code)
      s:abort()
      assert.equal("CLOSED", errof(s.read, s).code)
      done()
    end)
  end)

  describe("handshake failures", function()
    it("times out against a silent server (TIMEOUT), socket closed", function()
      local closed = corio.future()
      local srv <close> = net.serve("127.0.0.1", 0, function(s)
        closed:set_result(s:read("a"))  -- reads, never answers
      end)
      local port = select(2, srv:address())
      local err = errof(tls.connect, "127.0.0.1", port,
        { handshake_timeout = 0.2 })
      assert.equal("TIMEOUT", err.code)
      -- We closed the socket: the server read our ClientHello, then EOF.
      assert.is_string(corio.timeout(10, closed.await, closed))
    end)

    it("cancelled mid-handshake: the socket is closed, nothing leaks", function()
      local ended, all = 0, corio.future()
      local srv <close> = net.serve("127.0.0.1", 0, function(s)
        s:read("a")                   -- until we close it
        ended = ended + 1
        if ended == 20 then all:set_result() end
      end)
      local port = select(2, srv:address())
      for _ = 1, 20 do
        local t = corio.spawn(tls.connect, "127.0.0.1", port,
          { verify = false })
        corio.sleep(0.01)
        t:cancel()
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(corio.is_cancelled(err), tostring(err))
      end
      corio.timeout(20, all.await, all)   -- every socket was closed
    end)

    it("counts failed server handshakes, not as application errors", function()
      local ran = false
      local srv <close> = tls.serve("127.0.0.1", 0, function() ran = true end,
        H.server_opts())
      local port = select(2, srv:address())
      local p = net.connect("127.0.0.1", port)
      p:write("GET / HTTP/1.0\r\n\r\n")
      p:read("a")
      p:close()
      local err = errof(tls.connect, "localhost", port)   -- untrusted CA
      assert.equal("TLS_VERIFY", err.code)
      local deadline = corio.now() + 10
      while srv:stats().tls_failures < 2 and corio.now() < deadline do
        corio.sleep(0.01)
      end
      assert.equal(2, srv:stats().tls_failures)
      assert.is_false(ran)
    end)

    it("reports a TLS error with the alert the peer sent", function()
      local srv <close> = tls.serve("127.0.0.1", 0, function() end,
        H.server_opts({ min_version = "1.3" }))
      local port = select(2, srv:address())
      local err = errof(tls.connect, "localhost", port,
        H.client_opts({ max_version = "1.2" }))
      assert.equal("TLS", err.code)
      assert.is_string(err.alert)
      assert.is_string(err.message)
    end)
  end)

  describe("STARTTLS (upgrade)", function()
    -- A line protocol: "STARTTLS" then TLS on the same socket.
    local function starttls_server(extra_after)
      return net.serve("127.0.0.1", 0, function(s)
        assert(s:read("l") == "STARTTLS")
        s:write("GO\n")
        local ok, ts = pcall(tls.upgrade, s, H.server_opts({ server = true }))
        if not ok then
          if extra_after then extra_after:set_result(ts) end
          return
        end
        assert.equal("CLOSED", errof(s.read, s).code)
        local l = ts:read("l")
        if l then ts:write("secure:" .. l .. "\n") end
        ts:close()
      end)
    end

    it("upgrades both sides; the old Streams raise CLOSED", function()
      local srv <close> = starttls_server()
      local c = net.connect("127.0.0.1", select(2, srv:address()))
      c:write("STARTTLS\n")
      assert.equal("GO", c:read("l"))
      local tc = tls.upgrade(c, H.client_opts({ servername = "localhost" }))
      assert.equal("CLOSED", errof(c.write, c, "x").code)
      assert.equal("TLSv1.3", tc:tls_info().version)
      tc:write("hello\n")
      assert.equal("secure:hello", tc:read("l"))
      tc:close()
    end)

    it("without a servername a client checks the peer's IP", function()
      local srv <close> = starttls_server()
      local c = net.connect("127.0.0.1", select(2, srv:address()))
      c:write("STARTTLS\n")
      assert.equal("GO", c:read("l"))
      local tc = tls.upgrade(c, H.client_opts())
      assert.is_true(tc:tls_info().verified)
      tc:close()
    end)

    it("never hands pipelined plaintext to the app as TLS data", function()
      local failed = corio.future()
      local srv <close> = starttls_server(failed)
      local c = net.connect("127.0.0.1", select(2, srv:address()))
      -- The attack of CVE-2011-0411: plaintext right after the command.
      c:write("STARTTLS\nINJECTED COMMAND\n")
      local err = corio.timeout(20, failed.await, failed)
      assert.equal("TLS", err.code)
      c:close()
    end)

    it("raises BUSY while a read is pending on the stream", function()
      local srv <close> = net.serve("127.0.0.1", 0, function(s) s:read("a") end)
      local c = net.connect("127.0.0.1", select(2, srv:address()))
      local reader = corio.spawn(function() return c:read("l") end)
      corio.sleep(0.01)
      assert.equal("BUSY", errof(tls.upgrade, c, { verify = false }).code)
      reader:cancel()
      pcall(reader.await, reader)
      c:close()
      assert.equal("CLOSED", errof(tls.upgrade, c, { verify = false }).code)
    end)
  end)

  describe("scale and the protocol API", function()
    it("serves 200 concurrent TLS connections", function()
      local srv <close> = tls.serve("127.0.0.1", 0, function(s)
        s:write(s:read("l") .. "\n")
      end, H.server_opts({ backlog = 512 }))
      local port = select(2, srv:address())
      local ctx = tls.context(H.client_opts())
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = corio.spawn(function()
          local c = tls.connect("localhost", port, { context = ctx,
            handshake_timeout = 120 })
          c:write("n" .. i .. "\n")
          local r = c:read("l")
          c:close()
          return r
        end)
      end
      for i = 1, 200 do assert.equal("n" .. i, tasks[i]:await()) end
      assert.equal(0, srv:stats().tls_failures)
    end)

    it("takes tls = ctx or opts in create_connection/create_server", function()
      local got = corio.future()
      local srv = net.create_server(function()
        return { data_received = function(self, d)
          self.t:write("<" .. d .. ">")
        end, connection_made = function(self, t) self.t = t end }
      end, "127.0.0.1", 0, { tls = H.server_opts() })
      local port = select(2, srv:address())
      local ctx = tls.context(H.client_opts())
      for _, t in ipairs({ ctx, H.client_opts() }) do
        got = corio.future()
        local tr = net.create_connection(function()
          return { data_received = function(_, d) got:set_result(d) end }
        end, "localhost", port, { tls = t })
        assert.is_table(tr:get_extra_info("stream"):tls_info())
        tr:write("ping")
        assert.equal("<ping>", corio.timeout(20, got.await, got))
        tr:close()
      end
      srv:close()
      srv:wait_closed()
    end)
  end)
end)
