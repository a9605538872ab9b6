--[[
corio.fs -- files and directories without blocking the loop.

Every call runs on libuv's thread pool (bindings/fs.c, bindings/fsjob.c)
and suspends only the calling task.  This file is the policy: File
objects that read like Lua files, `mkdir -p`, `remove`, iterators.

A File keeps its own position and reads and writes at explicit offsets
(pread/pwrite), so a seek never needs the pool.  Reads are buffered in
64 KiB chunks; the buffer is a string `buf` whose byte `bi` is the one at
the file position `pos`.  Files opened in append mode write with the
kernel's O_APPEND; a file that cannot seek (a FIFO, a terminal) falls back
to plain read/write.  One operation at a time per File: a second task
gets BUSY, as with Streams.
]]
local core = require "corio.core"
local C = require "corio._fs"
local raise = require("corio._args").raise  -- misuse: at the user's line

local fs = {}

local CHUNK = 65536
local MAXNUM = 200              -- longest numeral read("n") accepts (Lua's)

local Error = core.Error
local type, select, error, pcall = type, select, error, pcall
local tostring, tointeger = tostring, math.tointeger
local sfind, ssub, sformat = string.find, string.sub, string.format
local concat = table.concat


-- {====================================================================
-- File
-- =====================================================================

local File = {}
File.__index = File
File.__name = "corio.File"

local function badself(op, f)
  raise(sformat("bad argument #1 to '%s' (corio.File expected, got %s)",
                op, type(f)))
end

-- Checks that self is an open File: bad argument, or CLOSED (with path).
local function check_open(op, self)
  if getmetatable(self) ~= File then badself(op, self) end
  if self.fd == nil then
    error(Error("CLOSED", "attempt to use a closed file",
                { op = op, path = self.path }), 2)
  end
end

-- Checks self, marks it busy and runs impl(self, ...); busy is cleared
-- however impl ends (error, cancellation).  A close() that came meanwhile
-- is finished here, and the operation raises CLOSED.
local function run(op, impl, self, ...)
  check_open(op, self)
  if self.busy then
    error(Error("BUSY", "another task is using this file",
                { op = op, path = self.path }), 2)
  end
  self.busy = true
  local ok, a, b, c = pcall(impl, self, ...)
  self.busy = false
  if self.closing then
    local fd = self.closing
    self.closing = nil
    C.close_nowait(fd)
    error(Error("CLOSED", "the file was closed during " .. op,
                { op = op, path = self.path }), 2)
  end
  if not ok then error(a, 0) end
  return a, b, c
end

-- Reads up to n bytes at the end of the buffered data; false at EOF.
local function fill(self, n)
  local buf, bi = self.buf, self.bi
  local have = #buf - bi + 1
  local off = self.seekable and self.pos + have or -1
  local data = C.read(self.fd, n, off, self.path)
  if data == "" then return false end
  if have == 0 then self.buf = data else self.buf = ssub(buf, bi) .. data end
  self.bi = 1
  return true
end

-- Takes n buffered bytes (n <= what is buffered).
local function take(self, n)
  local bi = self.bi
  local s = ssub(self.buf, bi, bi + n - 1)
  self.bi = bi + n
  self.pos = self.pos + n
  return s
end

local function avail(self) return #self.buf - self.bi + 1 end

local function read_count(self, n)
  if n == 0 then
    if avail(self) > 0 or fill(self, CHUNK) then return "" end
    return nil
  end
  local have = avail(self)
  if have >= n then return take(self, n) end
  local parts = {}
  if have > 0 then parts[1] = take(self, have) end
  local need = n - have
  while need > 0 do
    -- Large reads go straight into their own buffer.
    if not fill(self, need > CHUNK and need or CHUNK) then break end
    local k = avail(self)
    if k > need then k = need end
    parts[#parts + 1] = take(self, k)
    need = need - k
  end
  if #parts == 0 then return nil end
  return concat(parts)
end

local function read_line(self, keep)
  local from = self.bi
  while true do
    local j = sfind(self.buf, "\n", from, true)
    if j then
      local len = j - self.bi + 1
      local s = take(self, len)
      return keep and s or ssub(s, 1, -2)
    end
    from = #self.buf + 1 - (self.bi - 1)   -- buffer is rebased by fill
    if not fill(self, CHUNK) then
      local rest = avail(self)
      if rest == 0 then return nil end
      return take(self, rest)
    end
  end
end

local function read_all(self)
  local parts = {}
  if avail(self) > 0 then parts[1] = take(self, avail(self)) end
  while fill(self, CHUNK) do parts[#parts + 1] = take(self, avail(self)) end
  return concat(parts)
end

-- Byte at the read position, filling as needed; nil at EOF.
local function peek(self)
  if avail(self) == 0 and not fill(self, CHUNK) then return nil end
  return ssub(self.buf, self.bi, self.bi)
end

-- read("n"): a numeral as Lua's liolib reads it (at most 200 chars).
local function read_number(self)
  local c = peek(self)
  while c and sfind(c, "^%s") do take(self, 1); c = peek(self) end
  local out, n = {}, 0
  local function accept(set)
    c = peek(self)
    if c and n < MAXNUM and sfind(c, set) then
      n = n + 1
      out[n] = take(self, 1)
      return true
    end
    return false
  end
  local function digits(hex)
    local k = 0
    while accept(hex and "^%x" or "^%d") do k = k + 1 end
    return k
  end
  accept("^[%+%-]")
  local hex, count = false, 0
  if accept("^0") then
    if accept("^[xX]") then hex = true else count = 1 end
  end
  count = count + digits(hex)
  if accept("^%.") then count = count + digits(hex) end
  if count > 0 and accept(hex and "^[pP]" or "^[eE]") then
    accept("^[%+%-]")
    digits(false)
  end
  return tonumber(concat(out))
end

local function read1(self, fmt)
  if type(fmt) == "number" then
    local n = tointeger(fmt)
    if n == nil or n < 0 then
      raise("bad argument #1 to 'read' (invalid format)")
    end
    return read_count(self, n)
  end
  if type(fmt) ~= "string" then
    raise("bad argument #1 to 'read' (invalid format)")
  end
  local f = ssub(fmt, 1, 1) == "*" and ssub(fmt, 2, 2) or ssub(fmt, 1, 1)
  if f == "l" then return read_line(self, false)
  elseif f == "L" then return read_line(self, true)
  elseif f == "a" then return read_all(self)
  elseif f == "n" then return read_number(self)
  end
  raise("bad argument #1 to 'read' (invalid format)")
end

local function do_read(self, ...)
  local n = select("#", ...)
  if n == 0 then return read_line(self, false) end
  if n == 1 then return read1(self, ...) end
  local out = {}
  for i = 1, n do
    local v = read1(self, (select(i, ...)))
    out[i] = v
    if v == nil then return table.unpack(out, 1, i) end
  end
  return table.unpack(out, 1, n)
end

local function check_fmt(fmt, i)
  if type(fmt) == "number" then
    local n = tointeger(fmt)
    if n and n >= 0 then return end
  elseif type(fmt) == "string" then
    if sfind(fmt, "^%*?[nlLa]") then return end
  end
  raise(sformat("bad argument #%d to 'read' (invalid format)", i))
end

--- f:read(...) -> values, as Lua's file:read ("n", "l", "L", "a", count).
function File:read(...)
  for i = 1, select("#", ...) do check_fmt((select(i, ...)), i) end
  local r = table.pack(run("read", function(s, ...)
    return table.pack(do_read(s, ...))
  end, self, ...))[1]
  return table.unpack(r, 1, r.n)
end

local function tostr(v, i)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    return math.type(v) == "integer" and sformat("%d", v)
      or sformat("%.14g", v)
  end
  raise(sformat("bad argument #%d to 'write' (string expected, got %s)",
                i, t))
end

local function do_write(self, ...)
  local n = select("#", ...)
  local data
  if n == 1 then data = tostr((...), 1)
  else
    local parts = {}
    for i = 1, n do parts[i] = tostr((select(i, ...)), i) end
    data = concat(parts)
  end
  -- Buffered read-ahead is stale once we write.
  self.buf, self.bi = "", 1
  local done, total = 0, #data
  while done < total do
    local chunk = done == 0 and data or ssub(data, done + 1)
    local off = (self.append or not self.seekable) and -1 or self.pos
    local w = C.write(self.fd, chunk, off, self.path)
    done = done + w
    self.pos = self.pos + w
  end
  if self.append then self.pos = C.lseek(self.fd, 0, "cur") end
  return self
end

--- f:write(...) -> f; strings and numbers, written in one request.
function File:write(...)
  return run("write", do_write, self, ...)
end

local function do_seek(self, whence, offset)
  whence = whence or "cur"
  offset = offset or 0
  if type(offset) ~= "number" or not tointeger(offset) then
    raise("bad argument #2 to 'seek' (number has no integer representation)")
  end
  local target
  if whence == "set" then target = offset
  elseif whence == "cur" then target = self.pos + offset
  elseif whence == "end" then
    self.buf, self.bi = "", 1
    self.pos = C.lseek(self.fd, offset, "end")
    return self.pos
  else
    raise("bad argument #1 to 'seek' (invalid option '" .. tostring(whence) .. "')")
  end
  if target < 0 then
    error(Error("EINVAL", "invalid argument", { op = "seek", path = self.path }), 0)
  end
  -- Keep the buffer when the target is inside it.
  local back = self.bi - 1
  local delta = target - self.pos
  if delta >= -back and delta <= avail(self) then
    self.bi = self.bi + delta
  else
    self.buf, self.bi = "", 1
  end
  self.pos = target
  if not self.seekable then C.lseek(self.fd, target, "set") end
  return target
end

--- f:seek([whence [, offset]]) -> the new position ("set", "cur", "end").
function File:seek(whence, offset)
  return run("seek", do_seek, self, whence, offset)
end

--- f:lines(...) -> iterator over f:read(...) (default "l").
function File:lines(...)
  check_open("lines", self)          -- now, not at the first iteration
  local n, fmts = select("#", ...), table.pack(...)
  local f1 = n == 1 and type(fmts[1]) == "string" and
             (ssub(fmts[1], 1, 1) == "*" and ssub(fmts[1], 2, 2) or ssub(fmts[1], 1, 1))
  if n == 0 or f1 == "l" or f1 == "L" then
    -- Lines: one that is already buffered is cut out here, without the
    -- busy/closed bookkeeping of read (no task can be inside a read of
    -- this file while we are not, and no request is made); only a line
    -- that needs the file goes through read.  This took fs.lines from 11x
    -- io.lines' time to about 1.3x (bench/fs_lines.lua).
    local keep, fmt = f1 == "L", f1 == "L" and "L" or "l"
    return function()
      if self.fd and not self.busy and not self.closing then
        local buf, bi = self.buf, self.bi
        local j = sfind(buf, "\n", bi, true)
        if j then
          self.bi = j + 1
          self.pos = self.pos + (j - bi + 1)
          return ssub(buf, bi, keep and j or j - 1)
        end
      end
      return self:read(fmt)
    end
  end
  return function() return self:read(table.unpack(fmts, 1, n)) end
end

function File:stat()
  return run("stat", function(s) return C.fstat(s.fd, s.path) end, self)
end

function File:sync()
  return run("sync", function(s) C.fsync(s.fd, s.path); return s end, self)
end

function File:truncate(size)
  return run("truncate", function(s)
    C.ftruncate(s.fd, size or s.pos, s.path)
    s.buf, s.bi = "", 1
    return s
  end, self)
end

--- Writes are not buffered: flush exists for Lua-file compatibility.
function File:flush()
  return run("flush", function(s) return s end, self)
end

--- f:fileno() -> the fd; CLOSED once closed (never a nil to spawn with).
function File:fileno()
  check_open("fileno", self)
  return self.fd
end

--- f:close() -> true; idempotent.  A close while another task is using
--- the file takes effect when that operation returns (it raises CLOSED).
function File:close()
  if getmetatable(self) ~= File then badself("close", self) end
  local fd = self.fd
  if fd == nil then return true end
  self.fd = nil
  if self.busy then
    self.closing = fd
    return true
  end
  C.close(fd, self.path)
  return true
end

File.__close = function(self)
  if getmetatable(self) ~= File then badself("__close", self) end
  self:close()
end

File.__gc = function(self)
  local fd = self.fd
  if fd ~= nil and not self.busy then
    self.fd = nil
    C.close_nowait(fd)
  end
end

File.__tostring = function(self)
  if getmetatable(self) ~= File then badself("__tostring", self) end
  if self.fd == nil then return "corio.File (closed)" end
  return sformat("corio.File (%s): fd %d", self.path, self.fd)
end

--- fs.open(path [, mode [, perm]]) -> File; mode as io.open ("r", "w",
--- "a", "r+", "w+", "a+", plus "b", and "x" for exclusive creation).
-- Types are checked here, not only by C: a C function's "bad argument"
-- names its caller's line, which would be this file's.
local function check_str(v, n, fname, optional)
  if type(v) ~= "string" and not (optional and v == nil) then
    raise(sformat("bad argument #%d to '%s' (string expected, got %s)", n,
                  fname, v == nil and "no value" or type(v)))
  end
end

function fs.open(path, mode, perm)
  check_str(path, 1, "open")
  check_str(mode, 2, "open", true)
  local fd = C.open(path, mode, perm)
  mode = mode or "r"
  local f = setmetatable({
    path = path, pos = 0, buf = "", bi = 1, seekable = true,
    append = ssub(mode, 1, 1) == "a", fd = fd,
  }, File)
  if not pcall(C.lseek, fd, 0, "cur") then f.seekable = false end
  if core.debugging() then            -- for the leak report at exit
    local files = core.debug_files
    if not files then
      files = setmetatable({}, { __mode = "k" })
      core.debug_files = files
    end
    files[f] = core.where() or "?"
  end
  return f
end

fs.File = File

-- }====================================================================


-- {====================================================================
-- Paths
-- =====================================================================

for _, name in ipairs {
  "read_file", "write_file", "stat", "lstat", "exists", "rmdir",
  "realpath", "readlink", "mkdtemp", "chmod", "utime", "rename", "symlink",
} do
  fs[name] = C[name]
end
fs.readdir = C.scandir

local function has_code(err, ...)
  if type(err) ~= "table" then return false end
  for i = 1, select("#", ...) do
    if err.code == select(i, ...) then return true end
  end
  return false
end

--- fs.remove(path): a file, or an empty directory (as os.remove).
function fs.remove(path)
  local ok, err = pcall(C.unlink, path)
  if ok then return end
  if has_code(err, "EISDIR", "EPERM") then
    local ok2, err2 = pcall(C.rmdir, path)
    if ok2 then return end
    if not has_code(err2, "ENOTDIR") then error(err2, 0) end
  end
  error(err, 0)
end

local function parent_of(path)
  local p = path:gsub("/+$", "")
  return p:match("^(.*[^/])/+[^/]*$") or (p:match("^/") and "/" or nil)
end

local function mkdir_p(path, mode)
  local ok, err = pcall(C.mkdir, path, mode)
  if ok then return end
  if has_code(err, "EEXIST") then
    local isdir = pcall(function()
      assert(C.stat(path).type == "directory")
    end)
    if isdir then return end
    error(err, 0)
  end
  if has_code(err, "ENOENT") then
    local parent = parent_of(path)
    if parent and parent ~= path then
      mkdir_p(parent, mode)
      local ok2, err2 = pcall(C.mkdir, path, mode)
      if ok2 or (has_code(err2, "EEXIST")) then return end
      error(err2, 0)
    end
  end
  error(err, 0)
end

--- fs.mkdir(path [, {parents=, mode=} | mode])
function fs.mkdir(path, opts)
  if type(path) ~= "string" then
    raise(sformat("bad argument #1 to 'mkdir' (string expected, got %s)",
                  type(path)))
  end
  local mode = opts
  if type(opts) == "table" then
    mode = opts.mode
    if opts.parents then
      -- mkdir_p calls C under pcall, where a bad mode would lose the
      -- caller's line and the function's name: checked here first.
      local m = mode
      if type(m) == "string" then m = m:match("^[0-7]+$") and tonumber(m, 8) end
      if mode ~= nil and not (math.type(m) == "integer" and m >= 0 and m <= 4095) then
        raise("bad argument #2 to 'mkdir' (invalid mode)")
      end
      return mkdir_p(path, mode)
    end
  elseif opts ~= nil and type(opts) ~= "number" and type(opts) ~= "string" then
    raise(sformat("bad argument #2 to 'mkdir' (table expected, got %s)",
                  type(opts)))
  end
  return C.mkdir(path, mode)
end

--- fs.scandir(path) -> iterator of name, type.
function fs.scandir(path)
  check_str(path, 1, "scandir")
  local list = C.scandir(path)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e.name, e.type end
  end
end

--- fs.copyfile(from, to [, {exclusive=, clone=}])
function fs.copyfile(from, to, opts)
  local flags = 0
  if opts ~= nil then
    if type(opts) ~= "table" then
      raise(sformat("bad argument #3 to 'copyfile' (table expected, got %s)",
                    type(opts)))
    end
    if opts.exclusive then flags = flags | C.COPYFILE_EXCL end
    if opts.clone then flags = flags | C.COPYFILE_FICLONE end
  end
  return C.copyfile(from, to, flags)
end

--- fs.lines(path, ...) -> iterator over the lines (or formats) of a file,
--- closed at the end of the loop (also on break).
function fs.lines(path, ...)
  local f = fs.open(path, "r")
  local n, fmt = select("#", ...), ...
  local kind = n == 0 and "l" or n == 1 and type(fmt) == "string" and
               sfind(fmt, "^%*?[lL]") and ssub(fmt, -1) or nil
  if kind == "l" or kind == "L" then
    -- Nobody else holds f (the loop's closing value only closes it), so
    -- the buffered part is kept in upvalues and cut line by line; the
    -- File's own state is brought up to date only when a read must go
    -- to the file.  With File:lines' fast path this makes fs.lines about
    -- 1.3x io.lines (bench/fs_lines.lua) instead of 11x.
    local keep = kind == "L"
    local buf, bi = "", 1
    return function()
      local j = sfind(buf, "\n", bi, true)
      if j then
        local line = ssub(buf, bi, keep and j or j - 1)
        bi = j + 1
        return line
      end
      if f.fd == nil then return f:read(kind) end   -- raises CLOSED
      f.pos = f.pos + (bi - f.bi)
      f.bi = bi
      local v = f:read(kind)
      buf, bi = f.buf, f.bi
      if v == nil then f:close() end
      return v
    end, nil, nil, f
  end
  local it = f:lines(...)
  return function()
    local v = it()
    if v == nil then f:close() end
    return v
  end, nil, nil, f
end

-- }====================================================================

local ok, watch = pcall(require, "corio._fswatch")
if ok then fs.watch = watch.watch end

return fs
