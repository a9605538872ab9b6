--[[
corio.net -- TCP and unix streams, servers, UDP, DNS, the protocol /
transport API and stdio streams.

The mechanism is in C (corio._net: Stream, Listener, UdpSocket, DNS
requests); this file is the policy: name resolution before connect /
bind, trying each address in turn, handler tasks of a Server and their
bookkeeping, and protocols on top of Streams.  See docs/API-net.md.
]]
local core = require "corio.core"
local C = require "corio._net"

local spawn, future, current = core.spawn, core.future, core.current
local type, select, error, pcall, setmetatable, getmetatable, ipairs,
  tostring = type, select, error, pcall, setmetatable, getmetatable, ipairs,
  tostring
local math_type = math.type

local net = {}

-- {====================================================================
-- Argument checks (misuse raises Lua's standard "bad argument" error)
-- =====================================================================

local argerror = require("corio._args").argerror  -- at the user's line

local function check_type(v, n, fname, want, optional)
  local t = type(v)
  if t ~= want and not (optional and v == nil) then
    argerror(n, fname, want .. " expected, got " ..
      (v == nil and "no value" or t))
  end
end

-- What a bad value is, for a message: numbers as they are (1e+300, inf,
-- nan), anything else by its type.
local function describe(v)
  if type(v) == "number" then return tostring(v) end
  return v == nil and "no value" or type(v)
end

-- A port number: an integer 0-65535 (a float with such a value, 80.0, is
-- taken too).  math.tointeger gives nil for fractions, infinities, NaN and
-- floats beyond the integers, so each of those is a bad argument rather
-- than a failed comparison with nil.
local function port_of(v)
  local p = type(v) == "number" and math.tointeger(v)
  if p and p >= 0 and p <= 65535 then return p end
end

local function check_port(v, n, fname)
  local p = port_of(v)
  if not p then
    argerror(n, fname, "port must be an integer 0-65535, got " .. describe(v))
  end
  return p
end

-- Is host a numeric IPv4 or IPv6 address (no resolution needed)?
local function is_ip(host)
  check_type(host, 1, "is_ip", "string")
  return host:find(":", 1, true) ~= nil or
    host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
end

local FAMILIES = { inet = "inet", inet6 = "inet6", [4] = "inet", [6] = "inet6",
  ipv4 = "inet", ipv6 = "inet6" }

-- Integer options and their least values.  The C side reads them as they
-- are (a negative limit would become a huge size_t), so they are checked
-- here, where the caller's name and argument number are known.
local INT_OPTS = { { "limit", 1 }, { "high_water", 0 }, { "backlog", 0 },
  { "max_connections", 0 } }

local function check_opts(v, n, fname)
  check_type(v, n, fname, "table", true)
  if v == nil then return v end
  for _, o in ipairs(INT_OPTS) do
    local key, min = o[1], o[2]
    local x = v[key]
    if x ~= nil and (math_type(x) ~= "integer" or x < min) then
      argerror(n, fname, ("option '%s' must be an integer >= %d, got %s")
        :format(key, min, describe(x)))
    end
  end
  if v.local_port ~= nil and not port_of(v.local_port) then
    argerror(n, fname, "option 'local_port' must be an integer 0-65535, got "
      .. describe(v.local_port))
  end
  if v.local_host ~= nil and
      not (type(v.local_host) == "string" and is_ip(v.local_host)) then
    argerror(n, fname, "option 'local_host' must be a numeric IP address")
  end
  if v.family ~= nil and not FAMILIES[v.family] then
    argerror(n, fname, "bad family '" .. tostring(v.family) .. "'")
  end
  return v
end

-- Methods written in Lua check self (a metatable identity test), so that
-- Transport.write(nil, "x") fails at once with a clear message rather than
-- later, maybe in a task of its own.
local check_self = require("corio._args").check_self

-- }====================================================================


-- {====================================================================
-- Names and addresses
-- =====================================================================

net.is_ip = is_ip

--- resolve(host [, opts]) -> { {addr=, family=}, ... }
-- opts.family: "inet" / "inet6" (or 4 / 6); opts.port: a service or port
-- (adds `port` to each entry).
function net.resolve(host, opts)
  check_type(host, 1, "resolve", "string")
  check_opts(opts, 2, "resolve")
  local family = opts and opts.family and FAMILIES[opts.family]
  return C.getaddrinfo(host, family, opts and opts.port and
    tostring(opts.port) or nil)
end

--- reverse(addr) -> hostname, service
function net.reverse(addr, port)
  check_type(addr, 1, "reverse", "string")
  if not is_ip(addr) then argerror(1, "reverse", "numeric IP address expected") end
  return C.getnameinfo(addr, port and check_port(port, 2, "reverse") or 0)
end

-- The addresses to try for host: itself when numeric, else resolved.
local function addresses(host, family)
  if is_ip(host) then return { { addr = host } } end
  local list = net.resolve(host, { family = family })
  if #list == 0 then
    error(core.Error("EAI_NONAME", "no address for " .. host,
      { op = "resolve", host = host }), 0)
  end
  return list
end

-- }====================================================================


-- {====================================================================
-- Streams: connect
-- =====================================================================

--- connect(host, port [, opts]) -> Stream
-- opts: local_host, local_port, nodelay (default true), limit,
-- high_water, family.  Each resolved address is tried in turn.
function net.connect(host, port, opts)
  check_type(host, 1, "connect", "string")
  port = check_port(port, 2, "connect")
  check_opts(opts, 3, "connect")
  -- opts.tls (a TLS context or its options, checked before connecting):
  -- the stream is corio.tls's, as with create_connection.
  if opts and opts.tls then
    return require("corio.tls")._connect_for(host, port, opts, "connect", 3)
  end
  if is_ip(host) then return C.tcp_connect(host, port, opts) end
  local last
  for _, a in ipairs(addresses(host, opts and opts.family)) do
    local ok, s = pcall(C.tcp_connect, a.addr, port, opts)
    if ok then return s end
    if type(s) ~= "table" or s.code == "CANCELLED" then error(s, 0) end
    last = s
  end
  last.host = host
  error(last, 0)
end

--- connect_unix(path [, opts]) -> Stream
function net.connect_unix(path, opts)
  check_type(path, 1, "connect_unix", "string")
  check_opts(opts, 2, "connect_unix")
  return C.unix_connect(path, opts)
end

-- }====================================================================


-- {====================================================================
-- Servers
--
-- Each connection runs handler(stream) in a task of its own.  When the
-- handler returns (or fails) the stream is closed (flushed); errors that
-- only say the peer went away (ECONNRESET, EPIPE, ...) or that the stream
-- was closed under the handler end it quietly; any other error fails the
-- task, which corio reports as an unhandled error.
-- =====================================================================

local PEER_ERRORS = { ECONNRESET = true, EPIPE = true, ECONNABORTED = true,
  ETIMEDOUT = true, ENOTCONN = true, EHOSTUNREACH = true, ENETUNREACH = true }

local Server = { __name = "corio.Server" }
Server.__index = Server
net.Server = Server

local function finish_handler(srv, task)
  srv._tasks[task] = nil   -- task -> { its stream, its accept number }
  srv._n = srv._n - 1
  srv._l:conn_done()
  if srv._n == 0 and srv._closed and srv._idle and not srv._idle:done() then
    srv._idle:set_result()
  end
end

local function run_handler(srv, handler, stream)
  local ok, err = pcall(handler, stream)
  local cok, cerr = pcall(stream.close, stream)
  if not cok then stream:abort() end
  finish_handler(srv, current())
  if not ok then
    local code = type(err) == "table" and err.code
    if code == "CANCELLED" or not (PEER_ERRORS[code] or
        (code == "CLOSED" and stream:closed())) then
      error(err, 0)
    end
  end
  if not cok then error(cerr, 0) end
end

-- A new Server and the callback its Listener calls with each Stream.
local function new_server(handler)
  local srv = setmetatable({ _tasks = {}, _n = 0, _accepted = 0,
    _closed = false }, Server)
  return srv, function(stream)
    local t = spawn(run_handler, srv, handler, stream)
    srv._accepted = srv._accepted + 1
    srv._tasks[t] = { stream, srv._accepted }
    srv._n = srv._n + 1
  end
end

--- serve(host, port, handler [, opts]) -> Server
-- host nil means every IPv4 interface ("0.0.0.0"); port 0 picks a free
-- port (see server:address()).  opts: backlog, reuseport, ipv6_only,
-- max_connections, and for each connection limit, high_water, nodelay.
function net.serve(host, port, handler, opts)
  check_type(host, 1, "serve", "string", true)
  port = check_port(port, 2, "serve")
  check_type(handler, 3, "serve", "function")
  check_opts(opts, 4, "serve")
  -- opts.tls: a TLS server, as with create_server (tls.serve).
  if opts and opts.tls then
    return require("corio.tls")._serve_for(host, port, handler, opts,
      "serve", 4)
  end
  host = host or "0.0.0.0"
  local ip = addresses(host, opts and opts.family)[1].addr
  local srv, on_conn = new_server(handler)
  srv._l = C.tcp_listen(ip, port, on_conn, opts or {})
  return srv
end

--- serve_unix(path, handler [, opts]) -> Server
function net.serve_unix(path, handler, opts)
  check_type(path, 1, "serve_unix", "string")
  check_type(handler, 2, "serve_unix", "function")
  check_opts(opts, 3, "serve_unix")
  local srv, on_conn = new_server(handler)
  srv._l = C.unix_listen(path, on_conn, opts or {})
  return srv
end

--- address() -> host, port (a path for a unix server)
function Server:address()
  check_self(self, Server, "address")
  return self._l:address()
end

--- close(): stops accepting; running handlers go on.  Idempotent.
function Server:close()
  check_self(self, Server, "close")
  if self._closed then return end
  self._closed = true
  self._l:close()
  if self._stop and not self._stop:done() then self._stop:set_result() end
  if self._n == 0 and self._idle and not self._idle:done() then
    self._idle:set_result()
  end
end
Server.__close = Server.close

-- Each running handler's stream, taken first: ending one may end its
-- handler, which changes srv._tasks.  In accept order: a table keyed by
-- tasks iterates in the order of their addresses, and which handler sees
-- its EOF or CLOSED first would change from run to run
-- (tests/regress/server_clients_in_address_order_spec.lua).
local function by_accept(a, b) return a[2] < b[2] end

local function client_streams(srv)
  local list = {}
  for _, entry in pairs(srv._tasks) do list[#list + 1] = entry end
  table.sort(list, by_accept)
  for i = 1, #list do list[i] = list[i][1] end
  return list
end

--- close_clients(): every connected client's reading ends as if it had
-- sent EOF (what it sent before is still read); handlers see EOF, and
-- their streams are closed, flushed, when they return.  With close(),
-- a SIGTERM handler stops a server with idle keep-alive peers.
function Server:close_clients()
  check_self(self, Server, "close_clients")
  for _, stream in ipairs(client_streams(self)) do
    if not stream:closed() then stream:shutdown_read() end
  end
end

--- abort_clients(): every connected client's stream is closed now,
-- dropping what is queued; handlers waiting on it get CLOSED, which ends
-- them quietly.
function Server:abort_clients()
  check_self(self, Server, "abort_clients")
  for _, stream in ipairs(client_streams(self)) do stream:abort() end
end

function Server:is_serving()
  check_self(self, Server, "is_serving")
  return not self._closed
end

--- connections() -> number of handlers running
function Server:connections()
  check_self(self, Server, "connections")
  return self._n
end

--- stats() -> { connections = handlers running, tls_failures = failed
-- TLS handshakes (tls.serve; 0 for a plain server) }
function Server:stats()
  check_self(self, Server, "stats")
  return { connections = self._n, tls_failures = self._tls_failures or 0 }
end

--- wait_closed(): returns once the server is closed and every handler
-- task has finished.
function Server:wait_closed()
  check_self(self, Server, "wait_closed")
  if self._closed and self._n == 0 then return end
  if not self._idle then self._idle = future() end
  self._idle:await()
end

--- serve_forever(): waits until the server is closed; cancelling the
-- waiting task closes the server.
function Server:serve_forever()
  check_self(self, Server, "serve_forever")
  if self._closed then return end
  if not self._stop then self._stop = future() end
  local ok, err = pcall(self._stop.await, self._stop)
  if not ok then
    self:close()
    error(err, 0)
  end
end

function Server:__tostring()
  check_self(self, Server, "__tostring")
  if self._closed then return "corio.Server (closed)" end
  local host, port = self._l:address()
  return ("corio.Server (%s%s)"):format(host, port and (":" .. port) or "")
end

-- }====================================================================


-- {====================================================================
-- UDP
-- =====================================================================

local udp_methods = C.udp_methods
local c_bind, c_connect, c_sendto =
  udp_methods.bind, udp_methods.connect, udp_methods.sendto

-- A numeric address for host (resolved if it is a name).
local function ip_of(host, fname, n)
  check_type(host, n, fname, "string")
  if is_ip(host) then return host end
  return addresses(host)[1].addr
end

--- sock:bind(host, port [, reuseaddr])
function udp_methods.bind(self, host, port, reuseaddr)
  port = check_port(port, 2, "bind")
  return c_bind(self, ip_of(host, "bind", 1), port, reuseaddr)
end

--- sock:connect(host, port)
function udp_methods.connect(self, host, port)
  port = check_port(port, 2, "connect")
  return c_connect(self, ip_of(host, "connect", 1), port)
end

--- sock:sendto(data, host, port)
function udp_methods.sendto(self, data, host, port)
  check_type(data, 1, "sendto", "string")
  port = check_port(port, 3, "sendto")
  return c_sendto(self, data, ip_of(host, "sendto", 2), port)
end

--- udp([opts]) -> UdpSocket
-- opts: family ("inet" or "inet6"), host and port (bind at once),
-- reuseaddr, broadcast.
function net.udp(opts)
  check_opts(opts, 1, "udp")
  opts = opts or {}
  local family = opts.family and FAMILIES[opts.family]
  local ip
  if opts.host ~= nil then
    check_type(opts.host, 1, "udp", "string")
    ip = is_ip(opts.host) and opts.host or
      addresses(opts.host, family)[1].addr
    family = family or (ip:find(":", 1, true) and "inet6" or "inet")
  end
  local sock = C.udp(family)
  if ip or opts.port then
    local ok, err = pcall(c_bind, sock, ip or (family == "inet6" and "::" or
      "0.0.0.0"), check_port(opts.port or 0, 1, "udp"), opts.reuseaddr)
    if not ok then
      sock:close()
      error(err, 0)
    end
  end
  if opts.broadcast then sock:set_broadcast(true) end
  return sock
end

-- }====================================================================


-- {====================================================================
-- Protocols and transports (asyncio's low-level API, on Streams)
--
-- A task per connection reads the stream and calls the protocol:
-- connection_made(transport) first, data_received(data) for each chunk,
-- eof_received() at EOF (if it returns true the transport stays open for
-- writing until closed), and connection_lost(err) last (err nil after a
-- clean close or EOF).  Transport writes never wait: above the stream's
-- high-water mark the protocol gets pause_writing(), and resume_writing()
-- once the buffer has drained.
-- =====================================================================

local Transport = { __name = "corio.Transport" }
Transport.__index = Transport
net.Transport = Transport

local function call(proto, name, ...)
  local f = proto[name]
  if f then return f(proto, ...) end
end

local function new_transport(stream, proto)
  return setmetatable({ _s = stream, _proto = proto, _paused = false,
    _closing = false, _wpaused = false }, Transport)
end

-- Once closing (close, abort, or the connection ended), what would send
-- raises CLOSED, as a closed Stream's methods do: data silently dropped
-- would hide the bug.
local function check_open(self, op)
  if self._closing then
    error(core.Error("CLOSED", "transport is closed", { op = op }), 0)
  end
end

--- write(data): queues data; never waits.  CLOSED once closing.
function Transport:write(data)
  check_self(self, Transport, "write")
  check_open(self, "write")
  local s = self._s
  local n = s:write_nowait(data)
  if n > (s:get_write_buffer_limits()) and not self._wpaused then
    self._wpaused = true
    call(self._proto, "pause_writing")
    spawn(function()
      pcall(s.drain, s)
      self._wpaused = false
      if not self._closing then call(self._proto, "resume_writing") end
    end)
  end
end

function Transport:writelines(list)
  check_self(self, Transport, "writelines")
  check_open(self, "writelines")
  check_type(list, 1, "writelines", "table")
  for _, data in ipairs(list) do self:write(data) end
end

--- close(): sends what is queued, then closes; connection_lost follows.
function Transport:close()
  check_self(self, Transport, "close")
  if self._closing then return end
  self._closing = true
  self._s:close_nowait()
  self:resume_reading()
end

--- abort(): closes now, dropping what is queued.
function Transport:abort()
  check_self(self, Transport, "abort")
  self._closing = true
  self._s:abort()
  self:resume_reading()
end

function Transport:is_closing()
  check_self(self, Transport, "is_closing")
  return self._closing
end

-- Once closing, pause_reading and resume_reading change nothing: the
-- reading loop has stopped, or stops at its next step.
function Transport:pause_reading()
  check_self(self, Transport, "pause_reading")
  self._paused = true
end

function Transport:resume_reading()
  check_self(self, Transport, "resume_reading")
  self._paused = false
  local f = self._resume
  if f then
    self._resume = nil
    f:set_result()
  end
end

function Transport:is_reading()
  check_self(self, Transport, "is_reading")
  return not self._paused and not self._closing
end

--- write_eof(): sends EOF after what is queued (a half-close).  CLOSED
-- once closing.
function Transport:write_eof()
  check_self(self, Transport, "write_eof")
  check_open(self, "write_eof")
  local s = self._s
  spawn(function() pcall(s.shutdown, s) end)
end

function Transport:can_write_eof()
  check_self(self, Transport, "can_write_eof")
  return true
end

function Transport:get_write_buffer_size()
  check_self(self, Transport, "get_write_buffer_size")
  return self._s:get_write_buffer_size()
end

function Transport:set_write_buffer_limits(high, low)
  check_self(self, Transport, "set_write_buffer_limits")
  return self._s:set_write_buffer_limits(high, low)
end

--- get_extra_info(name [, default]): "peername" and "sockname" give
-- host, port (or a path); "stream" the underlying Stream.
function Transport:get_extra_info(name, default)
  check_self(self, Transport, "get_extra_info")
  local s = self._s
  if name == "stream" then return s end
  if name == "peername" or name == "sockname" then
    local ok, a, b = pcall(s[name], s)
    if ok then return a, b end
  end
  return default
end

-- Waits while reading is paused (or, with wait_close, until closing).
local function hold(transport, wait_close)
  while (transport._paused or wait_close) and not transport._closing do
    transport._resume = future()
    transport._resume:await()
  end
end

-- The reading loop of one connection (runs in its own task).  Returns
-- the error that ended it (nil for a clean end); raises what a protocol
-- callback raised.
local function read_loop(stream, proto, transport)
  while true do
    hold(transport)
    local ok, data = pcall(stream.read, stream, 65536)
    if not ok then return data end
    if data == nil then
      if call(proto, "eof_received") then hold(transport, true) end
      return nil
    end
    hold(transport)
    -- Closed while the data waited (reading paused): as in asyncio, no
    -- data_received after close (its writes would raise CLOSED).
    if transport._closing then return nil end
    call(proto, "data_received", data)
  end
end

local function run_protocol(stream, proto, transport)
  local ok, err = pcall(read_loop, stream, proto, transport)
  local code = type(err) == "table" and err.code
  if ok and code == "CLOSED" and transport._closing then err = nil end
  if ok and code ~= "CANCELLED" then
    transport._closing = true
    stream:close_nowait()
    call(proto, "connection_lost", err)
    return
  end
  -- Cancelled, or a protocol callback failed: drop the connection, tell
  -- the protocol, and let the error go on (a failure is reported).
  transport:abort()
  pcall(call, proto, "connection_lost", err)
  error(err, 0)
end

-- A new connection's protocol and transport, connection_made done.
local function start_protocol(factory, stream, fname)
  local proto = factory()
  if type(proto) ~= "table" then
    argerror(1, fname, "protocol factory returned " .. type(proto) ..
      ", a protocol table expected")
  end
  local transport = new_transport(stream, proto)
  call(proto, "connection_made", transport)
  return proto, transport
end

--- create_connection(factory, host, port [, opts]) -> transport, protocol
function net.create_connection(factory, host, port, opts)
  check_type(factory, 1, "create_connection", "function")
  check_type(host, 2, "create_connection", "string")
  port = check_port(port, 3, "create_connection")
  check_opts(opts, 4, "create_connection")
  -- opts.tls (a TLS context or its options): the stream is corio.tls's.
  local stream = opts and opts.tls
    and require("corio.tls")._connect_for(host, port, opts,
      "create_connection", 4)
    or net.connect(host, port, opts)
  -- Until its reading task runs, the connection is ours: if the factory
  -- or connection_made fails, close it now rather than leave it to the GC.
  local ok, proto, transport = pcall(start_protocol, factory, stream,
    "create_connection")
  if not ok then
    stream:abort()
    error(proto, 0)
  end
  spawn(run_protocol, stream, proto, transport)
  return transport, proto
end

--- create_server(factory, host, port [, opts]) -> Server
-- A factory or connection_made that fails fails the connection's handler
-- (its stream is closed, the error reported); the server goes on.
function net.create_server(factory, host, port, opts)
  check_type(factory, 1, "create_server", "function")
  check_type(host, 2, "create_server", "string", true)
  port = check_port(port, 3, "create_server")
  check_opts(opts, 4, "create_server")
  local serve = net.serve
  if opts and opts.tls then serve = require("corio.tls")._serve_for end
  return serve(host, port, function(stream)
    local proto, transport = start_protocol(factory, stream, "create_server")
    run_protocol(stream, proto, transport)
  end, opts)
end

-- }====================================================================


-- {====================================================================
-- stdio: corio.stdin, corio.stdout, corio.stderr (made on first use)
-- =====================================================================

local STDIO = { stdin = 0, stdout = 1, stderr = 2 }

setmetatable(net, {
  __index = function(t, k)
    local fd = STDIO[k]
    if fd == nil then return nil end
    local s = C.stdio(fd)
    rawset(t, k, s)
    return s
  end,
})

-- }====================================================================

return net
