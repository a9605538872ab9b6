--[[
corio.tls -- TLS client and server streams on OpenSSL 3 (see
docs/API-tls.md).  A TLS connection is a corio Stream: every read format,
limit, write backpressure, drain, shutdown, close and abort work on it as
on a plain one.  The C half (bindings/tls/) filters the Stream's socket
through one SSL* with two memory BIOs; this file builds connect, serve and
upgrade on it, with the handshake timeout and the server's failure count.
]]
local core = require "corio.core"
local C = require "corio._tls"
local net = require "corio.net"
local compose = require "corio.compose"
local A = require "corio._args"

local type, pairs, ipairs, pcall, error, tostring, setmetatable =
  type, pairs, ipairs, pcall, error, tostring, setmetatable
local math_type = math.type

local tls = {}

-- {====================================================================
-- Options
-- =====================================================================

-- What belongs to the context (everything else is the connection's or
-- net's).
local CTX_KEYS = { "server", "verify", "require_cert", "ca", "cafile",
  "capath", "cert", "key", "certfile", "keyfile", "password", "alpn",
  "min_version", "max_version", "ciphers", "ciphersuites", "tickets", "sni",
  "keylog" }

-- What a `tls` table (net.create_connection, net.connect, http) may hold
-- besides the context's options: an unknown key there is a typo too.
local CONN_KEYS = { servername = true, handshake_timeout = true,
  shutdown_timeout = true, context = true }
local TLS_TABLE_KEYS = {}
for _, k in ipairs(CTX_KEYS) do TLS_TABLE_KEYS[k] = true end
for k in pairs(CONN_KEYS) do TLS_TABLE_KEYS[k] = true end

local function check_table(v, n, fname)
  if v ~= nil and type(v) ~= "table" then
    A.argerror(n, fname, "table expected, got " .. A.typename(v), 3)
  end
end

local function check_seconds(opts, key, def, n, fname)
  local v = opts and opts[key]
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v or v < 0 then
    A.argerror(n, fname, ("option '%s' must be a number >= 0, got %s")
      :format(key, tostring(v)), 4)
  end
  return v
end

--- context([opts]) -> Context: one SSL_CTX shared by every connection
--- made with it.
function tls.context(opts)
  check_table(opts, 1, "context")
  return C.context(opts)
end

tls.is_context = C.is_context

-- The shared client context with the defaults (system trust store,
-- verification on), made on first use: building one loads the CA store.
local default_client
-- Contexts built from options, reused while someone holds them:
-- connecting many times with equal options shares one SSL_CTX (and so its
-- session cache: resumption).  The key spells the options out; options
-- that cannot be spelled (an sni function) key by table identity.
local built = setmetatable({}, { __mode = "v" })

local function spell(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "boolean" or math_type(v) == "integer" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for i = 1, #v do
      local p = spell(v[i])
      if not p then return nil end
      parts[i] = p
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return nil
end

local function key_of(opts, server)
  local parts = { tostring(server) }
  for _, k in ipairs(CTX_KEYS) do
    local v = opts[k]
    if v ~= nil then
      local p = spell(v)
      if not p then return opts end
      parts[#parts + 1] = k .. "=" .. p
    end
  end
  return table.concat(parts, ";")
end

-- C.context(o) for connect, serve, upgrade and net's `tls` option: a bad
-- option is reported against the caller's function and argument
-- ("bad argument #3 to 'connect' (option 'verify' must be a boolean)"),
-- not against 'context', which the caller never called.
local function build(o, n, fname)
  local ok, ctx = pcall(C.context, o)
  if ok then return ctx end
  local why = type(ctx) == "string" and
    ctx:match("bad argument #1 to '[%w_.]*context' %((.*)%)$")
  if why then A.argerror(n, fname, why) end
  error(ctx, 0)
end

local function context_of(opts, server, n, fname)
  if opts == nil then opts = {} end
  local ctx = opts.context
  if ctx ~= nil then
    if not C.is_context(ctx) then
      A.argerror(n, fname, "option 'context' must be a TLS context, got " ..
        A.typename(ctx), 4)
    end
    if C.is_server(ctx) ~= server then
      A.argerror(n, fname, "option 'context' is a " .. (server and
        "client" or "server") .. " context", 4)
    end
    return ctx
  end
  local own = false
  for _, k in ipairs(CTX_KEYS) do
    if opts[k] ~= nil then own = true break end
  end
  if not own and not server then
    if not default_client then default_client = C.context({}) end
    return default_client
  end
  local key = key_of(opts, server)
  ctx = built[key]
  if ctx then return ctx end
  local o = {}
  for _, k in ipairs(CTX_KEYS) do o[k] = opts[k] end
  o.server = server
  ctx = build(o, n, fname)
  built[key] = ctx
  return ctx
end

-- }====================================================================


-- {====================================================================
-- Handshake, connect, upgrade
-- =====================================================================

-- Waits for the handshake of ts, at most handshake_timeout seconds
-- (TIMEOUT); the socket is closed on every error, and on cancellation.
local function handshake(ts, timeout)
  local ok, err = pcall(compose.timeout, timeout, C.handshake, ts)
  if not ok then
    ts:abort()
    error(err, 0)
  end
  return ts
end

local function wrap(stream, ctx, name, key, opts, n, fname)
  local sto = check_seconds(opts, "shutdown_timeout", 30, n, fname)
  return C.wrap(stream, ctx, name, key, sto)
end

--- connect(host, port [, opts]) -> TlsStream
function tls.connect(host, port, opts)
  if type(host) ~= "string" then
    A.argerror(1, "connect", "string expected, got " .. A.typename(host))
  end
  check_table(opts, 3, "connect")
  local hto = check_seconds(opts, "handshake_timeout", 60, 3, "connect")
  local ctx = context_of(opts, false, 3, "connect")
  local name = opts and opts.servername
  if name ~= nil and type(name) ~= "string" then
    A.argerror(3, "connect", "option 'servername' must be a string")
  end
  -- Every option is checked before connecting: a bad one must not cost a
  -- connection the peer sees opened and dropped.
  local sto = check_seconds(opts, "shutdown_timeout", 30, 3, "connect")
  local nopts = opts
  if opts and opts.tls ~= nil then      -- net.connect would use it again
    nopts = {}
    for k, v in pairs(opts) do nopts[k] = v end
    nopts.tls = nil
  end
  local s = net.connect(host, port, nopts)
  local ok, ts = pcall(C.wrap, s, ctx, name or host,
    (name or host) .. ":" .. tostring(port), sto)
  if not ok then
    s:abort()
    error(ts, 0)
  end
  return handshake(ts, hto)
end

--- upgrade(stream [, opts]) -> TlsStream (STARTTLS; opts.server for the
--- server side).  The old Stream raises CLOSED from then on.
function tls.upgrade(stream, opts)
  if A.typename(stream) ~= "corio.Stream" then
    A.argerror(1, "upgrade", "corio.Stream expected, got " ..
      A.typename(stream))
  end
  check_table(opts, 2, "upgrade")
  local hto = check_seconds(opts, "handshake_timeout", 60, 2, "upgrade")
  local server = opts ~= nil and opts.server == true
  local ctx = context_of(opts, server, 2, "upgrade")
  local name, key = opts and opts.servername, nil
  if not server then
    local ok, host, port = pcall(stream.peername, stream)
    -- Without a name, a verifying client checks the peer's address
    -- against the certificate's IP SANs: never no check at all.
    if name == nil and ok and type(host) == "string" then name = host end
    if name and ok and port then key = name .. ":" .. tostring(port) end
  end
  local ts = wrap(stream, ctx, name, key, opts, 2, "upgrade")
  return handshake(ts, hto)
end

-- }====================================================================


-- {====================================================================
-- Servers
-- =====================================================================

local QUIET = { TLS = true, TLS_VERIFY = true }

--- serve(host, port, handler [, opts]) -> Server: handler(tlsstream)
--- after a successful handshake.  Failed handshakes are counted in
--- server:stats().tls_failures (and shown under --debug).
function tls.serve(host, port, handler, opts)
  if type(handler) ~= "function" then
    A.argerror(3, "serve", "function expected, got " .. A.typename(handler))
  end
  check_table(opts, 4, "serve")
  local hto = check_seconds(opts, "handshake_timeout", 60, 4, "serve")
  local sto = check_seconds(opts, "shutdown_timeout", 30, 4, "serve")
  local ctx = context_of(opts, true, 4, "serve")
  local srv
  srv = net.serve(host, port, function(stream)
    local peer = { pcall(stream.peername, stream) }
    local ok, ts = pcall(function()
      return handshake(C.wrap(stream, ctx, nil, nil, sto), hto)
    end)
    if not ok then
      if type(ts) == "table" and ts.code == "CANCELLED" then error(ts, 0) end
      srv._tls_failures = (srv._tls_failures or 0) + 1
      if C.debug() then
        io.stderr:write(("corio: [debug] TLS handshake with %s:%s failed: %s\n")
          :format(tostring(peer[2]), tostring(peer[3]), tostring(ts)))
      end
      return
    end
    local hok, err = pcall(handler, ts)
    local cok = pcall(ts.close, ts)
    if not cok then ts:abort() end
    if not hok then
      -- The peer broke the TLS session: its fault, not the handler's.
      if type(err) == "table" and QUIET[err.code] then return end
      error(err, 0)
    end
  end, opts)
  srv._tls_failures = 0
  return srv
end

-- }====================================================================


-- {====================================================================
-- For corio.net's protocol/transport API: `tls = ctx or opts`
-- =====================================================================

-- The options of tls.connect / tls.serve from net's opts and its `tls`.
local function check_tls_table(t, fname, n)
  for k in pairs(t) do
    if not TLS_TABLE_KEYS[k] then
      A.argerror(n or 4, fname, ("option 'tls' has an unknown key %s")
        :format(type(k) == "string" and "'" .. k .. "'" or
                "(a " .. type(k) .. ")"))
    end
  end
end

local function merged(opts, server, fname, n)
  n = n or 4
  local t = opts.tls
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.tls = nil
  if C.is_context(t) then
    o.context = t
  elseif type(t) == "table" then
    check_tls_table(t, fname, n)
    for k, v in pairs(t) do o[k] = v end
    -- One context per `tls` table, whatever the outer table is.
    o.context = o.context or context_of(t, server, n, fname)
  elseif not (t == true and not server) then
    A.argerror(n, fname, "option 'tls' must be a TLS " ..
      "context or a table")
  end
  return o
end

-- The client context a `tls` option (nil, a table or a Context) stands
-- for: its identity tells connections made with different options apart
-- (corio.http keys its pool on it).
function tls._client_context(t)
  if C.is_context(t) then return t end
  if type(t) == "table" then check_tls_table(t, "request") end
  return context_of(t, false, 4, "create_connection")
end

function tls._connect_for(host, port, opts, fname, n)
  return tls.connect(host, port, merged(opts, false,
    fname or "create_connection", n))
end

function tls._serve_for(host, port, handler, opts, fname, n)
  local o = merged(opts, true, fname or "create_server", n)
  return tls.serve(host, port, handler, o)
end

-- }====================================================================

tls.openssl_version = C.openssl_version()

return tls
