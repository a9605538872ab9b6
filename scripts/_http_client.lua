--[[
corio._http_client -- the HTTP client (private; corio.http exports it):
a pool of keep-alive connections per origin, request writing, response
reading, retries, redirects and decompression.

Retry rule: only an idempotent request, only once, and only when a
reused connection failed before any byte of the response arrived (the
server closed an idle connection as we reused it); the retry runs on a
new connection.
]]
local core = require "corio.core"
local compose = require "corio.compose"
local net = require "corio.net"
local C = require "corio._http"
local msg = require "corio._http_msg"
local body = require "corio._http_body"
local A = require "corio._args"
local url_ = require "corio._http_url"

local Error, perror = core.Error, msg.perror
local M = {}

-- Every default docs/API-http.md lists (follow_redirects has none: it
-- depends on the method), so that http.DEFAULTS.client shows them all and
-- check_opts checks each option's type against its default's.
M.DEFAULTS = {
  timeout = 300, connect_timeout = 30, read_timeout = 60,
  max_redirects = 10, decompress = true, expect_continue = false,
  max_header_size = 65536, max_headers = 100,
  max_connections = 100, max_per_host = 0, max_idle_per_host = 100, idle_timeout = 90,
}

-- after a pcall around a wait whose other failures the caller absorbs
-- (the 100-continue wait, a redirect's drain): the task's own cancel goes on
local function cancel_through(ok, err)
  if not ok and type(err) == "table" and err.code == "CANCELLED" then error(err, 0) end
end

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }

local function argerr(n, fname, msg_)
  A.argerror(n, fname, msg_)
end

