---@meta corio.executor
-- LuaLS definitions of `require "corio.executor"` (docs/API-executor.md).

---A thread or process pool.
---@class corio.Executor
local Executor = {}

---Runs `fn(...)` on a worker; returns all its results.
---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function Executor:run(fn, ...) end

---Runs `fn(item)` for every item in parallel; returns their first results in order.
---@async
---@param fn fun(item: any): any
---@param list any[]
---@return any[]
function Executor:map(fn, list) end

---Refuses new jobs; the workers leave once idle. Idempotent, also `__close`.
function Executor:close() end

---@class corio.executor
local executor = {}

---@param n? integer default: the number of CPUs (1..1024)
---@return corio.Executor
function executor.thread_pool(n) end

---@param n? integer
---@param opts? { command?: string }
---@return corio.Executor
function executor.process_pool(n, opts) end

---Runs `fn(...)` on the default thread pool.
---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function executor.to_thread(fn, ...) end

return executor
