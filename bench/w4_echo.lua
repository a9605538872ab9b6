-- W4: TCP echo server in corio.  Prints "port=N" once listening, then
-- serves until stdin closes (the driver holds it open).
local corio = require "corio"
local net = require "corio.net"

local server = net.serve("127.0.0.1", tonumber(arg[1]) or 0, function(s)
  local read, write = s.read, s.write
  while true do
    local data = read(s, 65536)
    if not data then break end
    write(s, data)
  end
end)
local _, port = server:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
corio.stdin:read("a")               -- until the driver closes our stdin
server:close()
