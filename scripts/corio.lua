--[[
corio -- asyncio for Lua 5.4, on libuv.

The public `corio` module: the C core (corio.core) re-exported, plus lazy
access to the submodules, so `corio.sync` works as well as
`require "corio.sync"`.
]]
local core = require "corio.core"

local corio = {}

for _, name in ipairs {
  "run", "spawn", "sleep", "yield", "now", "current",
  "call_soon", "call_later", "call_at", "future", "context",
  "set_error_handler", "Error", "is_cancelled", "is_timeout", "version",
} do
  corio[name] = core[name]
end

-- Functions that live in a submodule, loaded on first use: composition
-- (scripts/compose.lua: gather, wait, wait_for, timeout scopes, shield,
-- as_completed, task groups) and the executor's to_thread.  A script that
-- uses none of them does not load them (start-up: docs/ARCHITECTURE.md).
local lazy = { to_thread = "corio.executor" }
for _, name in ipairs {
  "gather", "wait", "wait_for", "timeout", "shield", "as_completed", "group",
} do
  lazy[name] = "corio.compose"
end

-- Submodules load on first use: corio.sync, corio.net, ...
return setmetatable(corio, {
  __index = function(t, k)
    if type(k) ~= "string" then return nil end
    if k == "stdin" or k == "stdout" or k == "stderr" then
      local s = require("corio.net")[k]     -- Streams, made on first use
      rawset(t, k, s)
      return s
    end
    if lazy[k] then
      local f = require(lazy[k])[k]
      rawset(t, k, f)
      return f
    end
    local ok, mod = pcall(require, "corio." .. k)
    if not ok then
      if tostring(mod):find("module 'corio." .. k .. "' not found", 1, true) then
        return nil
      end
      error(mod, 2)
    end
    rawset(t, k, mod)
    return mod
  end,
})
