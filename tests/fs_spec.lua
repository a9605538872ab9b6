local corio = require "corio"
local fs = require "corio.fs"

local function tmpdir()
  return fs.mkdtemp("/tmp/corio-fs-XXXXXX")
end

local function rmtree(path)
  os.execute("rm -rf '" .. path .. "'")
end

local function nfds()
  return #fs.readdir("/proc/self/fd")
end

-- Expects fn to raise a corio.Error with `code`; returns it.
local function raises(code, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected " .. code)
  assert.are.equal("table", type(err), tostring(err))
  assert.are.equal(code, err.code, tostring(err))
  return err
end

local function bad_argument(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.is_truthy(tostring(err):find("bad argument", 1, true), tostring(err))
end

-- How many inotify watches this process holds (the fdinfo of libuv's one
-- inotify fd lists one line per watch).
local function inotify_watches()
  local n = 0
  for _, e in ipairs(fs.readdir("/proc/self/fd")) do
    local ok, target = pcall(fs.readlink, "/proc/self/fd/" .. e.name)
    if ok and target == "anon_inode:inotify" then
      for line in io.lines("/proc/self/fdinfo/" .. e.name) do
        if line:find("^inotify wd:") then n = n + 1 end
      end
    end
  end
  return n
end

-- Records a watcher's events.  r.wait(name [, event]) returns the first
-- event for name since the last r.mark(), awaiting it (10 s at most);
-- r.seen(name) says whether one came since the mark; r.errors() lists
-- the errors reported.
local function recorder()
  local r = { events = {}, from = 1, waiting = {} }
  local function matches(e, name, ev) return e.name == name and (ev == nil or e.ev == ev) end
  function r.fn(name, ev, err)
    local e = { name = name, ev = ev, err = err }
    r.events[#r.events + 1] = e
    for i = #r.waiting, 1, -1 do
      local w = r.waiting[i]
      if matches(e, w.name, w.ev) then
        table.remove(r.waiting, i)
        w.fut:set_result(e)
      end
    end
  end
  function r.mark() r.from = #r.events + 1 end
  function r.seen(name, ev)
    for i = r.from, #r.events do
      if matches(r.events[i], name, ev) then return r.events[i] end
    end
  end
  function r.wait(name, ev)
    local e = r.seen(name, ev)
    if e then return e end
    local fut = corio.future()
    r.waiting[#r.waiting + 1] = { name = name, ev = ev, fut = fut }
    return corio.wait_for(fut, 10)
  end
  function r.errors()
    local out = {}
    for _, e in ipairs(r.events) do
      if e.ev == "error" then out[#out + 1] = e.err end
    end
    return out
  end
  return r
end

describe("fs", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmtree(dir) end)

  describe("read_file and write_file", function()
    it("round-trips text, binary and empty data", function()
      local bin = {}
      for i = 0, 255 do bin[#bin + 1] = string.char(i) end
      bin = table.concat(bin):rep(100)
      for _, data in ipairs { "hello\n", bin, "" } do
        fs.write_file(dir .. "/f", data)
        assert.are.equal(data, fs.read_file(dir .. "/f"))
      end
    end)

    it("reads a large file whole", function()
      local big = string.rep("0123456789abcdef", 65536 * 4)   -- 4 MiB
      fs.write_file(dir .. "/big", big)
      assert.are.equal(#big, #fs.read_file(dir .. "/big"))
      assert.are.equal(big, fs.read_file(dir .. "/big"))
    end)

    it("reads files whose size stat does not know (/proc)", function()
      local s = fs.read_file("/proc/self/status")
      assert.is_truthy(s:find("Pid:", 1, true))
    end)

    it("appends", function()
      fs.write_file(dir .. "/f", "a")
      fs.write_file(dir .. "/f", "b", { append = true })
      assert.are.equal("ab", fs.read_file(dir .. "/f"))
    end)

    it("writes atomically, keeping the mode and leaving no temp file", function()
      local p = dir .. "/f"
      fs.write_file(p, "old")
      fs.chmod(p, "640")
      fs.write_file(p, "new", { atomic = true })
      assert.are.equal("new", fs.read_file(p))
      assert.are.equal(tonumber("640", 8), fs.stat(p).mode)
      assert.are.equal(1, #fs.readdir(dir))
      fs.write_file(dir .. "/g", "x", { atomic = true, mode = tonumber("600", 8) })
      assert.are.equal(tonumber("600", 8), fs.stat(dir .. "/g").mode)
    end)

    it("a failed atomic write leaves the target and no temp file", function()
      local err = raises("ENOENT", fs.write_file, dir .. "/no/f", "x", { atomic = true })
      assert.are.equal(dir .. "/no/f", err.path)
      assert.are.equal(0, #fs.readdir(dir))
    end)

    it("raises ENOENT and EISDIR with code and path", function()
      local err = raises("ENOENT", fs.read_file, dir .. "/missing")
      assert.are.equal(dir .. "/missing", err.path)
      assert.is_truthy(tostring(err):find("ENOENT", 1, true))
      err = raises("EISDIR", fs.read_file, dir)
      assert.are.equal(dir, err.path)
      raises("EISDIR", fs.write_file, dir, "x")
      raises("EISDIR", fs.open, dir, "w")
    end)

    it("raises bad argument for wrong types", function()
      bad_argument(fs.read_file, nil)
      bad_argument(fs.write_file, dir .. "/f", {})
      bad_argument(fs.write_file, dir .. "/f", "x", 5)
      bad_argument(fs.stat, {})
      bad_argument(fs.open, dir .. "/f", "q")
      bad_argument(fs.chmod, dir, "9z")
      bad_argument(fs.utime, dir, "x", 1)
      bad_argument(fs.mkdir, nil)
    end)

    it("raises outside a task", function()
      local co = coroutine.wrap(function() return pcall(fs.read_file, "/etc/hostname") end)
      local ok, err = co()
      assert.is_false(ok)
      assert.are.equal("INVALID_STATE", err.code)
    end)
  end)

  describe("File", function()
    it("reads with Lua's formats", function()
      fs.write_file(dir .. "/f", "line1\nline2\n42 0x10 -1.5e2 nan\nrest")
      local f <close> = fs.open(dir .. "/f")
      assert.are.equal("line1", f:read())
      assert.are.equal("line2\n", f:read("L"))
      local a, b, c = f:read("n", "n", "n")
      assert.are.equal(42, a)
      assert.are.equal(16, b)
      assert.are.equal(-150.0, c)
      assert.is_nil(f:read("n"))               -- "nan" is not a numeral
      assert.are.equal("nan\nrest", f:read("a"))
      assert.are.equal("", f:read("a"))
      assert.is_nil(f:read("l"))
      assert.is_nil(f:read(1))
      assert.is_nil(f:read(0))
    end)

    it("read(n) returns exactly n bytes unless EOF comes first", function()
      local data = string.rep("x", 200000)
      fs.write_file(dir .. "/f", data)
      local f <close> = fs.open(dir .. "/f")
      assert.are.equal(3, #f:read(3))
      assert.are.equal("", f:read(0))
      assert.are.equal(150000, #f:read(150000))
      assert.are.equal(49997, #f:read(100000))
      assert.is_nil(f:read(1))
    end)

    it("reads lines across buffer boundaries", function()
      local lines = {}
      for i = 1, 20000 do lines[i] = ("line %d %s"):format(i, ("y"):rep(i % 50)) end
      fs.write_file(dir .. "/f", table.concat(lines, "\n"))
      local f <close> = fs.open(dir .. "/f")
      local i = 0
      for l in f:lines() do
        i = i + 1
        assert.are.equal(lines[i], l)
      end
      assert.are.equal(20000, i)
    end)

    it("lines and fs.lines: l and L across buffers, a last line without newline, mixed with reads and seeks", function()
      local lines = {}
      for i = 1, 30000 do lines[i] = ("%d %s"):format(i, ("z"):rep(i % 97)) end
      local text = table.concat(lines, "\n") .. "\nlast"
      fs.write_file(dir .. "/f", text)
      for _, fmt in ipairs { "l", "*l", "L" } do
        local i = 0
        for l in fs.lines(dir .. "/f", fmt) do
          i = i + 1
          local want = lines[i] or "last"
          if fmt == "L" and i <= #lines then want = want .. "\n" end
          assert.are.equal(want, l)
        end
        assert.are.equal(#lines + 1, i)
      end
      -- File:lines shares the File's position with read and seek.
      local f <close> = fs.open(dir .. "/f")
      local it = f:lines()
      assert.are.equal(lines[1], it())
      assert.are.equal(lines[2], f:read("l"))
      assert.are.equal(lines[3], it())
      assert.are.equal(#lines[1] + #lines[2] + #lines[3] + 3, f:seek())
      f:seek("set", 0)
      assert.are.equal(lines[1], it())
      assert.are.equal("2 zz", f:read(4))
      assert.are.equal("", it())                 -- the rest of line 2
      f:seek("end", -4)
      assert.are.equal("last", it())
      assert.is_nil(it())
      -- a close between lines: the next one raises CLOSED
      local g = fs.open(dir .. "/f")
      local git = g:lines("L")
      assert.are.equal(lines[1] .. "\n", git())
      g:close()
      raises("CLOSED", git)
    end)

    it("fs.lines closes the file at the end and on break", function()
      fs.write_file(dir .. "/f", "a\nb\nc\n")
      local before = nfds()
      local got = {}
      for l in fs.lines(dir .. "/f") do got[#got + 1] = l end
      assert.are.same({ "a", "b", "c" }, got)
      for _ in fs.lines(dir .. "/f") do break end
      assert.are.equal(before, nfds())
    end)

    it("writes, seeks and reports positions", function()
      local f <close> = fs.open(dir .. "/f", "w+")
      assert.are.equal(f, f:write("hello ", "world", 1, 2.5))
      assert.are.equal(15, f:seek())
      assert.are.equal(0, f:seek("set"))
      assert.are.equal("hello", f:read(5))
      assert.are.equal(6, f:seek("cur", 1))
      f:write("W")
      assert.are.equal(0, f:seek("set", 0))
      assert.are.equal("hello World12.5", f:read("a"))
      assert.are.equal(13, f:seek("end", -2))
      assert.are.equal(".5", f:read("a"))
      raises("EINVAL", f.seek, f, "set", -1)
      bad_argument(f.seek, f, "nowhere")
      assert.are.equal(15, f:stat().size)
      f:sync()
      f:truncate(5)
      assert.are.equal(5, f:stat().size)
    end)

    it("append mode writes at the end", function()
      fs.write_file(dir .. "/f", "abc")
      local f <close> = fs.open(dir .. "/f", "a+")
      f:write("def")
      f:write("g")
      assert.are.equal(7, f:seek())
      f:seek("set", 0)
      assert.are.equal("abcdefg", f:read("a"))
    end)

    it("x creates exclusively", function()
      local f = fs.open(dir .. "/f", "wx")
      f:close()
      raises("EEXIST", fs.open, dir .. "/f", "wx")
    end)

    it("close is idempotent and a closed file raises CLOSED", function()
      local f = fs.open(dir .. "/f", "w")
      assert.is_true(f:close())
      assert.is_true(f:close())
      local err = raises("CLOSED", f.read, f)
      assert.are.equal(dir .. "/f", err.path)
      raises("CLOSED", f.write, f, "x")
      raises("CLOSED", f.seek, f)
      assert.is_truthy(tostring(f):find("closed"))
    end)

    it("fileno and lines raise CLOSED at the call on a closed file", function()
      local f = fs.open(dir .. "/f", "w")
      assert.is_true(math.type(f:fileno()) == "integer")
      f:close()
      local err = raises("CLOSED", f.fileno, f)    -- was nil
      assert.are.equal(dir .. "/f", err.path)
      assert.are.equal("fileno", err.op)
      -- A nil fd made spawn quietly inherit stdout instead.
      raises("CLOSED", require("corio.process").spawn, { "true" },
             { stdout = f })
      err = raises("CLOSED", f.lines, f)          -- was at the first call
      assert.are.equal("lines", err.op)
      raises("CLOSED", f.lines, f, "a")
      bad_argument(f.fileno, "x")
      bad_argument(f.lines, "x")
    end)

    it("methods check their arguments", function()
      local f <close> = fs.open(dir .. "/f", "w+")
      bad_argument(f.read, nil)
      bad_argument(f.read, f, "z")
      bad_argument(f.read, f, -1)
      bad_argument(f.write, f, {})
      bad_argument(f.close, "x")
    end)

    it("a second task using the file gets BUSY", function()
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local f = fs.open(fifo, "r+")             -- r+ does not block on a FIFO
      local reader = corio.spawn(function() return f:read(1) end)
      corio.yield()
      raises("BUSY", f.read, f, 1)
      local w <close> = fs.open(fifo, "w")
      w:write("z")
      assert.are.equal("z", reader:await())
      f:close()
    end)

    it("close during a read: the read raises CLOSED, the fd is closed", function()
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local before = nfds()
      local f = fs.open(fifo, "r+")
      local reader = corio.spawn(function() return pcall(f.read, f, 1) end)
      corio.yield()
      f:close()
      local w = fs.open(fifo, "w")
      w:write("z")
      w:close()
      local ok, err = reader:await()
      assert.is_false(ok)
      assert.are.equal("CLOSED", err.code)
      corio.sleep(0.05)
      assert.are.equal(before, nfds())
    end)

    it("an unreferenced File is closed by the GC", function()
      fs.write_file(dir .. "/f", "x")
      local before = nfds()
      do fs.open(dir .. "/f") end
      collectgarbage()
      collectgarbage()
      corio.sleep(0.05)
      assert.are.equal(before, nfds())
    end)
  end)

  describe("paths", function()
    it("stat gives the documented shape", function()
      fs.write_file(dir .. "/f", "12345")
      local st = fs.stat(dir .. "/f")
      assert.are.equal(5, st.size)
      assert.are.equal("file", st.type)
      for _, k in ipairs { "mode", "mtime", "atime", "ctime", "ino", "dev", "nlink", "uid", "gid" } do
        assert.are.equal("number", type(st[k]), k)
      end
      assert.is_true(math.abs(st.mtime - os.time()) < 100)
      assert.are.equal("directory", fs.stat(dir).type)
      assert.are.equal("char", fs.stat("/dev/null").type)
      raises("ENOENT", fs.stat, dir .. "/none")
    end)

    it("lstat, symlink, readlink and realpath", function()
      fs.write_file(dir .. "/f", "x")
      fs.symlink(dir .. "/f", dir .. "/l")
      assert.are.equal("link", fs.lstat(dir .. "/l").type)
      assert.are.equal("file", fs.stat(dir .. "/l").type)
      assert.are.equal(dir .. "/f", fs.readlink(dir .. "/l"))
      assert.are.equal(fs.realpath(dir .. "/f"), fs.realpath(dir .. "/l"))
      local err = raises("EEXIST", fs.symlink, dir .. "/f", dir .. "/l")
      assert.are.equal(dir .. "/l", err.path)
      raises("EINVAL", fs.readlink, dir .. "/f")
    end)

    it("exists", function()
      assert.is_true(fs.exists(dir))
      assert.is_false(fs.exists(dir .. "/none"))
      fs.write_file(dir .. "/f", "")
      assert.is_false(fs.exists(dir .. "/f/under-a-file"))
    end)

    it("mkdir, with parents, rmdir and remove", function()
      fs.mkdir(dir .. "/a")
      raises("EEXIST", fs.mkdir, dir .. "/a")
      raises("ENOENT", fs.mkdir, dir .. "/b/c")
      fs.mkdir(dir .. "/b/c/d", { parents = true })
      fs.mkdir(dir .. "/b/c/d", { parents = true })   -- exists: fine
      assert.are.equal("directory", fs.stat(dir .. "/b/c/d").type)
      fs.write_file(dir .. "/file", "")
      raises("EEXIST", fs.mkdir, dir .. "/file", { parents = true })
      raises("ENOTEMPTY", fs.rmdir, dir .. "/b")
      fs.rmdir(dir .. "/b/c/d")
      fs.remove(dir .. "/b/c")                      -- an empty directory
      fs.remove(dir .. "/file")
      raises("ENOENT", fs.remove, dir .. "/file")
      assert.is_false(fs.exists(dir .. "/file"))
    end)

    it("readdir and scandir list entries with types", function()
      fs.write_file(dir .. "/f", "")
      fs.mkdir(dir .. "/d")
      fs.symlink("f", dir .. "/l")
      local seen = {}
      for _, e in ipairs(fs.readdir(dir)) do seen[e.name] = e.type end
      assert.are.same({ f = "file", d = "directory", l = "link" }, seen)
      local n = 0
      for name, t in fs.scandir(dir) do
        n = n + 1
        assert.are.equal(seen[name], t)
      end
      assert.are.equal(3, n)
      raises("ENOTDIR", fs.readdir, dir .. "/f")
    end)

    it("copyfile copies bytes and permission bits, like cp", function()
      local data = string.rep("abcdefgh", 300000)
      fs.write_file(dir .. "/src", data)
      fs.chmod(dir .. "/src", "750")
      fs.copyfile(dir .. "/src", dir .. "/dst")
      assert.are.equal(data, fs.read_file(dir .. "/dst"))
      assert.are.equal(tonumber("750", 8), fs.stat(dir .. "/dst").mode)
      fs.write_file(dir .. "/small", "x")
      fs.copyfile(dir .. "/small", dir .. "/dst")        -- truncates
      assert.are.equal("x", fs.read_file(dir .. "/dst"))
      fs.copyfile("/proc/self/status", dir .. "/proc")     -- size unknown
      assert.is_truthy(fs.read_file(dir .. "/proc"):find("Pid:", 1, true))
      fs.copyfile(dir .. "/small", dir .. "/cl", { clone = true })
      assert.are.equal("x", fs.read_file(dir .. "/cl"))
      local err = raises("ENOENT", fs.copyfile, dir .. "/none", dir .. "/x")
      assert.are.equal(dir .. "/none", err.path)
      assert.are.equal(dir .. "/x", err.dest)
      raises("ENOENT", fs.copyfile, dir .. "/src", dir .. "/no/dir/x")
      raises("EISDIR", fs.copyfile, dir, dir .. "/x")
      bad_argument(fs.copyfile, dir .. "/src", dir .. "/x", "excl")
    end)

    it("rename, copyfile, chmod, utime, mkdtemp", function()
      fs.write_file(dir .. "/a", "data")
      fs.rename(dir .. "/a", dir .. "/b")
      local err = raises("ENOENT", fs.rename, dir .. "/a", dir .. "/c")
      assert.are.equal(dir .. "/a", err.path)
      assert.are.equal(dir .. "/c", err.dest)
      fs.copyfile(dir .. "/b", dir .. "/c")
      assert.are.equal("data", fs.read_file(dir .. "/c"))
      raises("EEXIST", fs.copyfile, dir .. "/b", dir .. "/c", { exclusive = true })
      fs.chmod(dir .. "/c", tonumber("751", 8))
      assert.are.equal(tonumber("751", 8), fs.stat(dir .. "/c").mode)
      fs.utime(dir .. "/c", 1000.25, 2000.5)
      local st = fs.stat(dir .. "/c")
      assert.are.equal(1000.25, st.atime)
      assert.are.equal(2000.5, st.mtime)
      local t = fs.mkdtemp(dir .. "/tmpXXXXXX")
      assert.are.equal("directory", fs.stat(t).type)
      raises("EINVAL", fs.mkdtemp, dir .. "/bad")
    end)

    it("refuses a path with a zero byte (not cut there)", function()
      local z = dir .. "/a\0b"            -- would name dir/a for the kernel
      local function zero_byte(n, fn, ...)
        local ok, err = pcall(fn, ...)
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("bad argument #" .. n, 1, true)
                         and tostring(err):find("zero byte", 1, true),
                         tostring(err))
      end
      fs.write_file(dir .. "/f", "x")
      zero_byte(1, fs.open, z, "w")
      zero_byte(1, fs.open, z)
      zero_byte(1, fs.lines, z)
      zero_byte(1, fs.write_file, z, "x")
      zero_byte(1, fs.write_file, z, "x", { atomic = true })
      zero_byte(1, fs.read_file, z)
      for _, fn in ipairs { fs.stat, fs.lstat, fs.exists, fs.mkdir, fs.rmdir,
                            fs.remove, fs.readdir, fs.scandir, fs.realpath,
                            fs.readlink } do
        zero_byte(1, fn, z)
      end
      zero_byte(1, fs.mkdir, z, { parents = true })
      zero_byte(1, fs.mkdtemp, z .. "XXXXXX")
      zero_byte(1, fs.chmod, z, "644")
      zero_byte(1, fs.utime, z, 1, 1)
      zero_byte(1, fs.watch, z, function() end)
      zero_byte(1, fs.rename, z, dir .. "/g")
      zero_byte(2, fs.rename, dir .. "/f", z)
      zero_byte(1, fs.copyfile, z, dir .. "/g")
      zero_byte(2, fs.copyfile, dir .. "/f", z)
      zero_byte(1, fs.symlink, z, dir .. "/g")
      zero_byte(2, fs.symlink, dir .. "/f", z)
      local ok, err = pcall(fs.open, z, "w")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(
        "bad argument #1 to 'open' (path contains a zero byte)", 1, true))
      -- Nothing was made, moved or touched under the cut name.
      assert.are.same({ { name = "f", type = "file" } }, fs.readdir(dir))
      assert.are.equal("x", fs.read_file(dir .. "/f"))
    end)

    it("refuses modes with a zero byte", function()
      bad_argument(fs.open, dir .. "/f", "w\0x")   -- was "w"
      bad_argument(fs.open, dir .. "/f", "r\0")
      fs.write_file(dir .. "/f", "x")
      bad_argument(fs.chmod, dir .. "/f", "7\0x")  -- was 0007
      bad_argument(fs.open, dir .. "/g", "w", "644\0")
      assert.are.equal(false, fs.exists(dir .. "/g"))
    end)
  end)

  describe("the loop", function()
    it("is never blocked by a waiting fs call (a ticking task)", function()
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local ticks, stop = 0, false
      local ticker = corio.spawn(function()
        while not stop do
          corio.sleep(0.01)
          ticks = ticks + 1
        end
      end)
      -- Opening a FIFO for reading blocks (on a pool thread) until a
      -- writer comes; the writer comes only after the ticker has ticked.
      local opener = corio.spawn(function() return fs.open(fifo, "r") end)
      while ticks < 5 do corio.sleep(0.01) end
      assert.is_false(opener:done())
      local w = fs.open(fifo, "w")
      local r = opener:await()
      w:write("ping")
      w:close()
      assert.are.equal("ping", r:read("a"))
      r:close()
      stop = true
      ticker:await()
      assert.is_true(ticks >= 5)
    end)

    it("many reads in flight overlap", function()
      for i = 1, 200 do fs.write_file(dir .. "/" .. i, tostring(i)) end
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = corio.spawn(fs.read_file, dir .. "/" .. i)
      end
      for i = 1, 200 do assert.are.equal(tostring(i), tasks[i]:await()) end
    end)
  end)

  describe("cancellation", function()
    it("drops the result of a cancelled open and closes its fd", function()
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local before = nfds()
      local t = corio.spawn(function() return fs.open(fifo, "r") end)
      corio.sleep(0.02)
      assert.is_true(t:cancel())
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(corio.is_cancelled(err))
      -- Unblock the pool thread: its fd must be closed, not leaked.
      local w = fs.open(fifo, "r+")
      corio.sleep(0.1)
      w:close()
      assert.are.equal(before, nfds())
    end)

    it("cancelling queued reads takes them back from the pool", function()
      -- Occupy every pool thread with an open() blocked on a FIFO, so the
      -- reads below stay queued.
      local nthreads = tonumber(os.getenv("UV_THREADPOOL_SIZE")) or 4
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local before = nfds()
      local blockers = {}
      for i = 1, nthreads do
        blockers[i] = corio.spawn(function() return fs.open(fifo, "r") end)
      end
      fs.write_file(dir .. "/f", "x")
      corio.sleep(0.05)
      local tasks = {}
      for i = 1, 2000 do tasks[i] = corio.spawn(fs.read_file, dir .. "/f") end
      corio.yield()
      for i = 1, 2000 do tasks[i]:cancel() end
      for i = 1, 2000 do
        local ok, err = pcall(tasks[i].await, tasks[i])
        assert.is_false(ok)
        assert.is_true(corio.is_cancelled(err))
      end
      -- Every pool thread is busy: unblock them without the pool (opening
      -- a FIFO read-write never blocks on Linux).
      local w = assert(io.open(fifo, "r+"))
      for i = 1, nthreads do blockers[i]:await():close() end
      w:close()
      assert.are.equal("x", fs.read_file(dir .. "/f"))
      assert.are.equal(before, nfds())
    end)

    it("a cancelled File read leaves the file usable", function()
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. fifo))
      local f <close> = fs.open(fifo, "r+")
      local t = corio.spawn(function() return f:read(1) end)
      corio.yield()
      t:cancel()
      assert.is_false(pcall(t.await, t))
      assert.is_false(f.busy)
      f:write("a")                       -- unblocks the dropped read
      corio.sleep(0.05)
    end)
  end)

  describe("watch", function()
    it("reports changes to a directory and stops on close", function()
      local fut = corio.future()
      local events = {}
      local w = fs.watch(dir, function(name, ev)
        events[#events + 1] = { name, ev }
        if name == "new" and not fut:done() then fut:set_result(ev) end
      end)
      assert.is_truthy(tostring(w):find(dir, 1, true))
      fs.write_file(dir .. "/new", "x")
      assert.is_truthy(fut:await())
      w:close()
      w:close()
      assert.is_truthy(tostring(w):find("closed"))
    end)

    it("works with <close> and raises for a missing path", function()
      do
        local w <close> = fs.watch(dir, function() end)
      end
      raises("ENOENT", fs.watch, dir .. "/none", function() end)
      bad_argument(fs.watch, dir, "not a function")
    end)

    it("path() raises CLOSED after close", function()
      local w = fs.watch(dir, function() end)
      assert.are.equal(dir, w:path())
      w:close()
      local err = raises("CLOSED", w.path, w)      -- was the path
      assert.are.equal(dir, err.path)
      assert.are.equal("path", err.op)
      assert.is_truthy(tostring(w):find(dir, 1, true))  -- still says which
      bad_argument(w.path, "x")
    end)

    it("without recursive, reports nothing from subdirectories", function()
      fs.mkdir(dir .. "/a")
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn)
      fs.write_file(dir .. "/a/f", "x")
      fs.write_file(dir .. "/sentinel", "x")   -- inotify keeps the order
      r.wait("sentinel")
      assert.is_nil(r.seen("a/f"))
      assert.is_nil(r.seen("f"))
    end)
  end)

  describe("recursive watch", function()
    it("reports changes anywhere in the tree with paths under the root", function()
      fs.mkdir(dir .. "/a/b/c", { parents = true })
      fs.write_file(dir .. "/a/b/old", "x")
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true })
      fs.write_file(dir .. "/a/b/c/f", "x")
      r.wait("a/b/c/f", "rename")
      r.wait("a/b/c/f", "change")
      fs.write_file(dir .. "/a/b/old", "y")
      r.wait("a/b/old", "change")
      fs.remove(dir .. "/a/b/old")
      r.wait("a/b/old", "rename")
      r.mark()
      fs.write_file(dir .. "/a/b/old", "again")
      r.wait("a/b/old", "rename")
      assert.are.same({}, r.errors())
    end)

    it("watches directories made after it, and says what was in them", function()
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true })
      -- One at a time: each event means the directory is watched.
      fs.mkdir(dir .. "/n")
      r.wait("n", "rename")
      fs.mkdir(dir .. "/n/m")
      r.wait("n/m", "rename")
      fs.write_file(dir .. "/n/m/g", "x")
      r.wait("n/m/g", "change")
      -- All at once: what the watch on x missed, the scan of x reports.
      assert.is_true(os.execute("mkdir -p '" .. dir .. "/x/y/z' && echo hi > '" ..
                                dir .. "/x/y/z/f'"))
      r.wait("x", "rename")
      r.wait("x/y", "rename")
      r.wait("x/y/z", "rename")
      r.wait("x/y/z/f", "rename")
      r.mark()
      fs.write_file(dir .. "/x/y/z/f", "then")
      r.wait("x/y/z/f", "change")
      assert.are.same({}, r.errors())
    end)

    it("stops watching directories that leave the tree", function()
      fs.mkdir(dir .. "/in/a/b", { parents = true })
      local out = tmpdir()
      local r = recorder()
      local before = inotify_watches()
      local w = fs.watch(dir, r.fn, { recursive = true })
      assert.are.equal(before + 4, inotify_watches())  -- root, in, a, b
      fs.rename(dir .. "/in/a", out .. "/a")
      r.wait("in/a", "rename")
      assert.are.equal(before + 2, inotify_watches())
      fs.write_file(out .. "/a/b/f", "x")             -- no longer watched
      fs.write_file(dir .. "/sentinel", "x")
      r.wait("sentinel")
      assert.is_nil(r.seen("in/a/b/f"))
      assert.is_nil(r.seen("a/b/f"))
      -- and removed ones (the kernel drops those watches by itself)
      fs.mkdir(dir .. "/in/gone")
      r.wait("in/gone")
      assert.are.equal(before + 3, inotify_watches())
      r.mark()
      fs.rmdir(dir .. "/in/gone")
      r.wait("in/gone")
      assert.are.equal(before + 2, inotify_watches())
      w:close()
      assert.are.equal(before, inotify_watches())
      assert.are.same({}, r.errors())
      rmtree(out)
    end)

    it("follows a directory renamed inside the tree", function()
      fs.mkdir(dir .. "/a/sub", { parents = true })
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true })
      local before = inotify_watches()
      fs.rename(dir .. "/a", dir .. "/b")
      r.wait("a", "rename")
      r.wait("b", "rename")
      assert.are.equal(before, inotify_watches())     -- the same directories
      r.mark()
      fs.write_file(dir .. "/b/sub/f", "x")
      r.wait("b/sub/f")
      assert.is_nil(r.seen("a/sub/f"))
      -- replaced by another directory of the same name
      fs.rename(dir .. "/b", dir .. "/old")
      fs.mkdir(dir .. "/b")
      r.wait("old")
      r.mark()
      fs.write_file(dir .. "/b/new", "x")
      r.wait("b/new")
      fs.write_file(dir .. "/old/sub/g", "x")
      r.wait("old/sub/g")
      assert.are.same({}, r.errors())
    end)

    it("reports a subdirectory's own changes once, by its name", function()
      fs.mkdir(dir .. "/a")
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true })
      fs.chmod(dir .. "/a", "700")
      r.wait("a", "change")
      fs.write_file(dir .. "/sentinel", "x")
      r.wait("sentinel")
      assert.is_nil(r.seen("a/a"))
    end)

    it("does not follow symbolic links below the root", function()
      fs.mkdir(dir .. "/a")
      fs.symlink(dir, dir .. "/a/loop")
      fs.symlink("/", dir .. "/root")
      local before = inotify_watches()
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true })
      assert.are.equal(before + 2, inotify_watches())
      fs.symlink("/tmp", dir .. "/a/tmp")
      r.wait("a/tmp")
      assert.are.equal(before + 2, inotify_watches())
    end)

    it("bounds the number of watches (max_watches)", function()
      fs.mkdir(dir .. "/a/b/c", { parents = true })
      local before = inotify_watches()
      local err = raises("LIMIT", fs.watch, dir, function() end,
                         { recursive = true, max_watches = 3 })
      assert.are.equal(dir, err.path)
      assert.is_truthy(err.message:find("max_watches", 1, true), err.message)
      assert.are.equal(before, inotify_watches())     -- nothing left open
      -- past it later: an error event, the rest still watched
      local r = recorder()
      local w <close> = fs.watch(dir, r.fn, { recursive = true, max_watches = 4 })
      fs.mkdir(dir .. "/d")
      local e = r.wait(nil, "error")
      assert.are.equal("LIMIT", e.err.code)
      assert.are.equal(dir .. "/d", e.err.path)
      fs.write_file(dir .. "/a/b/c/f", "x")
      r.wait("a/b/c/f")
      -- room again once a directory goes
      fs.rmdir(dir .. "/d")
      local out = tmpdir()
      fs.rename(dir .. "/a/b/c", out .. "/c")           -- out of the tree
      r.wait("a/b/c", "rename")
      fs.mkdir(dir .. "/e")
      r.wait("e")
      fs.write_file(dir .. "/e/f", "x")
      r.wait("e/f")
      assert.are.equal(1, #r.errors())
      rmtree(out)
      bad_argument(fs.watch, dir, function() end, { recursive = true, max_watches = 0 })
      bad_argument(fs.watch, dir, function() end, { max_watches = "many" })
      bad_argument(fs.watch, dir, function() end, { max_watches = 1.5 })
    end)

    it("turns inotify's ENOSPC into an error that names the limit", function()
      -- A user namespace of our own has its own inotify limit, which we may
      -- lower; where unshare is not allowed there is nothing to test.
      if not os.execute("unshare -Ur true 2>/dev/null") then return end
      local corio_bin = arg and arg[-1] or "build/corio"
      fs.mkdir(dir .. "/a/b/c", { parents = true })
      local script = ([[
        local fs = require "corio.fs"
        local ok, err = pcall(fs.watch, %q, function() end, { recursive = true })
        print(ok, err.code, err.path, err.message)
      ]]):format(dir)
      local cmd = ("unshare -Ur sh -c 'echo 3 > /proc/sys/user/max_inotify_watches" ..
                   " && exec %s -e \"$0\"' %q 2>&1"):format(corio_bin, script)
      local out = corio.to_thread(function(c)
        local p = io.popen(c)
        local s = p:read("a")
        p:close()
        return s
      end, cmd)
      assert.is_truthy(out:find("^false\tENOSPC\t" .. dir:gsub("%p", "%%%0") .. "\t"), out)
      assert.is_truthy(out:find("max_user_watches", 1, true), out)
    end)

    it("closing closes every watch; <close> and __gc paths too", function()
      fs.mkdir(dir .. "/a/b", { parents = true })
      fs.mkdir(dir .. "/c")
      local before = inotify_watches()
      do
        local w <close> = fs.watch(dir, function() end, { recursive = true })
        assert.are.equal(before + 4, inotify_watches())
      end
      assert.are.equal(before, inotify_watches())
      local w = fs.watch(dir, function() end, { recursive = true })
      w:close()
      w:close()
      assert.are.equal(before, inotify_watches())
      raises("CLOSED", w.path, w)
      -- a file as the root: watched alone
      fs.write_file(dir .. "/file", "x")
      local r = recorder()
      local fw <close> = fs.watch(dir .. "/file", r.fn, { recursive = true })
      assert.are.equal(before + 1, inotify_watches())
      fs.write_file(dir .. "/file", "y")
      r.wait("file", "change")
    end)
  end)
end)
