-- A reverse proxy in ~40 lines: every request to the proxy is forwarded
-- to an upstream server over a keep-alive pool, body streamed both ways.
-- Run: corio examples/http_proxy.lua  (it starts its own upstream and
-- checks itself; point UPSTREAM at a real one to use it for real)
local http = require "corio.http"

-- hop-by-hop fields are the proxy's own business, never forwarded
local HOP = { connection = true, ["keep-alive"] = true, ["transfer-encoding"] = true,
  te = true, trailer = true, upgrade = true, ["proxy-authorization"] = true, host = true,
  ["content-length"] = true }

local upstream = http.serve("127.0.0.1", 0, function(req)
  return 200, { ["x-upstream"] = "yes" }, req.method .. " " .. req.target .. " " .. req:body()
end)
local _, uport = upstream:address()
local UPSTREAM = os.getenv("UPSTREAM") or ("http://127.0.0.1:" .. uport)

local pool = http.client()
local proxy = http.serve("127.0.0.1", 0, function(req, res)
  local headers = {}
  for name, value in req.headers:each() do
    if not HOP[name:lower()] then headers[#headers + 1] = { name, value } end
  end
  headers[#headers + 1] = { "X-Forwarded-For", req.peer.host }
  local up <close> = pool:request(req.method, UPSTREAM .. req.target, {
    headers = headers, decompress = false, follow_redirects = false,
    body = (req.headers["content-length"] or req.headers["transfer-encoding"])
      and function() return req:read(65536) end or nil,
  })
  local out = {}
  for name, value in up.headers:each() do
    if not HOP[name:lower()] then out[#out + 1] = { name, value } end
  end
  res:write_head(up.status, out)
  for chunk in function() return up:read(65536) end do res:write(chunk) end
  res:finish()
end)
local _, pport = proxy:address()

-- the self-check: what went in reached the upstream, what it answered
-- came back (status, its fields, the body), a large body both ways
local c <close> = http.client()
local r = c:post("http://127.0.0.1:" .. pport .. "/echo?x=1", "payload")
local body = r:body()
print(r.status, r.headers["x-upstream"], body)
assert(r.status == 200 and r.headers["x-upstream"] == "yes")
assert(body == "POST /echo?x=1 payload", body)
local big = ("0123456789abcdef"):rep(32768)          -- 512 KiB, streamed
r = c:put("http://127.0.0.1:" .. pport .. "/big", big)
assert(r:body() == "PUT /big " .. big)
pool:close()
proxy:shutdown(5)
upstream:shutdown(5)
