--[[
tests/support.lua -- helpers shared by the core specs (not a spec itself).

Load it from a spec with

  local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                   .. "support.lua")

It finds the corio binary under test (the one running `corio test`, so
`make asan` checks the ASan build), runs scripts in a child process, and
captures the reports that corio.set_error_handler receives.
]]
local corio = require "corio"

local S = {}

local function shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
S.shquote = shquote

-- Runs a shell command, returns its stdout and exit code.  Blocks the
-- loop while the child runs (fine in tests).
function S.sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, how, code = p:close()
  if how == "signal" then code = 128 + code end
  return out, ok and 0 or code
end

local function readlink(path)
  local out = S.sh("readlink -f " .. shquote(path) .. " 2>/dev/null")
  out = out:gsub("%s+$", "")
  return out ~= "" and out or nil
end

-- The binary under test: the interpreter running this suite.
S.corio = readlink("/proc/" .. (io.open("/proc/self/stat"):read("n")) ..
                   "/exe")
if not (S.corio and S.corio:match("corio$")) then
  S.corio = readlink(arg and arg[-1] or "build/corio")
end
S.builddir = S.corio:match("^(.*)/[^/]*$")

-- A fresh temporary directory, removed by S.cleanup().
local dirs = {}
function S.tmpdir()
  local d = S.sh("mktemp -d /tmp/corio-test.XXXXXX"):gsub("%s+$", "")
  dirs[#dirs + 1] = d
  return d
end

function S.cleanup()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. shquote(d)) end
  dirs = {}
end

function S.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

