---@meta corio.debug
-- LuaLS definitions of `require "corio.debug"` (docs/API-tools.md).

---@class corio.debug.TaskInfo
---@field task corio.Task
---@field name string
---@field state string
---@field where string? the current await point
---@field created string? where it was spawned (under --debug)

---@class corio.debug
local debug = {}

---Whether `--debug` (or CORIO_DEBUG=1) is on.
---@return boolean
function debug.enabled() end

---Every live task, with its state, name, creation site and await point.
---@return corio.debug.TaskInfo[]
function debug.tasks() end

---Live tasks and open handles by kind, as text.
---@return string
function debug.summary() end

return debug
