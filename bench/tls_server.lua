-- TLS benchmark server (bench/tls.py): answers each request head with
-- "hello" (handshake workload) or, for GET /bulk, with 256 MiB.
-- usage: corio bench/tls_server.lua CERT KEY PORTFILE
local tls = require "corio.tls"
local cert, key, portfile = arg[1], arg[2], arg[3]
local BULK = 256 * 1024 * 1024
local chunk = string.rep("x", 65536)
local srv = tls.serve("127.0.0.1", 0, function(s)
  local head = s:readuntil("\r\n\r\n")
  if head:find("^GET /bulk") then
    s:write("HTTP/1.0 200 OK\r\ncontent-length: " .. BULK .. "\r\n\r\n")
    for _ = 1, BULK // #chunk do s:write(chunk) end
  else
    s:write("HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello")
  end
end, { certfile = cert, keyfile = key, backlog = 1024, shutdown_timeout = 1 })
local f = assert(io.open(portfile, "w"))
f:write(select(2, srv:address()))
f:close()
srv:serve_forever()
