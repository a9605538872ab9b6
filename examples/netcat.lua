--[[
netcat.lua -- a small netcat: copies stdin to a TCP connection and the
connection to stdout, both ways at once.

When stdin ends, the connection is half-closed (shutdown), so the peer
sees EOF but can still answer; when the peer closes, we are done.
corio.stdin and corio.stdout are Streams whether they are a terminal, a
pipe or a file, so `corio examples/netcat.lua host 80 < request.txt` works.

Run: corio examples/netcat.lua HOST PORT     connect
     corio examples/netcat.lua -l PORT       listen for one connection
     corio examples/netcat.lua --selftest    scripted input, in-process peer
]]
-- ci: --selftest
local corio = require "corio"
local net = require "corio.net"

-- Copies src to dst until EOF, then (optionally) half-closes dst.
local function pump(src, dst, half_close)
  for data in src:lines(65536) do dst:write(data) end
  if half_close then dst:shutdown() end
end

-- One session: in -> sock and sock -> out at once; ends when the peer
-- closes (the input side may still be waiting then: it is cancelled).
local function session(input, sock, out)
  local sender = corio.spawn(pump, input, sock, true)
  pump(sock, out, false)
  sender:cancel()
  pcall(sender.await, sender)
end

if arg[1] == "-l" then
  local done = corio.future()
  local server
  server = net.serve("0.0.0.0", assert(tonumber(arg[2]), "port?"), function(sock)
    server:close()                 -- one connection only
    session(corio.stdin, sock, corio.stdout)
    done:set_result()
  end)
  done:await()
  return
elseif arg[1] ~= "--selftest" then
  local host, port = arg[1], tonumber(arg[2])
  if not (host and port) then
    io.stderr:write("usage: netcat.lua HOST PORT | -l PORT\n")
    os.exit(2)
  end
  session(corio.stdin, net.connect(host, port), corio.stdout)
  return
end

-- Self-test.  The peer upper-cases what it gets and answers only after
-- EOF (so the half-close matters); the "stdin" is a scripted stream and
-- the "stdout" a table that records writes.
local upper = net.serve("127.0.0.1", 0, function(s)
  local all = s:read("a")
  s:write(all:upper())
end)
local feeder = net.serve("127.0.0.1", 0, function(s)
  for i = 1, 3 do
    s:write("line ", i, "\n")
    corio.sleep(0.01)
  end
end)
local input = net.connect("127.0.0.1", select(2, feeder:address()))
local sock = net.connect("127.0.0.1", select(2, upper:address()))
local got = {}
local out = { write = function(_, d) got[#got + 1] = d end }
session(input, sock, out)
assert(table.concat(got) == "LINE 1\nLINE 2\nLINE 3\n", table.concat(got))
input:close()
sock:close()
upper:close()
feeder:close()
print("selftest ok")
