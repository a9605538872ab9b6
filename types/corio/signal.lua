---@meta corio.signal
-- LuaLS definitions of `require "corio.signal"` (docs/API-fs-process.md).

---A signal subscription (`signal.on`), alive until `close()`.
---@class corio.SignalHandler
local SignalHandler = {}

function SignalHandler:close() end

---@class corio.signal
local signal = {}

---`fn(name)` runs as a loop callback each time the signal arrives.
---@param name string|integer "SIGTERM", "TERM" or a number
---@param fn fun(name: string)
---@param opts? { keep_alive?: boolean }
---@return corio.SignalHandler
function signal.on(name, fn, opts) end

---@async
---@param name string|integer
---@return string name
function signal.wait(name) end

---@param sig string|integer
---@return integer?
function signal.signum(sig) end

---@param num integer
---@return string?
function signal.name(num) end

return signal
