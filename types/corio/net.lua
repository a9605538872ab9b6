---@meta corio.net
-- LuaLS definitions of `require "corio.net"` (docs/API-net.md).

---@alias corio.ReadFormat "l"|"L"|"a"|"*l"|"*L"|"*a"|integer

---A byte stream: TCP, unix socket, pipe, tty, process pipe or stdio.
---@class corio.Stream
local Stream = {}

---Reads by Lua's formats: `n` (up to n bytes), "l", "L", "a"; nil at EOF.
---@async
---@param ... corio.ReadFormat
---@return string? ...
function Stream:read(...) end

---Reading ends here as if the peer had sent EOF (what is buffered can
---still be read).
function Stream:shutdown_read() end

---TLS details of a TLS stream (corio.tls); nil on a plain Stream.
---@return corio.TlsInfo?
function Stream:tls_info() end

---Iterator over `s:read(...)`.
---@param ... corio.ReadFormat
---@return fun(): string?
function Stream:lines(...) end

---Exactly `n` bytes; INCOMPLETE (with `partial`) at EOF after some; nil at a clean EOF.
---@async
---@param n integer
---@return string?
function Stream:readexactly(n) end

---Data up to and including `sep` (default "\n").
---@async
---@param sep? string
---@return string?
function Stream:readuntil(sep) end

---@return boolean eof EOF seen and nothing buffered
function Stream:at_eof() end

---What a read would find now, without reading or waiting.
---@return "data"|"eof"|nil what buffered or waiting bytes, the end, or nothing yet
function Stream:pending() end

---Queues strings or numbers; in a task, waits above the high-water mark.
---@async
---@param ... string|number
---@return corio.Stream self
function Stream:write(...) end

---write that never waits.
---@param ... string|number
---@return integer queued bytes queued
function Stream:write_nowait(...) end

---Waits until everything queued is written.
---@async
function Stream:drain() end

---@return integer bytes queued
function Stream:get_write_buffer_size() end

---@param high integer
---@param low? integer default high / 2
function Stream:set_write_buffer_limits(high, low) end

---@return integer high
---@return integer low
function Stream:get_write_buffer_limits() end

---Sends EOF after what is queued and waits for it (a half-close).
---@async
function Stream:shutdown() end

---Flushes what is queued, then closes; idempotent, also `__close`.
---@async
function Stream:close() end

---close that never waits.
function Stream:close_nowait() end

---Closes now, dropping what is queued; "reset" on TCP also drops what the
---kernel still holds and sends the peer a RST.
---@param how? "close"|"reset"
function Stream:abort(how) end

---@return boolean
function Stream:closed() end

---@return string host a path for unix sockets
---@return integer? port
function Stream:peername() end

---@return string host
---@return integer? port
function Stream:sockname() end

---@param on boolean
function Stream:set_nodelay(on) end

---@param on boolean
---@param delay? number seconds
function Stream:set_keepalive(on, delay) end

---A listening TCP or unix server.
---@class corio.Server
local Server = {}

---@return string host a path for unix servers
---@return integer? port
function Server:address() end

---@return { connections: integer, tls_failures: integer }
function Server:stats() end

---Every client's reading ends as if it had sent EOF; streams close when
---their handlers return.
function Server:close_clients() end

---Every client's stream is closed now; waiting handlers get CLOSED.
function Server:abort_clients() end

---Stops accepting; running handlers go on. Idempotent, also `__close`.
function Server:close() end

---Returns once the server is closed and every handler has finished.
---@async
function Server:wait_closed() end

---Waits until the server is closed; cancelling closes it.
---@async
function Server:serve_forever() end

---@return boolean
function Server:is_serving() end

---@return integer handlers running
function Server:connections() end

---A UDP socket (`net.udp()`).
---@class corio.UdpSocket
local UdpSocket = {}

---@param host string
---@param port integer
---@param reuseaddr? boolean
function UdpSocket:bind(host, port, reuseaddr) end

---@return string host
---@return integer port
function UdpSocket:sockname() end

---Sets the default destination (only its datagrams arrive).
---@param host string
---@param port integer
function UdpSocket:connect(host, port) end

---@return string host
---@return integer port
function UdpSocket:peername() end

---@async
---@param data string
---@param host string
---@param port integer
function UdpSocket:sendto(data, host, port) end

---@async
---@param data string
function UdpSocket:send(data) end

---The next datagram.
---@async
---@return string data
---@return string host
---@return integer port
function UdpSocket:recvfrom() end

function UdpSocket:close() end

---@param on boolean
function UdpSocket:set_broadcast(on) end

---@param n integer
function UdpSocket:set_ttl(n) end

---@param n integer
function UdpSocket:set_multicast_ttl(n) end