-- Every option whose default is a number must be a number >= 0 (a count
-- an integer), and one whose default is a boolean a boolean: a string
-- timeout used to fail deep inside the request ("attempt to add a
-- 'number' with a 'string'"), and a count of 1.5 only once the request
-- had gone out.  follow_redirects has no default (it depends on the
-- method) but is a boolean too.
local COUNTS = { max_redirects = true, max_header_size = true, max_headers = true,
  max_connections = true, max_per_host = true, max_idle_per_host = true }
local function check_opts(opts, n, fname)
  for k, v in pairs(opts) do
    local d = M.DEFAULTS[k]
    if type(d) == "number" and (type(v) ~= "number" or v ~= v or v < 0) then
      argerr(n, fname, ("option '%s' must be a number >= 0, got %s"):format(k, tostring(v)))
    elseif COUNTS[k] and not math.tointeger(v) then
      argerr(n, fname, ("option '%s' must be an integer, got %s"):format(k, tostring(v)))
    elseif (type(d) == "boolean" or k == "follow_redirects") and type(v) ~= "boolean" then
      argerr(n, fname, ("option '%s' must be a boolean, got %s"):format(k, tostring(v)))
    end
  end
end

local parse_url = url_.parse
M.parse_url = parse_url

local function escape(s)
  return (tostring(s):gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local resolve_url = url_.resolve
M.resolve_url = resolve_url

---------------------------------------------------------------- pool
local Client = {}
Client.__index = Client
Client.__name = "corio.http.Client"
M.Client = Client

local WEAK_VALUES = { __mode = "v" }

function M.client(opts)
  if opts ~= nil and type(opts) ~= "table" then argerr(1, "client", "table expected, got " .. type(opts)) end
  if opts then check_opts(opts, 1, "client") end
  local o = {}
  for k, v in pairs(M.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  -- omt: a request's options are its own over the client's (__index),
  -- not a copy of every default per request
  return setmetatable({ o = o, omt = { __index = o }, idle = {}, open = 0, per = {}, closed = false,
    urls = {}, nurls = 0, waiters = {},
    -- connections lent to a Response whose body is unread: inuse holds
    -- them, owner (weak) their Response; see reclaim()
    inuse = {}, owner = setmetatable({}, WEAK_VALUES), watched = false }, Client)
end

-- The pool key: scheme, host, port, and for https the TLS context's
-- identity and the server name, so that a connection made with verify =
-- false or another CA or client certificate never serves a request made
-- with other TLS options.  A pooled connection keeps its context alive, so
-- the identity cannot be reused while the key is in use.
local function tls_of(o)
  local t = o.tls
  local tls = require "corio.tls"
  if t ~= nil and not tls.is_context(t) and type(t) ~= "table" then
    argerr(4, "request", "option 'tls' must be a table or a TLS context")
  end
  -- tls.lua shares one context among equal option tables
  return tls._client_context(t), type(t) == "table" and t.servername or nil
end

local function key(cl, u, o)
  local k = u.key
  if not k then
    k = u.scheme .. "://" .. u.host .. ":" .. u.port
    u.key = k
  end
  if u.scheme ~= "https" then return k end
  local ctx, name = tls_of(o)
  k = k .. "|" .. tostring(ctx)
  if name ~= nil then k = k .. "|" .. tostring(name) end
  return k, ctx
end
M.pool_key = key

-- A connection slot may have come free (a connection closed or went
-- idle): the first request waiting for one looks again.
local function wake(cl)
  local w = cl.waiters
  while #w > 0 do
    local f = table.remove(w, 1)
    if not f:done() then f:set_result(true) return end
  end
end

-- Closes the idle connection unused the longest, whatever its origin;
-- false when none is idle.  Idle connections never hold a new request
-- back from max_connections.
local function evict_idle(cl)
  local oldest, ok
  for k, list in pairs(cl.idle) do
    local c = list[1]            -- lists grow at the end: [1] is the oldest
    if c and (not oldest or c.since < oldest.since) then oldest, ok = c, k end
  end
  if not oldest then return false end
  table.remove(cl.idle[ok], 1)
  oldest.gone = true
  pcall(oldest.s.abort, oldest.s)
  cl.open = cl.open - 1
  cl.per[ok] = cl.per[ok] - 1
  return true
end

-- Waits (FIFO) until a slot may be free, at most until the exchange's
-- deadline: TIMEOUT, like Go's MaxConnsPerHost and aiohttp's limit.  A
-- request woken that found the slot taken again waits at the front.  It
-- returns after a second at most, so that the caller looks again: a
-- Response dropped meanwhile frees its slot only once collected, and
-- while every request waits nothing allocates, so no collection runs.
local function wait_slot(cl, deadline, again)
  local f = core.future()
  local w = cl.waiters
  table.insert(w, again and 1 or #w + 1, f)
  local left = deadline and deadline - core.now() or nil
  if left and left <= 0 then left = 0 end
  local nap = not left or left > 1
  local ok, err = pcall(compose.timeout, nap and 1 or left, f.await, f)
  if not ok then
    for i = #w, 1, -1 do if w[i] == f then table.remove(w, i) end end
    -- a slot handed to us while we were leaving goes to the next one
    if f:done() and not f:cancelled() then wake(cl) end
    if nap and type(err) == "table" and err.code == "TIMEOUT" then return end
    if type(err) == "table" and err.code == "TIMEOUT" then
      err = Error("TIMEOUT", "no free connection in the pool before the deadline", { op = "http" })
    end
    error(err, 0)
  end
end

local reclaim   -- (cl) -> true when it freed a slot; defined with lend()

-- A full collection when the pool is full and reclaim() found nothing,
-- then reclaim() again; true when that freed a slot.  One that freed none
-- is not tried again for a second (a pool full of live Responses would
-- pay a collection per request).
local function collect_reclaim(cl)
  if cl.collected and core.now() - cl.collected < 1 then return false end
  collectgarbage()
  local freed = reclaim(cl)
  cl.collected = not freed and core.now() or nil
  return freed
end

-- an idle connection for u, or a new one (reused: true when from the
-- pool).  fresh: a retry, which must not take another pooled connection:
-- the one that failed shows the server closed its idle connections
-- (a restart, its idle timeout), and those idle beside it are as stale,
-- so they are closed and a new connection is opened.
local function checkout(cl, u, o, deadline, fresh)
  local k, ctx = key(cl, u, o)
  local waited = false
  while true do
    local list = cl.idle[k]
    while list and #list > 0 do
      local c = table.remove(list)
      -- an idle connection must have nothing to read: bytes that came
      -- meanwhile (a body longer than its Content-Length, sent late)
      -- would be read as this request's response, and an EOF means the
      -- server closed it (a request sent there fails, and one that is
      -- not idempotent could not be retried)
      if not fresh and core.now() - c.since < cl.o.idle_timeout and not c.r.eof
          and c.s:pending() == nil then
        return c, true
      end
      c.gone = true
      c.s:abort()
      cl.open = cl.open - 1
      cl.per[k] = cl.per[k] - 1
    end
    if cl.closed then error(Error("CLOSED", "the client is closed", { op = "request" }), 0) end
    local host_full = cl.o.max_per_host > 0 and (cl.per[k] or 0) >= cl.o.max_per_host
    if not host_full and (cl.open < cl.o.max_connections or evict_idle(cl)) then break end
    -- full: a collected Response may hold a slot (reclaim's comment);
    -- a dropped one not yet collected too: a full collection, at most
    -- once a second per client, finds it
    if not reclaim(cl) and not collect_reclaim(cl) then
      wait_slot(cl, deadline, waited)
      waited = true
    end
  end
  -- the slot is taken before connecting: requests that check the limit
  -- while this one connects see it
  cl.open, cl.per[k] = cl.open + 1, (cl.per[k] or 0) + 1
  -- connecting never outlasts the exchange's deadline
  local ct = o.connect_timeout
  if deadline and deadline - core.now() < ct then ct = math.max(0, deadline - core.now()) end
  local ok, s
  if u.scheme == "https" then
    -- corio.tls verifies the peer against the system CAs (or opts.tls)
    local tls = require "corio.tls"
    local t = {}
    if type(o.tls) == "table" then for kk, v in pairs(o.tls) do t[kk] = v end end
    t.context = ctx
    ok, s = pcall(compose.timeout, ct, tls._connect_for, u.host, u.port, { tls = t })
  else
    ok, s = pcall(compose.timeout, ct, net.connect, u.host, u.port)
  end
  if not ok then
    cl.open, cl.per[k] = cl.open - 1, cl.per[k] - 1
    if #cl.waiters > 0 then wake(cl) end
    error(s, 0)
  end
  -- one response parser per connection: it reads each head and goes on
  -- with a chunked body (bindings/http/head.c)
  return { s = s, r = msg.new_reader(s, o.read_timeout), k = k, ctx = ctx,
    p = C.parser("response") }, false
end

local function discard(cl, c)
  cl.inuse[c], cl.owner[c] = nil, nil
  if c.gone then return end
  c.gone = true
  pcall(c.s.abort, c.s)
  cl.open = cl.open - 1
  cl.per[c.k] = cl.per[c.k] - 1
  if #cl.waiters > 0 then wake(cl) end
end

-- A connection goes back idle only with nothing buffered past its
-- response: bytes after it (a body longer than its Content-Length, a 204
-- or HEAD answer with a body) would be read as the next request's
-- response (RFC 9112, 6.3: such data is never a separate response).
local function checkin(cl, c)
  cl.inuse[c], cl.owner[c] = nil, nil
  local r = c.r
  if cl.closed or c.gone or r.pos <= #r.buf then return discard(cl, c) end   -- bytes buffered
  local list = cl.idle[c.k] or {}
  cl.idle[c.k] = list
  if #list >= cl.o.max_idle_per_host then return discard(cl, c) end
  c.since = core.now()
  c.r.deadline = nil
  list[#list + 1] = c
  if #cl.waiters > 0 then wake(cl) end
end

-- A Response dropped unclosed, its body unread, would keep its
-- connection's pool slot for good (max_per_host, max_connections).  No
-- finalizer per Response (one cost a keep-alive GET about a quarter more
-- CPU: 23.8 against 18.7 us): the pool keeps such a connection in inuse and its Response in the
-- weak owner table; once the Response is collected, reclaim() closes the
-- connection and frees its slot.  It runs when a request finds the pool
-- full, and from the loop after a collection cycle saw a Response go.
function reclaim(cl)
  local owner, found = cl.owner, false
  for c in pairs(cl.inuse) do
    if owner[c] == nil then found = true discard(cl, c) end
  end
  return found
end

-- One finalizer per collection cycle, only while connections are lent
-- out: it runs inside the collector, so it only looks, and leaves the
-- closing and the waking to reclaim() at the loop's next turn.
local function watch(cl)
  cl.watched = true
  setmetatable({}, { __gc = function()
    cl.watched = false
    if next(cl.inuse) == nil then return end
    for c in pairs(cl.inuse) do
      if cl.owner[c] == nil then pcall(core.call_soon, reclaim, cl) break end
    end
    watch(cl)
  end })
end

-- lends c to res until its body is read to the end or it is closed
local function lend(cl, c, res)
  cl.inuse[c], cl.owner[c] = true, res
  if not cl.watched then watch(cl) end
end

function Client:close()
  self.closed = true
  for _, list in pairs(self.idle) do
    for _, c in ipairs(list) do discard(self, c) end
  end
  self.idle = {}
  -- requests waiting for a slot give up (CLOSED)
  local w = self.waiters
  self.waiters = {}
  for _, f in ipairs(w) do if not f:done() then f:set_result(true) end end
end
Client.__close = Client.close

---------------------------------------------------------------- Response
local Response = {}
Response.__name = "corio.http.Response"
for k, f in pairs(body.mixin) do Response[k] = f end
Response.__index = Response

function Response:close()
  if self._closed then return end
  self._closed = true
  if not self._body.done then discard(self._cl, self._c) end
end
Response.__close = Response.close

---------------------------------------------------------------- exchange
-- is the (lowercase) field name in h?  (no __index: no lower(), no join)
local function has(h, lname)
  local names = h._n
  for i = 1, #names do if names[i] == lname then return true end end
  return false
end

-- host[:port] of u as Host carries it: an IPv6 literal in brackets, the
-- scheme's default port left out (http.websocket sends it too)
local function authority(u)
  local default = (u.scheme == "http" and u.port == 80) or (u.scheme == "https" and u.port == 443)
  local host = u.host:find(":", 1, true) and "[" .. u.host .. "]" or u.host
  return default and host or host .. ":" .. u.port
end
M.authority = authority

-- "Host: ...\r\n" for u (parse_url keeps control characters out of hosts)
local function host_line(u)
  local l = u.host_line
  if l then return l end
  l = "Host: " .. authority(u) .. "\r\n"
  u.host_line = l
  return l
end

local function send_body(s, src, len)
  if len then
    for d in src do s:write(d) end
  else
    body.write_chunked(s, src)
  end
end

-- The head up to its framing line: the request line, Host unless the
-- caller gave one, the caller's fields (its own Content-Length and
-- Transfer-Encoding dropped: the framing is ours), User-Agent unless given.
local function head_prefix(method, u, h)
  local names, vals, orig = h._n, h._v, h._o
  local host, ua = false, false
  local parts = { method, " ", u.target, " HTTP/1.1\r\n", "" }
  local j = 5
  for i = 1, #names do
    local k = names[i]
    if k ~= "content-length" and k ~= "transfer-encoding" then
      if k == "host" then host = true elseif k == "user-agent" then ua = true end
      parts[j + 1], parts[j + 2], parts[j + 3], parts[j + 4] = orig[i], ": ", vals[i], "\r\n"
      j = j + 4
    end
  end
  if not host then parts[5] = host_line(u) end
  if not ua then parts[j + 1] = "User-Agent: corio\r\n" end
  return table.concat(parts)
end

local SHARED   -- the read-only header sets of a request without the caller's fields

-- a request's head without its framing line and blank line; with one of
-- the SHARED sets it depends on the URL and the method alone, so it is
-- made once per cached URL (url_of) and method
local function prefix_of(method, u, h)
  if not SHARED[h] then return head_prefix(method, u, h) end
  local byh = u.heads
  if not byh then byh = {} u.heads = byh end
  local bym = byh[h]
  if not bym then bym = {} byh[h] = bym end
  local p = bym[method]
  if not p then p = head_prefix(method, u, h) bym[method] = p end
  return p
end

-- A string body up to this size goes out in the same write as its head
-- (write_nowait: it never waits, so no deadline scope is needed to bound
-- it; the response's reads are bounded, and a peer that never reads it
-- times them out).  A bigger one, a Stream or a chunk function is sent
-- after the head under the exchange's deadline.
local SMALL_BODY = 65536

-- The next status of the heads in the reader's buffer, read as they
-- come (nothing is taken: read_final reads the heads after): "continue"
-- at a 100 when stop_at_100 is set, else "final" and the status of the
-- first head that is not 1xx ("final" and no status for bytes that are
-- not a status line, or the end: read_final reports those).  1xx heads
-- (102, 103; 100 unless stop_at_100) are passed over, and a status line
-- may come in pieces.  t bounds each read (the reader's read_timeout by
-- default; the exchange's deadline always).
local function next_status(r, max, stop_at_100, t)
  local skip = 0                      -- bytes of 1xx heads passed over
  while true do
    local at = r.pos + skip
    if #r.buf - at + 1 >= 12 then     -- "HTTP/1.x NNN"
      local code = r.buf:match("^HTTP/1%.%d (%d%d%d)", at)
      if not code then return "final" end
      if code:byte() ~= 49 then return "final", tonumber(code) end   -- not 1xx
      if code == "100" and stop_at_100 then return "continue" end
      local e = r.buf:find("\r\n\r\n", at, true)
      if e then
        skip = e + 4 - r.pos          -- look at what follows that 1xx
        goto again
      end
      if #r.buf - at + 1 > max then return "final" end
    end
    if not r:fill(t) then return "final" end
    ::again::
  end
end

-- Sends the body while watching the connection (RFC 9112 section 9.5): a
-- final answer of 300 or more before the body is all sent (a 401, a 413
-- from a server that reads no further) stops the sending, and the
-- connection closes after that answer; without the watch such a request
-- waited out its whole timeout, or failed on the reset, and the answer
-- was lost.  An early 2xx lets the body go on (a server may answer while
-- it still reads).
local function send_watching(c, src, len, left, max)
  local g <close> = compose.group()
  local sender, watcher
  sender = g:spawn(function()
    compose.timeout(left, send_body, c.s, src, len)
    watcher:cancel()
  end)
  watcher = g:spawn(function()
    -- no read_timeout while the body goes out: a slow upload is no fault
    local ok, got, status = pcall(next_status, c.r, max, false, 1e9)
    if ok and got == "final" and (status == nil or status >= 300) then
      c.skip_body = true
      sender:cancel()
    end
  end)
  g:wait()
end

local function write_request(c, method, u, h, src, len, o, small)
  -- framing is ours: a caller's Content-Length / Transfer-Encoding goes
  local framing = ""
  if small then
    framing = "Content-Length: " .. #small .. "\r\n"
  elseif src then
    framing = len and "Content-Length: " .. len .. "\r\n" or "Transfer-Encoding: chunked\r\n"
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    framing = "Content-Length: 0\r\n"
  end
  -- the head (with a small body) is queued without waiting
  -- (write_nowait), however big: a body that follows is sent under the
  -- exchange's deadline, and the response's reads are bounded
  if small then
    c.s:write_nowait(prefix_of(method, u, h), framing, "\r\n", small)
    return
  end
  c.s:write_nowait(prefix_of(method, u, h), framing, "\r\n")

  if not src then return end
  if o.expect_continue then
    -- wait (up to 1 s) for 100 or a final answer before sending the body
    local ok, got = pcall(compose.timeout, 1, next_status, c.r, o.max_header_size, true)
    cancel_through(ok, got)
    if ok and got == "final" then
      c.skip_body = true
      return
    end
  end
  -- the exchange's deadline bounds sending the body too: a peer that
  -- never reads it would hold the write for good (each read has its own
  -- bound)
  local left = c.r.deadline and c.r.deadline - core.now()
  local ok, err = pcall(send_watching, c, src, len, left and math.max(left, 0), o.max_header_size)
  if not ok then
    if type(err) == "table" and err.code == "TIMEOUT" then
      err = Error("TIMEOUT", "HTTP exchange timed out (sending the body)", { op = "http", cause = err })
    end
    error(err, 0)
  end
end

-- read heads until a final one: 1xx are skipped, at most MAX_1XX of
-- them (a peer sending 100 Continue forever would hold the exchange)
local MAX_1XX = 10
-- -> status, reason, minor, Headers, length, te, connection,
-- content_encoding, location (Parser:response_at)
local function read_final(c, o, method)
  local r, p, max = c.r, c.p, o.max_header_size
  for _ = 0, MAX_1XX do
    -- the head is parsed where it lies in the read buffer (response_at),
    -- once something is buffered (right after a request, nothing is)
    local scanned = 0
    local e, status, reason, minor, names, values, len, te, conn, enc, loc
    while true do
      if r.pos <= #r.buf then
        e, status, reason, minor, names, values, len, te, conn, enc, loc =
          p:response_at(r.buf, r.pos, max, o.max_headers, method == "HEAD", scanned)
        if e ~= false then break end
        if status then
          error(Error("LIMIT", ("head larger than %d bytes"):format(max), { op = "http" }), 0)
        end
      end
      scanned = #r.buf - r.pos + 1
      if not r:fill() then
        if r:buffered() == 0 then
          error(Error("ECONNRESET", "connection closed before the response", { op = "http" }), 0)
        end
        error(Error("INCOMPLETE", "connection closed inside the head",
          { op = "http", partial = r.buf:sub(r.pos) }), 0)
      end
    end
    if not e then error(perror(status, reason), 0) end
    r.pos = e
    if status >= 200 or status == 101 then
      return status, reason, minor, msg.headers_from_lists(names, values), len, te, conn, enc, loc
    end
  end
  error(perror(502, ("more than %d informational (1xx) responses"):format(MAX_1XX), { op = "http" }), 0)
end

local function send_and_read(c, method, u, h, src, len, o, small)
  write_request(c, method, u, h, src, len, o, small)
  return read_final(c, o, method)
end

-- A body is sent again (a retry, a followed 307/308) only if it can be:
-- a string.  A Stream or a chunk function was consumed by the first send.
local function replayable(b)
  return b == nil or type(b) == "string"
end

local function exchange(cl, method, u, h, bodyarg, o, deadline)
  for attempt = 1, 2 do
    local c, reused = checkout(cl, u, o, deadline, attempt == 2)
    c.r.deadline = deadline
    c.r.read_timeout = o.read_timeout
    local before = c.r.got
    local src, len, small = nil, nil, nil
    if type(bodyarg) == "string" and #bodyarg <= SMALL_BODY and not o.expect_continue then
      small = bodyarg
    elseif bodyarg ~= nil then
      src, len = body.source(bodyarg)
    end
    local ok, status, reason, minor, rh, n, te, conn, enc, loc =
      pcall(send_and_read, c, method, u, h, src, len, o, small)
    if ok then return c, status, reason, minor, rh, n, te, conn, enc, loc end
    discard(cl, c)
    local err = msg.name_timeout(status, deadline, o.read_timeout)
    local code = type(err) == "table" and err.code
    local retry = reused and IDEMPOTENT[method] and c.r.got == before and attempt == 1
      and code ~= "CANCELLED" and code ~= "TIMEOUT" and replayable(bodyarg)
    if not retry then error(err, 0) end
  end
end

local function inflater(enc)
  enc = enc and enc:lower()
  if enc == "gzip" or enc == "x-gzip" then return C.inflater("gzip") end
  if enc == "deflate" then return C.inflater("deflate") end
end

--- Client:request(method, url, opts) -> Response
local VERSION = { [0] = "1.0", [1] = "1.1" }
local AE_ONLY = msg.new_headers({ { "Accept-Encoding", "gzip, deflate" } })
local NONE = msg.new_headers()
SHARED = { [AE_ONLY] = true, [NONE] = true }

-- the common methods, each to its uppercase spelling (no pattern check,
-- no upper() for them)
local TOKEN_OK = { GET = "GET", HEAD = "HEAD", POST = "POST", PUT = "PUT", DELETE = "DELETE",
  PATCH = "PATCH", OPTIONS = "OPTIONS", get = "GET", head = "HEAD", post = "POST",
  put = "PUT", delete = "DELETE" }

-- parse_url through a small per-client cache (a result only gains caches
-- of what is made from it alone: key, host_line, heads)
local WEB = { http = true, https = true }
local QUERY_OK = { string = true, number = true, boolean = true }
local function url_of(cl, url)
  local u = cl.urls[url]
  if u then return u end
  u = parse_url(url)
  if u and not WEB[u.scheme] then
    return nil, ("unsupported URL scheme %s (http and https only)"):format(u.scheme)
  end
  if u then
    if cl.nurls >= 64 then cl.urls, cl.nurls = {}, 0 end
    cl.urls[url], cl.nurls = u, cl.nurls + 1
  end
  return u
end

-- Argument numbers count as Lua counts them for a method call (self not
-- counted) and for the module functions alike: request(method, url, opts)
-- is 1, 2, 3 both as http.request and as client:request; get(url, opts)
-- is 1, 2; post(url, body, opts) is 1, 2, 3.  `args` = { fname, method
-- arg, url arg, opts arg, body arg (nil: the body is opts.body) }.
local REQUEST_ARGS = { "request", 1, 2, 3 }

local function check_body(b, n, fname, what)
  if b == nil or type(b) == "string" or type(b) == "function" then return end
  local t = type(b)
  if (t == "table" or t == "userdata") and type(b.read) == "function" then return end
  argerr(n, fname, (what or "") .. "string, function or Stream expected, got " .. A.typename(b))
end

local function request(self, method, url, opts, args, body_arg)
  local fname, nu, no = args[1], args[3], args[4]
  if getmetatable(self) ~= Client then
    A.raise(("calling '%s' on bad self (corio.http.Client expected, got %s)"):format(fname, A.typename(self)))
  end
  if type(method) ~= "string" or not (TOKEN_OK[method] or method:find("^[!#$%%&'*+%-.^_`|~%w]+$")) then
    argerr(args[2], fname, "method must be a token string")
  end
  if type(url) ~= "string" then argerr(nu, fname, "string expected, got " .. type(url)) end
  if opts ~= nil and type(opts) ~= "table" then argerr(no, fname, "table expected, got " .. type(opts)) end
  if opts then
    check_opts(opts, no, fname)
    if opts.tls ~= nil and type(opts.tls) ~= "table" and not require("corio.tls").is_context(opts.tls) then
      argerr(no, fname, "option 'tls' must be a table or a TLS context")
    end
    if opts.headers ~= nil and type(opts.headers) ~= "table" then
      argerr(no, fname, "option 'headers' must be a table, got " .. type(opts.headers))
    end
    if opts.query ~= nil then
      if type(opts.query) ~= "table" then
        argerr(no, fname, "option 'query' must be a table, got " .. type(opts.query))
      end
      for k, v in pairs(opts.query) do   -- (a table would go out as "table: 0x...")
        if not QUERY_OK[type(k)] or not QUERY_OK[type(v)] then
          argerr(no, fname, ("option 'query': %s = %s (strings, numbers and booleans only)")
            :format(type(k), type(v)))
        end
      end
    end
    if not args[5] then check_body(opts.body, no, fname, "option 'body': ") end
  end
  if args[5] then check_body(body_arg, args[5], fname) end
  local u, why = url_of(self, url)
  if not u then argerr(nu, fname, why or "invalid URL " .. url) end
  if self.closed then error(Error("CLOSED", "the client is closed", { op = "request" }), 0) end
  local o = self.o
  if opts and next(opts) ~= nil then
    o = setmetatable({}, self.omt)
    for k, v in pairs(opts) do o[k] = v end
  end
  method = TOKEN_OK[method] or method:upper()
  if o.query then
    local parts, keys = {}, {}
    for k in pairs(o.query) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = escape(k) .. "=" .. escape(o.query[k]) end
    url = url .. (url:find("?", 1, true) and "&" or "?") .. table.concat(parts, "&")
    u = url_of(self, url)
  end
  -- no headers of the caller's: a shared read-only set (copied before a
  -- redirect edits it)
  local h
  if o.headers == nil and o.json == nil then
    h = o.decompress and AE_ONLY or NONE
  else
    h = msg.new_headers(o.headers, fname, no)
  end
  local b
  if args[5] then b = body_arg else b = o.body end   -- post(url, body, opts): body_arg
  if o.json ~= nil then
    b = require("corio.json").encode(o.json)
    if not h["content-type"] then h:set("Content-Type", "application/json") end
  end
  if o.decompress and not SHARED[h] and not has(h, "accept-encoding") then
    local n = #h._n + 1
    h._n[n], h._v[n], h._o[n] = "accept-encoding", "gzip, deflate", "Accept-Encoding"
  end
  local follow = o.follow_redirects
  if follow == nil then follow = method == "GET" or method == "HEAD" end
  local deadline = core.now() + o.timeout
  local first = u
  for _ = 0, o.max_redirects do
    if not u then argerr(nu, fname, "invalid URL " .. url) end
    local c, status, reason, minor, rh, n, te, conn_h, enc, loc =
      exchange(self, method, u, h, b, o, deadline)
    if status == 101 and not has(h, "upgrade") then
      discard(self, c)
      error(Error("HTTP_PROTOCOL", "101 Switching Protocols without an Upgrade asked for",
        { op = "http", status = 101 }), 0)
    end
    local kind
    if method == "HEAD" or status == 204 or status == 304 or status == 101 then
      kind = "none"
    elseif n then
      kind = "length"   -- the common case: one Content-Length of plain digits
    else
      local fok, k2, n2 = pcall(msg.framing, rh, false)
      if not fok then discard(self, c) error(k2, 0) end
      kind, n = k2, n2
    end
    conn_h = conn_h or ""
    local keep = kind ~= "close" and not conn_h:find("close", 1, true)
      and (minor == 1 or conn_h:find("keep-alive", 1, true)) and not c.skip_body
    local res = setmetatable({ status = status, reason = reason, version = VERSION[minor] or "1." .. minor,
      url = url, headers = rh, _cl = self, _c = c }, Response)
    local r = c.r
    local inflate = o.decompress and kind ~= "none" and enc and inflater(enc) or nil
    if kind == "length" and #r.buf - r.pos + 1 >= n then
      -- the whole body came with the head (an empty one always does):
      -- taken now, so nothing of this response is left on the
      -- connection, which goes back to the pool at once (no lending, no
      -- callback when the body is read)
      res._body = body.whole(r.buf:sub(r.pos, r.pos + n - 1), inflate)
      r.pos = r.pos + n
      kind = "none"
    else
      res._body = body.new(r, kind, n, {
        on_done = function()
          if keep and status ~= 101 then checkin(self, c) else discard(self, c) end
        end,
        inflate = inflate,
        decoder = kind == "chunked" and c.p or nil,
      })
    end
    if kind == "none" then
      -- a 101 switched the connection to another protocol: never pooled
      if keep and status ~= 101 then checkin(self, c) else discard(self, c) end
    else
      lend(self, c, res)
    end
    if not (follow and loc and (status == 301 or status == 302 or status == 303
        or status == 307 or status == 308)) then
      return res
    end
    -- 303 (and 301/302 after POST) goes on as GET without the body; any
    -- other redirect resends it, which a Stream or a chunk function cannot:
    -- the caller gets the redirect itself (Go's net/http does the same
    -- for a body without GetBody)
    local to_get = status == 303 or ((status == 301 or status == 302) and method == "POST")
    if not to_get and not replayable(b) then return res end
    -- a Location that is empty (it would ask again for the same URL), not
    -- a URL, or not http(s): the redirect itself is the answer, its body
    -- unread (as Go)
    local next_url = resolve_url(url, loc)
    local nu = loc ~= "" and url_of(self, next_url)
    if not nu then return res end
    url = next_url
    -- follow: drop this body (up to 1 MiB, else the connection)
    local dok, derr = pcall(body.drain, res._body, 1048576)
    if not dok or not res._body.done then discard(self, c) end
    cancel_through(dok, derr)
    if h == AE_ONLY or h == NONE then h = msg.new_headers(h) end
    if to_get then
      if method ~= "HEAD" then method = "GET" end
      b = nil
      h:remove("content-type"); h:remove("content-length"); h:remove("transfer-encoding")
    end
    -- credentials never follow to another origin
    if nu.scheme ~= first.scheme or nu.host ~= first.host or nu.port ~= first.port then
      h:remove("authorization"); h:remove("cookie"); h:remove("proxy-authorization")
    end
    h:remove("host")
    u = nu
  end
  error(Error("LIMIT", ("more than %d redirects"):format(o.max_redirects), { op = "http" }), 0)
end

function Client:request(method, url, opts)
  return request(self, method, url, opts, REQUEST_ARGS)
end
M.request = request

local function sugar(method, with_body)
  local name = method:lower()
  if with_body then
    local args = { name, 0, 1, 3, 2 }
    -- the body goes apart from the options (no table per request; an
    -- opts.body is ignored: the argument is the body)
    return function(self, url, a, b)
      if b ~= nil and type(b) ~= "table" then argerr(3, name, "table expected, got " .. type(b)) end
      return request(self, method, url, b, args, a)
    end
  end
  local args = { name, 0, 1, 2 }
  return function(self, url, a)
    return request(self, method, url, a, args)
  end
end
Client.get, Client.head, Client.delete = sugar("GET"), sugar("HEAD"), sugar("DELETE")
Client.post, Client.put, Client.patch = sugar("POST", true), sugar("PUT", true), sugar("PATCH", true)
Client.options = sugar("OPTIONS")

return M
