---@meta corio.sync
-- LuaLS definitions of `require "corio.sync"` (docs/API-composition.md).

---A FIFO lock; `local _ <close> = lock:acquire()` releases at scope exit.
---@class corio.Lock
local Lock = {}

---@async
---@return corio.Lock self
function Lock:acquire() end

---Releases it; INVALID_STATE when it is not locked.
function Lock:release() end

---@return boolean
function Lock:locked() end

---@return integer waiters
function Lock:waiting() end

---Calls `fn(...)` holding the lock (released on error and cancellation).
---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function Lock:with(fn, ...) end

---A counting semaphore (also BoundedSemaphore).
---@class corio.Semaphore
local Semaphore = {}

---@async
---@return corio.Semaphore self
function Semaphore:acquire() end

function Semaphore:release() end

---@return boolean locked no permit free
function Semaphore:locked() end

---@return integer free permits
function Semaphore:value() end

---@return integer waiters
function Semaphore:waiting() end

---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function Semaphore:with(fn, ...) end

---@class corio.Event
local Event = {}

---Wakes every waiter.
function Event:set() end

function Event:clear() end

---@return boolean
function Event:is_set() end

---@async
---@return true
function Event:wait() end

---A condition variable over a Lock.
---@class corio.Condition
local Condition = {}

---@async
---@return corio.Lock
function Condition:acquire() end

function Condition:release() end

---@return boolean
function Condition:locked() end

---@async
---@param fn fun(...): ...
---@param ... any
---@return any ...
function Condition:with(fn, ...) end

---Releases the lock, waits for a notification, takes the lock back.
---@async
function Condition:wait() end

---Waits until `pred()` is true; returns its value.
---@async
---@param pred fun(): any
---@return any
function Condition:wait_for(pred) end

---@param n? integer default 1
---@return integer woken
function Condition:notify(n) end

---@return integer woken
function Condition:notify_all() end

---A cyclic barrier for `n` tasks.
---@class corio.Barrier
local Barrier = {}

---Waits until `n` tasks wait; returns this one's arrival index (0 .. n-1).
---@async
---@return integer
function Barrier:wait() end

---Breaks the barrier: waiters and later waits raise INVALID_STATE.
function Barrier:abort() end

---Breaks only the current round.
function Barrier:reset() end

---@return integer
function Barrier:parties() end

---@return integer
function Barrier:n_waiting() end

---@return boolean
function Barrier:broken() end

---A FIFO, LIFO or priority queue; `#q` is its size.
---@class corio.Queue
local Queue = {}

---Adds an item, waiting while the queue is full (PriorityQueue: with a priority).
---@async
---@param item any
---@param priority? any
function Queue:put(item, priority) end

---Removes the next item, waiting while the queue is empty
---(PriorityQueue: item, priority).
---@async
---@return any item
---@return any priority
function Queue:get() end

---put without waiting: QUEUE_FULL when full.
---@param item any
---@param priority? any
function Queue:put_nowait(item, priority) end

---get without waiting: QUEUE_EMPTY when empty.
---@return any item
---@return any priority
function Queue:get_nowait() end

---@return integer
function Queue:qsize() end

---@return boolean
function Queue:empty() end

---@return boolean
function Queue:full() end

---@return integer 0: unbounded
function Queue:maxsize() end

---@return boolean
function Queue:closed() end

---One item fetched earlier is processed.
function Queue:task_done() end

---Waits until every item put was marked done.
---@async
function Queue:join() end

---No more puts; `immediate` drops the items left.
---@param immediate? boolean
function Queue:close(immediate) end

---@class corio.sync
local sync = {}

---@return corio.Lock
function sync.Lock() end

---@param n? integer default 1
---@return corio.Semaphore
function sync.Semaphore(n) end

---@param n? integer default 1
---@return corio.Semaphore
function sync.BoundedSemaphore(n) end

---@return corio.Event
function sync.Event() end

---@param lock? corio.Lock a new Lock by default
---@return corio.Condition
function sync.Condition(lock) end

---@param n integer
---@return corio.Barrier
function sync.Barrier(n) end

---@param maxsize? integer nil or 0: unbounded
---@return corio.Queue
function sync.Queue(maxsize) end

---@param maxsize? integer
---@return corio.Queue
function sync.LifoQueue(maxsize) end

---@param maxsize? integer
---@return corio.Queue
function sync.PriorityQueue(maxsize) end

return sync
