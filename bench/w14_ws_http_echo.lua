-- W14 with corio.http in front: the echo server of w14_ws_echo.lua, but
-- the upgrade is an http.serve request answered by req:websocket() (the
-- strict head guard, http_parser, Headers, then corio._ws).  Prints
-- "port=N", serves until killed.  Driven by bench/ws_echo.py and
-- bench/ws_handshake.py.
local http = require "corio.http"
local srv = http.serve("127.0.0.1", 0, function(req)
  local w = req:websocket()
  while true do
    local d, k = w:receive()
    if not d then break end
    w:send(d, k)
  end
  w:close()
end)
local _, port = srv:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
srv:serve_forever()
