--[==[
corio._ws -- WebSocket (RFC 6455) over any corio Stream (private; corio.http
builds http.websocket and req:websocket on it).  The framing is libwslay's,
in bindings/http/ws.c (corio._wslay); this file holds the policy: the
opening handshake on both sides, the WebSocket object, the close handshake.

  accept_key(key) -> the Sec-WebSocket-Accept value for key
  client_handshake(stream, host, path, opts) -> WebSocket
      writes the GET Upgrade request (a random key), reads the head, checks
      the 101, the accept value, the protocol; opts: protocols (list),
      headers (map or list of {name, value}), origin, max_message_size,
      close_timeout
  check_request(req, opts) -> key, protocol | nil, status, detail
      req = {method=, version=, headers=} with headers indexed by
      lower-case name (a corio.http Headers, or a plain table)
  response(key, protocol, headers) -> the 101 head to write
  accept(stream, req, opts) -> WebSocket
      check_request, then the 101 (or a 400/426 and HTTP_PROTOCOL raised)
  wrap(stream, {client=, max_message_size=, close_timeout=, protocol=})
      -> WebSocket on a stream whose handshake is done
  read_request(stream) -> req      a minimal request-head reader, for
                                   servers without corio.http (tests, the
                                   chat example, the benchmark)
  connect(url, opts) -> WebSocket  ws://host[:port]/path over corio.net
  serve(host, port, handler, opts) -> Server   handler(ws, req)

WebSocket: send(data [, "text"|"binary"]) (text by default; text must be
UTF-8), receive() -> data, kind (nil once the peer closed; close_code and
close_reason then say why), ping([data]), close([code [, reason]]) and
__close.  Pings are answered and pongs never returned; fragments come back
joined.  A peer that breaks the protocol gets a close frame (1002, 1007
invalid UTF-8, 1009 message too big) and receive() raises HTTP_PROTOCOL
(LIMIT for 1009) with close_code set.
]==]
local core = require "corio.core"
local compose = require "corio.compose"
local C = require "corio._wslay"
local A = require "corio._args"

local argerror, check_self, typename = A.argerror, A.check_self, A.typename
local type, error, pcall, tostring, ipairs, pairs, setmetatable, select =
  type, error, pcall, tostring, ipairs, pairs, setmetatable, select
local concat, utf8len, tointeger = table.concat, utf8.len, math.tointeger

local M = {}

