-- Shared helpers for the sync and compose specs.
local corio = require "corio"

local H = {}

-- Calls fn(...) and returns its error; fails if it did not raise.
function H.err(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return e
end

-- Asserts that fn(...) raises a corio.Error with `code`; returns it.
function H.code(code, fn, ...)
  local e = H.err(fn, ...)
  assert(corio.Error.is(e), "expected a corio.Error " .. code .. ", got " ..
    tostring(e))
  assert(e.code == code, "expected " .. code .. ", got " .. tostring(e))
  return e
end

-- Asserts that fn(...) raises a string containing `pattern` (plain).
function H.message(pattern, fn, ...)
  local e = H.err(fn, ...)
  assert(type(e) == "string" and e:find(pattern, 1, true),
    "expected an error with '" .. pattern .. "', got " .. tostring(e))
  return e
end

-- Runs fn in a plain callback (outside any task); returns what pcall gave.
function H.outside(fn, ...)
  local f = corio.future()
  local args = table.pack(...)
  corio.call_soon(function()
    f:set_result(pcall(fn, table.unpack(args, 1, args.n)))
  end)
  return f:await()
end

-- A few loop turns, so woken tasks and done callbacks run.
function H.turns(n)
  for _ = 1, n or 3 do corio.yield() end
end

-- Awaits a task that is expected to end cancelled.
function H.cancelled(t)
  local ok, e = pcall(t.await, t)
  assert(not ok and corio.is_cancelled(e), "expected CANCELLED, got " ..
    tostring(ok and "success" or e))
  return e
end

return H
