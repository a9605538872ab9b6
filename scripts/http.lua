--[[
corio.http -- HTTP/1.1 client and server (docs/API-http.md).

The client lives in _http_client.lua (pool, retries, redirects) and
_http_url.lua (URL parsing and resolution), the server in
_http_server.lua, headers and head reading in _http_msg.lua, bodies in
_http_body.lua; the strict head scanner, the chunk-size check and gzip
are C (bindings/http/).
]]
local client = require "corio._http_client"
local server = require "corio._http_server"
local msg = require "corio._http_msg"
local raise = require("corio._args").raise

local http = {}

http.client = client.client
http.serve = server.serve
function http.headers(init) return msg.new_headers(init, "headers", 1) end
http.DEFAULTS = { client = client.DEFAULTS, server = server.DEFAULTS }

local shared
local function pool()
  if not shared or shared.closed then shared = client.client() end
  return shared
end

-- the pool a module-level call uses: opts.client, or the shared one
local function pool_of(opts, n, fname)
  if opts == nil then return pool() end
  if type(opts) ~= "table" then
    raise(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, type(opts)))
  end
  local cl = opts.client
  if cl == nil then return pool() end
  if getmetatable(cl) ~= client.Client then
    raise(("bad argument #%d to '%s' (option 'client' must be a corio.http.Client)"):format(n, fname))
  end
  return cl
end

function http.request(method, url, opts)
  return pool_of(opts, 3, "request"):request(method, url, opts)
end
for _, m in ipairs({ "get", "head", "delete", "options" }) do
  http[m] = function(url, opts)
    local cl = pool_of(opts, 2, m)
    return cl[m](cl, url, opts)
  end
end
for _, m in ipairs({ "post", "put", "patch" }) do
  http[m] = function(url, b, opts)
    local cl = pool_of(opts, 3, m)
    return cl[m](cl, url, b, opts)
  end
end

--- websocket(url, opts) -> WebSocket (ws:// and wss://) on corio._ws
function http.websocket(url, opts)
  if type(url) ~= "string" then
    raise(("bad argument #1 to 'websocket' (string expected, got %s)"):format(type(url)))
  end
  if opts ~= nil and type(opts) ~= "table" then
    raise(("bad argument #2 to 'websocket' (table expected, got %s)"):format(type(opts)))
  end
  local ws = require "corio._ws"
  local scheme, rest = url:match("^(wss?)://(.*)$")
  if not scheme then raise("bad argument #1 to 'websocket' (ws:// or wss:// URL expected)") end
  local u = client.parse_url((scheme == "wss" and "https://" or "http://") .. rest)
  if not u then raise("bad argument #1 to 'websocket' (invalid URL)") end
  opts = opts or {}
  -- TCP (and TLS) within connect_timeout, the upgrade within
  -- handshake_timeout: TIMEOUT either way, never a hang
  local s = ws.connect_stream(u.host, u.port, opts,
    scheme == "wss" and (opts.tls or {}) or nil, "websocket")
  -- u is the http(s) URL: its authority is the ws(s) one (ports 80, 443)
  local ok, w = pcall(ws.client_handshake, s, client.authority(u), u.target, opts, "websocket")
  if not ok then s:abort() error(w, 0) end
  return w
end

return http
