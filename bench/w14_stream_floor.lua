-- W14's floor: no WebSocket at all, the same read/write loop on a raw
-- corio.net Stream -- each read (one client frame) is answered with a fixed
-- 34-byte text frame.  What the WebSocket server costs above this is the
-- framing; this row itself is the Stream, the scheduler and the kernel.
-- Driven by bench/ws_echo.py (which only checks the reply's bytes).
local net = require "corio.net"
local REPLY = "\x81\x20" .. "0123456789abcdef0123456789abcdef"
local srv = net.serve("127.0.0.1", 0, function(s)
  s:readuntil("\r\n\r\n")
  s:write("HTTP/1.1 101 Switching Protocols\r\n\r\n")
  while true do
    local d = s:read(65536)
    if not d or d:byte(1) == 0x88 then return end
    s:write(REPLY)
  end
end)
local _, port = srv:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
srv:serve_forever()
