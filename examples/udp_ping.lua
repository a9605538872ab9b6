--[[
udp_ping.lua -- UDP ping: a server answers every datagram with "pong"; the
client sends numbered pings, each with a deadline, and reports the round
trip times and losses.

Run: corio examples/udp_ping.lua server [PORT]
     corio examples/udp_ping.lua client HOST PORT [COUNT]
     corio examples/udp_ping.lua --selftest     (both, in one process)
]]
-- ci: --selftest
local corio = require "corio"
local net = require "corio.net"

local function server(sock)
  while true do
    local data, host, port = sock:recvfrom()
    sock:sendto("pong " .. data, host, port)
  end
end

-- Waits for the reply to ping n for at most `timeout` seconds; replies to
-- earlier, late pings are skipped.
local function wait_reply(sock, n, timeout)
  local task = corio.spawn(function()
    while true do
      local data = sock:recvfrom()
      if data == "pong ping " .. n then return true end
    end
  end)
  local timer = corio.call_later(timeout, function() task:cancel() end)
  local ok = pcall(task.await, task)
  timer:cancel()
  return ok
end

local function client(host, port, count)
  local sock = net.udp()
  sock:connect(host, port)
  local lost, total = 0, 0
  for n = 1, count do
    local t0 = corio.now()
    sock:send("ping " .. n)
    if wait_reply(sock, n, 1.0) then
      local ms = (corio.now() - t0) * 1000
      total = total + ms
      print(("pong %d from %s:%d: %.3f ms"):format(n, host, port, ms))
    else
      lost = lost + 1
      print(("ping %d: timeout"):format(n))
    end
    corio.sleep(0.05)
  end
  sock:close()
  local got = count - lost
  print(("%d sent, %d received, %d lost, avg %.3f ms"):format(count, got, lost,
    got > 0 and total / got or 0))
  return got
end

if arg[1] == "server" then
  local sock = net.udp({ host = "0.0.0.0", port = tonumber(arg[2]) or 7779 })
  print("udp ping server on port " .. select(2, sock:sockname()))
  server(sock)
elseif arg[1] == "client" then
  client(arg[2] or "127.0.0.1", tonumber(arg[3]) or 7779, tonumber(arg[4]) or 5)
elseif arg[1] == "--selftest" then
  local sock = net.udp({ host = "127.0.0.1", port = 0 })
  local srv = corio.spawn(server, sock)
  local got = client("127.0.0.1", select(2, sock:sockname()), 5)
  srv:cancel()
  pcall(srv.await, srv)
  sock:close()
  assert(got == 5, "lost pings on loopback")
  print("selftest ok")
else
  io.stderr:write("usage: udp_ping.lua server [PORT] | client HOST PORT [COUNT]\n")
  os.exit(2)
end
