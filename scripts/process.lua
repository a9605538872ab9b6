--[[
corio.process -- child processes, and this process (bindings/process.c).

  process.spawn(argv, opts) -> Process   opts: cwd, env, stdin, stdout,
                                         stderr ("pipe" | "inherit" |
                                         "null" | a Stream | a File | an
                                         fd), detached, uid, gid
  proc.pid, proc.stdin/stdout/stderr, proc:wait() -> code, signal,
  proc:kill(sig) -> true if sent
  process.exec(argv, opts) -> {code=, signal=, stdout=, stderr=}
  process.argv, process.env, process.pid, process.cwd(), process.exit(code)

A Process is reaped by the runtime as soon as it exits, whether or not
anybody waits for it; wait() only reads the recorded status.
]]
local core = require "corio.core"
local P = require "corio._process"

local M = {}

local signum = require("corio._signal").signum

local type, error, pcall, tostring = type, error, pcall, tostring
local sformat = string.format


-- {====================================================================
-- Process
-- =====================================================================

local Process = {}
Process.__index = Process
Process.__name = "corio.Process"

local args = require "corio._args"
local badarg = args.argerror            -- raised at the user's line

local function check_proc(p, fname)
  if getmetatable(p) ~= Process then
    badarg(1, fname, "corio.Process expected, got " .. type(p))
  end
end

-- Called (as a loop callback) once the child has exited and been reaped.
local function exited(self, code, sig)
  self.code, self.signal = code, sig
  local w = self._waiters
  self._waiters = nil
  for i = 1, #w, 2 do core.wake(w[i], w[i + 1], code, sig) end
  local cbs = self._on_exit
  self._on_exit = nil
  if cbs then for _, fn in ipairs(cbs) do fn(code, sig) end end
end

--- proc:wait() -> code, signal.  A child killed by a signal gives
--- 128 + signum and the signal's name; otherwise signal is nil.
function Process:wait()
  check_proc(self, "wait")
  if self.code ~= nil then return self.code, self.signal end
  local task, token = core.waiter()
  local w = self._waiters
  w[#w + 1] = task
  w[#w + 1] = token
  return core.wait()
end

--- proc:kill([sig]) -> true if the signal was sent; false once the
--- child has exited (its pid is never signalled after that).
function Process:kill(sig)
  check_proc(self, "kill")
  if sig ~= nil and not signum(sig) then
    badarg(1, "kill", "unknown signal '" .. tostring(sig) .. "'")
  end
  return self._h:kill(sig)
end

--- proc:running() -> true until the exit was seen.
function Process:running()
  check_proc(self, "running")
  return self._h:status() == nil
end

Process.__tostring = function(self)
  check_proc(self, "__tostring")
  if self.code ~= nil then
    return sformat("corio.Process (pid %d, exited %d%s)", self.pid,
                   self.code, self.signal and (" " .. self.signal) or "")
  end
  return sformat("corio.Process (pid %d, running)", self.pid)
end

M.Process = Process

-- }====================================================================


-- {====================================================================
-- spawn
-- =====================================================================

local function check_argv(argv, fname)
  if type(argv) ~= "table" then
    badarg(1, fname, "table expected, got " .. type(argv))
  end
  if argv[1] == nil then badarg(1, fname, "argv is empty") end
  for i = 1, #argv do
    local t = type(argv[i])
    if t ~= "string" and t ~= "number" then
      badarg(1, fname, sformat("argv[%d] is a %s", i, t))
    end
  end
end

local function env_list(env, fname)
  if type(env) ~= "table" then
    badarg(2, fname, "field 'env' must be a table")
  end
  local list = {}
  for k, v in pairs(env) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      badarg(2, fname, "env must map names to strings")
    end
    list[#list + 1] = k .. "=" .. v
  end
  table.sort(list)
  return list
end

-- Turns a stdio option into what the C side takes: "inherit", "null",
-- "pipe", an fd, or a Stream.
local function stdio_opt(v, name, fname)
  if v == nil or v == "inherit" or v == "null" or v == "pipe" then
    return v or "inherit"
  end
  if math.type(v) == "integer" and v >= 0 then return v end
  if type(v) == "table" and type(v.fileno) == "function" then
    return v:fileno()                       -- a corio.fs File
  end
  if P.is_stream and P.is_stream(v) then return v end
  badarg(2, fname, sformat("invalid %s: %s", name, tostring(v)))
end

local function do_spawn(argv, opts, fname)
  check_argv(argv, fname)
  if opts ~= nil and type(opts) ~= "table" then
    badarg(2, fname, "table expected, got " .. type(opts))
  end
  opts = opts or {}
  -- Every field the child's start fills is made here, before the child
  -- exists: storing into a present field never allocates, so nothing
  -- after P.spawn can fail for want of memory (bindings/process.c).
  local proc = setmetatable({ _waiters = {}, _h = false, pid = false,
                              stdin = false, stdout = false,
                              stderr = false }, Process)
  local copts = {
    cwd = opts.cwd,
    env = opts.env ~= nil and env_list(opts.env, fname) or nil,
    uid = opts.uid, gid = opts.gid, detached = opts.detached,
    stdio = {
      stdio_opt(opts.stdin, "stdin", fname),
      stdio_opt(opts.stdout, "stdout", fname),
      stdio_opt(opts.stderr, "stderr", fname),
    },
    on_exit = function(code, sig) exited(proc, code, sig) end,
  }
  local h, pid, i, o, e = P.spawn(argv, copts)
  proc._h, proc.pid = h, pid
  proc.stdin, proc.stdout, proc.stderr = i, o, e
  return proc
end

--- process.spawn(argv, opts) -> Process.  A missing program raises
--- ENOENT (with path = argv[1]).
function M.spawn(argv, opts)
  return do_spawn(argv, opts, "spawn")
end

-- {====================================================================
-- exec
-- =====================================================================

-- Reads a stream to EOF into acc; a stream aborted by a timeout or a
-- cancellation just ends the reading.
local function drain(stream, acc)
  pcall(function()
    while true do
      local s = stream:read(65536)
      if s == nil then break end
      acc[#acc + 1] = s
    end
  end)
end

local function feed(stream, input)
  pcall(function()                -- EPIPE: the child did not want it all
    stream:write(input)
    stream:close()
  end)
  pcall(stream.close, stream)
end

local function abort_all(proc)
  for _, k in ipairs { "stdin", "stdout", "stderr" } do
    local s = proc[k]
    if s then pcall(s.abort or s.close, s) end
  end
end

--- process.exec(argv [, opts]) -> {code=, signal=, stdout=, stderr=}.
--- opts: input (a string for stdin; otherwise stdin is "null"), timeout
--- (seconds), cwd, env, and stdout/stderr to override "pipe".  Returns
--- once the child has exited AND its pipes reached EOF.  Past the
--- timeout the child is killed (SIGKILL) and TIMEOUT is raised, with
--- the output so far in the error's stdout/stderr fields (and its
--- exit_code and signal).  Cancelling
--- the calling task kills the child too.
function M.exec(argv, opts)
  if opts ~= nil and type(opts) ~= "table" then
    badarg(2, "exec", "table expected, got " .. type(opts))
  end
  opts = opts or {}
  local input = opts.input
  if input ~= nil and type(input) ~= "string" then
    badarg(2, "exec", "field 'input' must be a string")
  end
  local timeout = opts.timeout
  if timeout ~= nil and type(timeout) ~= "number" then
    badarg(2, "exec", "field 'timeout' must be a number")
  end
  local proc = do_spawn(argv, {
    cwd = opts.cwd, env = opts.env, uid = opts.uid, gid = opts.gid,
    stdin = input and "pipe" or opts.stdin or "null",
    stdout = opts.stdout or "pipe",
    stderr = opts.stderr or "pipe",
  }, "exec")
  local out, err, tasks = {}, {}, {}
  if proc.stdout then tasks[#tasks + 1] = core.spawn(drain, proc.stdout, out) end
  if proc.stderr then tasks[#tasks + 1] = core.spawn(drain, proc.stderr, err) end
  if input then tasks[#tasks + 1] = core.spawn(feed, proc.stdin, input) end
  local timed_out, timer = false, nil
  if timeout then
    timer = core.call_later(timeout, function()
      timed_out = true
      proc:kill("SIGKILL")
      abort_all(proc)               -- a grandchild may hold the pipes
    end)
  end
  local ok, e = pcall(function()
    proc:wait()
    for _, t in ipairs(tasks) do t:await() end
  end)
  if timer then timer:cancel() end
  if not ok then                    -- cancelled (or worse): clean up
    proc:kill("SIGKILL")
    abort_all(proc)
    for _, t in ipairs(tasks) do t:cancel() end
    error(e, 0)
  end
  for _, k in ipairs { "stdin", "stdout", "stderr" } do
    local s = proc[k]
    if s then pcall(s.close, s) end
  end
  local res = {
    code = proc.code, signal = proc.signal,
    stdout = table.concat(out), stderr = table.concat(err),
  }
  if timed_out then
    error(core.Error("TIMEOUT", sformat("%s did not finish within %g s",
                                         tostring(argv[1]), timeout), {
      op = "exec", path = tostring(argv[1]), stdout = res.stdout,
      stderr = res.stderr, exit_code = res.code, signal = res.signal,
    }), 0)
  end
  return res
end

-- }====================================================================


-- {====================================================================
-- This process
-- =====================================================================

M.pid = P.pid()
M.ppid = P.ppid
M.cwd = P.cwd
M.chdir = P.chdir
M.execpath = P.exepath()
M.kill = P.kill
M.getuid = P.getuid

-- argv: the script's `arg` table as the binary built it (arg[0] is the
-- script, negative indices the interpreter and its options).
M.argv = {}
if type(_G.arg) == "table" then
  for k, v in pairs(_G.arg) do M.argv[k] = v end
end

-- env: the live environment.  Reading asks the OS; assigning sets (or,
-- with nil, unsets) a variable; pairs() walks a snapshot.
M.env = setmetatable({}, {
  __index = function(_, k)
    if type(k) ~= "string" then return nil end
    return P.getenv(k)
  end,
  __newindex = function(_, k, v)
    if type(k) ~= "string" then
      badarg(1, "setenv", "string expected, got " .. type(k))
    end
    P.setenv(k, v ~= nil and tostring(v) or nil)
  end,
  __pairs = function()
    return next, P.environ(), nil
  end,
  __name = "corio.process.env",
})

--- process.exit([code]): ends the process.  Other tasks are cancelled
--- and given a moment to unwind (their cleanup runs), output is flushed,
--- then the process exits with `code` (true = 0, false = 1, default 0).
--- The calling task's own cleanup does not run (as os.exit).
function M.exit(code)
  if code == true or code == nil then code = 0
  elseif code == false then code = 1 end
  if math.type(code) ~= "integer" then
    badarg(1, "exit", "integer expected, got " .. type(code))
  end
  if core.current() then
    core.cancel_others("process.exit")
    pcall(function()
      local deadline = core.now() + 1
      while core.stats().tasks > 1 and core.now() < deadline do
        core.sleep(0.001)
      end
    end)
  end
  for _, f in ipairs { io.stdout, io.stderr } do pcall(f.flush, f) end
  local net = package.loaded["corio.net"]
  if net and core.current() then            -- Streams made on first use
    for _, k in ipairs { "stdout", "stderr" } do
      local s = rawget(net, k)
      if s then pcall(s.drain, s) end
    end
  end
  P.exit(code)
end

-- }====================================================================

return M
