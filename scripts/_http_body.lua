--[[
corio._http_body -- message bodies (private): reading a body framed by
Content-Length, chunked coding or the connection's end, with a size
limit, and writing chunked bodies.  Request and Response share the read
methods (read, lines, body, json) through `mixin`.
]]
local core = require "corio.core"
local C = require "corio._http"
local msg = require "corio._http_msg"
local raise = require("corio._args").raise

local Error, perror = core.Error, msg.perror
local find, sub, byte = string.find, string.sub, string.byte
local M = {}

--- new(r, kind, n, opts) -> body source; kind "length" (n bytes),
--- "chunked", "close" (to EOF) or "none".  opts: limit (bytes; past it
--- HTTP_PROTOCOL 413 / LIMIT), on_first (called before the first read:
--- 100-continue), on_done (called once the body was read to its end),
--- inflate (a zlib inflater), decoder (for a chunked body: the parser
--- that read the head, which goes on with the body).
function M.new(r, kind, n, opts)
  opts = opts or {}
  local dec
  if kind == "chunked" then
    dec = opts.decoder
    assert(dec, "a chunked body needs the parser of its head")
  end
  return { r = r, kind = kind, left = n or 0, done = kind == "none" or (kind == "length" and n == 0),
    total = 0, opts = opts, started = false, pending = nil, dec = dec }
end

local NO_OPTS = {}

