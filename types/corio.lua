---@meta corio
-- LuaLS definitions of `require "corio"` (docs/API.md, docs/API-composition.md).
-- Installed to share/corio/types; docs/INSTALL.md shows the .luarc.json.
-- tools/check-types.lua fails CI when an export of the runtime has no
-- definition here.

---@alias corio.ErrorCode
---| "CANCELLED"     # the task was cancelled
---| "TIMEOUT"       # a deadline passed (corio.timeout, wait_for, exec)
---| "CLOSED"        # the object was closed
---| "LIMIT"         # a size limit was passed
---| "INCOMPLETE"    # EOF before readexactly/readuntil had its data
---| "INVALID_STATE" # the call does not fit the object's state (or a deadlock)
---| "QUEUE_FULL"    # put_nowait on a full queue
---| "QUEUE_EMPTY"   # get_nowait on an empty queue
---| "BUSY"          # a second reader of one stream
---| string          # a libuv error name: "ENOENT", "ECONNREFUSED", "EAI_NONAME", ...

---A Task or a Future; where a list of awaitables is taken, a function is
---spawned as a new task.
---@alias corio.Awaitable corio.Future|corio.Task|fun(...): ...

---The error value corio raises: `tostring(err)` is `CODE: message (op path)`.
---Calling `corio.Error(code, message [, fields])` makes one.
---@class corio.Error
---@field code corio.ErrorCode
---@field message string
---@field op? string        the operation that failed ("connect", "open", ...)
---@field errno? integer    the negative libuv status, for libuv errors
---@field path? string
---@field host? string
---@field port? integer
---@field cause? corio.Error the CANCELLED a TIMEOUT came from
---@field partial? string   INCOMPLETE: the bytes read before EOF
---@overload fun(code: corio.ErrorCode, message?: string, fields?: table): corio.Error
local Error = {}

---Whether `v` is a corio.Error (with `code`, if given).
---@param v any
---@param code? corio.ErrorCode
---@return boolean
function Error.is(v, code) end

---A placeholder for values some code provides later (`corio.future()`).
---@class corio.Future
local Future = {}

---Completes the future with every value given; a second set raises INVALID_STATE.
---@param ... any
function Future:set_result(...) end

---Completes the future with an error (any value); CANCELLED cancels it.
---@param err any
function Future:set_error(err) end

---Cancels the future if it is pending.
---@param msg? string
---@return boolean taken
function Future:cancel(msg) end

---Suspends until done; returns every value or raises the error.
---@async
---@return any ...
function Future:await() end

---@return boolean
function Future:done() end

---@return boolean
function Future:cancelled() end

---Non-blocking: the values; raises the error, or INVALID_STATE while pending.
---@return any ...
function Future:result() end

---Non-blocking: the error, or nil if it succeeded; INVALID_STATE while pending.
---@return any
function Future:error() end

---`fn(fut)` runs as a callback once the future is done.
---@param fn fun(fut: corio.Future)
function Future:add_done_callback(fn) end

---A coroutine run by the loop; it has every Future method.
---@class corio.Task : corio.Future
local Task = {}

---Requests cancellation: the task's current or next await raises CANCELLED.
---@param msg? string
---@return boolean taken false once the task had finished
function Task:cancel(msg) end

---@return string name default "Task-<n>"
function Task:name() end

---@param name string
function Task:set_name(name) end

---The traceback where it failed or was cancelled; a suspended task's stack.
---@return string?
function Task:traceback() end

---The number of pending cancel requests (asyncio 3.11).
---@return integer
function Task:cancelling() end

---Takes one cancel request back; returns the count left.
---@return integer
function Task:uncancel() end

---A scheduled callback (`call_soon`, `call_later`, `call_at`).
---@class corio.Handle
local Handle = {}

---@return boolean cancelled true if it had not run yet
function Handle:cancel() end

---@return boolean
function Handle:cancelled() end

---A task-local variable (`corio.context(default)`).
---@class corio.ContextVar
local ContextVar = {}

---The running task's value, or the default.
---@return any
function ContextVar:get() end

---Sets the running task's value; returns the previous one.
---@param v any
---@return any previous
function ContextVar:set(v) end

---Structured concurrency (`corio.group()`), closed with `<close>` or `close()`.
---@class corio.TaskGroup
local TaskGroup = {}

---Spawns a child of the group.
---@param fn async fun(...): ...
---@param ... any
---@return corio.Task
function TaskGroup:spawn(fn, ...) end

---Waits until every child has finished; raises the first error.
---@async
function TaskGroup:wait() end

---What leaving the `<close>` scope does, for a group in a plain variable.
---@async
function TaskGroup:close() end

