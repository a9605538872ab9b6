--[[
corio._http_msg -- what the HTTP client and server share (private):
Headers, the buffered Reader over a Stream (deadlines per read and per
exchange), reading and checking a head block, HTTP errors.

The byte-level rules of a head are in C (bindings/http/head.c); the
rules here are the ones that need the whole field list: Content-Length
against Transfer-Encoding, repeated Content-Length, Host on HTTP/1.1.
]]
local core = require "corio.core"
local C = require "corio._http"
local raise = require("corio._args").raise
local read_within = require("corio._net").read_within

local Error = core.Error
local M = {}

--- perror(status, detail) -> HTTP_PROTOCOL error; `status` is what a
--- server answers (400, 413, 431, 501, 505, ...).
function M.perror(status, detail, extra)
  local e = Error("HTTP_PROTOCOL", detail, extra or {})
  e.status, e.detail = status, detail
  return e
end
local perror = M.perror

---------------------------------------------------------------- Headers
local Headers = { __name = "corio.http.Headers" }
local methods = {}
M.Headers = Headers

function Headers.__index(self, k)
  local m = methods[k]
  if m then return m end
  if type(k) ~= "string" then return nil end
  k = k:lower()
  local names, vals = rawget(self, "_n"), rawget(self, "_v")
  local out
  for i = 1, #names do
    if names[i] == k then
      if k == "set-cookie" then return vals[i] end
      out = out and (out .. ", " .. vals[i]) or vals[i]
    end
  end
  return out
end

-- check_field(name, value, fname [, n]) -> name, value: a header field a
-- caller gave; n: the argument that held it (a table of fields), else the
-- name is argument #1 and the value #2 (h:set(name, value)).
local function check_field(name, value, fname, n)
  local function bad(i, what)
    if n then
      raise(("bad argument #%d to '%s' (%s)"):format(n, fname, what))
    end
    raise(("bad argument #%d to '%s' (%s)"):format(i, fname, what))
  end
  if type(name) ~= "string" then
    bad(1, (n and "header name: " or "") .. "string expected, got " .. type(name))
  end
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" then
    bad(2, (n and "header value: " or "") .. "string expected, got " .. type(value))
  end
  -- CR/LF in a name or value written to the wire would let a caller's
  -- data start a new header or a new message (response splitting).
  if not name:find("^[!#$%%&'*+%-.^_`|~%w]+$") then
    bad(1, "invalid header name")
  end
  if value:find("[%z\1-\8\10-\31\127]") then
    bad(2, "control character in header value")
  end
  return name, value
end

local function check_headers(self, fname)
  if getmetatable(self) ~= Headers then
    raise(("calling '%s' on bad self (corio.http.Headers expected, got %s)")
      :format(fname, require("corio._args").typename(self)))
  end
end

local function check_name(name, fname)
  if type(name) ~= "string" then
    raise(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, type(name)))
  end
  return name
end

local function add(h, name, value, fname, n)
  name, value = check_field(name, value, fname, n)
  local o = rawget(h, "_o")
  local i = #h._n + 1
  h._n[i], h._v[i], o[i] = name:lower(), value, name
end

--- new_headers(init [, fname, n]) -> Headers; init: nil, a map, a list of
--- {name, value} pairs, or a Headers (copied).  fname, n: the function
--- and argument named by a bad-argument error (http.headers(init)).
function M.new_headers(init, fname, n)
  fname, n = fname or "headers", n or 1
  local h = setmetatable({ _n = {}, _v = {}, _o = {} }, Headers)
  if init == nil then return h end
  if getmetatable(init) == Headers then
    local o = rawget(init, "_o") or init._n
    for i = 1, #init._n do h._n[i], h._v[i], h._o[i] = init._n[i], init._v[i], o[i] end
  elseif type(init) == "table" then
    if #init > 0 then
      for i, p in ipairs(init) do
        if type(p) ~= "table" then
          raise(("bad argument #%d to '%s' (item %d: {name, value} pair expected, got %s)")
            :format(n, fname, i, type(p)))
        end
        add(h, p[1], p[2], fname, n)
      end
    else
      local keys = {}
      for k in pairs(init) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do add(h, k, init[k], fname, n) end
    end
  else
    raise(("bad argument #%d to '%s' (table expected, got %s)"):format(n, fname, type(init)))
  end
  return h
