--[[
corio.http -- HTTP/1.1 client and server (docs/API-http.md).

The client lives in _http_client.lua (pool, retries, redirects), the
server in _http_server.lua, headers and head reading in _http_msg.lua,
bodies in _http_body.lua; the strict head scanner, the chunk-size check
and gzip are C (bindings/http/).
]]
local client = require "corio._http_client"
local server = require "corio._http_server"
local msg = require "corio._http_msg"

local http = {}

http.client = client.client
http.serve = server.serve
http.headers = msg.new_headers
http.DEFAULTS = { client = client.DEFAULTS, server = server.DEFAULTS }

local shared
local function pool()
  if not shared or shared.closed then shared = client.client() end
  return shared
end

function http.request(method, url, opts)
  local cl = opts and opts.client or pool()
  return cl:request(method, url, opts)
end
for _, m in ipairs({ "get", "head", "delete", "options" }) do
  http[m] = function(url, opts)
    local cl = opts and opts.client or pool()
    return cl[m](cl, url, opts)
  end
end
for _, m in ipairs({ "post", "put", "patch" }) do
  http[m] = function(url, b, opts)
    local cl = opts and opts.client or pool()
    return cl[m](cl, url, b, opts)
  end
end

--- websocket(url, opts) -> WebSocket, from corio.websocket when built in
function http.websocket(url, opts)
  local ok, ws = pcall(require, "corio.websocket")
  if not ok then
    error(require("corio.core").Error("INVALID_STATE",
      "corio.websocket is not available in this build", { op = "websocket" }), 0)
  end
  return ws.connect(url, opts)
end

return http
