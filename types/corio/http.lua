---@meta corio.http
-- LuaLS definitions of `require "corio.http"` (docs/API-http.md).

---Options of `http.request` and its sugar.
---@class corio.http.RequestOptions
---@field headers? table<string, string>|string[][]
---@field body? string|corio.Stream|fun(): string?
---@field json? any
---@field query? table<string, string|number>
---@field timeout? number the whole exchange (300)
---@field connect_timeout? number (30)
---@field read_timeout? number between reads (60)
---@field follow_redirects? boolean true for GET/HEAD; a redirect that would resend a Stream or function body (307/308, or 301/302 after a method other than POST) is returned, not followed
---@field max_redirects? integer (10)
---@field decompress? boolean (true)
---@field max_header_size? integer (64 KiB)
---@field max_headers? integer (100)
---@field expect_continue? boolean (false)
---@field tls? corio.TlsOptions|corio.TlsContext
---@field client? corio.http.Client

---Options of `http.client`: the pool's own, and any request option as a
---default for every request of the pool.
---@class corio.http.ClientOptions: corio.http.RequestOptions
---@field max_connections? integer a request past it waits for a slot (100)
---@field max_per_host? integer (0: no limit)
---@field max_idle_per_host? integer (100)
---@field idle_timeout? number an older idle connection is closed, not reused (90)

---Options of `http.websocket` (docs/API-websocket.md).
---@class corio.http.WebSocketOptions
---@field protocols? string[] subprotocols offered
---@field headers? table<string, string>|string[][] extra request fields
---@field origin? string the Origin field
---@field max_message_size? integer past it: close 1009 (16 MiB)
---@field close_timeout? number close() waits this long for the peer's close frame (10)
---@field connect_timeout? number TCP and TLS (30)
---@field handshake_timeout? number the upgrade exchange (60)
---@field tls? corio.TlsOptions|corio.TlsContext for wss://

---Case-insensitive header fields: `h["content-type"]`.
---@class corio.http.Headers
---@field [string] string

---A response to a client request.
---@class corio.http.Response
---@field status integer
---@field reason string
---@field version string
---@field url string after redirects
---@field headers corio.http.Headers
local Response = {}
---@async
---Up to n bytes, or a line ("l"), or all ("a"), as Stream:read.
function Response:read(...) end
---@async
function Response:lines(...) end
---@async
---@param limit? integer (64 MiB)
---@return string
function Response:body(limit) end
---@async
---@return any
function Response:json() end
function Response:close() end

---A WebSocket (RFC 6455): `http.websocket` or `req:websocket()`
---(docs/API-websocket.md).
---@class corio.WebSocket
---@field close_code integer? after the peer closed
---@field close_reason string?
---@field protocol string? the subprotocol chosen
local WebSocket = {}
---@async
---@param data string
---@param kind? "text"|"binary" (text)
function WebSocket:send(data, kind) end
---@async
---@return string? data nil when the peer closed
---@return ("text"|"binary")? kind
function WebSocket:receive() end
---@async
---@param data? string
function WebSocket:ping(data) end
---@async
---@param code? integer (1000)
---@param reason? string
function WebSocket:close(code, reason) end

---A connection pool.
---@class corio.http.Client
local Client = {}
---@async
---@param method string
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:request(method, url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:get(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:head(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:delete(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:options(url, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:post(url, body, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:put(url, body, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function Client:patch(url, body, opts) end
function Client:close() end

---A request a server handler receives.
---@class corio.http.Request
---@field method string
---@field target string
---@field path string
---@field query table<string, string>
---@field version string
---@field headers corio.http.Headers
---@field peer { host: string, port: integer }
local Request = {}
---@async
function Request:read(...) end
---@async
function Request:lines(...) end
---@async
---@param limit? integer
---@return string
function Request:body(limit) end
---@async
---@return any
function Request:json() end
---@async
---Answers the upgrade; see docs/API-websocket.md.
---@param opts? table
---@return corio.WebSocket
function Request:websocket(opts) end

---The `res` a server handler writes to.
---@class corio.http.ServerResponse
---@field headers_sent boolean
local ServerResponse = {}
---@param status integer
---@param headers? table<string, string>|string[][]
function ServerResponse:write_head(status, headers) end
---@async
function ServerResponse:write(...) end
---@async
---@param data? string
function ServerResponse:finish(data) end

---@class corio.http
---@field DEFAULTS { client: table, server: table } every default, one table each
local http = {}

---@async
---@param method string
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.request(method, url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.get(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.head(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.delete(url, opts) end
---@async
---@param url string
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.options(url, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.post(url, body, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.put(url, body, opts) end
---@async
---@param url string
---@param body? string|corio.Stream|fun(): string? as opts.body
---@param opts? corio.http.RequestOptions
---@return corio.http.Response
function http.patch(url, body, opts) end

---@param opts? corio.http.ClientOptions
---@return corio.http.Client
function http.client(opts) end

---@param init? table|corio.http.Headers
---@return corio.http.Headers
function http.headers(init) end

---@async
---Opens a WebSocket client; opts as docs/API-websocket.md, plus `tls`,
---`connect_timeout` (30) and `handshake_timeout` (60): past either, TIMEOUT.
---@param url string ws:// or wss://
---@param opts? corio.http.WebSocketOptions
---@return corio.WebSocket
function http.websocket(url, opts) end

---Options of `http.serve` besides every `net.serve` option (docs/API-http.md).
---@class corio.http.ServeOptions
---@field header_timeout? number from a head's first byte (60)
---@field request_timeout? number for the handler (300)
---@field idle_timeout? number between keep-alive requests (65)
---@field write_timeout? number for a client to take queued bytes (60)
---@field max_header_size? integer (16 KiB)
---@field max_headers? integer (100)
---@field max_body_size? integer (1 MiB)
---@field max_url_size? integer (8 KiB)
---@field max_requests? integer per connection (0: no limit)
---@field on_error? fun(err: any, req: corio.http.Request) each handler failure, once (default: stderr)
---@field tls? corio.TlsOptions|corio.TlsContext HTTPS

---@param host string
---@param port integer
---@param handler async fun(req: corio.http.Request, res: corio.http.ServerResponse): (integer?, table?, any?)
---@param opts? corio.http.ServeOptions|table
---@return corio.Server
function http.serve(host, port, handler, opts) end

return http
