-- Regression (issue 12, point 7): a request body the handler left unread.
-- Before, a body known to be over 256 KiB was drained anyway (up to
-- idle_timeout for a client that sent only part of it) and a request whose
-- `100 Continue` was never sent was closed after a response that did not
-- say "Connection: close"; and every close after an answer was a plain
-- close, so bytes the client was still sending made the kernel answer RST
-- after the response instead of EOF.  Now (as Go): those two get
-- "Connection: close" and no drain, smaller unread bodies are drained up to
-- 256 KiB, and a close after an answer half-closes first and reads what is
-- still coming for at most 0.5 s.
local corio = require "corio"
local net = require "corio.net"
local http = require "corio.http"
local process = require "corio.process"

-- runs fn(port) against a server whose handler never reads the body
-- (/head: it answers through res:write_head + res:finish)
local function with_server(fn)
  local srv = http.serve("127.0.0.1", 0, function(req, res)
    if req.path == "/head" then
      res:write_head(200, { ["content-type"] = "text/plain" })
      res:finish("ok " .. req.path)
      return
    end
    return 200, {}, "ok " .. req.path
  end, { idle_timeout = 60 })   -- a drain would wait this long: past the reads' 20 s
  local _, port = srv:address()
  local ok, err = pcall(fn, port)
  srv:shutdown(5)
  if not ok then error(err, 0) end
end

-- reads until the server ends the connection; returns what came and how
-- it ended: "eof", an error code ("ECONNRESET"), or "timeout"
local function read_to_end(s)
  local parts, how = {}, "timeout"
  pcall(corio.timeout, 20, function()
    while true do
      local ok, d = pcall(s.read, s, 65536)
      if not ok then how = type(d) == "table" and d.code or tostring(d) return end
      if not d or d == "" then how = "eof" return end
      parts[#parts + 1] = d
    end
  end)
  return table.concat(parts), how
end

local function head(path, extra)
  return ("POST %s HTTP/1.1\r\nHost: a\r\n%s\r\n"):format(path, extra)
end

local function responses(out)
  return select(2, out:gsub("HTTP/1%.1 %d%d%d ", ""))
end

describe("regress: an unread request body", function()
  it("known to be over 256 KiB: Connection: close, no drain, both ways of answering", function()
    with_server(function(port)
      for _, path in ipairs({ "/ret", "/head" }) do
        local s = net.connect("127.0.0.1", port)
        -- 1 MiB announced, 10 bytes sent: a drain would wait for the rest
        s:write(head(path, "Content-Length: 1048576\r\n") .. "0123456789")
        local out, how = read_to_end(s)
        s:close()
        assert.equal("eof", how, out)
        assert.equal(1, responses(out), out)
        assert.truthy(out:lower():find("\r\nconnection: close\r\n", 1, true), out)
        assert.truthy(out:find("ok " .. path, 1, true), out)
      end
    end)
  end)

  it("whose 100 Continue was never sent: Connection: close, the body never waited for", function()
    with_server(function(port)
      local s = net.connect("127.0.0.1", port)
      s:write(head("/ret", "Content-Length: 10\r\nExpect: 100-continue\r\n"))
      local out, how = read_to_end(s)
      s:close()
      assert.equal("eof", how, out)
      assert.equal(1, responses(out), out)
      assert.is_nil(out:find("100 Continue", 1, true), out)
      assert.truthy(out:lower():find("\r\nconnection: close\r\n", 1, true), out)
    end)
  end)

  it("up to 256 KiB, by length or chunked, is drained and the connection kept", function()
    with_server(function(port)
      local s = net.connect("127.0.0.1", port)
      local chunked = head("/chunked", "Transfer-Encoding: chunked\r\n") ..
        "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
      s:write(head("/len", "Content-Length: 1000\r\n") .. ("b"):rep(1000) .. chunked ..
        "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
      -- the three answers end with the last one's body: read up to it
      local last = "ok /next"
      local got = ""
      repeat
        got = got .. (corio.timeout(20, s.read, s, 65536) or error("closed early: " .. got))
      until got:sub(-#last) == last
      s:close()
      assert.equal(3, responses(got), got)
      assert.is_nil(got:lower():find("connection: close", 1, true), got)
    end)
  end)

  it("a client still sending when the server closes reads the response, then EOF (not RST)", function()
    -- a peer that tells FIN from RST (corio's streams, like libuv, report
    -- both as EOF once the response was read): it sends the head of a
    -- request whose 100 Continue never comes and 128 KiB of its body at
    -- once, more than the server reads before it answers and closes
    local client = [[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
try:
    s.sendall(b"POST /ret HTTP/1.1\r\nHost: a\r\nContent-Length: 524288\r\n"
              b"Expect: 100-continue\r\n\r\n" + b"b" * 131072)
except OSError:
    pass
out, how = b"", "timeout"
try:
    while True:
        d = s.recv(65536)
        if not d:
            how = "eof"
            break
        out += d
except ConnectionResetError:
    how = "reset"
except socket.timeout:
    pass
print(how, out.count(b"HTTP/1.1 "), out.endswith(b"ok /ret"))
]]
    with_server(function(port)
      local p = process.spawn({ "/usr/bin/python3", "-c", client, tostring(port) }, { stdout = "pipe" })
      local out = corio.timeout(30, p.stdout.read, p.stdout, "a")
      p.stdout:close()
      p:wait()
      assert.equal("eof 1 True\n", out)
    end)
  end)
end)
