-- tls_client.lua -- connect with TLS and print the server's certificate.
--
--   corio examples/tls_client.lua [host [port]]
--
-- Without arguments it starts a local `openssl s_server` on a throwaway
-- certificate (made with the openssl CLI) and trusts exactly that
-- certificate: verification stays on.  With a host it uses the system
-- trust store, like a browser.
local corio = require "corio"
local tls = require "corio.tls"
local process = require "corio.process"

local host, port = arg[1], tonumber(arg[2] or 443)
local opts, peer, dir = {}, nil, nil

if not host then
  dir = process.exec({ "mktemp", "-d" }).stdout:gsub("%s+$", "")
  local r = process.exec({ "openssl", "req", "-x509", "-newkey", "ec",
    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-keyout", dir .. "/key.pem", "-out", dir .. "/cert.pem",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost" })
  assert(r.code == 0, "openssl req failed: " .. (r.stderr or ""))
  peer = process.spawn({ "openssl", "s_server", "-accept", "127.0.0.1:0",
    "-cert", dir .. "/cert.pem", "-key", dir .. "/key.pem", "-www" },
    { stdout = "pipe", stderr = "null", stdin = "pipe" })
  for line in peer.stdout:lines() do          -- "ACCEPT 127.0.0.1:PORT"
    port = tonumber(line:match("^ACCEPT .-:(%d+)$"))
    if port then break end
  end
  host, opts = "localhost", { cafile = dir .. "/cert.pem" }
end

local ok, err = pcall(function()
  local s <close> = tls.connect(host, port, opts)
  local i = s:tls_info()
  print(("%s:%d  %s  %s%s"):format(host, port, i.version, i.cipher,
    i.session_reused and "  (resumed)" or ""))
  local c = i.peer_cert
  print("subject:    " .. c.subject)
  print("issuer:     " .. c.issuer)
  print("names:      " .. table.concat(c.san, ", "))
  print("valid:      " .. c.not_before .. " .. " .. c.not_after)
  print("sha256:     " .. c.sha256)
end)

if peer then
  peer:kill()
  peer:wait()
  process.exec({ "rm", "-rf", dir })
end
if not ok then error(err, 0) end