-- Every default in one place (docs/API-websocket.md quotes them).
M.defaults = {
  max_message_size = 16 * 1024 * 1024,  -- larger messages: close 1009
  close_timeout = 10,     -- seconds to wait for the peer's close frame
  -- client: TCP connect (and TLS handshake for wss://), as http.request's
  connect_timeout = 30,
  -- client: from the upgrade request sent to the 101 read and checked (a
  -- server that accepts and never answers must not hold the client)
  handshake_timeout = 60,
}
local READ_SIZE = 65536   -- bytes asked of the Stream per read
local Conn = C.Conn       -- the framing state's methods
local pull, cwrite, crecv = Conn.pull, Conn.write, Conn.recv

local OP = { text = 1, binary = 2 }
local KIND = { [1] = "text", [2] = "binary" }
local PING = 9

local function raise(code, msg, op, fields)
  fields = fields or {}
  fields.op = op
  error(core.Error(code, msg, fields), 0)
end

local function protocol_error(detail, op, status)
  raise("HTTP_PROTOCOL", "WebSocket handshake failed: " .. detail, op,
    { detail = detail, status = status })
end

M.accept_key = function(key)
  if type(key) ~= "string" then
    argerror(1, "accept_key", "string expected, got " .. typename(key))
  end
  return C.accept_key(key)
end


-- {====================================================================
-- The WebSocket object
-- =====================================================================
local WebSocket = {}
WebSocket.__index = WebSocket
WebSocket.__name = "corio.WebSocket"

-- Every WebSocket, by weak key: LIVE[self] is the cheap form of
-- check_self on the per-message methods.
local LIVE = setmetatable({}, { __mode = "k" })
-- self[FAST]: the framing state of a WebSocket on a corio Stream that is
-- neither closing nor done: receive and send then go straight to C
-- (conn:pull, conn:write), one lookup standing for every check.  A field
-- rather than a weak table keyed by self (hashed and chained on every
-- message), and an integer key rather than a name: C finds it with one
-- lua_rawgeti, no key pushed and looked up.
local FAST = C.FAST

local function check_ws(self, fname)
  if not LIVE[self] then check_self(self, WebSocket, fname) end
  if self._closed then
    raise("CLOSED", "WebSocket is closed", fname)
  end
  return self
end

local function opt_size(opts, name, n, fname)
  local v = opts[name]
  if v == nil then return M.defaults[name] end
  if type(v) ~= "number" or v <= 0 or v ~= v then
    argerror(n, fname, "'" .. name .. "' must be a positive number")
  end
  return v
end

--- wrap(stream, opts) -> WebSocket, once the handshake is done.
function M.wrap(stream, opts)
  if type(stream) ~= "userdata" and type(stream) ~= "table" then
    argerror(1, "wrap", "Stream expected, got " .. typename(stream))
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    argerror(2, "wrap", "table expected, got " .. typename(opts))
  end
  local max = opt_size(opts, "max_message_size", 2, "wrap")
  local ct = opt_size(opts, "close_timeout", 2, "wrap")
  local conn = C.new(not opts.client, tointeger(math.min(max, 2^53) // 1))
  local ws = setmetatable({ _s = stream, _c = conn, _ct = ct,
    _reading = false, _done = false, _closing = false, _closed = false,
    _direct = C.is_stream(stream),
    protocol = opts.protocol, headers = opts.headers,
    -- the per-message methods on the object itself: `ws:receive()` is
    -- then one table read, not a miss and the metatable's __index
    receive = WebSocket.receive, send = WebSocket.send }, WebSocket)
  LIVE[ws] = true
  if ws._direct then
    conn:bind(stream)
    ws[FAST] = conn
  end
  return ws
end

local function write(self, out)
  if out then self._s:write(out) end
end

-- The stream ends here, whoever ended the WebSocket; a close waiting for
-- the reader hears of it.  What is queued is flushed for at most
-- close_timeout: a peer that stopped reading cannot hold the task.
local function finish(self)
  self._done = true
  self[FAST] = nil
  local s = self._s
  if not pcall(compose.timeout, self._ct, s.close, s) then pcall(s.abort, s) end
  local f = self._closefut
  if f and not f:done() then f:set_result(true) end
end

local function code_of(err)
  return type(err) == "table" and err.code or nil
end

-- A receive whose own wait ended (its task cancelled, a deadline) leaves
-- the WebSocket as it was: the bytes of a frame stay in the Stream's
-- buffer or the framing.  A close waiting for this reader to read the
-- peer's reply is told to read it itself.
local function wait_ended(self, err)
  local f = self._closefut
  if self._closing and f and not f:done() then
    self._closefut = nil
    f:set_result("read")
  end
  error(err, 0)
end

-- Reading stopped in the framing layer: a close arrived (or was answered),
-- or the peer broke the protocol and a close frame says why.
local function end_read(self)
  local _, got, rcode, scode, failed, reason = self._c:state()
  write(self, self._c:take())
  if got and not failed then
    self.close_code, self.close_reason = rcode, reason
    finish(self)
    return
  end
  self.close_code, self.close_reason = scode, ""
  finish(self)
  local why = scode == 1007 and "invalid UTF-8 in a text message"
    or scode == 1009 and "message larger than max_message_size"
    or "the peer broke the WebSocket protocol"
  raise(scode == 1009 and "LIMIT" or "HTTP_PROTOCOL", why, "receive",
    { close_code = scode, detail = why })
end

-- The stream ended under the reader: without a close (1006).
local function lost(self)
  if not self._done then
    self.close_code, self.close_reason = 1006, ""
    finish(self)
  end
end

-- What receive() does with conn:pull's answer when it is not simply a
-- message (see wsstream.c): write the frames to answer, pull again, or end.
local function pulled(self, c, s, data, kind, out)
  while true do
    if kind == "error" then       -- what ended the Stream read: out
      local code = code_of(out)
      if code == "CANCELLED" or code == "TIMEOUT" then wait_ended(self, out) end
      if self._closed or self._done then return nil end
      finish(self)                -- a close waiting for this reader goes on
      if self._closing then return nil end
      self.close_code, self.close_reason = 1006, ""
      error(out, 0)
    end
    if out then s:write(out) end  -- pongs, the reply to a close
    if data then return data, KIND[kind] end
    if kind == nil then lost(self) return nil end
    if kind == false then end_read(self) return nil end
    data, kind, out = pull(c, s)  -- true: written, read on
  end
end

--- receive() -> data, "text"|"binary", or nil once the peer closed.
--- On a corio Stream, one call into C per message: conn:pull(stream)
--- reads the frames in the Stream's buffer in place and waits as its
--- reader (no string per chunk read).  On another stream, two: c:recv()
--- (a queued message, else whether to read) and, after the stream read,
--- c:input(chunk) (feeds the framing, returns the first message and any
--- frames to answer with).
function WebSocket:receive()
  local c = self[FAST]
  if c then
    local s = self._s
    local data, kind, out = pull(c, s)
    if data and not out then return data, KIND[kind] end
    return pulled(self, c, s, data, kind, out)
  end
  if not LIVE[self] then check_self(self, WebSocket, "receive") end
  if self._closed then raise("CLOSED", "WebSocket is closed", "receive") end
  c = self._c
  if self._direct then            -- closing (another task) or done
    if not self._done then
      local s = self._s
      return pulled(self, c, s, pull(c, s))
    end
    local data, kind = crecv(c)   -- what is queued
    if data then return data, kind end
    return nil
  end
  local data, kind = c:recv()
  if data then return data, kind end
  local out
  while true do
    if self._done then return nil end
    if not kind then              -- a close arrived, or a protocol error
      end_read(self)
      return nil
    end
    if self._reading then
      raise("BUSY", "another task is receiving on this WebSocket", "receive")
    end
    self._reading = true
    local s = self._s
    local ok, chunk = pcall(s.read, s, READ_SIZE)
    self._reading = false
    if self._closed then return nil end   -- close() ended it meanwhile
    if not ok then
      local code = code_of(chunk)
      if code == "CANCELLED" or code == "TIMEOUT" then wait_ended(self, chunk) end
      if self._done then return nil end
      finish(self)
      if self._closing then return nil end
      self.close_code, self.close_reason = 1006, ""
      error(chunk, 0)
    end
    if chunk == nil then          -- the TCP stream ended without a close
      lost(self)
      return nil
    end
    data, kind, out = c:input(chunk)
    if out then s:write(out) end  -- pongs, the reply to a close
    if data then return data, kind end
  end
end

local function check_sendable(self, fname)
  check_ws(self, fname)
  if self._done or self._closing then
    raise("CLOSED", "WebSocket is closing", fname)
  end
end

--- send(data [, "text"|"binary"]): waits as Stream:write does.
function WebSocket:send(data, kind)
  local c = self[FAST]
  if c then                       -- nil: sent; else a bad argument below
    local op = OP[kind or "text"]
    if op and cwrite(c, self._s, op, data) == nil then return end
  end
  if not LIVE[self] then check_self(self, WebSocket, "send") end
  if self._closed then raise("CLOSED", "WebSocket is closed", "send") end
  if self._done or self._closing then
    raise("CLOSED", "WebSocket is closing", "send")
  end
  local op = OP[kind or "text"]
  if not op then
    if type(data) ~= "string" then
      argerror(1, "send", "string expected, got " .. typename(data))
    end
    argerror(2, "send", "'text' or 'binary' expected, got " ..
      (type(kind) == "string" and ("'" .. kind .. "'") or typename(kind)))
  end
  -- On a corio Stream the frame goes straight out ("type": data is not a
  -- string, false: text that is not UTF-8, checked in C).
  if self._direct then
    local bad = cwrite(self._c, self._s, op, data)
    if bad == nil then return end
    if bad == false then
      argerror(1, "send", "text must be UTF-8 (send it as 'binary')")
    end
  end
  if type(data) ~= "string" then
    argerror(1, "send", "string expected, got " .. typename(data))
  end
  -- One string, or a header and data itself (a big unmasked payload is
  -- not copied); false: text that is not UTF-8 (checked in C).
  local a, b = self._c:send(op, data)
  if b then
    self._s:write(a, b)
  elseif a then
    self._s:write(a)
  elseif a == false then
    argerror(1, "send", "text must be UTF-8 (send it as 'binary')")
  end
end

-- On a corio Stream, receive and send are C closures in front of the two
-- Lua methods above (wsstream.c, fast_methods): a plain message in or out takes
-- no Lua call at all; everything else comes back here.
WebSocket.receive, WebSocket.send = C.fast_methods(pulled,
  WebSocket.receive, WebSocket.send)

--- ping([data]): a ping of up to 125 bytes; its pong is not returned.
function WebSocket:ping(data)
  check_sendable(self, "ping")
  if data == nil then data = "" end
  if type(data) ~= "string" then
    argerror(1, "ping", "string expected, got " .. typename(data))
  end
  if #data > 125 then argerror(1, "ping", "at most 125 bytes") end
  write(self, self._c:send(PING, data))
end

-- Codes a script may send (RFC 6455 section 7.4): 1000-1003, 1007-1011,
-- 3000-4999.  1005 and 1006 are never sent, 1004 is reserved.
local function check_code(code)
  if code == nil then return 1000 end
  local c = tointeger(code)
  if not c or not ((c >= 1000 and c <= 1003) or (c >= 1007 and c <= 1011)
                   or (c >= 3000 and c <= 4999)) then
    argerror(1, "close", "close code 1000-1003, 1007-1011 or 3000-4999 " ..
      "expected, got " .. tostring(code))
  end
  return c
end

-- Reads and drops messages until the peer's close (or EOF).
local function drain_to_close(self)
  while not self._done do
    if not (self._c:state()) then
      pcall(end_read, self)
      return
    end
    local chunk = self._s:read(READ_SIZE)
    if chunk == nil then finish(self) return end
    self._c:feed(chunk)
    while self._c:next() do end
    write(self, self._c:take())
  end
end

-- The close handshake: the close frame out, then the peer's close read
-- (by the task in receive, if one is, else here).  Runs in close()'s
-- close_timeout scope, which bounds the write too.
local function handshake(self, code, reason)
  write(self, self._c:close(code, reason))
  while not self._done do
    if self._reading or (self._direct and self._c:pulling()) then
      local f = self._closefut or core.future()
      self._closefut = f
      -- true: the reader finished; "read": it left (cancelled), so read
      -- here.  shield: the deadline ends this wait, never the future.
      compose.shield(f)
    else
      drain_to_close(self)
    end
  end
end

--- close([code [, reason]]): the close handshake, then the stream closes.
--- Idempotent.  Waits up to close_timeout for the peer's close frame.
function WebSocket:close(code, reason)
  check_self(self, WebSocket, "close")
  if self._closed then return end
  code = check_code(code)
  if reason ~= nil and type(reason) ~= "string" then
    argerror(2, "close", "string expected, got " .. typename(reason))
  end
  reason = reason or ""
  if #reason > 123 then argerror(2, "close", "reason of at most 123 bytes") end
  if reason ~= "" and not utf8len(reason) then
    argerror(2, "close", "reason must be UTF-8")
  end
  if self._closing then             -- another task is closing: wait for it
    local f = self._endfut or core.future()
    self._endfut = f
    f:await()
    return
  end
  self._closing = true
  self[FAST] = nil
  local err
  if not self._done then
    local ok, e = pcall(compose.timeout, self._ct, handshake, self, code, reason)
    -- past close_timeout, or the Stream failed: dropped without more ado
    if not ok then pcall(self._s.abort, self._s) end
    if code_of(e) == "CANCELLED" then err = e end  -- this task's own cancel
    if not self.close_code then self.close_code, self.close_reason = code, reason end
  end
  finish(self)
  self._closed = true
  self._c:free()
  local f = self._endfut
  if f and not f:done() then f:set_result(true) end
  if err then error(err, 0) end
end

-- A scope left by an error says 1011; by a cancel (a server shutting
-- down cancels its handlers) 1001, going away.
function WebSocket:__close(err)
  if not self._closed then
    self:close(err == nil and 1000 or code_of(err) == "CANCELLED" and 1001 or 1011)
  end
end

function WebSocket:__tostring()
  return self._closed and "corio.WebSocket (closed)" or "corio.WebSocket"
end

-- }====================================================================


-- {====================================================================
-- Opening handshake (RFC 6455 section 4)
-- =====================================================================

-- Header names are tokens; values may not carry CR, LF or NUL (a value
-- with CRLF would inject header lines: response splitting).
local function check_header(name, value, n, fname)
  if type(name) ~= "string" or not name:match("^[!#$%%&'*+.^_`|~%w-]+$") then
    argerror(n, fname, "bad header name " .. tostring(name))
  end
  if type(value) ~= "string" and type(value) ~= "number" then
    argerror(n, fname, "header '" .. name .. "' must be a string")
  end
  value = tostring(value)
  if value:find("[%z\r\n]") then
    argerror(n, fname, "header '" .. name .. "' has CR, LF or NUL")
  end
  return name, value
end

-- Appends opts.headers (a map or a list of {name, value}) to lines.
local function add_headers(lines, headers, n, fname)
  if headers == nil then return end
  if type(headers) ~= "table" then
    argerror(n, fname, "'headers' must be a table")
  end
  if #headers > 0 then
    for _, p in ipairs(headers) do
      if type(p) ~= "table" then argerror(n, fname, "header pair expected") end
      local k, v = check_header(p[1], p[2], n, fname)
      lines[#lines + 1] = k .. ": " .. v
    end
  else
    for k, v in pairs(headers) do
      k, v = check_header(k, v, n, fname)
      lines[#lines + 1] = k .. ": " .. v
    end
  end
end

-- True if the comma list `list` holds `token` (lower case; compared
-- case-insensitively).
local has_token = C.has_token

local function check_protocols(v, n, fname)
  if v == nil then return nil end
  if type(v) ~= "table" then argerror(n, fname, "'protocols' must be a list") end
  for _, p in ipairs(v) do
    if type(p) ~= "string" or not p:match("^[!#$%%&'*+.^_`|~%w-]+$") then
      argerror(n, fname, "bad protocol name " .. tostring(p))
    end
  end
  return v
end

local function check_stream(stream, fname)
  local t = type(stream)
  if (t ~= "userdata" and t ~= "table") or not stream.readuntil then
    argerror(1, fname, "Stream expected, got " .. typename(stream))
  end
end

-- Runs fn(...) within t seconds; past them TIMEOUT says what timed out
-- (what: "connect", "handshake") and after how long.
local function within(t, what, fname, fn, ...)
  local ok, a, b = pcall(compose.timeout, t, fn, ...)
  if ok then return a, b end
  if core.Error.is(a, "TIMEOUT") then
    raise("TIMEOUT", ("WebSocket %s timed out after %g s"):format(what, t),
      fname, { cause = a.cause })
  end
  error(a, 0)
end

-- The client's side of the exchange: the request out, the 101 in.
local function client_exchange(stream, host, path, opts, protos, key)
  local F = "client_handshake"
  local lines = { "GET " .. path .. " HTTP/1.1", "Host: " .. host,
    "Upgrade: websocket", "Connection: Upgrade",
    "Sec-WebSocket-Key: " .. key, "Sec-WebSocket-Version: 13" }
  if protos and #protos > 0 then
    lines[#lines + 1] = "Sec-WebSocket-Protocol: " .. concat(protos, ", ")
  end
  if opts.origin ~= nil then
    local _, v = check_header("Origin", opts.origin, 4, F)
    lines[#lines + 1] = "Origin: " .. v
  end
  add_headers(lines, opts.headers, 4, F)
  lines[#lines + 1] = "\r\n"
  stream:write(concat(lines, "\r\n"))
  -- status, headers; or nil, why [, status when only a field was bad]
  local status, h, st = C.parse_head(stream:readuntil("\r\n\r\n"), false)
  if not status then
    if not st then protocol_error(h, F) end
    status, h = st, nil
  end
  if status ~= 101 then
    protocol_error("status " .. status .. " instead of 101", F, status)
  end
  if not h then protocol_error("malformed header line", F, status) end
  if not has_token(h.upgrade, "websocket") then
    protocol_error("no 'Upgrade: websocket'", F, status)
  end
  if not has_token(h.connection, "upgrade") then
    protocol_error("no 'Connection: Upgrade'", F, status)
  end
  if h["sec-websocket-accept"] ~= C.accept_key(key) then
    protocol_error("wrong Sec-WebSocket-Accept", F, status)
  end
  if h["sec-websocket-extensions"] then
    protocol_error("an extension nobody asked for", F, status)
  end
  local proto = h["sec-websocket-protocol"]
  if proto then
    local offered = false
    for _, p in ipairs(protos or {}) do offered = offered or p == proto end
    if not offered then
      protocol_error("protocol '" .. proto .. "' was not offered", F, status)
    end
  end
  return proto, h
end

--- client_handshake(stream, host, path, opts) -> WebSocket; the exchange
--- is bounded by opts.handshake_timeout (TIMEOUT).  op: the errors' op
--- (connect and http.websocket give their own names).
function M.client_handshake(stream, host, path, opts, op)
  local F = "client_handshake"
  check_stream(stream, F)
  if type(host) ~= "string" or host == "" or host:find("[%s%z]") then
    argerror(2, F, "host name expected")
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%s%z]") then
    argerror(3, F, "path starting with '/' expected")
  end
  opts = opts or {}
  if type(opts) ~= "table" then argerror(4, F, "table expected") end
  local protos = check_protocols(opts.protocols, 4, F)
  local ht = opt_size(opts, "handshake_timeout", 4, F)
  -- checked before anything is sent: a bad option is the caller's fault
  opt_size(opts, "max_message_size", 4, F)
  opt_size(opts, "close_timeout", 4, F)
  local proto, h = within(ht, "handshake", op or F, client_exchange, stream, host,
    path, opts, protos, C.random_key())
  return M.wrap(stream, { client = true, protocol = proto, headers = h,
    max_message_size = opts.max_message_size,
    close_timeout = opts.close_timeout })
end

--- connect_stream(host, port, opts, tls) -> Stream: TCP (and TLS when tls
--- is a table of corio.tls options) within opts.connect_timeout.
function M.connect_stream(host, port, opts, tls, fname)
  local ct = opt_size(opts, "connect_timeout", 2, fname)
  opt_size(opts, "handshake_timeout", 2, fname)   -- checked before connecting
  if tls then
    return within(ct, "connect", fname, require("corio.tls")._connect_for,
      host, port, { tls = tls })
  end
  local net = require "corio.net"
  return within(ct, "connect", fname, net.connect, host, port)
end

--- check_request(req, opts) -> key, protocol | nil, status, detail
function M.check_request(req, opts)
  if type(req) ~= "table" then
    argerror(1, "check_request", "request table expected")
  end
  local protos = check_protocols(opts and opts.protocols, 2, "check_request")
  local h = req.headers or {}
  -- the fields one by one into C (wshand.c): a Headers object's index
  -- does the case-insensitive lookup
  local key = h["sec-websocket-key"]
  local status, detail = C.check_upgrade(req.method, req.version,
    h["upgrade"], h["connection"], h["sec-websocket-version"], key)
  if status then return nil, status, detail end
  local chosen
  if protos then    -- the server's first choice among those offered
    local offered = h["sec-websocket-protocol"]
    for _, p in ipairs(protos) do
      if not chosen and has_token(offered, p:lower()) then chosen = p end
    end
  end
  return key, chosen
end

--- response(key, protocol, headers) -> the 101 head (built in C; extra
--- header lines checked here)
function M.response(key, protocol, headers)
  if type(key) ~= "string" then
    argerror(1, "response", "string expected, got " .. typename(key))
  end
  if protocol ~= nil and (type(protocol) ~= "string" or
      not protocol:match("^[!#$%%&'*+.^_`|~%w-]+$")) then
    argerror(2, "response", "bad protocol name " .. tostring(protocol))
  end
  local extra
  if headers ~= nil then
    local lines = {}
    add_headers(lines, headers, 3, "response")
    if #lines > 0 then extra = concat(lines, "\r\n") .. "\r\n" end
  end
  return C.response(key, protocol, extra)
end

local REASON = { [400] = "Bad Request", [426] = "Upgrade Required" }

--- accept(stream, req, opts) -> WebSocket; a refused upgrade is answered
--- (400, or 426 with the version we speak) and raises HTTP_PROTOCOL.
function M.accept(stream, req, opts)
  check_stream(stream, "accept")
  opts = opts or {}
  if type(opts) ~= "table" then argerror(3, "accept", "table expected") end
  local key, status, detail = M.check_request(req, opts)
  if not key then
    local body = detail .. "\n"
    stream:write(("HTTP/1.1 %d %s\r\nConnection: close\r\n%s" ..
      "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"):format(
      status, REASON[status], status == 426 and
      "Sec-WebSocket-Version: 13\r\n" or "", #body, body))
    protocol_error(detail, "accept", status)
  end
  stream:write(M.response(key, status, opts.headers))
  return M.wrap(stream, { protocol = status, headers = req.headers,
    max_message_size = opts.max_message_size,
    close_timeout = opts.close_timeout })
end

-- }====================================================================


-- {====================================================================
-- Without corio.http: a request-head reader, connect and serve
-- =====================================================================

--- read_request(stream) -> {method=, target=, path=, version=, headers=},
--- or nil at EOF.  The head is bounded by the stream's limit (LIMIT).
function M.read_request(stream)
  check_stream(stream, "read_request")
  local ok, head = pcall(stream.readuntil, stream, "\r\n\r\n")
  if not ok then
    if core.Error.is(head, "INCOMPLETE") and head.partial == "" then
      return nil
    end
    error(head, 0)
  end
  local m, target, v, h = C.parse_head(head, true)
  if not m then protocol_error(target, "read_request", 400) end
  local q = target:find("?", 1, true)
  return { method = m, target = target, path = q and target:sub(1, q - 1) or target,
    version = v, headers = h }
end

--- connect(url, opts) -> WebSocket (ws:// only; wss:// is corio.http's)
function M.connect(url, opts)
  if type(url) ~= "string" then
    argerror(1, "connect", "string expected, got " .. typename(url))
  end
  local host, port, path = url:match("^ws://([^/:]+):?(%d*)(.*)$")
  if not host then argerror(1, "connect", "ws://host[:port]/path expected") end
  port = port ~= "" and tointeger(tonumber(port)) or 80
  if path == "" then path = "/" end
  opts = opts or {}
  if type(opts) ~= "table" then argerror(2, "connect", "table expected") end
  local stream = M.connect_stream(host, port, opts, nil, "connect")
  local ok, ws = pcall(M.client_handshake, stream,
    port == 80 and host or host .. ":" .. port, path, opts, "connect")
  if not ok then stream:abort() error(ws, 0) end
  return ws
end

--- serve(host, port, handler, opts) -> Server; handler(ws, req) runs for
--- each upgraded connection; the WebSocket closes when it returns.
function M.serve(host, port, handler, opts)
  if type(handler) ~= "function" then
    argerror(3, "serve", "function expected, got " .. typename(handler))
  end
  return require("corio.net").serve(host, port, function(stream)
    -- A peer that is not a WebSocket client was answered (or is not
    -- worth an answer): that is its fault, not the handler's.
    local ok, req = pcall(M.read_request, stream)
    local ws
    if ok and req then ok, ws = pcall(M.accept, stream, req, opts) end
    if not (ok and ws) then
      if ok or core.Error.is(req) or core.Error.is(ws) then
        stream:close()
        return
      end
      error(ws or req, 0)
    end
    local _ <close> = ws
    handler(ws, req)
  end, opts)
end

-- }====================================================================

M.WebSocket = WebSocket
return M
