--[[
corio._http_server -- http.serve (private; corio.http exports it).

One task per connection reads a request, runs the handler in that task,
writes the response, and only then reads the next request: pipelined
requests are answered in order and never parsed early.  Every limit and
timeout is on by default (DEFAULTS); a malformed head gets its status
(400/413/414/431/501/505) and the connection is closed.

The per-request path is kept short (bench/README.md, W11): the common
request -- a whole bodiless head in the Stream's buffer, a handler that
answers `status, {map}, "body"` without suspending -- is served by the
C loop (bindings/http/serve.c), which enters Lua only for the handler
and hands anything else back to this file at the step of one() it
reached; one deadline per connection whose due time moves from phase to
phase (kept in the connection's Parser) instead of a timeout scope per
phase; the Request's request-line fields, headers, query and empty body,
and for a handler of one parameter the Response, made only when used.
]]
local core = require "corio.core"
local compose = require "corio.compose"
local net = require "corio.net"
local C = require "corio._http"
local msg = require "corio._http_msg"
local body = require "corio._http_body"
local raise = require("corio._args").raise

local Error, perror = core.Error, msg.perror
local now, call_later, call_soon = core.now, core.call_later, core.call_soon
local respond, reply = C.respond, C.reply
local take = C.parser("request").take
local M = {}

M.DEFAULTS = {
  header_timeout = 60, request_timeout = 300, idle_timeout = 65, write_timeout = 60,
  max_header_size = 16384, max_headers = 100, max_body_size = 1048576,
  max_url_size = 8192, max_requests = 0,
}
local PEER_GONE = { EPIPE = true, ECONNRESET = true, ECONNABORTED = true, CLOSED = true }
local DRAIN_MAX = 262144   -- an unread body up to this size is drained to keep the connection
local LINGER = 0.5         -- at most this long reading what a closed client still sends (linger)
local WATCH_MAX = 65536    -- the disconnect watcher stops reading past this many pipelined bytes

local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK", [201] = "Created",
  [202] = "Accepted", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [413] = "Content Too Large",
  [414] = "URI Too Long", [417] = "Expectation Failed", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

local function parse_query(q)
  local out = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape((k:gsub("+", " "))), unescape((v:gsub("+", " ")))
    if out[k] == nil then out[k] = v end
  end
  return out
end
M.parse_query = parse_query

-- A bare error answer, then the connection closes (with a linger: the
-- client may be sending still).
local function answer_error(conn, status)
  local text = (REASONS[status] or "Error") .. "\n"
  conn.linger = true
  pcall(compose.timeout, 5, conn.s.write, conn.s, ("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n" ..
    "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(status,
    REASONS[status] or "Error", #text, text))
end

-- The Date header, formatted once a second rather than per response.
local date_at, date_s = -1, nil
local function http_date()
  local t = os.time()
  if t ~= date_at then date_at, date_s = t, os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
  return date_s
end

---------------------------------------------------------------- res
local Response = {}
Response.__index = Response
Response.__name = "corio.http.ServerResponse"
Response.headers_sent, Response.finished = false, false   -- until set on a response

local EMPTY = {}

local function no_body(req, status)
  return req.method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200)
end

local DoneResponse = {}   -- (filled below, once Response has its methods)

local function check_res(self, fname)
  local mt = getmetatable(self)
  if mt ~= Response and mt ~= DoneResponse then
    raise(("bad argument #1 to '%s' (corio.http.ServerResponse expected)"):format(fname))
  end
  if self.finished then
    error(Error("INVALID_STATE", "the response is already finished", { op = fname }), 0)
  end
end

function Response:write_head(status, headers)
  check_res(self, "write_head")
  if self._status then error(Error("INVALID_STATE", "write_head called twice", { op = "write_head" }), 0) end
  if math.type(status) ~= "integer" or status < 200 or status > 999 then
    raise("bad argument #1 to 'write_head' (status must be an integer 200-999: a 1xx is never a final answer)")
  end
  self._status = status
  self._h = msg.new_headers(headers, "write_head", 2)
end

-- A request body the handler left unread, as its response goes out (Go's
-- rule): when the client still waits for a `100 Continue` it never got,
-- or more than DRAIN_MAX bytes of it are known to be left (its
-- Content-Length), the response says "Connection: close" and the body is
-- never read, since reading it costs more than a new connection; a
-- smaller or chunked one is drained after the handler (`one`).
local function close_if_unread(c, req, b)
  if rawget(req, "_continue") or (b.kind == "length" and b.left > DRAIN_MAX) then
    c.keep = false
  end
end

-- Whether a Connection value lists the token "close"
local function has_close(v)
  for t in v:gmatch("[^,]+") do
    if t:match("^[ \t]*(.-)[ \t]*$"):lower() == "close" then return true end
  end
  return false
end

-- A handler broke its own framing: the connection ends here
local function framing_error(c, msg_)
  c.keep = false
  error(Error("INVALID_STATE", msg_, { op = "http" }), 0)
end

-- send the head; `len` the body length when known (else chunked/close);
-- `data`, a whole body, goes out in the same write.  The head is built
-- straight from the field lists (the fields were checked when added):
-- framing fields corio sets replace the handler's, as set() would.
--
-- A handler's own Transfer-Encoding (as Go's net/http and Node do): with
-- a Content-Length it is dropped (the length frames the body); exactly
-- "chunked" on an HTTP/1.1 exchange makes corio send the body chunked,
-- even a whole string (never both framings); any other value, or on
-- HTTP/1.0, is dropped (corio applies no transfer coding) and the body is
-- framed as without it.  `final`: this is finish(): end the body too.
--
-- A handler's own Content-Length is held to: a whole body of another
-- length is refused before anything is sent (500), and written pieces
-- are counted -- past it, or short of it at finish, the connection ends
-- (the client would read the next response as part of this one, or wait
-- for bytes that never come) and the handler gets INVALID_STATE.
local function send_head(self, len, data, final)
  local c, req = self._c, self._req
  local status = self._status or 200
  local h = self._h
  self._status = status
  local names, vals, orig = EMPTY, EMPTY, EMPTY
  if h then names, vals, orig = h._n, h._v, rawget(h, "_o") or h._n end
  local has_cl, has_date, user_te
  for i = 1, #names do
    local n = names[i]
    if n == "content-length" then
      local v = vals[i]:match("^%d+$") and #vals[i] <= 15 and tonumber(vals[i])
      if not v or (has_cl and has_cl ~= v) then
        error(Error("INVALID_STATE", "invalid Content-Length from the handler: " .. vals[i], { op = "http" }), 0)
      end
      has_cl = v
    elseif n == "date" then has_date = true
    elseif n == "transfer-encoding" then user_te = (user_te and user_te .. "," or "") .. vals[i] end
  end
  local b = rawget(req, "_body")
  if b and not b.done then close_if_unread(c, req, b) end
  local keep = c.keep
  local extra_te, extra_cl, drop_te
  local nobody = no_body(req, status)
  if user_te then
    drop_te = true
    if has_cl or req.minor < 1 or not user_te:lower():find("^[ \t]*chunked[ \t]*$") then
      user_te = nil
    end
  end
  if not nobody or req.method == "HEAD" then
    if has_cl then
      self._mode = "length"
    elseif user_te then
      extra_te = true
      self._mode = "chunked"
    elseif len then
      extra_cl = len
      self._mode = "length"
    elseif req.minor >= 1 then
      extra_te, drop_te = true, true
      self._mode = "chunked"
    else
      keep = false
      self._mode = "close"
    end
  end
  if nobody then self._mode = "none" end
  if self._mode == "length" and has_cl then
    if len and final and len ~= has_cl then       -- a whole body: refused unsent
      error(Error("INVALID_STATE", ("a body of %d bytes with Content-Length: %d"):format(len, has_cl),
        { op = "http" }), 0)
    end
    self._left = has_cl
  end
  -- the handler's own "Connection: close" ends the connection after this
  -- response (RFC 9112, 9.6), and ours replaces it
  if keep then
    for i = 1, #names do
      if names[i] == "connection" and has_close(vals[i]) then keep = false break end
    end
  end
  local conn_v
  if not keep then conn_v = "close" c.keep = false
  elseif req.minor == 0 then conn_v = "keep-alive" end
  local out, k = { "HTTP/1.1 ", tostring(status), " ", REASONS[status] or "Unknown", "\r\n" }, 5
  for i = 1, #names do
    local n = names[i]
    if not ((drop_te and n == "transfer-encoding") or (conn_v and n == "connection")) then
      out[k + 1], out[k + 2], out[k + 3], out[k + 4] = orig[i], ": ", vals[i], "\r\n"
      k = k + 4
    end
  end
  if extra_cl then out[k + 1], out[k + 2], k = "Content-Length: ", tostring(extra_cl) .. "\r\n", k + 2 end
  if extra_te then out[k + 1], k = "Transfer-Encoding: chunked\r\n", k + 1 end
  if conn_v then out[k + 1], k = "Connection: " .. conn_v .. "\r\n", k + 1 end
  if not has_date then out[k + 1], out[k + 2], k = "Date: ", http_date(), k + 2 end
  out[k + 1] = has_date and "\r\n" or "\r\n\r\n"
  self.headers_sent = true
  if self._mode == "chunked" and final then
    if data and #data > 0 then
      c:write(table.concat(out), ("%x\r\n"):format(#data), data, "\r\n0\r\n\r\n")
    else
      c:write(table.concat(out), "0\r\n\r\n")
    end
  elseif data and #data > 0 and self._mode ~= "none" then
    c:write(table.concat(out), data)
  else
    c:write(table.concat(out))
  end
end

function Response:write(...)
  check_res(self, "write")
  if not self.headers_sent then send_head(self, nil) end
  local n = select("#", ...)
  for i = 1, n do
    local d = select(i, ...)
    if type(d) == "number" then d = tostring(d) end
    if type(d) ~= "string" then raise(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(d))) end
    if #d > 0 then
      if self._mode == "chunked" then
        self._c:write(("%x\r\n"):format(#d), d, "\r\n")
      elseif self._mode ~= "none" then
        local left = self._left
        if left then
          if #d > left then framing_error(self._c, "body longer than its Content-Length") end
          self._left = left - #d
        end
        self._c:write(d)
      end
    end
  end
end

function Response:finish(data)
  check_res(self, "finish")
  if data ~= nil and type(data) ~= "string" then
    raise(("bad argument #1 to 'finish' (string expected, got %s)"):format(type(data)))
  end
  if not self.headers_sent then
    send_head(self, #(data or ""), data, true)   -- one write per response
  else
    if data then self:write(data) end
    if self._mode == "chunked" then self._c:write("0\r\n\r\n") end
    if self._mode == "close" then self._c.keep = false end
    if self._left and self._left > 0 then
      self.finished = true
      framing_error(self._c, ("body shorter than its Content-Length (%d bytes missing)"):format(self._left))
    end
  end
  self.finished = true
end

-- a handler's return values: status, headers, body
local function send_returned(res, status, headers, b)
  if math.type(status) ~= "integer" then
    error(Error("INVALID_STATE", "a handler must return an integer status or use res", { op = "http" }), 0)
  end
  if status >= 100 and status < 200 then
    -- a client skips a 1xx and takes the next response as this one's
    error(Error("INVALID_STATE", "a 1xx status is not a final answer", { op = "http" }), 0)
  end
  -- the common case in one C call: a plain map, a string body (or none)
  if (b == nil or type(b) == "string") and status >= 100 and status <= 999 and not res._status then
    local c, req = res._c, res._req
    local method = req.method
    local flags = 0
    if method == "HEAD" or status == 204 or status == 304 or status < 200 then
      flags = (method == "HEAD") and 1 or 3      -- no body bytes; 1xx/204/304: no length either
    end
    if not c.keep then flags = flags + 4
    elseif req.minor == 0 then flags = flags + 8 end
    local out, closing = respond(status, REASONS[status] or "Unknown", headers, b, flags)
    if out then
      if closing then c.keep = false end
      res.headers_sent, res.finished = true, true
      return c:write(out)
    end
  end
  local h = msg.new_headers(headers)
  if type(b) == "table" and not (getmetatable(b) and b.read) then
    b = require("corio.json").encode(b)
    if not h["content-type"] then h:set("Content-Type", "application/json") end
  end
  if res._status then error(Error("INVALID_STATE", "write_head called twice", { op = "write_head" }), 0) end
  if status < 100 or status > 999 then
    error(Error("INVALID_STATE", "a handler's status must be 100-999", { op = "http" }), 0)
  end
  res._status, res._h = status, h   -- write_head's checks, without copying h again
  if b == nil or type(b) == "string" then return res:finish(b) end
  local nextf = body.source(b)
  while true do
    local d = nextf()
    if d == nil then break end
    res:write(d)
  end
  res:finish()
end

---------------------------------------------------------------- req
local Request = {}
Request.__name = "corio.http.Request"
for k, f in pairs(body.mixin) do Request[k] = f end

-- A request without a body shares this one, which reading never changes
-- (a finished body only ever gets linebuf = "", which it already has).
local NO_BODY = { kind = "none", left = 0, done = true, total = 0, opts = {}, started = true, linebuf = "" }

-- Only method, _b (the buffer holding the head, from _p or 1) and _res
-- are set when a request is taken: the rest of the request line (target,
-- path, _q, minor, and _hf where the field lines start) is read from _b
-- by C.line on first use, and headers, query, version and peer are made
-- when the handler asks (the fields stay in _b from _hf to the blank line)
local fields, line = C.fields, C.line
local LINE = { target = true, path = true, minor = true, _hf = true, _q = true }
function Request.__index(self, k)
  local v = Request[k]
  if v ~= nil then return v end
  if LINE[k] then
    if rawget(self, "_hf") then return nil end     -- made already (no query)
    local t, p, q, minor, hf = line(rawget(self, "_b"), rawget(self, "_p"))
    rawset(self, "target", t)
    rawset(self, "path", p)
    rawset(self, "minor", minor)
    rawset(self, "_hf", hf)
    if q then rawset(self, "_q", q) end
    return rawget(self, k)
  elseif k == "headers" then
    local b = rawget(self, "_b")
    v = msg.headers_from_lists(fields(b, self._hf, #b + 1))
  elseif k == "query" then
    local _ = self._hf
    local q = rawget(self, "_q")
    v = q and q ~= "" and parse_query(q) or {}
  elseif k == "version" then
    return self.minor == 1 and "1.1" or "1.0"
  elseif k == "peer" then
    return self._res._c.peer
  elseif k == "_res" then
    -- taken by the C loop for a handler of one parameter: no Response
    -- until someone asks (its connection is in _c)
    local c = rawget(self, "_c")
    if not c then return nil end
    v = setmetatable({ _c = c, _req = self }, Response)
  elseif k == "_body" then
    return NO_BODY
  else
    return nil
  end
  rawset(self, k, v)
  return v
end

--- req:websocket(opts) -> WebSocket: answers the upgrade (101) and hands
--- the connection to corio._ws; the HTTP loop ends with this request.
function Request:websocket(opts)
  if getmetatable(self) ~= Request then
    raise("bad argument #1 to 'websocket' (corio.http.Request expected)")
  end
  local res = self._res
  if res.headers_sent then
    error(Error("INVALID_STATE", "the response was already started", { op = "websocket" }), 0)
  end
  local conn = res._c
  conn.keep = false
  -- the WebSocket reads the stream from now on: no watcher (a client
  -- sends nothing before the 101, so a pending read holds no bytes)
  conn.watch_off = true
  if conn.watcher then conn.watcher:cancel("websocket") conn.watcher = nil end
  -- nor the request's deadline: a WebSocket lives as long as its peers
  -- want (its own close_timeout and the handler bound it), not
  -- request_timeout
  conn.p:clear()
  if conn.timer then conn.timer:cancel() conn.timer = false end
  res.finished, res.headers_sent = true, true
  return require("corio._ws").accept(conn.s, self, opts)
end

-- The head was checked by the guard and parsed by http_parser, and the
-- Request and Response made, by Parser:take (bindings/http/head.c):
-- Host, framing, keep-alive, the limits on the target and the body
-- length, Expect, the path and the query come from there.  What is left
-- here is the body, when there is one.
local function add_body(conn, req, kind, n)
  local o = conn.o
  local continue = rawget(req, "_continue")
  local b = body.new(conn.r, kind, n, {
    limit = o.max_body_size, decoder = conn.p,
    on_first = continue and function()
      req._continue = false
      conn.s:write("HTTP/1.1 100 Continue\r\n\r\n")
    end or nil,
  })
  req._body = b
  return b
end

---------------------------------------------------------------- connection
local Conn = {}
Conn.__index = Conn

-- Writes queue at once; only a queue past WRITE_HWM waits (for the peer
-- to read it all), and only that wait runs under write_timeout: no timer
-- per response while the peer keeps up.
local WRITE_HWM = 65536

--[[ The disconnect watcher.  Once a request's body is read to its end and
its handler has suspended, a task reads the connection while the handler
runs, as Go does for a request's context: an EOF or a reset cancels the
connection task, so the handler unwinds (`<close>` variables, pcall
cleanup).  What it reads stays in the reader's buffer for the next
request (pipelining); past WATCH_MAX buffered bytes it stops.  Once the
handler is done, the connection task cancels the watcher and waits for
it to unwind before reading itself (one reader at a time). ]]
local function watch(conn, req)
  local r = conn.r
  while conn.req == req and r:buffered() < WATCH_MAX do
    local ok, more = pcall(r.fill, r, false)
    if not ok and type(more) == "table" and more.code == "CANCELLED" then return end
    if not ok or not more then
      if not ok then conn.werr = true end
      if conn.req == req and not conn.watch_off then
        conn.gone = true
        conn.task:cancel("client disconnected")
      end
      return
    end
  end
end

local function start_watch(conn, req)
  if conn.req ~= req or conn.watch_off or conn.r.eof then return end
  conn.watcher = core.spawn(watch, conn, req)
end

-- The body is complete: watch once the handler has suspended.  One
-- callback per loop turn starts a watcher for each connection still
-- armed then, and a handler that answered within the turn never costs a
-- task.  The list is C (bindings/http/armed.c, linked through the
-- Parsers): the C loop (serve.c) arms and unarms there too, at no cost
-- per request to the collector.  A connection's request is unarmed when
-- it ends (finish), so an armed connection's request is conn.req.
local armed = C.armed(call_soon, function(conn)
  local req = conn.req
  if req then start_watch(conn, req) end
end)

local function arm(conn, req)
  if conn.req ~= req or conn.watch_off then return end
  armed:add(conn.p, conn)
end

-- A wait for the peer to read, under write_timeout.  A peer that stops
-- reading is its own fault: the connection ends (TIMEOUT, op
-- "write_timeout", not reported) and the handler unwinds.  The stream is
-- aborted at once: closing it would flush what is queued, waiting on the
-- same peer for as long as it likes (and holding the queued response).
local function write_waiting(self, f, ...)
  local ok, err = pcall(compose.timeout, self.o.write_timeout, f, ...)
  if ok then return end
  if type(err) == "table" and err.code == "TIMEOUT" then
    self.keep = false
    pcall(self.s.abort, self.s, "reset")
    err = Error("TIMEOUT", ("the client read nothing for %g s"):format(self.o.write_timeout),
      { op = "write_timeout", cause = err })
  end
  error(err, 0)
end

function Conn:write(...)
  local s = self.s
  local nowait = self.nowait
  if nowait then
    if nowait(s, ...) > WRITE_HWM then write_waiting(self, s.drain, s) end
    return
  end
  write_waiting(self, s.write, s, ...)
end

--[[ The connection's deadline.  One phase at a time is timed: "idle"
(waiting for a request's first byte), "header" (the rest of a head, from
its first byte), "request" (the handler) and "drain" (an unread body).
Entering a phase only stores its due time; the one timer of the
connection is re-armed only when the new due time comes before the time
it is armed for, and when it fires early (the phase moved on, or a later
due time replaced its own) it re-arms itself for what is left.  With the
default timeouts a busy keep-alive connection arms about one timer per
idle_timeout instead of two timeout scopes per request.  When the due
time passes, the timer cancels the connection task, as a timeout scope
would; the phase's end takes that request back (uncancel) and tells
whether it fired, so a cancellation from anyone else still passes. ]]
local expire

-- The due time and phase live in the connection's Parser (its deadline
-- methods, bindings/http/serve.c), which the C loop sets without a table
-- write; the timer is here.  arm_at: (re-)arm it for due.
local function arm_at(conn, due)
  local t = conn.timer
  if t then t:cancel() end
  conn.p:armed(due)
  conn.timer = call_later(due - now(), expire, conn)
end

function expire(conn)
  local p = conn.p
  conn.timer = false
  p:armed(nil)
  local due, name = p:due()
  if not due then return end
  if due - now() > 0.0005 then return arm_at(conn, due) end
  p:clear()
  conn.fired = conn.task:cancel(name .. "_timeout passed")
end

local function phase(conn, name, seconds)
  local due = conn.p:phase(name, seconds)
  if due then arm_at(conn, due) end
end

-- ends the phase; true when its deadline cancelled the task
local function phase_end(conn)
  conn.p:clear()
  if conn.fired then
    conn.fired = false
    conn.task:uncancel()
    return true
  end
  return false
end

local function stop_timer(conn)
  conn.p:clear()
  if conn.timer then conn.timer:cancel() conn.timer = false end
end

-- A handler's failure, once: opts.on_error(err, req) (as Deno.serve's
-- onError), else a line on stderr.  The server goes on either way.
local function report(o, err, req)
  local on_error = o.on_error
  if on_error then
    local ok, e2 = pcall(on_error, err, req)
    if ok then return end
    io.stderr:write("corio.http: on_error failed: ", tostring(e2), "\n")
  end
  io.stderr:write("corio.http: handler failed: ", tostring(err), "\n")
  if type(err) == "table" and err.traceback then io.stderr:write(err.traceback, "\n") end
end

-- What follows a handler that left its response unfinished, when the
-- connection loop cannot answer it at once: its returned answer (status,
-- headers, body) or, with none, res:finish().  `out`: the bytes reply()
-- made for a connection without write_nowait.
local function answer(res, req, status, headers, b, rb, out)
  if out then return res._c:write(out) end
  if status ~= nil and not res.headers_sent then
    if not rb.done then close_if_unread(res._c, req, rb) end
    out = reply(res, status, headers, b, REASONS)
    if out then return res._c:write(out) end
    send_returned(res, status, headers, b)
  else
    res:finish()
  end
end

-- one request; returns true to keep the connection
local run, after, finish
local function one(conn, srv)
  local s, r, o = conn.s, conn.r, conn.o
  -- idle: wait quietly for the next request's first byte
  if r.pos > #r.buf then
    -- (Reader:fill, inlined: the buffer is empty)
    if r.eof then return false end
    phase(conn, "idle", o.idle_timeout)
    local ok, d = pcall(conn.read, s, 65536)
    conn.p:clear()
    if conn.fired then phase_end(conn) end
    if not ok or not d then return false end
    r.buf, r.pos = d, 1      -- (r.got, bytes read, counts only for the client's retries)
  end
  if srv._shutting then return false end
  -- a head already buffered whole is found, checked and parsed at once
  -- (no timer: it cannot wait); else it is read under header_timeout,
  -- counted from its first byte
  local p, buf = conn.p, r.buf
  local req, res, nxt, keep, kind, n = take(p, buf, r.pos, Request, Response, conn)
  if req then
    r.pos = nxt
  elseif req == false then
    phase(conn, "header", o.header_timeout)
    local ok, block = pcall(r.head, r, o.max_header_size)
    local fired = phase_end(conn)
    if not ok then
      local code = type(block) == "table" and block.code
      if fired or code == "TIMEOUT" then answer_error(conn, 408) return false end
      if code == "LIMIT" then answer_error(conn, 431) return false end
      if code == "INCOMPLETE" then return false end
      error(block, 0)
    end
    if not block then return false end
    req, res, nxt, keep, kind, n = take(p, block, 1, Request, Response, conn, #block)
    -- a block that r.head ended at a blank line made of bare LFs
    if req == false then answer_error(conn, 400) return false end
  end
  if not req then answer_error(conn, res) return false end
  return run(conn, srv, req, res, keep, kind, n)
end

-- A request taken: its body, its handler, its answer
function run(conn, srv, req, res, keep, kind, n)
  local o = conn.o
  local b = NO_BODY
  if kind ~= "none" and not (kind == "length" and n == 0) then b = add_body(conn, req, kind, n) end
  conn.keep = keep
  -- the last request a connection may carry, or a server shutting down:
  -- its response says "Connection: close"
  if (o.max_requests > 0 and conn.n + 1 >= o.max_requests) or srv._shutting then conn.keep = false end
  conn.req = req                 -- (busy: a request is running)
  if not b.done then b.opts.on_done = function() arm(conn, req) end
  elseif not conn.watch_off then
    arm(conn, req)
  end
  phase(conn, "request", o.request_timeout)
  -- the handler, then the common answer (status, plain map, string body;
  -- the request body read) made in C and queued without waiting, with
  -- no Lua frame between them; anything else in answer()
  return after(conn, srv, req, res, b, pcall(srv._handler, req, res))
end

-- The handler returned (hok) or raised: its answer, unless it gave one
function after(conn, srv, req, res, b, hok, herr, headers, rbody)
  if hok and not res.finished then
    local s = conn.s
    local out = herr ~= nil and b.done and not res.headers_sent and reply(res, herr, headers, rbody, REASONS)
    local nowait = conn.nowait
    if out and nowait then
      hok, herr = pcall(nowait, s, out)
      if hok and herr > WRITE_HWM then hok, herr = pcall(write_waiting, conn, s.drain, s) end
    else
      hok, herr = pcall(answer, res, req, herr, headers, rbody, b, out)
    end
  end
  return finish(conn, srv, req, res, b, hok, herr)
end

-- The request is over (hok: answered; else herr): the deadline, the
-- watcher, the error's report; true to keep the connection
function finish(conn, srv, req, res, b, hok, herr)
  local o = conn.o
  conn.p:clear()
  local fired = conn.fired and phase_end(conn)
  conn.req = false
  armed:drop(conn.p)
  local w = conn.watcher
  if w then
    -- stop the watch: a read it had pending is undone; one that brought
    -- bytes is appended to the buffer as the watcher unwinds, before we
    -- read again (the watcher catches its cancellation: await never raises
    -- but ours)
    conn.watcher = nil
    if not w:done() then w:cancel("request done") w:await() end
    if conn.werr then conn.keep = false end
  end
  if conn.gone then
    -- the client went away: the handler was cancelled (if it swallowed
    -- the cancellation, or never awaited again, take it here)
    if hok then pcall(core.yield) end
    return false
  end
  if not hok then
    local code = type(herr) == "table" and herr.code
    if code == "CANCELLED" then
      -- request_timeout: unless someone else cancelled the task too
      if not fired or conn.task:cancelling() > 0 then error(herr, 0) end
      herr = Error("TIMEOUT", ("timed out after %g s"):format(o.request_timeout),
        { op = "request_timeout", cause = herr })
      code = "TIMEOUT"
    end
    -- the client went away mid-response (or mid-body: its body cut short
    -- by its EOF): its doing, nothing to report
    if PEER_GONE[code] or (code == "TIMEOUT" and herr.op == "write_timeout")
      or (code == "INCOMPLETE" and conn.r.eof) then return false end
    local status = type(herr) == "table" and herr.code == "HTTP_PROTOCOL" and herr.status
    if not status then
      status = code == "TIMEOUT" and 503 or 500
      report(o, herr, req)
    end
    if not res.headers_sent then answer_error(conn, status) end
    return false
  end
  if not conn.keep then conn.linger = not conn.watch_off return false end   -- (a WebSocket took the stream)
  -- the next request must start where this body ends
  if not b.done then
    phase(conn, "drain", o.idle_timeout)
    local dok, drained = pcall(body.drain, b, DRAIN_MAX)
    phase_end(conn)
    if not dok or not drained then conn.linger = true return false end
  end
  conn.n = conn.n + 1
  if o.max_requests > 0 and conn.n >= o.max_requests then conn.linger = true return false end
  return true
end

-- A response the C loop answered gets this metatable rather than two new
-- fields: Response's methods, with headers_sent and finished true.
for k, v in pairs(Response) do DoneResponse[k] = v end
DoneResponse.__index = DoneResponse
DoneResponse.headers_sent, DoneResponse.finished = true, true

--[[ A connection's requests, one after the other.  The common one (a
whole head, no body, a handler answering with its return values at once)
is served by the C loop (bindings/http/serve.c), which hands anything
else back at the step of one() it reached; one() serves a request in
full when the C loop cannot start it (bytes left in the reader, a head
not yet whole or malformed, max_requests, a stream corio.net did not
make). ]]
local cserve = C.serve
local function connection(conn, srv)
  local o, r, s = conn.o, conn.r, conn.s
  local handler = srv._handler
  local fast = o.max_requests == 0
  local lazy = srv._lazy
  while true do
    local keep
    if fast and r.pos > #r.buf and not r.eof then
      local how, req, res, a, b, c, d = cserve(conn.p, s, conn, Request, Response, handler,
        REASONS, srv, armed, arm_at, o.idle_timeout, o.request_timeout,
        DoneResponse, lazy)
      if how == "after" then keep = after(conn, srv, req, res, NO_BODY, a, b, c, d)
      elseif how == "run" then keep = run(conn, srv, req, res, a, b, c)
      elseif how == "finish" then keep = finish(conn, srv, req, res, NO_BODY, a, b)
      elseif how == "drain" then
        keep = finish(conn, srv, req, res, NO_BODY, pcall(write_waiting, conn, s.drain, s))
      elseif how == "fired" then phase_end(conn) keep = true
      elseif how == "stop" then
        if conn.fired then phase_end(conn) end
        keep = false
      elseif how == "close" then keep = false
      else
        keep = one(conn, srv)
      end
    else
      keep = one(conn, srv)
    end
    if not keep then return end
  end
end

--[[ Closing after an answer: the client may still be sending (a body
left unread, the rest of a pipeline), and closing a socket with unread
bytes makes the kernel send RST, which can reach the client before it
has read the response and destroy it.  So, as Go and nginx do, send EOF
first (a half-close, after what is queued), then read and discard for
at most LINGER s, until the client closes too. ]]
local function linger(conn)
  local s, read = conn.s, conn.read
  local ok, err = pcall(compose.timeout, conn.o.write_timeout, s.shutdown, s)
  -- a peer that reads nothing within write_timeout: dropped, not flushed
  if not ok and type(err) == "table" and err.code == "TIMEOUT" then pcall(s.abort, s, "reset") end
  if ok then
    ok, err = pcall(compose.timeout, LINGER, function()
      while read(s, 65536) do end
    end)
  end
  -- a cancellation from outside (shutdown) is not ours to swallow
  if not ok and type(err) == "table" and err.code == "CANCELLED" then error(err, 0) end
end

local function merge_opts(opts)
  local o = {}
  for k, v in pairs(M.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

function M.serve(host, port, handler, opts)
  if type(handler) ~= "function" then
    raise(("bad argument #3 to 'serve' (function expected, got %s)"):format(type(handler)))
  end
  if opts ~= nil and type(opts) ~= "table" then
    raise(("bad argument #4 to 'serve' (table expected, got %s)"):format(type(opts)))
  end
  for k, v in pairs(opts or {}) do      -- a limit or timeout is a number >= 0
    if type(M.DEFAULTS[k]) == "number" and (type(v) ~= "number" or v ~= v or v < 0) then
      raise(("bad argument #4 to 'serve' (option '%s' must be a number >= 0, got %s)")
        :format(k, tostring(v)))
    end
  end
  if opts and opts.on_error ~= nil and type(opts.on_error) ~= "function" then
    raise(("bad argument #4 to 'serve' (option 'on_error' must be a function, got %s)")
      :format(type(opts.on_error)))
  end
  local o = merge_opts(opts)
  local nopts = {}
  for k, v in pairs(opts or {}) do
    if M.DEFAULTS[k] == nil and k ~= "tls" and k ~= "on_error" then nopts[k] = v end
  end
  -- a handler of one parameter (req) never sees a Response unless it
  -- reads req._res: the C loop makes none for it (see Request.__index)
  local info = debug.getinfo(handler, "u")
  local state = { _handler = handler, _conns = {}, _shutting = false,
    _lazy = info.nparams < 2 and not info.isvararg }
  local srv
  local listen = net.serve
  if opts and opts.tls then
    -- HTTPS: corio.tls does the handshake, the handler gets a TlsStream
    nopts.tls = opts.tls
    listen = require("corio.tls")._serve_for
  end
  -- the limits as Parser:take wants them: integers, -1 for none
  local function int(v)
    if v >= math.maxinteger then return -1 end
    return math.tointeger(v // 1)
  end
  local lim_headers = int(o.max_headers)
  if lim_headers < 0 then lim_headers = math.maxinteger end
  local lim_size, lim_url, lim_body = int(o.max_header_size), int(o.max_url_size), int(o.max_body_size)
  srv = listen(host, port, function(s)
    local parser = C.parser("request")
    parser:limits(lim_headers, lim_size, lim_url, lim_body)
    local conn = setmetatable({ s = s, r = msg.new_reader(s, nil), o = o, n = 0, keep = true,
      p = parser, fired = false, timer = false, req = false, linger = false, read = s.read, nowait = s.write_nowait }, Conn)
    local ph, pp = s:peername()
    conn.peer = { host = ph, port = pp }
    conn.task = core.current()
    state._conns[conn] = conn.task
    local ok, err = pcall(connection, conn, state)
    stop_timer(conn)
    state._conns[conn] = nil
    if not ok then error(err, 0) end
    if conn.linger then linger(conn) end
  end, nopts)
  rawset(srv, "_opts", o)     -- the options in force (specs check the defaults)
  -- Server:shutdown(timeout): stop accepting, close idle connections,
  -- let running requests finish, cancel those still running at timeout
  rawset(srv, "shutdown", function(self, timeout)
    state._shutting = true
    self:close()
    for conn, task in pairs(state._conns) do
      if not conn.req then task:cancel("server shutdown")
      else conn.keep = false end      -- closes after its response
    end
    local ok = pcall(compose.timeout, timeout or 30, self.wait_closed, self)
    if not ok then
      for _, task in pairs(state._conns) do task:cancel("server shutdown timeout") end
      -- and the connections whose HTTP loop is over but whose stream is
      -- still closing (a TLS close waiting up to its shutdown_timeout for
      -- the client's close_notify): every handler task of the listener
      for task in pairs(rawget(self, "_tasks") or {}) do task:cancel("server shutdown timeout") end
      self:wait_closed()
    end
  end)
  return srv
end

return M
