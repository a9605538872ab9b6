-- W14: WebSocket echo server (corio._ws); prints "port=N", serves until
-- killed.  Driven by bench/ws_echo.py.
local ws = require "corio._ws"
local srv = ws.serve("127.0.0.1", 0, function(w)
  while true do
    local d, k = w:receive()
    if not d then return end
    w:send(d, k)
  end
end)
local _, port = srv:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
srv:serve_forever()
