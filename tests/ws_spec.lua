-- WebSocket (corio._ws on libwslay): the handshakes, framing rules and
-- the WebSocket object, checked against hand-made frames sent raw over
-- corio.net (tests/ws_interop_spec.lua runs Python's websockets).
local corio = require "corio"
local net = require "corio.net"
local ws = require "corio._ws"

local function errof(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

local function code_of(fn, ...)
  local err = errof(fn, ...)
  return type(err) == "table" and err.code or tostring(err), err
end

-- {==================================================================
-- Raw frames
-- ===================================================================
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local WF = dofile(here .. "helpers/ws_frames.lua")
local frame, read_frame = WF.frame, WF.read_frame

local function close_code(payload)
  return #payload >= 2 and string.unpack(">I2", payload) or nil
end

local UPGRADE = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" ..
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" ..
  "Sec-WebSocket-Version: 13\r\n"

-- A corio server whose handler hands its WebSocket (or error) to a
-- future; returns the server, a raw client stream past the 101, the head.
local function server_and_raw(handler_body, opts, extra)
  local got = corio.future()
  local srv = ws.serve("127.0.0.1", 0, function(w, req)
    local ok, err = pcall(handler_body, w, req)
    if not got:done() then got:set_result(ok, err) end
  end, opts)
  local _, port = srv:address()
  local s = net.connect("127.0.0.1", port)
  s:write(UPGRADE .. (extra or "") .. "\r\n")
  local head = s:readuntil("\r\n\r\n")
  return srv, s, head, got
end

-- A raw server that answers the upgrade with `answer(key)` and then runs
-- body(stream); returns the server and a future with body's results.
local function raw_server(answer, body)
  local done = corio.future()
  local srv = net.serve("127.0.0.1", 0, function(s)
    local head = s:readuntil("\r\n\r\n")
    local key = head:match("Sec%-WebSocket%-Key: (%S+)")
    s:write(answer(key, head))
    local ok, a, b = pcall(body or function() end, s, head)
    done:set_result(ok, a, b)
  end)
  local _, port = srv:address()
  return srv, port, done
end

-- Sends bytes to a corio server's WebSocket; expects a close frame with
-- `close` back and receive() to raise `code` with that close_code.
local function refused(bytes, close, code, opts)
  local srv, s, _, got = server_and_raw(function(w) return w:receive() end, opts)
  s:write(bytes)
  local op, p = read_frame(s)
  assert.equal(8, op)
  assert.equal(close, close_code(p))
  local ok, err = got:await()
  assert.is_false(ok)
  assert.equal(code, err.code)
  assert.equal(close, err.close_code)
  assert.is_nil(s:read(10))      -- and the connection closes
  s:close()
  srv:close()
end

local function ok101(key)
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" ..
    "Connection: Upgrade\r\nSec-WebSocket-Accept: " .. ws.accept_key(key) ..
    "\r\n\r\n"
end
-- }==================================================================


describe("ws handshake", function()
  it("accept_key gives RFC 6455's example value", function()
    assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      ws.accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
  end)

  it("the server answers 101 with the accept value", function()
    local srv, s, head = server_and_raw(function(w) w:receive() end)
    assert.truthy(head:match("^HTTP/1%.1 101 "))
    assert.truthy(head:find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 1, true))
    s:close()
    srv:close()
  end)

  it("the server picks its first protocol among those offered", function()
    local srv, s, head = server_and_raw(function(w) w:receive() end,
      { protocols = { "v2", "chat" } },
      "Sec-WebSocket-Protocol: chat, v2\r\n")
    assert.truthy(head:find("Sec-WebSocket-Protocol: v2\r\n", 1, true))
    s:close()
    srv:close()
  end)

  it("a request without a key gets 400 and HTTP_PROTOCOL", function()
    local r = ws.check_request({ method = "GET", version = "1.1",
      headers = { upgrade = "websocket", connection = "Upgrade",
                  ["sec-websocket-version"] = "13" } })
    assert.is_nil(r)
    local got = corio.future()
    local srv = net.serve("127.0.0.1", 0, function(st)
      local req = ws.read_request(st)
      got:set_result(pcall(ws.accept, st, req))
      st:close()
    end)
    local _, port = srv:address()
    local s = net.connect("127.0.0.1", port)
    s:write((UPGRADE:gsub("Sec%-WebSocket%-Key: [^\r]*\r\n", "")) .. "\r\n")
    local head = s:readuntil("\r\n\r\n")
    assert.truthy(head:match("^HTTP/1%.1 400 "))
    local ok, err = got:await()
    assert.is_false(ok)
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(400, err.status)
    s:close()
    srv:close()
  end)

  it("a wrong version gets 426 with the version spoken", function()
    local srv = ws.serve("127.0.0.1", 0, function() end)
    local _, port = srv:address()
    local s = net.connect("127.0.0.1", port)
    s:write((UPGRADE:gsub("Version: 13", "Version: 8")) .. "\r\n")
    local head = s:readuntil("\r\n\r\n")
    assert.truthy(head:match("^HTTP/1%.1 426 "))
    assert.truthy(head:find("Sec-WebSocket-Version: 13\r\n", 1, true))
    s:close()
    srv:close()
  end)

  it("check_request refuses POST, HTTP/1.0, no upgrade and a bad key", function()
    local function req(over)
      local h = { upgrade = "websocket", connection = "keep-alive, Upgrade",
        ["sec-websocket-version"] = "13",
        ["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ==" }
      local r = { method = "GET", version = "1.1", headers = h }
      for k, v in pairs(over) do
        if k == "method" or k == "version" then r[k] = v else h[k] = v end
      end
      return r
    end
    assert.equal("dGhlIHNhbXBsZSBub25jZQ==", (ws.check_request(req {})))
    for _, over in ipairs { { method = "POST" }, { version = "1.0" },
        { upgrade = "h2c" }, { connection = "close" },
        { ["sec-websocket-key"] = "short==" },
        { ["sec-websocket-key"] = "dGhlIHNhbXBsZSBub25jZQ" } } do
      local key, status = ws.check_request(req(over))
      assert.is_nil(key)
      assert.equal(400, status)
    end
  end)

  it("check_upgrade takes tokens in any case and place, and nothing else", function()
    local C = require "corio._wslay"
    local K = "dGhlIHNhbXBsZSBub25jZQ=="
    assert.is_nil(C.check_upgrade("GET", "1.1", "WebSocket", "keep-alive,  UPGRADE", "13", K))
    assert.is_nil(C.check_upgrade("GET", "HTTP/1.1", "h2c, websocket", "Upgrade", "13", K))
    local bad = {
      { 400, "method", "get", "1.1", "websocket", "Upgrade", "13", K },
      { 400, "HTTP/1.1", "GET", "1.0", "websocket", "Upgrade", "13", K },
      { 400, "Upgrade", "GET", "1.1", "websockets", "Upgrade", "13", K },
      { 400, "Upgrade", "GET", "1.1", nil, "Upgrade", "13", K },
      { 400, "Connection", "GET", "1.1", "websocket", "upgrade-ish", "13", K },
      { 426, "Version", "GET", "1.1", "websocket", "Upgrade", "13 ", K },
      { 426, "Version", "GET", "1.1", "websocket", "Upgrade", 13, K },
      { 400, "Key", "GET", "1.1", "websocket", "Upgrade", "13", K:sub(1, 23) .. "A" },
      { 400, "Key", "GET", "1.1", "websocket", "Upgrade", "13", "x" .. K },
      -- 17 bytes' worth of base64 is not 16: only 2 bits in the last char
      { 400, "Key", "GET", "1.1", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAA/==" },
      { 400, "Key", "GET", "1.1", "websocket", "Upgrade", "13", nil },
    }
    for i, b in ipairs(bad) do
      local status, detail = C.check_upgrade(table.unpack(b, 3, 8))
      assert.equal(b[1], status, "case " .. i)
      assert.truthy(detail:find(b[2], 1, true), "case " .. i .. ": " .. tostring(detail))
    end
    assert.is_true(C.has_token("a, B ,c", "b"))
    assert.is_false(C.has_token("ab, c", "b"))
    assert.is_false(C.has_token(nil, "b"))
  end)

  it("parse_head: names in lower case, values trimmed, repeats joined", function()
    local C = require "corio._wslay"
    local m, t, v, h = C.parse_head("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n" ..
      "X-A:  one \t\r\nx-a: two\r\nEmpty:\r\nObs: caf\xc3\xa9\r\n\r\n", true)
    assert.same({ "GET", "/a?b=1", "1.1" }, { m, t, v })
    assert.same({ host = "x", ["x-a"] = "one, two", empty = "", obs = "caf\xc3\xa9" }, h)
    local st, rh = C.parse_head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n", false)
    assert.equal(101, st)
    assert.same({ upgrade = "ws" }, rh)
    st, rh = C.parse_head("HTTP/1.1 204\r\n\r\n", false)
    assert.equal(204, st)
    assert.same({}, rh)
  end)

  it("parse_head refuses what corio.http's guard refuses", function()
    local C = require "corio._wslay"
    local L = "GET / HTTP/1.1\r\n"
    for i, head in ipairs({
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",          -- space before the colon
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",       -- space in a name
      L .. "A: b\r\n c\r\n\r\n",                      -- obs-fold
      L .. "A: b\nB: c\r\n\r\n",                       -- bare LF
      L .. "A: b\rB: c\r\n\r\n",                       -- bare CR
      L .. "A: b\0c\r\n\r\n",                          -- NUL
      L .. "A: b\127\r\n\r\n",                         -- DEL
      L .. ": b\r\n\r\n",                               -- no name
      L .. "A b\r\n\r\n",                               -- no colon
      L .. "A: b\r\n",                                  -- no empty line
    }) do
      local m, detail = C.parse_head(head, true)
      assert.is_nil(m, "case " .. i)
      assert.equal("malformed header line", detail, "case " .. i)
    end
    for i, line in ipairs({ "get / HTTP/1.1", "GET  / HTTP/1.1", "GET / HTTP/1.1 ",
        "GET / HTTP/11", "GET /\0 HTTP/1.1", "GET / HTTPS/1.1", "GET /" }) do
      local m, detail = C.parse_head(line .. "\r\n\r\n", true)
      assert.is_nil(m, "line " .. i)
      assert.equal("malformed request line", detail, "line " .. i)
    end
    for i, line in ipairs({ "HTTP/1.0 101 OK", "HTTP/1.1 10", "HTTP/1.1 1010 x",
        "HTTP/1.1 abc x", "HTTP/1.1 101 x\ry" }) do
      local st, detail = C.parse_head(line .. "\r\n\r\n", false)
      assert.is_nil(st, "status line " .. i)
      assert.equal("not an HTTP/1.1 response", detail)
    end
    -- a good status line with a bad field still tells the status
    local st, detail, status = C.parse_head("HTTP/1.1 403 No\r\nA : b\r\n\r\n", false)
    assert.same({ nil, "malformed header line", 403 }, { st, detail, status })
    assert.matches("bad argument", tostring(errof(C.parse_head, nil, true)))
  end)

  it("a server refuses a malformed head without an answer; the client one with HTTP_PROTOCOL", function()
    local srv = ws.serve("127.0.0.1", 0, function() error("not reached") end)
    local _, port = srv:address()
    local s = net.connect("127.0.0.1", port)
    s:write((UPGRADE:gsub("Host: x", "Host : x")) .. "\r\n")
    assert.is_nil(s:read(100))        -- closed, nothing said
    s:close()
    srv:close()
    local srv2, port2 = raw_server(function(key)
      return (ok101(key):gsub("\r\n\r\n$", "\r\nX: a\n b\r\n\r\n"))
    end)
    local err = errof(ws.connect, "ws://127.0.0.1:" .. port2 .. "/")
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(101, err.status)
    assert.equal("malformed header line", err.detail)
    srv2:close()
  end)

  it("response() builds the 101 in one piece, with checked extra fields", function()
    local h = ws.response("dGhlIHNhbXBsZSBub25jZQ==", "chat", { { "X-A", "1" }, { "X-B", "2" } })
    assert.equal("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" ..
      "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" ..
      "Sec-WebSocket-Protocol: chat\r\nX-A: 1\r\nX-B: 2\r\n\r\n", h)
    assert.matches("bad argument", tostring(errof(ws.response, "k", "a b")))
    assert.matches("bad argument", tostring(errof(ws.response, "k", nil, { X = "a\r\nY: b" })))
    assert.matches("bad argument", tostring(errof(ws.response, nil)))
  end)

  it("the client sends a valid request and checks the 101", function()
    local srv, port, done = raw_server(ok101, function(s, head)
      return head
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/p?q=1",
      { headers = { ["X-Test"] = "yes" }, origin = "http://o" })
    local _, head = done:await()
    assert.truthy(head:match("^GET /p%?q=1 HTTP/1%.1\r\n"))
    assert.truthy(head:find("\r\nHost: 127.0.0.1:" .. port .. "\r\n", 1, true))
    assert.truthy(head:find("\r\nSec-WebSocket-Version: 13\r\n", 1, true))
    assert.truthy(head:find("\r\nX-Test: yes\r\n", 1, true))
    assert.truthy(head:find("\r\nOrigin: http://o\r\n", 1, true))
    c:close()
    srv:close()
  end)

  it("the client refuses a wrong accept value", function()
    local srv, port = raw_server(function()
      return ok101("dGhlIHNhbXBsZSBub25jZQ==")
    end)
    local err = errof(ws.connect, "ws://127.0.0.1:" .. port .. "/")
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.truthy(err.detail:find("Accept"))
    srv:close()
  end)

  it("the client refuses a non-101 status with the status", function()
    local srv, port = raw_server(function()
      return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    end)
    local err = errof(ws.connect, "ws://127.0.0.1:" .. port .. "/")
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(403, err.status)
    srv:close()
  end)

  it("the client refuses a protocol it did not offer", function()
    local srv, port = raw_server(function(key)
      return ok101(key):gsub("\r\n\r\n$", "\r\nSec-WebSocket-Protocol: x\r\n\r\n")
    end)
    local err = errof(ws.connect, "ws://127.0.0.1:" .. port .. "/",
      { protocols = { "chat" } })
    assert.equal("HTTP_PROTOCOL", err.code)
    srv:close()
  end)

  it("the client takes the protocol the server chose", function()
    local srv, port = raw_server(function(key)
      return (ok101(key):gsub("\r\n\r\n$", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"))
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/",
      { protocols = { "v1", "chat" } })
    assert.equal("chat", c.protocol)
    c:close()
    srv:close()
  end)

  it("bad arguments are bad arguments", function()
    assert.matches("bad argument #1 to 'connect'", tostring(errof(ws.connect, 42)))
    assert.matches("bad argument #1 to 'connect'",
      tostring(errof(ws.connect, "http://x/")))
    assert.matches("bad argument #1 to 'accept_key'",
      tostring(errof(ws.accept_key, {})))
    assert.matches("bad argument #1 to 'wrap'", tostring(errof(ws.wrap, nil)))
    assert.matches("bad argument #1 to 'client_handshake'",
      tostring(errof(ws.client_handshake, "x", "h", "/")))
    local s = { readuntil = true }
    assert.matches("bad argument #3 to 'client_handshake'",
      tostring(errof(ws.client_handshake, s, "h", "nopath")))
    assert.matches("bad argument #4 to 'client_handshake'",
      tostring(errof(ws.client_handshake, s, "h", "/",
        { headers = { ["X"] = "a\r\nInjected: 1" } })))
    assert.matches("bad argument #4 to 'client_handshake'",
      tostring(errof(ws.client_handshake, s, "h", "/", { protocols = { "a b" } })))
  end)
end)


describe("ws server side", function()
  it("joins fragments, answers a ping between them, returns no pong", function()
    local srv, s, _, got = server_and_raw(function(w)
      local d, k = w:receive()
      local d2, k2 = w:receive()
      return { d, k, d2, k2 }
    end)
    s:write(frame(1, "fra", { mask = true, fin = false }) ..
      frame(9, "pi", { mask = true }) ..
      frame(0, "gm", { mask = true, fin = false }) ..
      frame(10, "unsolicited", { mask = true }) ..
      frame(0, "ents", { mask = true }) ..
      frame(2, "\0\255", { mask = true }))
    local op, p, _, masked = read_frame(s)
    assert.equal(10, op)           -- the pong
    assert.equal("pi", p)
    assert.is_false(masked)        -- a server never masks
    local ok, r = got:await()
    assert.is_true(ok)
    assert.same({ "fragments", "text", "\0\255", "binary" }, r)
    s:close()
    srv:close()
  end)

  it("an unmasked client frame is answered with close 1002", function()
    refused(frame(1, "no mask"), 1002, "HTTP_PROTOCOL")
  end)

  it("a control frame over 125 bytes is answered with close 1002", function()
    local srv, s, _, got = server_and_raw(function(w)
      local ok, err = pcall(w.receive, w)
      return { ok, err.code, w.close_code }
    end)
    s:write(frame(9, string.rep("p", 126), { mask = true }))
    local op, p = read_frame(s)
    assert.equal(8, op)
    assert.equal(1002, close_code(p))
    local _, r = got:await()
    assert.same({ false, "HTTP_PROTOCOL", 1002 }, r)
    s:close()
    srv:close()
  end)

  it("invalid UTF-8 in a text message closes with 1007", function()
    refused(frame(1, "ok \xc3", { mask = true, fin = false }) ..
      frame(0, "\x28", { mask = true }), 1007, "HTTP_PROTOCOL")
  end)

  -- wslay keeps each fragment apart (~100 bytes of heap besides its
  -- payload): 1-byte fragments made a message cost 100 times its limit
  it("a message of more fragments than max_message_size / 128 (at least 64) closes with 1009", function()
    local M = { mask = true }
    local function pieces(n)
      local t = { frame(2, "x", { mask = true, fin = false }) }
      for i = 2, n - 1 do t[i] = frame(0, "x", { mask = true, fin = false }) end
      t[n] = frame(0, "x", M)
      return table.concat(t)
    end
    -- 64 pieces: taken, joined; the 65th fails however they are split
    local function joined(w) local d, k = w:receive() return k .. ":" .. d end
    local srv, s, _, got = server_and_raw(joined, { max_message_size = 1024 })
    s:write(pieces(64))
    assert.same({ true, "binary:" .. string.rep("x", 64) }, { got:await() })
    s:close()
    srv:close()
    refused(pieces(65), 1009, "LIMIT", { max_message_size = 1024 })
    -- a larger limit allows more: 16 KiB / 128 = 128 pieces
    srv, s, _, got = server_and_raw(joined, { max_message_size = 16384 })
    for i = 1, 128 do
      s:write(frame(i == 1 and 2 or 0, "y", { mask = true, fin = i == 128 }))
    end
    assert.same({ true, "binary:" .. string.rep("y", 128) }, { got:await() })
    s:close()
    srv:close()
    refused(pieces(129), 1009, "LIMIT", { max_message_size = 16384 })
  end)

  it("a message over max_message_size closes with 1009 and LIMIT", function()
    local srv, s, _, got = server_and_raw(function(w)
      local a = w:receive()
      local ok, err = pcall(w.receive, w)
      return { a, ok, err.code, w.close_code }
    end, { max_message_size = 100 })
    s:write(frame(2, string.rep("a", 100), { mask = true }) ..
      frame(2, string.rep("b", 60), { mask = true, fin = false }) ..
      frame(0, string.rep("b", 60), { mask = true }))
    local op, p = read_frame(s)
    assert.equal(8, op)
    assert.equal(1009, close_code(p))
    local _, r = got:await()
    assert.same({ string.rep("a", 100), false, "LIMIT", 1009 }, r)
    s:close()
    srv:close()
  end)

  it("a peer's close is answered; receive returns nil with code and reason", function()
    local srv, s, _, got = server_and_raw(function(w)
      local d = w:receive()
      return { d, w.close_code, w.close_reason, w:receive() }
    end)
    s:write(frame(8, string.pack(">I2", 4321) .. "gone", { mask = true }))
    local op, p = read_frame(s)
    assert.equal(8, op)
    assert.equal(4321, close_code(p))
    local _, r = got:await()
    assert.same({ nil, 4321, "gone", nil }, r)
    s:close()
    srv:close()
  end)

  it("an invalid close code is answered with 1002", function()
    local srv, s = server_and_raw(function(w) pcall(w.receive, w) end)
    s:write(frame(8, string.pack(">I2", 1005), { mask = true }))
    local op, p = read_frame(s)
    assert.equal(8, op)
    assert.equal(1002, close_code(p))
    s:close()
    srv:close()
  end)

  it("EOF without a close frame gives nil and code 1006", function()
    local srv, s, _, got = server_and_raw(function(w)
      return { w:receive(), w.close_code }
    end)
    s:close()
    local _, r = got:await()
    assert.same({ nil, 1006 }, r)
    srv:close()
  end)

  it("a reserved bit or opcode is a protocol error", function()
    refused(frame(1, "x", { mask = true, rsv = 0x40 }), 1002, "HTTP_PROTOCOL")
    refused(frame(3, "x", { mask = true }), 1002, "HTTP_PROTOCOL")
  end)

  it("a continuation without a start is a protocol error", function()
    refused(frame(0, "x", { mask = true }), 1002, "HTTP_PROTOCOL")
  end)

  it("a close body of one byte is a protocol error (a code is two bytes)", function()
    refused(frame(8, "\3", { mask = true }), 1002, "HTTP_PROTOCOL")
  end)
end)


describe("ws client side", function()
  it("a close body of one byte from the server: 1002, HTTP_PROTOCOL", function()
    local srv, port, done = raw_server(ok101, function(s)
      s:write(frame(8, "\3"))
      local op, p = read_frame(s)
      return { op, close_code(p) }
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    local err = errof(c.receive, c)
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(1002, c.close_code)
    local _, r = done:await()
    assert.same({ 8, 1002 }, r)
    c:close()
    srv:close()
  end)

  it("masks its frames and refuses masked ones", function()
    local srv, port, done = raw_server(ok101, function(s)
      local op, p, fin, masked = read_frame(s)
      s:write(frame(1, "masked", { mask = true }))
      local cop, cp = read_frame(s)
      return { op, p, fin, masked, cop, close_code(cp) }
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    c:send("héllo")
    local err = errof(c.receive, c)
    assert.equal("HTTP_PROTOCOL", err.code)
    local _, r = done:await()
    assert.same({ 1, "héllo", true, true, 8, 1002 }, r)
    c:close()
    srv:close()
  end)

  it("close sends code and reason and waits for the reply", function()
    local srv, port, done = raw_server(ok101, function(s)
      local op, p = read_frame(s)
      s:write(frame(8, p))
      return { op, close_code(p), p:sub(3) }
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    c:close(4000, "bye")
    local _, r = done:await()
    assert.same({ 8, 4000, "bye" }, r)
    assert.equal(4000, c.close_code)
    c:close()                      -- idempotent
    srv:close()
  end)

  it("close gives up on a silent peer after close_timeout", function()
    local hold = corio.future()
    local srv, port = raw_server(ok101, function() hold:await() end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 0.2 })
    local t0 = corio.now()
    c:close()
    assert.is_true(corio.now() - t0 >= 0.15)
    hold:set_result(true)
    srv:close()
  end)

  it("close from another task ends a pending receive with nil", function()
    local srv, port = raw_server(ok101, function(s)
      local _, p = read_frame(s)
      s:write(frame(8, p))
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    local t = corio.spawn(function() return c:receive() end)
    corio.yield()
    c:close(1001)
    assert.is_nil(t:await())
    assert.equal(1001, c.close_code)
    srv:close()
  end)

  it("close with a task in receive gives up on a silent peer after close_timeout", function()
    local hold = corio.future()
    local srv, port = raw_server(ok101, function() pcall(corio.timeout, 20, hold.await, hold) end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 0.3 })
    local t = corio.spawn(function() return c:receive() end)
    corio.yield()
    local t0 = corio.now()
    c:close()
    local dt = corio.now() - t0
    assert.is_true(dt >= 0.25 and dt < 10, "close took " .. dt .. " s")
    assert.is_nil(t:await())
    assert.equal(1000, c.close_code)
    hold:set_result(true)
    srv:close()
  end)

  it("close reads the peer's reply itself when the receiving task was cancelled", function()
    local srv, port, done = raw_server(ok101, function(s)
      local op, p = read_frame(s)
      while op ~= 8 do op, p = read_frame(s) end
      s:write(frame(8, p))
      s:read("a")
      return close_code(p)
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 20 })
    local t = corio.spawn(function() return c:receive() end)
    corio.yield()
    t:cancel()                       -- in the same step as the close
    local t0 = corio.now()
    c:close(1001)
    assert.is_true(corio.now() - t0 < 10, "close waited for its close_timeout")
    assert.equal(1001, c.close_code)
    assert.equal("CANCELLED", (code_of(t.await, t)))
    assert.same({ true, 1001 }, { done:await() })
    srv:close()
  end)

  -- fills a WebSocket's queue toward a peer that does not read
  local function stuff(c)
    local big = string.rep("z", 1 << 20)
    while pcall(corio.wait_for, function() c:send(big, "binary") end, 0.2) do end
  end

  it("close toward a peer that never reads gives up after close_timeout", function()
    local hold = corio.future()
    local srv, port = raw_server(ok101, function() pcall(corio.timeout, 20, hold.await, hold) end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 0.5 })
    stuff(c)
    local t0 = corio.now()
    c:close()
    local dt = corio.now() - t0
    assert.is_true(dt >= 0.4 and dt < 10, "close took " .. dt .. " s")
    assert.equal("CLOSED", (code_of(c.send, c, "x")))
    hold:set_result(true)
    srv:close()
  end)

  it("a cancelled close ends at once: CANCELLED, the WebSocket dropped", function()
    local hold = corio.future()
    local srv, port = raw_server(ok101, function() pcall(corio.timeout, 20, hold.await, hold) end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 30 })
    stuff(c)
    local t = corio.spawn(c.close, c)
    corio.yield()                    -- t waits to write its close frame
    t:cancel()
    local t0 = corio.now()
    assert.equal("CANCELLED", (code_of(t.await, t)))
    assert.is_true(corio.now() - t0 < 10)
    assert.equal("CLOSED", (code_of(c.send, c, "x")))
    c:close()                        -- idempotent
    hold:set_result(true)
    srv:close()
  end)

  it("__close in a cancelled task closes with 1001", function()
    local srv, port, done = raw_server(ok101, function(s)
      local op, p = read_frame(s)
      while op ~= 8 do op, p = read_frame(s) end
      s:write(frame(8, p))
      return close_code(p)
    end)
    local ready = corio.future()
    local t = corio.spawn(function()
      local c <close> = ws.connect("ws://127.0.0.1:" .. port .. "/")
      ready:set_result(true)
      c:receive()
    end)
    ready:await()
    t:cancel()
    assert.equal("CANCELLED", (code_of(t.await, t)))
    assert.same({ true, 1001 }, { done:await() })
    srv:close()
  end)

  it("two receivers at once: the second gets BUSY", function()
    local srv, port = raw_server(ok101, function(s)
      s:readexactly(1)
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 1 })
    local t = corio.spawn(function() return pcall(c.receive, c) end)
    corio.yield()
    assert.equal("BUSY", (code_of(c.receive, c)))
    c:close()
    t:await()
    srv:close()
  end)

  it("send waits on backpressure as Stream:write does", function()
    local go = corio.future()
    local srv, port, done = raw_server(ok101, function(s)
      go:await()
      local _, p = read_frame(s, true)
      -- answer the close frame: close() need not wait its close_timeout
      local op, cp = read_frame(s)
      while op ~= 8 do op, cp = read_frame(s) end
      s:write(frame(8, cp))
      return #p
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 1 })
    local big = string.rep("z", 32 * 1024 * 1024)
    local sent = false
    local t = corio.spawn(function() c:send(big, "binary") sent = true end)
    corio.sleep(0.2)
    assert.is_false(sent)          -- 32 MiB cannot all sit in socket buffers
    go:set_result(true)
    t:await()
    assert.is_true(sent)
    c:close()
    assert.same({ true, #big }, { done:await() })
    srv:close()
  end)

  it("__close closes with 1000", function()
    local srv, port, done = raw_server(ok101, function(s)
      local op, p = read_frame(s)
      while op ~= 8 do op, p = read_frame(s) end
      s:write(frame(8, p))
      return close_code(p)
    end)
    do
      local c <close> = ws.connect("ws://127.0.0.1:" .. port .. "/")
      c:send("x")
    end
    local _, code = done:await()
    assert.equal(1000, code)
    srv:close()
  end)

  it("a closed WebSocket raises CLOSED, bad arguments are bad arguments", function()
    local srv, port = raw_server(ok101, function(s)
      read_frame(s)
      local _, p = read_frame(s)
      s:write(frame(8, p))
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    assert.matches("bad argument #1 to 'send'", tostring(errof(c.send, c, 42)))
    assert.matches("bad argument #2 to 'send'", tostring(errof(c.send, c, "x", "json")))
    assert.matches("bad argument #1 to 'send'", tostring(errof(c.send, c, "\xff")))
    assert.matches("bad argument #1 to 'ping'",
      tostring(errof(c.ping, c, string.rep("p", 126))))
    assert.matches("bad argument #1 to 'close'", tostring(errof(c.close, c, 1005)))
    assert.matches("bad argument #1 to 'close'", tostring(errof(c.close, c, 999)))
    assert.matches("bad argument #2 to 'close'",
      tostring(errof(c.close, c, 1000, string.rep("r", 124))))
    assert.matches("bad argument #1 to 'receive'",
      tostring(errof(c.receive, {})))
    c:send("\xff\xfe", "binary")   -- binary is not checked
    c:close()
    assert.equal("CLOSED", (code_of(c.send, c, "x")))
    assert.equal("CLOSED", (code_of(c.receive, c)))
    assert.equal("CLOSED", (code_of(c.ping, c)))
    srv:close()
  end)

  it("a corio client and server exchange big and small messages", function()
    local srv = ws.serve("127.0.0.1", 0, function(w)
      while true do
        local d, k = w:receive()
        if not d then return end
        w:send(d, k)
      end
    end)
    local _, port = srv:address()
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    local big = string.rep("0123456789abcdef", 65536 * 4)   -- 4 MiB
    for _, m in ipairs { "", "a", string.rep("é", 70000), big } do
      c:send(m)
      local d, k = c:receive()
      assert.equal(#m, #d)
      assert.is_true(d == m)
      assert.equal("text", k)
    end
    c:ping()
    c:send("after ping")
    assert.equal("after ping", (c:receive()))
    c:close()
    srv:close()
    srv:wait_closed()
  end)
end)

-- The framing's fast path (bindings/http/wsconn.c): whole, simple data
-- frames skip wslay; everything else goes through it.  Each stream of
-- frames is fed, cut up in several ways, to a Conn with the fast path and
-- to one without (conn:nofast()): both must give the same messages, the
-- same replies (a server's frames are not masked, so bytes compare) and
-- the same end state.
describe("ws fast path", function()
  local C = require "corio._wslay"
  local MAX = 100000

  local function run(bytes, cut, nofast, max)
    local c = C.new(true, max or MAX)
    if nofast then c:nofast() end
    local msgs, outs = {}, {}
    local i = 1
    while i <= #bytes do
      local n = cut(i)
      local d, k, out = c:input(bytes:sub(i, i + n - 1))
      outs[#outs + 1] = out
      while d do
        msgs[#msgs + 1] = k .. ":" .. d
        d, k = c:recv()
      end
      i = i + n
    end
    local st = { c:state() }
    c:free()
    return msgs, table.concat(outs), st
  end

  local CUTS = {
    whole = function() return math.maxinteger // 2 end,
    bytes = function() return 1 end,
    threes = function() return 3 end,
    odd = function(i) return (i * 7) % 11 + 1 end,
  }

  -- Returns the fast path's messages, replies and state, once all the
  -- cuts agreed with wslay alone.
  local function same(bytes, max)
    local ref_m, ref_o, ref_s = run(bytes, CUTS.whole, true, max)
    for name, cut in pairs(CUTS) do
      local m, o, s = run(bytes, cut, false, max)
      assert.same(ref_m, m, name)
      assert.equal(ref_o, o, name)
      assert.same(ref_s, s, name)
    end
    return ref_m, ref_o, ref_s
  end

  local M = { mask = true }

  it("splits and joins frames anywhere, in order", function()
    local m = same(frame(1, "hello", M) .. frame(2, "\0\1\2", M) ..
      frame(1, "", M) .. frame(1, string.rep("x", 300), M) ..
      frame(2, string.rep("y", 70000), M))       -- past the fast size
    assert.same({ "text:hello", "binary:\0\1\2", "text:",
      "text:" .. string.rep("x", 300), "binary:" .. string.rep("y", 70000) }, m)
  end)

  it("fragments with a ping between them, then whole frames", function()
    local m, out = same(frame(1, "a", M) .. frame(1, "one", { mask = true,
      fin = false }) .. frame(9, "p", M) .. frame(0, "two", M) ..
      frame(2, "b", M))
    assert.same({ "text:a", "text:onetwo", "binary:b" }, m)
    assert.equal("\x8a\x01p", out)                -- the pong
  end)

  it("invalid UTF-8 in a small text frame closes with 1007", function()
    local m, out, st = same(frame(1, "ok", M) .. frame(1, "\xff\xfe", M) ..
      frame(1, "after", M))
    assert.same({ "text:ok" }, m)
    assert.equal(1007, st[4])
    assert.equal(1007, string.unpack(">I2", out, 3))
    -- overlong, surrogate, above U+10FFFF, truncated: all refused
    for _, bad in ipairs { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                           "abc\xe2\x82" } do
      local _, _, s = same(frame(1, bad, M))
      assert.equal(1007, s[4], bad)
    end
    local good = same(frame(1, "\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9", M))
    assert.same({ "text:\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9" }, good)
  end)

  it("a frame over max_message_size closes with 1009", function()
    local m, _, st = same(frame(2, "1234", M) .. frame(2, "12345", M), 4)
    assert.same({ "binary:1234" }, m)
    assert.equal(1009, st[4])
  end)

  it("odd frames are wslay's to refuse, with close 1002", function()
    for _, f in ipairs {
      frame(1, "abc", { mask = true, len126 = true }),   -- not minimal
      frame(1, "abc"),                                   -- not masked
      frame(1, "abc", { mask = true, rsv = 0x40 }),      -- a reserved bit
      frame(3, "abc", M),                                -- a reserved opcode
      frame(0, "abc", M),                                -- no start
    } do
      local m, _, st = same(frame(1, "x", M) .. f .. frame(1, "y", M))
      assert.same({ "text:x" }, m)
      assert.is_false(st[1])                             -- reading over
      assert.equal(1002, st[4])
    end
  end)

  it("nothing is read after a close, whole frames included", function()
    local m, out, st = same(frame(1, "x", M) ..
      frame(8, string.pack(">I2", 1001) .. "bye", M) .. frame(1, "late", M))
    assert.same({ "text:x" }, m)
    assert.is_true(st[2])
    assert.equal(1001, st[3])
    assert.equal("bye", st[6])
    assert.equal(1001, string.unpack(">I2", out, 3))     -- echoed back
  end)

  it("send: one string when small, header and data when big", function()
    local c = C.new(true, MAX)
    assert.equal("\x81\x02hi", c:send(1, "hi"))
    local big = string.rep("z", 2000)
    local a, b = c:send(2, big)
    assert.equal("\x82\x7e\x07\xd0", a)
    assert.is_true(b == big)
    assert.is_false(c:send(1, "\xff"))
    assert.is_string(c:close(1000, ""))
    assert.is_nil(c:send(1, "too late"))
    c:free()
    local cl = C.new(false, MAX)                 -- a client masks
    local f = cl:send(1, "abc")
    assert.equal(0x81, f:byte(1))
    assert.equal(0x83, f:byte(2))
    local key = f:sub(3, 6)
    local p = {}
    for i = 1, 3 do
      p[i] = string.char(f:byte(6 + i) ~ key:byte(i))
    end
    assert.equal("abc", table.concat(p))
    cl:free()
  end)
end)

-- On a corio Stream, receive() reads whole fast frames in place in the
-- Stream's buffer (conn:pull) and send() writes frames straight to it
-- (conn:write).  The byte streams of "ws fast path" go over TCP in pieces,
-- with a loop turn after each so the server reads them one by one where
-- the kernel keeps them apart; messages, replies and the close code must
-- be wslay's alone (a Conn with nofast fed everything at once).
describe("ws on a corio Stream", function()
  local C = require "corio._wslay"
  local M = { mask = true }

  local function reference(bytes, max)
    local c = C.new(true, max or 100000)
    c:nofast()
    local msgs = {}
    local d, k, out = c:input(bytes)
    while d do
      msgs[#msgs + 1] = k .. ":" .. d
      d, k = c:recv()
    end
    local code = select(4, c:state())
    c:free()
    return msgs, out or "", code
  end

  -- Sends bytes in pieces of cut(i) bytes to a ws.serve handler that
  -- receives until the end; returns its messages, the bytes it wrote
  -- after the 101, and its close_code.
  local function over_stream(bytes, cut, max)
    local srv, s, _, got = server_and_raw(function(w)
      local msgs = {}
      while true do
        local ok, d, k = pcall(w.receive, w)
        if not ok or not d then break end
        msgs[#msgs + 1] = k .. ":" .. d
      end
      return { msgs, w.close_code }
    end, { max_message_size = max })
    s:set_nodelay(true)
    local i, ok = 1, true
    while ok and i <= #bytes do        -- until the server has closed
      local n = cut(i)
      ok = pcall(s.write, s, bytes:sub(i, i + n - 1))
      corio.yield()
      i = i + n
    end
    pcall(s.shutdown, s)
    local out = {}                     -- what came before EOF or a reset
    while true do
      local rok, d = pcall(s.read, s, 65536)
      if not (rok and d) then break end
      out[#out + 1] = d
    end
    out = table.concat(out)
    local _, r = got:await()
    s:close()
    srv:close()
    return r[1], out, r[2]
  end

  local CUTS = {
    whole = function() return math.maxinteger // 2 end,
    bytes = function() return 1 end,
    odd = function(i) return (i * 7) % 11 + 1 end,
  }

  local function same(bytes, max)
    local rm, ro, rc = reference(bytes, max)
    for name, cut in pairs(CUTS) do
      local m, o, code = over_stream(bytes, cut, max)
      assert.same(rm, m, name)
      assert.equal(ro, o, name)
      if rc ~= 0 then assert.equal(rc, code, name) end
    end
    return rm, ro, rc
  end

  it("gives wslay's messages for whole, split and joined frames", function()
    local m = same(frame(1, "hello", M) .. frame(2, "\0\1\2", M) ..
      frame(1, "", M) .. frame(1, string.rep("x", 300), M) ..
      frame(2, string.rep("y", 1000), M))
    assert.same({ "text:hello", "binary:\0\1\2", "text:",
      "text:" .. string.rep("x", 300), "binary:" .. string.rep("y", 1000) }, m)
  end)

  it("answers a ping inside a fragmented message, then reads whole frames", function()
    local m, out = same(frame(1, "a", M) .. frame(1, "one", { mask = true,
      fin = false }) .. frame(9, "p", M) .. frame(0, "two", M) ..
      frame(2, "b", M) .. frame(1, "c", M))
    assert.same({ "text:a", "text:onetwo", "binary:b", "text:c" }, m)
    assert.equal("\x8a\x01p", out)
  end)

  it("closes with 1007 on invalid UTF-8 read in place", function()
    local m, _, code = same(frame(1, "ok", M) .. frame(1, "ab\xff\xfe", M) ..
      frame(1, "after", M))
    assert.same({ "text:ok" }, m)
    assert.equal(1007, code)
  end)

  it("closes with 1009 past max_message_size and 1002 on odd frames", function()
    local m, _, code = same(frame(2, "1234", M) .. frame(2, "12345", M), 4)
    assert.same({ "binary:1234" }, m)
    assert.equal(1009, code)
    m, _, code = same(frame(1, "x", M) .. frame(1, "abc") .. frame(1, "y", M))
    assert.same({ "text:x" }, m)
    assert.equal(1002, code)
  end)

  it("answers a close and reads nothing after it", function()
    local m, out, code = same(frame(1, "x", M) ..
      frame(8, string.pack(">I2", 1001) .. "bye", M) .. frame(1, "late", M))
    assert.same({ "text:x" }, m)
    assert.equal(1001, code)
    assert.equal(1001, string.unpack(">I2", out, 3))
  end)

  it("reads frames that came in the same packet as the upgrade", function()
    local got
    local srv2 = ws.serve("127.0.0.1", 0, function(w)
      got = { w:receive() }
      w:send(got[1] .. "!")
    end)
    local _, port = srv2:address()
    local c = net.connect("127.0.0.1", port)
    c:write(UPGRADE .. "\r\n" .. frame(1, "early", M))
    c:readuntil("\r\n\r\n")
    local op, p = read_frame(c)
    assert.equal(1, op)
    assert.equal("early!", p)
    assert.same({ "early", "text" }, got)
    c:close()
    srv2:close()
  end)

  -- A cancelled receive is the usual way to wait with a deadline: only
  -- the wait ends (the frame's bytes stay in the Stream or the framing)
  local function receive_survives(c, go)
    local t = corio.spawn(function() return c:receive() end)
    corio.yield()
    t:cancel()
    assert.equal("CANCELLED", (code_of(t.await, t)))
    assert.equal("TIMEOUT", (code_of(corio.wait_for, function() return c:receive() end, 0.05)))
    assert.is_nil(c.close_code)
    go:set_result(true)
    assert.same({ "after", "text" }, { c:receive() })
    assert.same({ "second", "text" }, { c:receive() })
    c:send("still open")
  end

  it("a receive cancelled or past a deadline leaves the WebSocket open", function()
    local go = corio.future()
    local srv, port, done = raw_server(ok101, function(s)
      go:await()
      -- the second message cut in two: its first half comes first
      local second = frame(1, "second")
      s:write(frame(1, "after") .. second:sub(1, 3))
      s:write(second:sub(4))
      local _, p = read_frame(s)
      local op, cp = read_frame(s)
      s:write(frame(8, cp))
      return p, op
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 5 })
    receive_survives(c, go)
    c:close()
    assert.equal(1000, c.close_code)
    assert.same({ true, "still open", 8 }, { done:await() })
    srv:close()
  end)

  it("a receive cancelled on a stream that is not a corio Stream leaves it open", function()
    local go = corio.future()
    local srv, port, done = raw_server(ok101, function(s)
      go:await()
      s:write(frame(1, "after") .. frame(1, "second"))
      local _, p = read_frame(s)
      local _, cp = read_frame(s)
      s:write(frame(8, cp))
      return p
    end)
    local stream = net.connect("127.0.0.1", port)
    stream:write(UPGRADE .. "\r\n")
    stream:readuntil("\r\n\r\n")
    local proxy = {                  -- a table, not a corio Stream
      read = function(_, n) return stream:read(n) end,
      write = function(_, ...) stream:write(...) end,
      close = function() stream:close() end,
      abort = function() stream:abort() end,
    }
    local c = ws.wrap(proxy, { client = true, close_timeout = 5 })
    receive_survives(c, go)
    c:close()
    assert.same({ true, "still open" }, { done:await() })
    srv:close()
  end)

  it("a cancelled receive still reads the close it is waiting for next time", function()
    local go = corio.future()
    local srv, port = raw_server(ok101, function(s)
      go:await()
      s:write(frame(8, string.pack(">I2", 1001)))
      s:read("a")
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    assert.equal("TIMEOUT", (code_of(corio.wait_for, function() return c:receive() end, 0.05)))
    go:set_result(true)
    assert.is_nil(c:receive())
    assert.equal(1001, c.close_code)
    c:close()
    srv:close()
  end)

  it("a reset under receive raises the Stream's error with 1006", function()
    local srv, port = raw_server(ok101, function(s)
      s:write(frame(1, "last"))
      s:abort()                      -- a reset, not a close frame
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    assert.equal("last", (c:receive()))
    local ok, err = pcall(c.receive, c)
    if ok then                       -- the kernel may report EOF first
      assert.is_nil(err)
    else
      assert.equal("ECONNRESET", err.code)
    end
    assert.equal(1006, c.close_code)
    assert.is_nil(c:receive())
    c:close()
    srv:close()
  end)

  it("a second receiver gets BUSY and the first one goes on", function()
    local srv, port = raw_server(ok101, function(s)
      s:readexactly(1)
    end)
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/", { close_timeout = 1 })
    local t = corio.spawn(function() return c:receive() end)
    corio.yield()
    assert.equal("BUSY", (code_of(c.receive, c)))
    assert.is_nil(c.close_code)      -- BUSY does not end the WebSocket
    c:close()
    assert.is_nil(t:await())
    srv:close()
  end)

  it("a Stream read elsewhere makes receive fail with BUSY and 1006", function()
    local srv, port = raw_server(ok101, function(s) s:read("a") end)
    local stream = net.connect("127.0.0.1", port)
    stream:write(UPGRADE .. "\r\n")
    stream:readuntil("\r\n\r\n")
    local w = ws.wrap(stream, { client = true, close_timeout = 1 })
    local t = corio.spawn(function() return stream:read(1) end)
    corio.yield()
    assert.equal("BUSY", (code_of(w.receive, w)))
    assert.equal(1006, w.close_code)   -- as when read() failed under it
    assert.equal("CLOSED", (code_of(t.await, t)))  -- the Stream closed
    w:close()
    srv:close()
  end)

  it("any stream with read and write works through its methods", function()
    local srv = net.serve("127.0.0.1", 0, function(s)
      local req = ws.read_request(s)
      s:write(ws.response(req.headers["sec-websocket-key"]))
      local proxy = {                  -- a table, not a corio Stream
        read = function(_, n) return s:read(n) end,
        write = function(_, ...) s:write(...) end,
        readuntil = function(_, sep) return s:readuntil(sep) end,
        close = function() s:close() end,
        abort = function() s:abort() end,
      }
      local w = ws.wrap(proxy)
      while true do
        local d, k = w:receive()
        if not d then break end
        w:send(d .. "?", k)
      end
      w:close()
    end)
    local _, port = srv:address()
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    c:send("one")
    c:ping("p")
    c:send("\0\1", "binary")
    assert.same({ "one?", "text" }, { c:receive() })
    assert.same({ "\0\1?", "binary" }, { c:receive() })
    c:close()
    srv:close()
  end)

  -- receive and send are C closures that take self[C.FAST] as the Conn:
  -- anything else there (another userdata, a freed Conn, a Conn bound to
  -- no Stream) must reach only the Lua methods, which refuse it.
  it("a table holding no live bound Conn at C.FAST gets the Lua methods' errors", function()
    local srv, s, _, got = server_and_raw(function(w)
      local WS = getmetatable(w)
      local freed = C.new(true, 100)
      freed:free()
      local unbound = C.new(true, 100)
      local oks = {}
      for _, v in ipairs({ io.stdout, freed, unbound, true, 42 }) do
        local fake = setmetatable({ [C.FAST] = v }, WS)
        oks[#oks + 1] = pcall(fake.receive, fake)
        oks[#oks + 1] = pcall(fake.send, fake, "x")
      end
      unbound:free()
      w:send("still here")
      return oks
    end)
    local d = s:readexactly(12)
    assert.equal("\x81\x0astill here", d)
    local _, oks = got:await()
    assert.same({ false, false, false, false, false, false, false, false,
                  false, false }, oks)
    s:close()
    srv:close()
  end)
end)

describe("ws client: timeouts and refused handshakes (http.websocket)", function()
  local http = require "corio.http"
  local H = dofile(here .. "helpers/tls_helpers.lua")

  -- A server that accepts TCP and never says a word; `seen` gets what it
  -- read before the client went away (nil: the client closed).
  local function silent_server()
    local seen = corio.future()
    local srv = net.serve("127.0.0.1", 0, function(s)
      local got = {}
      while true do
        local ok, d = pcall(s.read, s, 4096)
        if not ok or not d then break end
        got[#got + 1] = d
      end
      seen:set_result(table.concat(got))
    end)
    local _, port = srv:address()
    return srv, port, seen
  end

  it("has the documented defaults", function()
    assert.equal(30, ws.defaults.connect_timeout)
    assert.equal(60, ws.defaults.handshake_timeout)
  end)

  it("a server that never answers the upgrade: TIMEOUT after handshake_timeout, socket closed", function()
    local srv, port, seen = silent_server()
    local t0 = corio.now()
    local err = errof(http.websocket, "ws://127.0.0.1:" .. port .. "/x",
      { handshake_timeout = 0.2 })
    local took = corio.now() - t0
    assert.equal("TIMEOUT", err.code)
    assert.equal("websocket", err.op)
    assert.matches("handshake timed out after 0.2 s", err.message, 1, true)
    assert.is_true(took >= 0.15, "gave up too early: " .. took)
    assert.is_true(took < 30, "took " .. took)
    -- the server got the upgrade request, then EOF: nothing left open
    assert.truthy(seen:await():find("^GET /x HTTP/1%.1\r\n"))
    srv:close()
  end)

  it("ws.connect has the same handshake_timeout", function()
    local srv, port, seen = silent_server()
    local err = errof(ws.connect, "ws://127.0.0.1:" .. port .. "/",
      { handshake_timeout = 0.1 })
    assert.equal("TIMEOUT", err.code)
    assert.equal("connect", err.op)
    seen:await()
    srv:close()
  end)

  it("a wss:// server that never answers the TLS hello: TIMEOUT after connect_timeout", function()
    local srv, port, seen = silent_server()
    local err = errof(http.websocket, "wss://127.0.0.1:" .. port .. "/",
      { connect_timeout = 0.2, handshake_timeout = 100 })
    assert.equal("TIMEOUT", err.code)
    assert.matches("connect timed out after 0.2 s", err.message, 1, true)
    -- it got a ClientHello (a TLS record: 0x16), then EOF
    assert.equal(0x16, seen:await():byte(1))
    srv:close()
  end)

  it("a handshake that trickles its head byte by byte still times out", function()
    local stop = corio.future()
    local srv = net.serve("127.0.0.1", 0, function(s)
      s:readuntil("\r\n\r\n")
      local head = "HTTP/1.1 101 Switching Protocols\r\nX-Slow: "
      for i = 1, #head do
        if not pcall(s.write, s, head:sub(i, i)) then return end
        corio.sleep(0.02)
      end
      while not stop:done() and pcall(s.write, s, "a") do corio.sleep(0.02) end
    end)
    local _, port = srv:address()
    local err = errof(http.websocket, "ws://127.0.0.1:" .. port .. "/",
      { handshake_timeout = 0.3 })
    assert.equal("TIMEOUT", err.code)
    stop:set_result(true)
    srv:close()
    srv:wait_closed()
  end)

  it("wss:// to a certificate the client does not trust fails with TLS_VERIFY", function()
    local srv = http.serve("127.0.0.1", 0, function(req)
      local w = req:websocket()
      w:close()
    end, { tls = H.server_opts() })
    local _, port = srv:address()
    -- no CA given: the system store does not know the test CA
    local err = errof(http.websocket, "wss://localhost:" .. port .. "/")
    assert.equal("TLS_VERIFY", err.code)
    -- the same server, trusted: the upgrade goes through
    local w = http.websocket("wss://localhost:" .. port .. "/",
      { tls = H.client_opts() })
    assert.is_nil(w:receive())
    w:close()
    srv:shutdown(5)
  end)

  it("a server that answers 200 instead of 101: HTTP_PROTOCOL with the status", function()
    local srv = http.serve("127.0.0.1", 0, function()
      return 200, { ["content-type"] = "text/plain" }, "not a websocket\n"
    end)
    local _, port = srv:address()
    local err = errof(http.websocket, "ws://127.0.0.1:" .. port .. "/")
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(200, err.status)
    assert.matches("status 200 instead of 101", err.message, 1, true)
    srv:shutdown(5)
  end)

  it("a wrong Sec-WebSocket-Accept is refused (http.websocket)", function()
    local srv, port = raw_server(function(key)
      -- the accept value of another key
      return ok101(key == "dGhlIHNhbXBsZSBub25jZQ==" and
        "AAAAAAAAAAAAAAAAAAAAAA==" or "dGhlIHNhbXBsZSBub25jZQ==")
    end, function(s) return s:read(10) end)
    local err = errof(http.websocket, "ws://127.0.0.1:" .. port .. "/")
    assert.equal("HTTP_PROTOCOL", err.code)
    assert.equal(101, err.status)
    assert.matches("wrong Sec-WebSocket-Accept", err.message, 1, true)
    srv:close()
  end)

  it("bad timeouts are bad arguments", function()
    for _, o in ipairs({ { connect_timeout = 0 }, { handshake_timeout = -1 },
                         { connect_timeout = "5" }, { handshake_timeout = 0 / 0 } }) do
      assert.matches("bad argument", tostring(errof(http.websocket,
        "ws://127.0.0.1:1/", o)))
    end
  end)
end)