---Cancels every child still running, in spawn order, not the body; the
---exit still waits for them, and they are not errors. No more spawns.
---@param msg? string the children's cancel message
function TaskGroup:cancel_children(msg) end

---Every error so far, in order.
---@return any[]
function TaskGroup:errors() end

---A deadline scope (`corio.timeout(s)` without a function).
---@class corio.TimeoutScope
local TimeoutScope = {}

---@return boolean expired whether the deadline passed
function TimeoutScope:expired() end

---@class corio.GatherOptions
---@field return_errors? boolean errors go in the list; nothing is cancelled

---@class corio.WaitOptions
---@field timeout? number seconds
---@field return_when? "all"|"first"|"first_error"

---@class corio.ErrorInfo
---@field kind "callback"|"task"|"future"|"main"
---@field traceback? string

---@class corio
---@field version string "MAJOR.MINOR.PATCH"
---@field Error corio.Error
---@field stdin corio.Stream made on first use
---@field stdout corio.Stream made on first use
---@field stderr corio.Stream made on first use
---@field sync corio.sync loaded on first use
---@field net corio.net loaded on first use
---@field fs corio.fs loaded on first use
---@field process corio.process loaded on first use
---@field signal corio.signal loaded on first use
---@field executor corio.executor loaded on first use
local corio = {}

---Runs the loop until `fn(...)`, started as a task, finishes; returns its
---results or raises its error. For stock lua5.4 and C hosts.
---@param fn async fun(...): ...
---@param ... any
---@return any ...
function corio.run(fn, ...) end

---Schedules `fn(...)` as a new task.
---@param fn async fun(...): ...
---@param ... any
---@return corio.Task
function corio.spawn(fn, ...) end

---Suspends the running task for `s` seconds.
---@async
---@param s number
function corio.sleep(s) end

---Suspends the running task until the next loop turn.
---@async
function corio.yield() end

---The monotonic clock, in seconds.
---@return number
function corio.now() end

---The running task, or nil outside tasks.
---@return corio.Task?
function corio.current() end

---@return corio.Future
function corio.future() end

---@param fn fun(...)
---@param ... any
---@return corio.Handle
function corio.call_soon(fn, ...) end

---@param s number seconds from now
---@param fn fun(...)
---@param ... any
---@return corio.Handle
function corio.call_later(s, fn, ...) end

---@param t number a time on the `corio.now()` clock
---@param fn fun(...)
---@param ... any
---@return corio.Handle
function corio.call_at(t, fn, ...) end

---Installs the hook for errors nobody else sees; nil restores the default.
---@param fn? fun(err: any, info: corio.ErrorInfo)
---@return fun(err: any, info: corio.ErrorInfo)? previous
function corio.set_error_handler(fn) end

---@param v any
---@return boolean
function corio.is_cancelled(v) end

---@param v any
---@return boolean
function corio.is_timeout(v) end

---A task-local variable.
---@param default? any
---@return corio.ContextVar
function corio.context(default) end

---Awaits every awaitable; returns their first results (`n` = count). The
---first error cancels the others and is raised once they have finished.
---@async
---@param ... corio.Awaitable|corio.Awaitable[]|corio.GatherOptions
---@return { n: integer, [integer]: any }
function corio.gather(...) end

---Waits until `return_when` holds or `timeout` passes.
---@async
---@param list corio.Awaitable[]
---@param opts? corio.WaitOptions
---@return corio.Future[] done
---@return corio.Future[] pending
function corio.wait(list, opts) end

---Awaits `aw` for at most `s` seconds (nil: no limit); past it cancels,
---awaits and raises TIMEOUT.
---@async
---@param aw corio.Awaitable
---@param s number?
---@return any ...
function corio.wait_for(aw, s) end

---With `fn`: runs it in the current task under a deadline and returns its
---results. Without: returns a scope for a `<close>` variable.
---@async
---@param s number?
---@param fn? async fun(...): ...
---@param ... any
---@return any ...
---@overload fun(s: number?): corio.TimeoutScope
function corio.timeout(s, fn, ...) end

---Awaits `aw`; cancelling the caller does not cancel it.
---@async
---@param aw corio.Awaitable
---@return any ...
function corio.shield(aw) end

---Iterates over the awaitables in the order they finish (done futures).
---@param list corio.Awaitable[]
---@param opts? { timeout?: number }
---@return fun(): corio.Future?
function corio.as_completed(list, opts) end

---A TaskGroup for a `<close>` variable.
---@return corio.TaskGroup
function corio.group() end

---Runs `fn(...)` on the default thread pool; returns everything it returns.
---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function corio.to_thread(fn, ...) end

return corio
