---@meta corio.debug
-- LuaLS definitions of `require "corio.debug"` (docs/API-tools.md).

---@class corio.debug.TaskInfo
---@field task corio.Task
---@field name string
---@field state string
---@field where string? the current await point
---@field created string? where it was spawned (under --debug)

---@class corio.debug.HandleInfo
---@field kind string "Stream", "Server", "Timer", "File", ...
---@field created string where the script made it ("file:line")
---@field active boolean whether it keeps the program alive

---@class corio.debug
local debug = {}

---Whether `--debug` (or CORIO_DEBUG=1) is on.
---@return boolean
function debug.enabled() end

---Every live task, with its state, name, creation site and await point.
---@return corio.debug.TaskInfo[]
function debug.tasks() end

---Live tasks and open handles by kind (under --debug also by kind and
---creation site, grouped), as text; with `running`, only the handles that
---keep the program alive.
---@param running? boolean
---@return string
function debug.summary(running) end

---Under --debug, every open handle and File with its kind and creation
---site; an empty list otherwise.
---@return corio.debug.HandleInfo[]
function debug.handles() end

---The leak report the binary prints at exit under --debug ("" if none).
---@return string
function debug.at_exit() end

return debug