function S.read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs `corio [opts] script args` with the script's text written to a
-- temporary file.  Returns {code=, out=, err=, script=}.
--   opts.argv  -- extra arguments after the script path (a list)
--   opts.pre   -- options before the script path (a list)
--   opts.stdin -- text fed on stdin
--   opts.name  -- file name of the script (default "script.lua")
--   opts.limit -- shell commands run first, e.g. "ulimit -v 300000"
--   opts.timeout -- seconds before the child is killed (default 300), so
--                   a child that hangs fails its test instead of the suite
function S.run(text, opts)
  opts = opts or {}
  local d = S.tmpdir()
  local script = S.write(d .. "/" .. (opts.name or "script.lua"), text or "")
  local cmd = { "timeout", "-k", "5", tostring(opts.timeout or 300),
                shquote(S.corio) }
  for _, a in ipairs(opts.pre or {}) do cmd[#cmd + 1] = shquote(a) end
  if text then cmd[#cmd + 1] = shquote(script) end
  for _, a in ipairs(opts.argv or {}) do cmd[#cmd + 1] = shquote(a) end
  local input = opts.stdin and
    S.write(d .. "/stdin", opts.stdin) or "/dev/null"
  local line = table.concat(cmd, " ") .. " <" .. shquote(input) ..
    " >" .. shquote(d .. "/out") .. " 2>" .. shquote(d .. "/err")
  if opts.cwd then line = "cd " .. shquote(opts.cwd) .. " && " .. line end
  if opts.limit then line = opts.limit .. " && " .. line end
  local _, code = S.sh(line)
  return { code = code, out = S.read(d .. "/out"), err = S.read(d .. "/err"),
           script = script, dir = d }
end

-- Whether this is a sanitizer build (ASan reserves terabytes of address
-- space, so `ulimit -v` cannot be used under it).
function S.sanitized()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("asan", 1, true) ~= nil
end

-- Counts the (plain) occurrences of needle in s.
function S.count(s, needle)
  local n, i = 0, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

-- Lets reports queued by __gc reach the error handler: collect, then a
-- few loop turns (reports are flushed at the end of a turn).
function S.flush()
  collectgarbage()
  collectgarbage()
  for _ = 1, 3 do corio.yield() end
end

-- Installs an error handler that records every report, runs fn(reports)
-- and restores the previous handler.  Each report is {err=, kind=,
-- traceback=}.
function S.capture(fn)
  local reports = {}
  local prev = corio.set_error_handler(function(err, info)
    reports[#reports + 1] = { err = err, kind = info.kind,
                              traceback = info.traceback }
  end)
  local ok, e = pcall(fn, reports)
  S.flush()
  corio.set_error_handler(prev)
  if not ok then error(e, 0) end
  return reports
end

-- Returns the error raised by fn(...), or fails the test if none was.
function S.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got none")
  return err
end

-- Asserts that fn(...) raises "bad argument #n to 'name'".  Lua takes the
-- name from the call site, so fn should be a closure making the call as a
-- script would (`function() corio.sleep("x") end`): through pcall(f, ...)
-- Lua can only report '?' or the qualified 'corio.core.sleep'.
function S.bad_argument(n, name, fn, ...)
  local err = S.raises(fn, ...)
  assert(type(err) == "string", "expected a string error, got " ..
         tostring(err))
  local want = "bad argument #" .. n .. " to '" .. name .. "'"
  assert(err:find(want, 1, true), "expected '" .. want .. "' in: " .. err)
  return err
end

-- Asserts that err is a corio.Error with the given code.
function S.is_error(err, code)
  assert(corio.Error.is(err), "expected a corio.Error, got " ..
         tostring(err) .. " (" .. type(err) .. ")")
  assert(err.code == code, "expected code " .. code .. ", got " ..
         tostring(err.code) .. ": " .. tostring(err))
  return err
end

-- Starts `corio [opts.pre...] script` (script = text) as a child with its
-- stdout and stderr (and with opts.stdin, its stdin) piped, for tests that
-- talk to it -- send signals, type lines -- synchronized on what it
-- prints, never on sleeps.  Returns c with
--   c:expect(which, text [, s])  waits (at most s seconds, default 60)
--                                until c.out or c.err ("out"/"err") holds
--                                text (plain), else fails the test
--   c:kill(sig), c:write(s)
--   c:finish([s]) -> code, out, err  (the child is killed after s seconds,
--                                     default 60: a hang fails the test)
function S.child(text, opts)
  opts = opts or {}
  local process = require "corio.process"
  local d = S.tmpdir()
  local argv = { S.corio }
  for _, a in ipairs(opts.pre or {}) do argv[#argv + 1] = a end
  if text then argv[#argv + 1] = S.write(d .. "/script.lua", text) end
  local p = process.spawn(argv, { stdout = "pipe", stderr = "pipe",
    stdin = opts.stdin and "pipe" or "null" })
  local c = { proc = p, out = "", err = "", sig = corio.future() }
  local function wake()
    local f = c.sig
    c.sig = corio.future()
    f:set_result()
  end
  local function reader(which, stream)
    return corio.spawn(function()
      while true do
        local line = stream:read("L")
        if line == nil then break end
        c[which] = c[which] .. line
        wake()
      end
      stream:close()
      c["eof_" .. which] = true
      wake()
    end)
  end
  c.readers = { reader("out", p.stdout), reader("err", p.stderr) }
  function c:expect(which, want, s)
    local scope <close> = corio.timeout(s or 60)
    while not self[which]:find(want, 1, true) do
      local ok, e = pcall(self.sig.await, self.sig)
      if not ok then
        error(("child never printed %q on std%s; out: %q, err: %q")
          :format(want, which, self.out, self.err), 0)
      end
      if self["eof_" .. which] and not self[which]:find(want, 1, true) then
        error(("child exited without printing %q; out: %q, err: %q")
          :format(want, self.out, self.err), 0)
      end
    end
  end
  function c:kill(sig) return self.proc:kill(sig) end
  function c:write(s) return self.proc.stdin:write(s) end
  function c:finish(s)
    if self.proc.stdin then self.proc.stdin:close() end
    local ok, code = pcall(corio.wait_for, function()
      return self.proc:wait()
    end, s or 60)
    if not ok then
      self.proc:kill("SIGKILL")
      self.proc:wait()
      error(("child did not exit; out: %q, err: %q"):format(self.out,
        self.err), 0)
    end
    corio.gather(self.readers)
    return code, self.out, self.err
  end
  return c
end

return S