end

-- from the parser's lists of names (lowercase) and values; the original
-- spellings (_o) are the names themselves until a change copies them
function M.headers_from_lists(names, values)
  return setmetatable({ _n = names, _v = values }, Headers)
end

local function own_o(self)
  local o = rawget(self, "_o")
  if o then return o end
  o = {}
  for i = 1, #self._n do o[i] = self._n[i] end
  self._o = o
  return o
end

function methods.get_all(self, name)
  check_headers(self, "get_all")
  name = check_name(name, "get_all"):lower()
  local out = {}
  for i = 1, #self._n do
    if self._n[i] == name then out[#out + 1] = self._v[i] end
  end
  return out
end

function methods.each(self)
  check_headers(self, "each")
  local i = 0
  local o = rawget(self, "_o") or self._n
  return function()
    i = i + 1
    if self._n[i] then return o[i], self._v[i] end
  end
end

function methods.add(self, name, value)
  check_headers(self, "add")
  name, value = check_field(name, value, "add")
  local o = own_o(self)
  local n = #self._n + 1
  self._n[n], self._v[n], o[n] = name:lower(), value, name
end

function methods.remove(self, name)
  check_headers(self, "remove")
  name = check_name(name, "remove"):lower()
  local o = own_o(self)
  for i = #self._n, 1, -1 do
    if self._n[i] == name then
      table.remove(self._n, i); table.remove(self._v, i); table.remove(o, i)
    end
  end
end

function methods.set(self, name, value)
  check_headers(self, "set")
  name, value = check_field(name, value, "set")
  methods.remove(self, name)
  methods.add(self, name, value)
end

function methods.has(self, name)
  check_headers(self, "has")
  return self[check_name(name, "has")] ~= nil
end

--- serialize(h) -> "Name: value\r\n..." in order
function methods.serialize(self)
  local out, o = {}, rawget(self, "_o") or self._n
  for i = 1, #self._n do out[#out + 1] = o[i] .. ": " .. self._v[i] .. "\r\n" end
  return table.concat(out)
end

---------------------------------------------------------------- Reader
-- A buffer over a Stream: the HTTP code reads heads, lines and bodies
-- from it, and what a read brought past the current message stays for
-- the next one (pipelining, keep-alive).
local Reader = {}
Reader.__index = Reader
M.Reader = Reader

--- new_reader(stream, read_timeout) ; r.deadline (absolute, or nil)
function M.new_reader(stream, read_timeout)
  return setmetatable({ s = stream, buf = "", pos = 1, eof = false,
    read_timeout = read_timeout, deadline = nil, got = 0 }, Reader)
end

function Reader:buffered() return #self.buf - self.pos + 1 end

-- One read from the stream into the buffer; false at EOF.  Each read
-- waits at most read_timeout, and never past the exchange's deadline.
-- (No pcall around the read to rename its TIMEOUT: a read that waits
-- inside a pcall costs every response a frame unrolled on resume; the
-- exchange names the bound that fired, see _http_client.lua.)
function Reader:fill(timeout)
  if self.eof then return false end
  local t = timeout or self.read_timeout
  if self.deadline then
    local left = self.deadline - core.now()
    if left <= 0 then error(Error("TIMEOUT", "HTTP exchange timed out", { op = "http" }), 0) end
    if not t or left < t then t = left end
  end
  -- the bound is the task's own timer (read_within), not a
  -- corio.timeout scope: one per response read cost a table, a timer
  -- Handle and a to-be-closed exit
  local d = read_within(self.s, 65536, t)
  if not d then self.eof = true return false end
  self.got = self.got + #d
  if self.pos > #self.buf then
    self.buf, self.pos = d, 1
  else
    self.buf, self.pos = self.buf:sub(self.pos) .. d, 1
  end
  return true
end

--- name_timeout(err, deadline, read_timeout) -> err, or for a read's
--- TIMEOUT the HTTP one that names the bound that fired (not the time
--- that happened to be left)
function M.name_timeout(err, deadline, read_timeout)
  if type(err) ~= "table" or err.code ~= "TIMEOUT" or err.op == "http" then return err end
  return Error("TIMEOUT", deadline and core.now() >= deadline - 0.001 and "HTTP exchange timed out"
    or ("no data for %g s (read_timeout)"):format(read_timeout), { op = "http", cause = err })
end
local name_timeout = M.name_timeout

--- fill_named() -> fill() whose TIMEOUT names its bound: for the body's
--- reads (the exchange names those of the head itself, without a pcall
--- per read)
function Reader:fill_named()
  local ok, more = pcall(self.fill, self)
  if ok then return more end
  error(name_timeout(more, self.deadline, self.read_timeout), 0)
end

--- take(n) -> up to n buffered bytes (reads once if none), nil at EOF
function Reader:take(n)
  if self.pos > #self.buf and not self:fill_named() then return nil end
  local s = self.buf:sub(self.pos, self.pos + n - 1)
  self.pos = self.pos + #s
  return s
end

--- line(max) -> a CRLF-terminated line without its CRLF; nil at EOF;
--- a line past `max` bytes or ending in a bare LF is a protocol error.
function Reader:line(max, what)
  while true do
    local e = self.buf:find("\n", self.pos, true)
    if e then
      if e == self.pos or self.buf:byte(e - 1) ~= 13 then
        error(perror(400, "bare LF in " .. what), 0)
      end
      local l = self.buf:sub(self.pos, e - 2)
      self.pos = e + 1
      return l
    end
    if self:buffered() > max then error(perror(400, what .. " too long"), 0) end
    if not self:fill() then
      if self:buffered() > 0 then error(perror(400, "connection closed inside " .. what), 0) end
      return nil
    end
  end
end

--- head(max) -> the head block (through its blank line), or nil when
--- the peer closed before sending a byte.  Past `max` bytes: LIMIT.
--- (The server's slow path; the client parses where the head lies,
--- Parser:response_at.)
function Reader:head(max)
  local scanned = 0   -- bytes past pos already searched (fill moves pos)
  while true do
    -- the end of a head: a blank line, CRLF (plain search, the common
    -- case) or (rejected later by the guard) with bare LFs
    local _, e = self.buf:find("\r\n\r\n", self.pos + scanned, true)
    if not e then _, e = self.buf:find("\r?\n\r?\n", self.pos + scanned) end
    if e then
      if e - self.pos + 1 > max then break end
      local block = self.buf:sub(self.pos, e)
      self.pos = e + 1
      return block
    end
    if self:buffered() > max then break end
    scanned = math.max(0, self:buffered() - 3)
    if not self:fill() then
      if self:buffered() == 0 then return nil end
      error(Error("INCOMPLETE", "connection closed inside the head",
        { op = "http", partial = self.buf:sub(self.pos) }), 0)
    end
  end
  error(Error("LIMIT", ("head larger than %d bytes"):format(max), { op = "http" }), 0)
end

---------------------------------------------------------------- framing
--- framing(h, is_request) -> "length", n | "chunked" | "none" | "close"
--- Raises HTTP_PROTOCOL for every ambiguous combination: a front end and
--- this server must never disagree on where a body ends.
function M.framing(h, is_request)
  local te = h:get_all("transfer-encoding")
  local cl = h:get_all("content-length")
  if #te > 0 then
    -- both framings present: the classic CL.TE / TE.CL smuggling
    if #cl > 0 then error(perror(400, "both Content-Length and Transfer-Encoding"), 0) end
    -- anything but exactly one "chunked" ("chunked, identity",
    -- "xchunked", "chunked\t") is read differently by different parsers
    if #te ~= 1 or te[1]:lower() ~= "chunked" then
      if is_request then error(perror(501, "Transfer-Encoding other than chunked"), 0) end
      if te[#te]:lower():match("chunked$") then error(perror(400, "bad Transfer-Encoding"), 0) end
      return "close"
    end
    return "chunked"
  end
  if #cl > 0 then
    local n
    for _, v in ipairs(cl) do
      -- digits only: "+5", " 5", "5,5", "0x5" all parse differently
      -- elsewhere; repeated values must agree
      for part in (v .. ","):gmatch("([^,]*),") do
        part = part:match("^[ \t]*(.-)[ \t]*$")
        if not part:find("^%d+$") or #part > 15 then
          error(perror(400, "invalid Content-Length"), 0)
        end
        local x = tonumber(part)
        if n and n ~= x then error(perror(400, "conflicting Content-Length values"), 0) end
        n = x
      end
    end
    return "length", n
  end
  return is_request and "none" or "close"
end

return M
