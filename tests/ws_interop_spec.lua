-- WebSocket interop with a peer nobody here wrote: Python's websockets
-- (Debian python3-websockets, installed by .ci/run), as client and server.
local corio = require "corio"
local process = require "corio.process"
local ws = require "corio._ws"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local PEER = here .. "helpers/ws_peer.py"
local PY = "/usr/bin/python3"

-- Runs body(p, url) against ws_peer.py's server; the peer is stopped
-- whether body passes or fails (else a failure would wait for it).
local function with_python_server(body)
  local p = process.spawn({ PY, PEER, "server" }, { stdout = "pipe" })
  local port = tonumber(p.stdout:read("l"):match("port (%d+)"))
  local ok, err = pcall(body, p, "ws://127.0.0.1:" .. port .. "/")
  p:kill("SIGTERM")
  p:wait()
  p.stdout:close()
  if not ok then error(err, 0) end
end

describe("ws interop with Python websockets", function()
  it("a Python client: text, binary, fragments, ping, 2 MiB, close code, bad UTF-8", function()
    local errors = {}
    local srv = ws.serve("127.0.0.1", 0, function(w)
      while true do
        local ok, d, k = pcall(w.receive, w)
        if not ok then errors[#errors + 1] = d.close_code return end
        if not d then return end
        w:send(d, k)
      end
    end)
    local _, port = srv:address()
    local r = process.exec({ PY, PEER, "client", "ws://127.0.0.1:" .. port .. "/" },
      { timeout = 120 })
    assert.equal("", r.stderr)
    assert.equal(0, r.code)
    local seen = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local status, name = line:match("^(%a+) (%w+)")
      assert.equal("ok", status, r.stdout)
      seen[#seen + 1] = name
    end
    assert.same({ "text", "binary", "fragments", "ping", "big", "after",
      "close", "utf8" }, seen)
    assert.same({ 1007 }, errors)
    srv:close()
    srv:wait_closed()
  end)

  it("a Python server: fragments joined, its ping answered, its close and errors", function()
    with_python_server(function(p, url)
      local c = ws.connect(url)
      c:send("hi")
      assert.same({ "hi", "text" }, { c:receive() })
      c:send("frag:a,b,c")
      assert.same({ "abc", "text" }, { c:receive() })
      c:send("big:3000000")
      local d, k = c:receive()
      assert.equal(3000000, #d)
      assert.equal("binary", k)
      c:send("ping")                      -- the server pings, then says "pong"
      assert.same({ "pong", "text" }, { c:receive() })
      c:send("close:4002:why")
      assert.is_nil(c:receive())
      assert.equal(4002, c.close_code)
      assert.equal("why", c.close_reason)
      assert.equal("closed 4002 why", p.stdout:read("l"))

      c = ws.connect(url)
      c:send("badutf8")
      local ok, err = pcall(c.receive, c)
      assert.is_false(ok)
      assert.equal("HTTP_PROTOCOL", err.code)
      assert.equal(1007, c.close_code)
      assert.equal("closed 1007 ", p.stdout:read("l"))

      c = ws.connect(url, { max_message_size = 1000 })
      c:send("big:3000")
      ok, err = pcall(c.receive, c)
      assert.equal("LIMIT", err.code)
      assert.equal("closed 1009 ", p.stdout:read("l"))

      c = ws.connect(url)
      c:close(4005, "client bye")
      assert.equal("closed 4005 client bye", p.stdout:read("l"))
    end)
  end)

  -- tests/regress/ping_then_close_unanswered_spec.lua, against websockets
  it("a Python server's ping and close in one segment: the pong comes first", function()
    with_python_server(function(p, url)
      local c = ws.connect(url)
      c:send("pingclose")
      assert.is_nil(c:receive())
      assert.equal(1000, c.close_code)
      assert.equal("pingclose pong", p.stdout:read("l"))
      assert.equal("closed 1000 ", p.stdout:read("l"))
    end)
  end)
end)