--- whole(data [, inflate]) -> the body source of a body read whole
--- already (the client's answer whose Content-Length body came in the
--- same reads as its head): done for its connection, `data` still to be
--- read (through the inflater, if one).
function M.whole(data, inflate)
  return { kind = "length", left = 0, done = true, whole = data ~= "" and data or nil,
    total = #data, opts = inflate and { inflate = inflate } or NO_OPTS, started = true }
end

-- the first n bytes of s, and the rest (nil when nothing is left)
local function split(s, n)
  if #s > n then return s:sub(1, n), s:sub(n + 1) end
  return s, nil
end

local function incomplete(b)
  error(Error("INCOMPLETE", "connection closed before the end of the body",
    { op = "http" }), 0)
end

local function finish(b)
  if b.done then return end
  b.done = true
  if b.opts.on_done then b.opts.on_done() end
end

local function count(b, d)
  b.total = b.total + #d
  local lim = b.opts.limit
  if lim and b.total > lim then
    error(perror(413, ("body larger than %d bytes"):format(lim), { op = "http" }), 0)
  end
  return d
end

-- raw(b, n) -> up to n decoded-framing bytes, or nil at the body's end
local function raw(b, n)
  if b.whole then
    local d
    d, b.whole = split(b.whole, n)
    return d
  end
  if b.done then return nil end
  if not b.started then
    b.started = true
    if b.opts.on_first then b.opts.on_first() end
  end
  local r = b.r
  if b.kind == "length" then
    local d = r:take(math.min(n, b.left))
    if not d then incomplete(b) end
    b.left = b.left - #d
    if b.left == 0 then finish(b) end
    return count(b, d)
  elseif b.kind == "close" then
    local d = r:take(n)
    if not d then finish(b) return nil end
    return count(b, d)
  end
  -- chunked: http_parser decodes what is buffered, behind the framing
  -- guard (bindings/http/head.c); what exceeds n waits in b.rest
  while true do
    local rest = b.rest
    if rest then
      local d
      d, b.rest = split(rest, n)
      if not b.rest and b.ended then finish(b) end
      return count(b, d)
    end
    if b.ended then finish(b) return nil end
    if r.pos > #r.buf and not r:fill_named() then incomplete(b) end
    local d, pos, ended = b.dec:chunk(r.buf, r.pos)
    if not d then error(perror(pos, ended), 0) end
    r.pos = pos
    b.ended = ended
    if #d > 0 then b.rest = d end
  end
end

-- chunk(b, n) -> up to n bytes of the (decompressed) body, nil at end.
-- The inflater gives at most ZOUT bytes per feed, so that a compression
-- bomb is met a piece at a time: a reader's limit stops it early, and no
-- string of the whole output is ever made (or cut up again and again).
local ZOUT = 65536
local function chunk(b, n)
  local inf = b.opts.inflate
  if not inf then return raw(b, n) end
  while true do
    local p = b.pending
    if p and #p > 0 then
      local d
      d, b.pending = split(p, n)         -- p is at most ZOUT bytes
      return d
    end
    if b.idone then return nil end
    -- input the last feed left (its output was full), else more of the body
    local d = b.zin
    b.zin = nil
    if not d and not b.zfull then d = raw(b, 65536) end
    local out, why
    if d or b.zfull then
      out, why = inf:feed(d or "", ZOUT)
      if out then
        if d and why < #d then b.zin = d:sub(why + 1) end
        b.zfull = #out == ZOUT          -- zlib may hold more: drain it first
      end
    else
      out, why = inf:finish()
      b.idone = true
    end
    -- a body that does not decode is the peer's invalid message
    if not out then error(perror(502, why, { op = "http" }), 0) end
    b.pending = out
    b.zout = (b.zout or 0) + #out
    -- a few KB of input can inflate for seconds: other tasks get a turn
    -- every 256 KiB of output (the reads of the input, already buffered,
    -- do not wait)
    b.zturn = (b.zturn or 0) + #out
    if b.zturn >= 262144 then
      b.zturn = 0
      core.yield()
    end
    if b.opts.limit and b.zout > b.opts.limit * 4 + 65536 then
      -- a zip bomb grows without bound
      error(Error("LIMIT", "decompressed body too large", { op = "http" }), 0)
    end
  end
end
M.chunk = chunk

local function check_self(self, fname)
  if type(self) ~= "table" or not self._body then
    raise(("bad argument #1 to '%s' (an HTTP message expected)"):format(fname))
  end
  return self._body
end

M.mixin = {}

-- A line read keeps the bytes it took past its line in b.linebuf and
-- where the unread ones start in b.linepos, so that each line costs its
-- own length (cutting the rest off per line copied up to 64 KiB for
-- each short line).  The other reads take the rest as a string first.
local function settle(b)
  local p = b.linepos
  if p then
    b.linebuf, b.linepos = b.linebuf:sub(p), nil
  end
  return b.linebuf
end

--- read(n | "l" | "L" | "a")
function M.mixin.read(self, fmt)
  local b = check_self(self, "read")
  fmt = fmt or "l"
  if math.type(fmt) == "integer" or (type(fmt) == "number" and fmt == math.floor(fmt)) then
    if fmt < 0 then raise("bad argument #1 to 'read' (negative count)") end
    local lb = settle(b)          -- what a line read took past its line
    if fmt == 0 then   -- as file:read(0): "" while there is more, nil at the end
      -- (an inflater may hold output after the last input: idone)
      if b.done and not b.whole and not (b.pending and #b.pending > 0)
          and not (lb and #lb > 0) and (not b.opts.inflate or b.idone) then
        return nil
      end
      return ""
    end
    fmt = math.tointeger(fmt) or math.maxinteger   -- (math.huge: all that comes)
    if lb and #lb > 0 then
      local d, rest = split(lb, fmt)
      b.linebuf = rest or ""
      return d
    end
    return chunk(b, fmt)
  end
  -- "a" is body() with its default limit: a compressed body of 1 MB
  -- could otherwise inflate to a string of any size
  if fmt == "a" or fmt == "*a" then return M.mixin.body(self) end
  if fmt == "l" or fmt == "L" or fmt == "*l" or fmt == "*L" then
    local keep = fmt == "L" or fmt == "*L"
    local acc, p = b.linebuf or "", b.linepos or 1
    while true do
      local e = find(acc, "\n", p, true)
      if e then
        b.linebuf, b.linepos = acc, e + 1
        if keep then return sub(acc, p, e) end
        if e > p and byte(acc, e - 1) == 13 then e = e - 1 end   -- CRLF
        return sub(acc, p, e - 1)
      end
      local d = chunk(b, 65536)
      if not d then
        b.linebuf, b.linepos = "", nil
        if p > #acc then return nil end
        return sub(acc, p)
      end
      acc, p = sub(acc, p) .. d, 1
      if #acc > 1048576 then error(Error("LIMIT", "line too long", { op = "read" }), 0) end
    end
  end
  raise(("bad argument #1 to 'read' (invalid format)"))
end

function M.mixin.lines(self, fmt)
  return function() return M.mixin.read(self, fmt or "l") end
end

local function too_large(limit)
  error(Error("LIMIT", ("body larger than %d bytes"):format(limit), { op = "body" }), 0)
end

--- body([limit]) -> the whole body; LIMIT past `limit` (64 MiB)
function M.mixin.body(self, limit)
  local b = check_self(self, "body")
  if limit ~= nil and type(limit) ~= "number" then
    raise(("bad argument #1 to 'body' (number expected, got %s)"):format(type(limit)))
  end
  if limit ~= nil and not (limit >= 0) then
    raise(("bad argument #1 to 'body' (a limit >= 0 expected, got %s)"):format(tostring(limit)))
  end
  limit = limit or 64 * 1048576
  local w = b.whole
  settle(b)
  if w and not b.linebuf and not b.opts.inflate then   -- read whole already
    if #w > limit then too_large(limit) end
    b.whole = nil
    return w
  end
  local parts, n = { b.linebuf or "" }, #(b.linebuf or "")
  b.linebuf = ""
  if n > limit then too_large(limit) end
  while true do
    local d = chunk(b, 65536)
    if not d then break end
    n = n + #d
    if n > limit then too_large(limit) end
    parts[#parts + 1] = d
  end
  return table.concat(parts)
end

function M.mixin.json(self, limit)
  return require("corio.json").decode(M.mixin.body(self, limit))
end

--- drain(b, max) -> true when the body was read to its end within max
function M.drain(b, max)
  local n = 0
  while not b.done do
    local d = raw(b, 65536)
    if not d then break end
    n = n + #d
    if n > max then return false end
  end
  return true
end

--- each_chunk(body) -> iterator of strings for an outgoing body (string,
--- Stream, or a function returning chunks until nil); second result: the
--- length when known.
function M.source(body)
  if body == nil then return nil, 0 end
  if type(body) == "string" then
    local sent = false
    return function()
      if sent then return nil end
      sent = true
      return body
    end, #body
  end
  if type(body) == "function" then return body, nil end
  local mt = getmetatable(body)
  if (type(body) == "userdata" or type(body) == "table") and body.read then
    return function() return body:read(65536) end, nil
  end
  raise("bad argument (body must be a string, a function or a Stream, got " .. (mt and mt.__name or type(body)) .. ")")
end

--- write_chunked(stream, next) sends every chunk of `next` then the end
function M.write_chunked(s, nextf)
  while true do
    local d = nextf()
    if d == nil then break end
    if type(d) ~= "string" then error(Error("INVALID_STATE", "a body chunk must be a string", { op = "http" }), 0) end
    if #d > 0 then s:write(("%x\r\n"):format(#d), d, "\r\n") end
  end
  s:write("0\r\n\r\n")
end

return M
