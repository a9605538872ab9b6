-- starttls.lua -- STARTTLS on both sides of one connection, as SMTP,
-- IMAP or PostgreSQL do: a plain-text greeting, the STARTTLS command, then
-- TLS on the same socket (tls.upgrade), with verification on.
local corio = require "corio"
local net = require "corio.net"
local tls = require "corio.tls"
local process = require "corio.process"

-- A throwaway certificate for "localhost", trusted by the client below.
local dir = process.exec({ "mktemp", "-d" }).stdout:gsub("%s+$", "")
assert(process.exec({ "openssl", "req", "-x509", "-newkey", "ec",
  "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
  "-keyout", dir .. "/key.pem", "-out", dir .. "/cert.pem",
  "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost" })
  .code == 0)

local server = net.serve("127.0.0.1", 0, function(s)
  s:write("220 ready\r\n")
  if s:read("l") ~= "STARTTLS\r" then return s:write("500 what?\r\n") end
  s:write("220 go ahead\r\n")
  local ts = tls.upgrade(s, { server = true, certfile = dir .. "/cert.pem",
    keyfile = dir .. "/key.pem" })               -- s is CLOSED from here
  for line in ts:lines() do
    ts:write("250 you said (encrypted): " .. line .. "\n")
  end
end)
local _, port = server:address()

local c = net.connect("127.0.0.1", port)
print(c:read("l"))                                -- 220 ready
c:write("STARTTLS\r\n")
print(c:read("l"))                                -- 220 go ahead
local tc = tls.upgrade(c, { servername = "localhost",
  cafile = dir .. "/cert.pem" })
print("now " .. tc:tls_info().version)
tc:write("hello\n")
print(tc:read("l"))
tc:close()
server:close()
server:wait_closed()
process.exec({ "rm", "-rf", dir })
