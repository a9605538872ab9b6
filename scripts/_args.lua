--[[
corio._args -- the argument checks the Lua half of corio shares (private).

Misuse raises Lua's standard message, as luaL_argerror would:
"bad argument #n to 'fname' (msg)", pointing at the caller's line.
]]
local M = {}

--- typename(v) -> the __name of v's metatable, or type(v).
function M.typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name
    or type(v)
end

--- argerror(n, fname, msg [, level]) raises at `level` above the caller
--- (default 2: the caller of the function that checks its arguments).
function M.argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg),
    (level or 2) + 1)
end

--- check_self(self, class, fname) -> self, if its metatable is `class`.
--- A Lua-side method called as a plain function can get anything.
function M.check_self(self, class, fname)
  if getmetatable(self) ~= class then
    M.argerror(1, fname, class.__name .. " expected, got " ..
      M.typename(self), 3)
  end
  return self
end

return M
