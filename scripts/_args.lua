--[[
corio._args -- the argument checks the Lua half of corio shares (private).

Misuse raises Lua's standard message, as luaL_argerror would:
"bad argument #n to 'fname' (msg)", pointing at the caller's line -- the
first line up the stack outside corio's own scripts (raise).
]]
local M = {}

--- typename(v) -> the __name of v's metatable, or type(v).
function M.typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name
    or type(v)
end

local getinfo, sfind = debug.getinfo, string.find

-- Is src the chunk name of one of corio's embedded scripts (tools/embed.c
-- names them "@corio.lua" and "@corio/<name>.lua")?
local function own(src)
  return src == "@corio.lua" or sfind(src, "^@corio/[%w_]+%.lua$") ~= nil
end

--- raise(msg) raises the string msg at the first function up the stack
--- that is neither corio's own Lua code nor C: the user's line, however
--- deep inside corio the check that failed runs.  (A fixed level, as
--- error(msg, 3) gave, named corio/net.lua:157 whenever a check ran one
--- call deeper than its author counted.)  The one place that decides the
--- level of a misuse error.
function M.raise(msg)
  local lvl = 2
  while true do
    local info = getinfo(lvl, "S")
    if info == nil then error(msg, 2) end       -- corio all the way up
    if info.what ~= "C" and not own(info.source) then error(msg, lvl) end
    lvl = lvl + 1
  end
end

--- argerror(n, fname, msg) raises Lua's standard "bad argument #n to
--- 'fname' (msg)" at the user's line (see raise).
function M.argerror(n, fname, msg)
  M.raise(("bad argument #%d to '%s' (%s)"):format(n, fname, msg))
end

--- check_self(self, class, fname) -> self, if its metatable is `class`.
--- A Lua-side method called as a plain function can get anything.
function M.check_self(self, class, fname)
  if getmetatable(self) ~= class then
    M.argerror(1, fname, class.__name .. " expected, got " ..
      M.typename(self))
  end
  return self
end

return M
