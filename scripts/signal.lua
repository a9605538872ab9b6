--[[
corio.signal -- signals as loop events (bindings/signal.c).

  signal.on(name, fn) -> handler   fn(name) runs as a loop callback on
                                   each delivery; handler:close() stops it
  signal.wait(name) -> name        suspends the task until the signal comes

Names are "SIGTERM" or "TERM", or numbers.  Handlers do not keep the loop
alive (unless made with {keep_alive = true}); a task in signal.wait does.
]]
local core = require "corio.core"
local S = require "corio._signal"
local argerror = require("corio._args").argerror  -- at the user's line

local M = {}

-- A signal argument must be a name or a number; an unknown one is for
-- the caller to judge (signum: nil, wait: bad argument).  The C lookup
-- stays lenient for process.lua, whose kill() names the bad argument.
local function check_sig(sig, fname)
  local t = type(sig)
  if t ~= "string" and t ~= "number" then
    argerror(1, fname, "signal name or number expected, got " .. t)
  end
end

--- signal.on(name, fn [, {keep_alive=}]) -> handler.  A handler does
--- not keep the loop alive unless keep_alive is true: a task that awaits
--- something only a handler will do needs keep_alive (or signal.wait).
function M.on(name, fn, opts)
  local keep = false
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror(3, "on", "table expected, got " .. type(opts))
    end
    keep = opts.keep_alive and true or false
  end
  check_sig(name, "on")
  if not S.signum(name) then
    argerror(1, "on", ("unknown signal '%s'"):format(tostring(name)))
  end
  local h = S.on(name, fn, keep)
  return h
end
M.name = S.name

--- signal.signum(sig) -> the number, or nil for an unknown name or number.
function M.signum(sig)
  check_sig(sig, "signum")
  return S.signum(sig)
end

function M.wait(name)
  check_sig(name, "wait")
  if not S.signum(name) then
    argerror(1, "wait", ("unknown signal '%s'"):format(tostring(name)))
  end
  local task, token = core.waiter()
  local h <close> = S.on(name, function(n) core.wake(task, token, n) end, true)
  return core.wait()
end

return M
