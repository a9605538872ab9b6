--[[
corio.debug -- what a running program is doing, for the REPL or an HTTP
endpoint:

  corio.debug.tasks() -> list of {task=, name=, state=, where=, created=}
      every live task: its name, state ("new", "running", "waiting",
      "ready"), the line it waits at and, under --debug (CORIO_DEBUG=1),
      the line that spawned it
  corio.debug.enabled() -> whether --debug is on
  corio.debug.summary([running]) -> text: live tasks and open handles by
      kind (under --debug also each handle's kind and creation site,
      identical ones grouped with a count; with `running` only those
      that keep the program alive)
  corio.debug.handles() -> under --debug, a list of {kind=, created=,
      active=} for every open Stream, Server, UDP socket, Process,
      Watcher, Signal handler, pending Timer (call_later, call_at) and
      File (active: it keeps the program alive); an empty list otherwise
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

-- Open handles, and under --debug the open Files (fs.open records them
-- in core.debug_files).
function M.handles()
  local list = core.open_handles()
  for f, where in pairs(core.debug_files or {}) do
    if f.fd ~= nil then
      list[#list + 1] = { kind = "File", created = where, active = false }
    end
  end
  return list
end

-- "  2 Stream created at app.lua:7" lines: identical kind and site once,
-- with a count, sorted.
local function grouped(list)
  local order, count = {}, {}
  for _, h in ipairs(list) do
    local key = h.kind .. " created at " .. h.created
    if not count[key] then order[#order + 1] = key end
    count[key] = (count[key] or 0) + 1
  end
  table.sort(order)
  local lines = {}
  for i, key in ipairs(order) do
    lines[i] = "  " .. count[key] .. " " .. key
  end
  return lines
end

-- The leak report of the binary's exit under --debug (runtime/main.c):
-- what the script opened and never closed; "" if nothing.
function M.at_exit()
  local lines = grouped(M.handles())
  if #lines == 0 then return "" end
  return "corio: [debug] still open at exit (closed by the exit, not by "
    .. "the script):\n" .. table.concat(lines, "\n")
end

-- One line per live task (but the caller), one for open handles and,
-- under --debug, one per creation site of the open handles (with
-- `running`, only those that keep the loop alive).
function M.summary(running)
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
  local open = M.handles()
  if running then
    local keep = {}
    for _, h in ipairs(open) do
      if h.active then keep[#keep + 1] = h end
    end
    open = keep
  end
  local sites = grouped(open)
  if #sites > 0 then
    lines[#lines + 1] = "  open, by creation site:"
    for _, l in ipairs(sites) do lines[#lines + 1] = "  " .. l end
  end
  return table.concat(lines, "\n")
end

return M
