-- Regression (issue 12, point 4): a ping and a close frame that arrived in
-- the same read got no pong.  wslay queued the pong, then the reply to the
-- close, and its sender drops every other control frame once a close is
-- queued: the peer saw only the close.  RFC 6455 (section 5.5.2) wants
-- the ping answered before later frames are processed, so the pong now
-- goes out as soon as wslay has read the ping (bindings/http/wsconn.c,
-- on_msg): the pong, then the close reply, on both sides and with or
-- without the fast path.
local corio = require "corio"
local net = require "corio.net"
local ws = require "corio._ws"
local C = require "corio._wslay"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local WF = dofile(here .. "../helpers/ws_frames.lua")
local frame = WF.frame
local M = { mask = true }

-- One frame read off s: { op, payload }.
local function read_frame(s)
  local op, p = WF.read_frame(s)
  return { op, p }
end
local CLOSE = string.pack(">I2", 1000) .. "bye"

describe("regress: a ping and a close in one read", function()
  it("the framing answers the pong, then the close", function()
    for _, nofast in ipairs({ false, true }) do
      local c = C.new(true, 1000)
      if nofast then c:nofast() end
      local d, reading, out = c:input(frame(9, "hi", M) ..
        frame(8, CLOSE, M))
      assert.is_nil(d)
      assert.is_false(reading)
      assert.equal(frame(10, "hi") .. frame(8, CLOSE), out)
      c:free()
    end
  end)

  it("a corio server sends the pong before its close reply", function()
    local code = corio.future()
    local srv = ws.serve("127.0.0.1", 0, function(w)
      while w:receive() do end
      code:set_result(w.close_code)
    end)
    local _, port = srv:address()
    local s = net.connect("127.0.0.1", port)
    s:write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" ..
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" ..
      "\r\nSec-WebSocket-Version: 13\r\n\r\n")
    s:readuntil("\r\n\r\n")
    s:write(frame(9, "hi", M) .. frame(8, CLOSE, M))
    assert.same({ 10, "hi" }, read_frame(s))
    assert.same({ 8, CLOSE }, read_frame(s))
    assert.equal(1000, corio.wait_for(code, 30))
    s:close()
    srv:close()
  end)

  it("a corio client sends the pong before its close reply", function()
    local got = corio.future()
    local srv = net.serve("127.0.0.1", 0, function(s)
      local key = s:readuntil("\r\n\r\n"):match("Sec%-WebSocket%-Key: (%S+)")
      s:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" ..
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " ..
        ws.accept_key(key) .. "\r\n\r\n")
      s:write(frame(9, "hi") .. frame(8, CLOSE))
      local ok, a, b = pcall(function()
        return read_frame(s), read_frame(s)
      end)
      got:set_result(ok, a, b)
      s:close()
    end)
    local _, port = srv:address()
    local c = ws.connect("ws://127.0.0.1:" .. port .. "/")
    assert.is_nil(c:receive())
    assert.equal(1000, c.close_code)
    local ok, pong, close = corio.wait_for(got, 30)
    assert.is_true(ok, tostring(pong))
    assert.same({ 10, "hi" }, pong)
    assert.same({ 8, CLOSE }, close)
    c:close()
    srv:close()
  end)
end)