---@param on boolean
function UdpSocket:set_multicast_loop(on) end

---@param ip string
function UdpSocket:set_multicast_interface(ip) end

---@param group string
---@param iface? string
function UdpSocket:add_membership(group, iface) end

---@param group string
---@param iface? string
function UdpSocket:drop_membership(group, iface) end

---asyncio's transport, handed to a protocol's `connection_made`.
---@class corio.Transport
local Transport = {}

---@param data string
function Transport:write(data) end

---@param list string[]
function Transport:writelines(list) end

---Flushes, then closes.
function Transport:close() end

function Transport:abort() end

function Transport:write_eof() end

---@return boolean
function Transport:can_write_eof() end

function Transport:pause_reading() end

function Transport:resume_reading() end

---@return boolean
function Transport:is_reading() end

---@return boolean
function Transport:is_closing() end

---@return integer
function Transport:get_write_buffer_size() end

---@param high integer
---@param low? integer
function Transport:set_write_buffer_limits(high, low) end

---"peername", "sockname" (host, port) or "stream" (the Stream).
---@param name "peername"|"sockname"|"stream"
---@param default? any
---@return any ...
function Transport:get_extra_info(name, default) end

---The methods a protocol may have (all optional).
---@class corio.Protocol
---@field connection_made? fun(self: corio.Protocol, transport: corio.Transport)
---@field data_received? fun(self: corio.Protocol, data: string)
---@field eof_received? fun(self: corio.Protocol): boolean?
---@field connection_lost? fun(self: corio.Protocol, err: corio.Error?)
---@field pause_writing? fun(self: corio.Protocol)
---@field resume_writing? fun(self: corio.Protocol)

---@class corio.StreamOptions
---@field limit? integer the readers' buffer limit (LIMIT past it)
---@field high_water? integer write high-water mark, default 64 KiB
---@field nodelay? boolean TCP_NODELAY, default true

---@class corio.ConnectOptions : corio.StreamOptions
---@field local_host? string bind to this numeric address first
---@field local_port? integer
---@field family? "inet"|"inet6"
---@field tls? corio.TlsContext|corio.TlsOptions|true a TLS Stream (as tls.connect), options checked before connecting

---@class corio.ServeOptions : corio.StreamOptions
---@field backlog? integer default 511
---@field reuseport? boolean
---@field ipv6_only? boolean
---@field max_connections? integer handlers at a time
---@field tls? corio.TlsContext|corio.TlsOptions a TLS server (as tls.serve)

---@class corio.UdpOptions
---@field family? "inet"|"inet6"
---@field host? string bind at once
---@field port? integer
---@field reuseaddr? boolean
---@field broadcast? boolean

---@class corio.net
---@field Server corio.Server the Server class
---@field Transport corio.Transport the Transport class
---@field stdin corio.Stream
---@field stdout corio.Stream
---@field stderr corio.Stream
local net = {}

---TCP client.
---@async
---@param host string
---@param port integer
---@param opts? corio.ConnectOptions
---@return corio.Stream
function net.connect(host, port, opts) end

---TCP server: each connection runs `handler(stream)` in a task.
---@param host string? nil: "0.0.0.0"
---@param port integer 0: a free port
---@param handler async fun(stream: corio.Stream)
---@param opts? corio.ServeOptions
---@return corio.Server
function net.serve(host, port, handler, opts) end

---@async
---@param path string
---@param opts? corio.StreamOptions
---@return corio.Stream
function net.connect_unix(path, opts) end

---@param path string
---@param handler async fun(stream: corio.Stream)
---@param opts? corio.ServeOptions
---@return corio.Server
function net.serve_unix(path, handler, opts) end

---@param opts? corio.UdpOptions
---@return corio.UdpSocket
function net.udp(opts) end

---Async getaddrinfo.
---@async
---@param host string
---@param opts? { family?: "inet"|"inet6", port?: integer }
---@return { addr: string, family: "inet"|"inet6", port?: integer }[]
function net.resolve(host, opts) end

---Async getnameinfo.
---@async
---@param addr string
---@param port? integer
---@return string hostname
---@return string service
function net.reverse(addr, port) end

---@param host string
---@return boolean
function net.is_ip(host) end

---A server whose connections each get `factory()`'s protocol.
---@param factory fun(): corio.Protocol
---@param host string?
---@param port integer
---@param opts? corio.ServeOptions
---@return corio.Server
function net.create_server(factory, host, port, opts) end

---@async
---@param factory fun(): corio.Protocol
---@param host string
---@param port integer
---@param opts? corio.ConnectOptions
---@return corio.Transport
---@return corio.Protocol
function net.create_connection(factory, host, port, opts) end

return net
