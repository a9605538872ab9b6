-- W11 floor in corio: an HTTP hello server on raw corio.net streams, no
-- parsing (every "\r\n\r\n" ends a bodiless request; the answers to one
-- read go out in one write).  Serves on port arg[1] until killed.
local net = require "corio.net"
local RESP = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n"
local srv = net.serve("127.0.0.1", tonumber(arg[1]) or 0, function(s)
  local read, write, find = s.read, s.write, string.find
  local tail = ""
  while true do
    local d = read(s, 65536)
    if not d then break end
    d = tail .. d
    local n, at = 0, 1
    while true do
      local _, e = find(d, "\r\n\r\n", at, true)
      if not e then break end
      n, at = n + 1, e + 1
    end
    tail = d:sub(at > #d - 3 and at or #d - 2)
    if n > 0 then write(s, RESP:rep(n)) end
  end
end)
local _, port = srv:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
srv:serve_forever()
