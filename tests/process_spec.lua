local corio = require "corio"
local fs = require "corio.fs"
local process = require "corio.process"

local CORIO = process.execpath

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

local function nfds()
  return #fs.readdir("/proc/self/fd")
end

-- Children of ours that are zombies (exited, not reaped).
local function zombies()
  local n = 0
  for _, e in ipairs(fs.readdir("/proc")) do
    if e.name:match("^%d+$") then
      local ok, s = pcall(fs.read_file, "/proc/" .. e.name .. "/stat")
      if ok then
        local state, ppid = s:match("%) (%a) (%d+)")
        if state == "Z" and tonumber(ppid) == process.pid then n = n + 1 end
      end
    end
  end
  return n
end

local function alive(pid)
  return fs.exists("/proc/" .. pid)
end

-- Runs a corio script in a child; returns the exec result.
local function corio_script(src, opts)
  opts = opts or {}
  local argv = { "sh", "-c", (opts.prefix or "") .. ' exec "$0" -e "$1"', CORIO, src }
  return process.exec(argv, { timeout = opts.timeout or 30 })
end

describe("process", function()
  describe("spawn and wait", function()
    it("returns the exit code", function()
      local p = process.spawn({ "sh", "-c", "exit 3" })
      assert.is_true(p.pid > 0)
      assert.are.same({ 3 }, { p:wait() })
      assert.are.same({ 3 }, { p:wait() })        -- again: the same
      assert.is_false(p:running())
      assert.is_truthy(tostring(p):find("exited 3", 1, true))
    end)

    it("a child killed by a signal gives 128 + signum and its name", function()
      local p = process.spawn({ "sleep", "30" })
      assert.is_true(p:running())
      assert.is_true(p:kill())                     -- SIGTERM by default
      local code, sig = p:wait()
      assert.are.equal(143, code)
      assert.are.equal("SIGTERM", sig)
      p = process.spawn({ "sleep", "30" })
      assert.is_true(p:kill("KILL"))
      assert.are.same({ 137, "SIGKILL" }, { p:wait() })
      p = process.spawn({ "sleep", "30" })
      assert.is_true(p:kill(2))
      assert.are.same({ 130, "SIGINT" }, { p:wait() })
    end)

    it("kill after the exit was seen never signals the pid again", function()
      local p = process.spawn({ "true" })
      p:wait()
      assert.is_false(p:kill())
      assert.is_false(p:kill("SIGKILL"))
    end)

    it("several tasks can wait for one child", function()
      local p = process.spawn({ "sh", "-c", "sleep 0.1; exit 7" })
      local a = corio.spawn(function() return p:wait() end)
      local b = corio.spawn(function() return p:wait() end)
      assert.are.equal(7, a:await())
      assert.are.equal(7, b:await())
    end)

    it("a cancelled wait leaves the child to be reaped", function()
      local p = process.spawn({ "sh", "-c", "sleep 0.2" })
      local t = corio.spawn(function() return p:wait() end)
      corio.yield()
      t:cancel()
      assert.is_false(pcall(t.await, t))
      assert.are.equal(0, p:wait())
    end)

    it("a missing program raises ENOENT with the path", function()
      local err = raises("ENOENT", process.spawn, { "/no/such/program" })
      assert.are.equal("/no/such/program", err.path)
      raises("ENOENT", process.spawn, { "no-such-program-corio" })
      raises("ENOENT", process.exec, { "no-such-program-corio" })
    end)

    it("a file that is not executable raises EACCES", function()
      local dir = fs.mkdtemp("/tmp/corio-proc-XXXXXX")
      fs.write_file(dir .. "/script", "#!/bin/sh\necho hi\n")
      raises("EACCES", process.spawn, { dir .. "/script" })
      fs.remove(dir .. "/script")
      fs.rmdir(dir)
    end)

    it("checks its arguments", function()
      bad_argument(process.spawn, "true")
      bad_argument(process.spawn, {})
      bad_argument(process.spawn, { {} })
      bad_argument(process.spawn, { "true" }, 5)
      bad_argument(process.spawn, { "true" }, { stdout = "bogus" })
      bad_argument(process.spawn, { "true" }, { env = "x" })
      bad_argument(process.spawn, { "true" }, { cwd = 5 })
      bad_argument(process.exec, { "true" }, { timeout = "x" })
      bad_argument(process.exec, { "true" }, { input = {} })
      local p = process.spawn({ "true" })
      bad_argument(p.kill, p, "SIGNOPE")
      bad_argument(p.wait, nil)
      p:wait()
    end)

    it("refuses ids that are not whole numbers, and zero bytes", function()
      -- A uid of 65534.5 (or NaN, 1e300, 2^63) was cast to 0: root.
      for _, v in ipairs({ 65534.5, 0 / 0, 1e300, 2 ^ 63, -1, 2 ^ 32, "0" }) do
        bad_argument(process.exec, { "id", "-u" }, { uid = v })
        bad_argument(process.exec, { "id", "-g" }, { gid = v })
      end
      -- The OS would read up to the zero byte: "a\0b" would run "a".
      bad_argument(process.exec, { "echo", "a\0b" })
      bad_argument(process.exec, { "echo\0x" })
      bad_argument(process.exec, { "echo" }, { cwd = "/tmp\0x" })
      bad_argument(process.exec, { "echo" }, { env = { "A=1\0B=2" } })
      bad_argument(function() process.env.CORIO_T = "a\0b" end)
      bad_argument(function() process.env["CORIO\0T"] = "ab" end)
      assert.is_nil(process.env.CORIO_T)
    end)

    it("runs in cwd with the environment given", function()
      local r = process.exec({ "sh", "-c", "pwd; echo $FOO; echo ${HOME:-none}" },
                             { cwd = "/tmp", env = { FOO = "bar" } })
      assert.are.equal("/tmp\nbar\nnone\n", r.stdout)
      local env = {}
      for k, v in pairs(process.env) do env[k] = v end
      env.CORIO_X = "42"
      r = process.exec({ "sh", "-c", "echo $CORIO_X $HOME" }, { env = env })
      assert.are.equal("42 " .. process.env.HOME .. "\n", r.stdout)
      raises("ENOENT", process.spawn, { "true" }, { cwd = "/no/such/dir" })
    end)
  end)

  describe("stdio", function()
    it("null gives EOF and discards", function()
      local r = process.exec({ "sh", "-c", "cat; echo done" }, { stdin = "null" })
      assert.are.equal("done\n", r.stdout)
      r = process.exec({ "sh", "-c", "echo gone" }, { stdout = "null" })
      assert.are.equal("", r.stdout)
    end)

    it("pipes both ways", function()
      local p = process.spawn({ "cat" }, { stdin = "pipe", stdout = "pipe" })
      p.stdin:write("line1\nline2\n")
      p.stdin:close()
      assert.are.equal("line1", p.stdout:read("l"))
      assert.are.equal("line2\n", p.stdout:read("a"))
      assert.are.equal(0, p:wait())
      p.stdout:close()
      assert.is_nil(p.stderr)
    end)

    it("a File as stdout", function()
      local dir = fs.mkdtemp("/tmp/corio-proc-XXXXXX")
      local f = fs.open(dir .. "/out", "w")
      local p = process.spawn({ "echo", "to a file" }, { stdout = f })
      p:wait()
      f:close()
      assert.are.equal("to a file\n", fs.read_file(dir .. "/out"))
      fs.remove(dir .. "/out")
      fs.rmdir(dir)
    end)

    it("a Stream as stdin: a pipeline", function()
      local a = process.spawn({ "printf", "b\\na\\nc\\n" }, { stdout = "pipe" })
      local b = process.spawn({ "sort" }, { stdin = a.stdout, stdout = "pipe" })
      a.stdout:close()
      assert.are.equal("a\nb\nc\n", b.stdout:read("a"))
      b.stdout:close()
      assert.are.equal(0, a:wait())
      assert.are.equal(0, b:wait())
    end)

    it("100 MB through stdout and stderr at once, without deadlock", function()
      local MB = 100 * 1024 * 1024
      local p = process.spawn({ "sh", "-c",
        "head -c " .. MB .. " /dev/zero & head -c " .. MB .. " /dev/zero >&2; wait" },
        { stdout = "pipe", stderr = "pipe", stdin = "pipe" })
      local function count(s)
        local n = 0
        while true do
          local d = s:read(65536)
          if not d then return n end
          n = n + #d
        end
      end
      local o = corio.spawn(count, p.stdout)
      local e = corio.spawn(count, p.stderr)
      p.stdin:close()
      assert.are.equal(MB, o:await())
      assert.are.equal(MB, e:await())
      assert.are.equal(0, p:wait())
      p.stdout:close()
      p.stderr:close()
    end)
  end)

  describe("exec", function()
    it("collects stdout, stderr and the code", function()
      local r = process.exec({ "sh", "-c", "echo out; echo err >&2; exit 4" })
      assert.are.same({ code = 4, stdout = "out\n", stderr = "err\n" }, r)
    end)

    it("feeds input", function()
      local big = string.rep("0123456789", 200000)       -- 2 MB
      local r = process.exec({ "cat" }, { input = big })
      assert.are.equal(big, r.stdout)
      -- A child that does not read its input is not an error.
      r = process.exec({ "true" }, { input = big })
      assert.are.equal(0, r.code)
    end)

    it("returns only when the pipes reached EOF", function()
      -- The child exits at once; its background job writes later.
      local r = process.exec({ "sh", "-c", "(sleep 0.2; echo late) & echo early" })
      assert.are.equal("early\nlate\n", r.stdout)
    end)

    it("kills the child and raises TIMEOUT past the timeout", function()
      local t0 = corio.now()
      local err = raises("TIMEOUT", process.exec,
        { "sh", "-c", "echo partial; exec sleep 30" }, { timeout = 0.3 })
      assert.is_true(corio.is_timeout(err))
      assert.is_true(corio.now() - t0 < 10)
      assert.are.equal("partial\n", err.stdout)
      assert.are.equal("SIGKILL", err.signal)
    end)

    it("a cancelled exec kills its child", function()
      local dir = fs.mkdtemp("/tmp/corio-proc-XXXXXX")
      local t = corio.spawn(process.exec, { "sh", "-c", "echo $$ > " .. dir .. "/pid; exec sleep 30" })
      local pid
      for _ = 1, 500 do
        local ok, s = pcall(fs.read_file, dir .. "/pid")
        if ok and s:match("%d+\n") then pid = tonumber(s:match("%d+")); break end
        corio.sleep(0.01)
      end
      assert.is_truthy(pid)
      t:cancel()
      assert.is_false(pcall(t.await, t))
      for _ = 1, 500 do
        if not alive(pid) then break end
        corio.sleep(0.01)
      end
      assert.is_false(alive(pid))
      fs.remove(dir .. "/pid")
      fs.rmdir(dir)
    end)
  end)

  describe("no zombie, no leak", function()
    it("1,000 spawns leave no zombie and no extra fd", function()
      local before = nfds()
      local sem = 16
      local tasks = {}
      for w = 1, sem do
        tasks[w] = corio.spawn(function()
          for _ = 1, 1000 / sem do
            local p = process.spawn({ "true" }, { stdout = "pipe", stderr = "null" })
            p.stdout:read("a")
            p.stdout:close()
            assert.are.equal(0, p:wait())
          end
        end)
      end
      local n = 1000 - (1000 // sem) * sem
      for _ = 1, n do process.spawn({ "true" }):wait() end
      for w = 1, sem do tasks[w]:await() end
      corio.sleep(0.05)
      assert.are.equal(0, zombies())
      assert.are.equal(before, nfds())
    end)

    it("a forgotten Process is still reaped", function()
      local pid
      do pid = process.spawn({ "sh", "-c", "sleep 0.1" }).pid end
      collectgarbage()
      collectgarbage()
      for _ = 1, 500 do
        if not alive(pid) then break end
        corio.sleep(0.01)
      end
      assert.is_false(alive(pid))
      assert.are.equal(0, zombies())
    end)
  end)

  describe("signals and limits in children", function()
    it("children start with default signal dispositions", function()
      local r = process.exec({ "cat", "/proc/self/status" })
      -- The standard signals 1-31 (real-time ones are the C runtime's: the
      -- sanitizers' runtime ignores signal 32, and children inherit that).
      local function std(mask) return tonumber(mask, 16) & 0x7fffffff end
      assert.are.equal(0, std(r.stdout:match("SigIgn:%s*(%x+)")))
      assert.are.equal(0, std(r.stdout:match("SigBlk:%s*(%x+)")))
      -- so `yes | head -1` ends (yes dies of SIGPIPE)
      r = process.exec({ "sh", "-c", "yes | head -1" }, { timeout = 10 })
      assert.are.equal("y\n", r.stdout)
    end)

    it("a write past `ulimit -f` raises EFBIG instead of killing corio", function()
      local dir = fs.mkdtemp("/tmp/corio-proc-XXXXXX")
      local r = corio_script([[
        local fs = require "corio.fs"
        local ok, err = pcall(fs.write_file, "]] .. dir .. [[/big", string.rep("x", 100000))
        print(ok, err and err.code)
        local f = fs.open("]] .. dir .. [[/big2", "w")
        ok, err = pcall(f.write, f, string.rep("x", 100000))
        print(ok, err and err.code)
        f:close()
      ]], { prefix = "ulimit -f 8;" })
      assert.are.equal("false\tEFBIG\nfalse\tEFBIG\n", r.stdout, r.stderr)
      assert.are.equal(0, r.code)
      os.execute("rm -rf " .. dir)
    end)
  end)

  describe("this process", function()
    it("has pid, ppid, cwd, execpath and argv", function()
      assert.are.equal(math.tointeger(fs.read_file("/proc/self/stat"):match("^%d+")), process.pid)
      assert.is_true(process.ppid() > 0)
      assert.are.equal(fs.realpath("."), process.cwd())
      assert.are.equal("file", fs.stat(process.execpath).type)
      assert.are.equal("table", type(process.argv))
    end)

    it("env reads, sets and unsets the live environment", function()
      assert.are.equal(os.getenv("HOME"), process.env.HOME)
      process.env.CORIO_TEST_VAR = "yes"
      assert.are.equal("yes", process.env.CORIO_TEST_VAR)
      assert.are.equal("yes\n", process.exec({ "sh", "-c", "echo $CORIO_TEST_VAR" }).stdout)
      local seen = false
      for k, v in pairs(process.env) do
        if k == "CORIO_TEST_VAR" then seen = v == "yes" end
      end
      assert.is_true(seen)
      process.env.CORIO_TEST_VAR = nil
      assert.is_nil(process.env.CORIO_TEST_VAR)
      assert.is_nil(process.env[1])
    end)

    it("chdir changes the cwd", function()
      local old = process.cwd()
      process.chdir("/")
      assert.are.equal("/", process.cwd())
      process.chdir(old)
      raises("ENOENT", process.chdir, "/no/such/dir")
    end)

    it("exit lets other tasks clean up, flushes and exits with the code", function()
      local r = corio_script([[
        local corio = require "corio"
        local process = require "corio.process"
        corio.spawn(function()
          local ok, err = pcall(corio.sleep, 30)
          io.write("cleanup ", tostring(corio.is_cancelled(err)), "\n")
        end)
        corio.sleep(0.05)
        io.write("buffered")
        process.exit(3)
        print("never")
      ]])
      assert.are.equal(3, r.code, r.stderr)
      assert.are.equal("bufferedcleanup true\n", r.stdout)
    end)

    it("exit drains what was written to corio.stdout", function()
      local r = corio_script([[
        local corio = require "corio"
        corio.stdout:write(string.rep("x", 1000000), "\nend\n")
        require("corio.process").exit(5)
      ]])
      assert.are.equal(5, r.code, r.stderr)
      assert.are.equal(1000005, #r.stdout)
    end)

    it("exit, an uncaught error and a normal end finish though a pool thread is stuck", function()
      -- A cancelled fs.open of a FIFO with no writer blocks one of libuv's
      -- pool threads for good; exit() used to join it (a hang), and the
      -- teardown after an uncaught error polled the loop at full speed.
      local dir = fs.mkdtemp("/tmp/corio-fifo-XXXXXX")
      assert.are.equal(0, process.exec({ "mkfifo", dir .. "/f" }).code)
      local prelude = [[
        local corio = require "corio"
        local t = corio.spawn(function()
          return require("corio.fs").open("]] .. dir .. [[/f", "r")
        end)
        print(pcall(corio.wait_for, t, 0.1))
      ]]
      local t0 = corio.now()
      local r = corio_script(prelude .. [[require("corio.process").exit(4)]],
                             { timeout = 20 })
      assert.are.equal(4, r.code, r.stderr)
      assert.matches("TIMEOUT", r.stdout)
      r = corio_script(prelude .. [[error("boom")]], { timeout = 20 })
      assert.are.equal(1, r.code, r.stderr)
      assert.matches("boom", r.stderr)
      -- and a normal end: no task, callback or handle is left, so the
      -- request nobody waits for does not keep the process alive
      r = corio_script(prelude .. [[print("main done")]], { timeout = 20 })
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("main done", r.stdout)
      -- while a task still waits for such a call, the process waits too
      r = corio_script([[
        local corio = require "corio"
        corio.spawn(function()
          local f = require("corio.fs").open("]] .. dir .. [[/f", "r")
          print("read " .. f:read("a"))
          f:close()
        end)
        require("corio.process").spawn({ "sh", "-c",
          "sleep 0.3; echo hi > ]] .. dir .. [[/f" })
      ]], { timeout = 20 })
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("read hi\n\n", r.stdout)
      assert.is_true(corio.now() - t0 < 10, "took " .. (corio.now() - t0))
      fs.remove(dir .. "/f")
      fs.rmdir(dir)
    end)

    it("ends though a dropped write is blocked for good on a FIFO", function()
      -- The write's thread still reads the script's string: teardown
      -- waits for it (2 s at most) rather than free it under write().
      local dir = fs.mkdtemp("/tmp/corio-fifo-XXXXXX")
      assert.are.equal(0, process.exec({ "mkfifo", dir .. "/f" }).code)
      local t0 = corio.now()
      local r = corio_script([[
        local corio = require "corio"
        local fs = require "corio.fs"
        READER = fs.open("]] .. dir .. [[/f", "r+")  -- read one byte only
        local t = corio.spawn(fs.write_file, "]] .. dir .. [[/f",
                              string.rep("x", 1 << 20))
        assert(READER:read(1) == "x")     -- the write is in write() now
        t:cancel()
        print(pcall(t.await, t))
      ]], { timeout = 20 })
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("CANCELLED", r.stdout)
      assert.is_true(corio.now() - t0 < 10, "took " .. (corio.now() - t0))
      fs.remove(dir .. "/f")
      fs.rmdir(dir)
    end)

    it("exit from a task other than the main one", function()
      local r = corio_script([[
        local corio = require "corio"
        local process = require "corio.process"
        corio.spawn(function() corio.sleep(0.05); process.exit(true) end)
        corio.sleep(30)
      ]])
      assert.are.equal(0, r.code, r.stderr)
    end)
  end)
end)
