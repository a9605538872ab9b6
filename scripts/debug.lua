--[[
corio.debug -- what a running program is doing, for the REPL or an HTTP
endpoint:

  corio.debug.tasks() -> list of {task=, name=, state=, where=, created=}
      every live task: its name, state ("new", "running", "waiting",
      "ready"), the line it waits at and, under --debug (CORIO_DEBUG=1),
      the line that spawned it
  corio.debug.enabled() -> whether --debug is on
  corio.debug.summary() -> text: live tasks and open handles by kind
]]
local core = require "corio.core"

local M = {}

function M.enabled() return core.debugging() end

function M.tasks()
  local out = {}
  for i, e in ipairs(core.tasks()) do
    out[i] = { task = e.task, name = e.task:name(), state = e.state,
               where = e.where, created = e.created }
  end
  return out
end

-- One line per live task (but the caller) and one for open handles.
function M.summary()
  local lines = {}
  local me = core.current and core.current() or nil
  for _, t in ipairs(M.tasks()) do
    if t.task ~= me then
      lines[#lines + 1] = string.format("  task %s (%s)%s%s", t.name,
        t.state,
        t.where and (" at " .. t.where) or "",
        t.created and (", spawned at " .. t.created) or "")
    end
  end
  local kinds = {}
  for k, n in pairs(core.handle_kinds()) do
    kinds[#kinds + 1] = n .. " " .. k
  end
  table.sort(kinds)
  if #kinds > 0 then
    lines[#lines + 1] = "  open handles: " .. table.concat(kinds, ", ")
  end
  return table.concat(lines, "\n")
end

return M
