--[[
echo_server.lua -- a TCP echo server: every connection gets its own task,
which reads whatever arrives and writes it back.

Run: corio examples/echo_server.lua [port]       (then: nc localhost 7777)
     corio examples/echo_server.lua --selftest  (serves a few scripted
                                                 clients, then stops)
]]
-- ci: --selftest
local corio = require "corio"
local net = require "corio.net"

local function handle(stream)
  local host, port = stream:peername()
  print(("connection from %s:%d"):format(host, port))
  -- lines(n) iterates over chunks of whatever has arrived (up to n bytes)
  -- until EOF; write waits only if the peer is slow to read
  -- (backpressure).
  for data in stream:lines(65536) do
    stream:write(data)
  end
  print(("%s:%d closed"):format(host, port))
end                                -- the server closes the stream for us

if arg[1] ~= "--selftest" then
  local server = net.serve("0.0.0.0", tonumber(arg[1]) or 7777, handle)
  print("echo server on port " .. select(2, server:address()))
  server:serve_forever()           -- until Ctrl-C
  return
end

-- Self-test: a server on a free port, and three clients talking to it.
local server = net.serve("127.0.0.1", 0, handle)
local _, port = server:address()
local clients = {}
for i = 1, 3 do
  clients[i] = corio.spawn(function()
    local s = net.connect("127.0.0.1", port)
    for n = 1, 5 do
      s:write(("client %d line %d\n"):format(i, n))
      assert(s:read("l") == ("client %d line %d"):format(i, n))
    end
    s:close()
    return i
  end)
end
for i = 1, 3 do assert(clients[i]:await() == i) end
server:close()
server:wait_closed()               -- every handler has finished
print("selftest ok")
