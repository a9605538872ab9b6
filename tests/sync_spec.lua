-- corio.sync: Lock, Semaphore, BoundedSemaphore, Event, Condition,
-- Barrier, Queue, LifoQueue, PriorityQueue.
local corio = require "corio"
local sync = require "corio.sync"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers/sync_helpers.lua")

describe("corio.sync Lock", function()
  it("acquire and release change locked()", function()
    local lock = sync.Lock()
    assert.is_false(lock:locked())
    assert.are.equal(lock, lock:acquire())
    assert.is_true(lock:locked())
    lock:release()
    assert.is_false(lock:locked())
  end)

  it("a <close> variable on acquire() releases at scope exit", function()
    local lock = sync.Lock()
    do
      local _ <close> = lock:acquire()
      assert.is_true(lock:locked())
    end
    assert.is_false(lock:locked())
    pcall(function()
      local _ <close> = lock:acquire()
      error("boom")
    end)
    assert.is_false(lock:locked())
  end)

  it("with(fn, ...) returns fn's results and releases on error", function()
    local lock = sync.Lock()
    local a, b = lock:with(function(x, y) return x + 1, y end, 1, "y")
    assert.are.same({ 2, "y" }, { a, b })
    assert.is_false(lock:locked())
    local e = H.err(lock.with, lock, function() error("inside", 0) end)
    assert.are.equal("inside", e)
    assert.is_false(lock:locked())
    H.message("bad argument #1 to 'with'", lock.with, lock, 42)
  end)

  it("serves waiters FIFO", function()
    local lock = sync.Lock()
    local order = {}
    lock:acquire()
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = corio.spawn(function()
        lock:with(function() order[#order + 1] = i end)
      end)
    end
    H.turns()
    assert.are.equal(5, lock:waiting())
    lock:release()
    for i = 1, 5 do tasks[i]:await() end
    assert.are.same({ 1, 2, 3, 4, 5 }, order)
    assert.is_false(lock:locked())
  end)

  it("a newcomer cannot barge ahead of a woken waiter", function()
    local lock = sync.Lock()
    lock:acquire()
    local got = {}
    local w = corio.spawn(function() lock:acquire(); got[#got + 1] = "w"
      lock:release() end)
    H.turns()
    lock:release()                      -- handed to w, which has not run
    assert.is_true(lock:locked())
    local n = corio.spawn(function() lock:acquire(); got[#got + 1] = "n"
      lock:release() end)
    w:await()
    n:await()
    assert.are.same({ "w", "n" }, got)
  end)

  it("release of an unlocked Lock raises INVALID_STATE", function()
    local lock = sync.Lock()
    H.code("INVALID_STATE", lock.release, lock)
  end)

  it("a cancelled waiter never swallows the hand-off", function()
    local lock = sync.Lock()
    lock:acquire()
    local a = corio.spawn(function() lock:acquire() end)
    local b = corio.spawn(function() lock:acquire(); return "b got it" end)
    H.turns()
    a:cancel()
    H.cancelled(a)
    assert.are.equal(1, lock:waiting())
    lock:release()
    assert.are.equal("b got it", b:await())
    assert.is_true(lock:locked())       -- b holds it
    lock:release()
  end)

  it("a waiter cancelled after the hand-off still gets the lock", function()
    local lock = sync.Lock()
    lock:acquire()
    local held
    local a = corio.spawn(function()
      lock:with(function()
        held = lock:locked()
        corio.yield()                   -- the pending CANCELLED lands here
      end)
    end)
    H.turns()
    lock:release()                      -- handed to a ...
    a:cancel()                          -- ... then cancelled, same turn
    H.cancelled(a)
    assert.is_true(held)
    assert.is_false(lock:locked())      -- with() released it
  end)

  it("acquire outside a task raises when it would wait", function()
    local lock = sync.Lock()
    local ok = H.outside(lock.acquire, lock)
    assert.is_true(ok)                  -- free: no wait needed
    local ok2, e = H.outside(lock.acquire, lock)
    assert.is_false(ok2)
    assert.are.equal("INVALID_STATE", e.code)
    lock:release()
  end)

  it("rejects a wrong self", function()
    local lock = sync.Lock()
    H.message("bad argument #1 to 'acquire' (corio.Lock expected, got number)",
      function() lock.acquire(42) end)
    H.message("corio.Lock expected", function()
      lock.release(sync.Semaphore()) end)
    assert.matches("^corio.Lock %(unlocked", tostring(lock))
    -- with is Lua: it checks self too
    H.message("bad argument #1 to 'with' (corio.Lock expected, got nil)",
      lock.with, nil, function() end)
    H.message("bad argument #1 to 'with' (corio.Lock expected, got " ..
      "corio.Semaphore)", lock.with, sync.Semaphore(), function() end)
  end)
end)


describe("corio.sync Semaphore", function()
  it("counts permits and blocks at zero", function()
    local s = sync.Semaphore(2)
    s:acquire()
    s:acquire()
    assert.are.equal(0, s:value())
    assert.is_true(s:locked())
    local t = corio.spawn(function() s:acquire(); return "in" end)
    H.turns()
    assert.is_false(t:done())
    s:release()
    assert.are.equal("in", t:await())
    assert.are.equal(0, s:value())
    s:release()
    s:release()
    assert.are.equal(2, s:value())
  end)

  it("a plain Semaphore may go above its start value", function()
    local s = sync.Semaphore(0)
    s:release()
    s:release()
    assert.are.equal(2, s:value())
  end)

  it("over-releasing a BoundedSemaphore raises INVALID_STATE", function()
    local s = sync.BoundedSemaphore(1)
    s:acquire()
    s:release()
    local e = H.code("INVALID_STATE", s.release, s)
    assert.matches("too many times", e.message)
    assert.are.equal(1, s:value())
  end)

  it("with() holds one permit around the call", function()
    local s = sync.Semaphore(3)
    assert.are.equal(2, s:with(function() return s:value() end))
    assert.are.equal(3, s:value())
  end)

  it("limits concurrency with FIFO hand-off", function()
    local s = sync.Semaphore(3)
    local inside, peak, order = 0, 0, {}
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = corio.spawn(function()
        s:with(function()
          order[#order + 1] = i
          inside = inside + 1
          peak = math.max(peak, inside)
          corio.yield()
          inside = inside - 1
        end)
      end)
    end
    for i = 1, 20 do tasks[i]:await() end
    assert.are.equal(3, peak)
    for i = 1, 20 do assert.are.equal(i, order[i]) end
    assert.are.equal(3, s:value())
  end)

  it("rejects bad start values", function()
    H.message("bad argument #1 to 'Semaphore'", function()
      sync.Semaphore(-1) end)
    H.message("bad argument #1 to 'Semaphore'", function()
      sync.Semaphore("x") end)
    H.message("bad argument #1 to 'BoundedSemaphore'", function()
      sync.BoundedSemaphore(1.5) end)
    H.message("corio.Semaphore expected", function()
      sync.Semaphore().acquire(sync.Lock()) end)
    for _, s in ipairs({ sync.Semaphore(), sync.BoundedSemaphore() }) do
      H.message("bad argument #1 to 'with' (corio.Semaphore expected, " ..
        "got nil)", s.with, nil, function() end)
      H.message("(corio.Semaphore expected, got table)", s.with, {}, print)
      assert.are.equal("in", s:with(function() return "in" end))
    end
  end)
end)


describe("corio.sync Event", function()
  it("wait returns at once while set; set wakes every waiter", function()
    local ev = sync.Event()
    assert.is_false(ev:is_set())
    local n = 0
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = corio.spawn(function() assert(ev:wait()); n = n + 1 end)
    end
    H.turns()
    assert.are.equal(0, n)
    ev:set()
    for i = 1, 3 do tasks[i]:await() end
    assert.are.equal(3, n)
    assert.is_true(ev:wait())
    ev:clear()
    assert.is_false(ev:is_set())
  end)

  it("a cancelled waiter leaves the others waiting", function()
    local ev = sync.Event()
    local a = corio.spawn(function() ev:wait() end)
    local b = corio.spawn(function() return ev:wait() end)
    H.turns()
    a:cancel()
    H.cancelled(a)
    ev:set()
    assert.is_true(b:await())
  end)

  it("rejects a wrong self", function()
    H.message("bad argument #1 to 'wait' (corio.Event expected, got table)",
      sync.Event().wait, {})
    H.message("bad argument #1 to '__tostring' (corio.Event expected",
      sync.Event().__tostring)
    H.message("bad argument #1 to '__tostring' (corio.Condition expected",
      sync.Condition().__tostring, {})
    H.message("bad argument #1 to '__tostring' (corio.Barrier expected",
      sync.Barrier(2).__tostring, 5)
  end)
end)


describe("corio.sync Condition", function()
  it("wait and notify need the lock", function()
    local c = sync.Condition()
    H.code("INVALID_STATE", c.wait, c)
    H.code("INVALID_STATE", c.notify, c)
    H.code("INVALID_STATE", c.notify_all, c)
    H.message("bad argument #1 to 'Condition' (corio.Lock expected",
      sync.Condition, 42)
  end)

  it("notify(n) wakes n waiters FIFO; notify_all the rest", function()
    local c = sync.Condition()
    local order = {}
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = corio.spawn(function()
        c:with(function()
          c:wait()
          order[#order + 1] = i
        end)
      end)
    end
    H.turns()
    c:with(function() assert.are.equal(2, c:notify(2)) end)
    tasks[1]:await()
    tasks[2]:await()
    assert.are.same({ 1, 2 }, order)
    c:with(function() assert.are.equal(2, c:notify_all()) end)
    tasks[3]:await()
    tasks[4]:await()
    assert.are.same({ 1, 2, 3, 4 }, order)
  end)

  it("wait_for(pred) waits until pred() is true", function()
    local lock = sync.Lock()
    local c = sync.Condition(lock)
    local value = 0
    local t = corio.spawn(function()
      return c:with(function()
        return c:wait_for(function() return value >= 3 and value end)
      end)
    end)
    for _ = 1, 3 do
      H.turns(1)
      c:with(function() value = value + 1; c:notify_all() end)
    end
    assert.are.equal(3, t:await())
    H.message("bad argument #1 to 'wait_for'", c.wait_for, c, 5)
  end)

  it("a cancelled wait takes the lock back before raising", function()
    local c = sync.Condition()
    local held
    local t = corio.spawn(function()
      c:acquire()
      local ok, e = pcall(c.wait, c)
      held = c:locked()
      c:release()
      error(e, 0)
    end)
    H.turns()
    c:acquire()                         -- t waits; we hold the lock
    t:cancel()
    H.turns()
    c:release()                         -- now t can take it back
    H.cancelled(t)
    assert.is_true(held)
    assert.is_false(c:locked())
  end)

  it("a notified waiter cancelled before it runs passes the notify on",
    function()
    local c = sync.Condition()
    local a = corio.spawn(function()
      c:with(function() c:wait() end)
    end)
    local b = corio.spawn(function()
      return c:with(function() c:wait(); return "b notified" end)
    end)
    H.turns()
    c:acquire()
    c:notify(1)                         -- meant for a ...
    a:cancel()                          -- ... which is cancelled now,
    H.turns()                           -- while it takes the lock back
    c:release()
    H.cancelled(a)
    assert.are.equal("b notified", b:await())
  end)
end)


describe("corio.sync Barrier", function()
  it("releases all parties together with their arrival index", function()
    local b = sync.Barrier(3)
    local tasks = {}
    for i = 1, 3 do tasks[i] = corio.spawn(function() return b:wait() end) end
    local got = {}
    for i = 1, 3 do got[#got + 1] = tasks[i]:await() end
    table.sort(got)
    assert.are.same({ 0, 1, 2 }, got)
    assert.are.equal(0, b:n_waiting())
    assert.are.equal(3, b:parties())
  end)

  it("is cyclic", function()
    local b = sync.Barrier(2)
    local rounds = 0
    local t = corio.spawn(function()
      for _ = 1, 5 do b:wait(); rounds = rounds + 1 end
    end)
    for _ = 1, 5 do b:wait() end
    t:await()
    assert.are.equal(5, rounds)
  end)

  it("a waiter cancelled before the round completes leaves it", function()
    local b = sync.Barrier(2)
    local a = corio.spawn(function() b:wait() end)
    H.turns()
    assert.are.equal(1, b:n_waiting())
    a:cancel()
    H.cancelled(a)
    assert.are.equal(0, b:n_waiting())
    local c = corio.spawn(function() return b:wait() end)
    assert.are.equal(0, b:wait())
    assert.are.equal(1, c:await())
  end)

  it("abort breaks it; reset breaks only the current round", function()
    local b = sync.Barrier(3)
    local a = corio.spawn(function() return b:wait() end)
    H.turns()
    b:reset()
    local e = H.code("INVALID_STATE", a.await, a)
    assert.matches("broken", e.message)
    assert.is_false(b:broken())
    local c = corio.spawn(function() return b:wait() end)
    H.turns()
    b:abort()
    H.code("INVALID_STATE", c.await, c)
    assert.is_true(b:broken())
    H.code("INVALID_STATE", b.wait, b)
  end)

  it("rejects bad party counts", function()
    H.message("bad argument #1 to 'Barrier'", sync.Barrier, 0)
    H.message("bad argument #1 to 'Barrier'", sync.Barrier, "3")
  end)
end)


describe("corio.sync Queue", function()
  it("is FIFO and reports its size", function()
    local q = sync.Queue()
    assert.are.equal(0, q:maxsize())
    for i = 1, 10 do q:put(i) end
    assert.are.equal(10, q:qsize())
    assert.are.equal(10, #q)
    assert.is_false(q:full())
    for i = 1, 10 do assert.are.equal(i, q:get()) end
    assert.is_true(q:empty())
  end)

  it("grows its ring while wrapped", function()
    local q = sync.Queue()
    local nextin, nextout = 1, 1
    for round = 1, 50 do
      for _ = 1, round do q:put(nextin); nextin = nextin + 1 end
      for _ = 1, round // 2 do
        assert.are.equal(nextout, q:get())
        nextout = nextout + 1
      end
    end
    while not q:empty() do
      assert.are.equal(nextout, q:get())
      nextout = nextout + 1
    end
    assert.are.equal(nextin, nextout)
  end)

  it("carries nil items", function()
    local q = sync.Queue(2)
    q:put(nil)
    q:put(false)
    assert.are.equal(2, q:qsize())
    assert.is_nil(q:get())
    assert.is_false(q:get())
  end)

  it("put waits while full, get while empty", function()
    local q = sync.Queue(1)
    q:put("a")
    assert.is_true(q:full())
    local p = corio.spawn(function() q:put("b"); return "put done" end)
    H.turns()
    assert.is_false(p:done())
    assert.are.equal("a", q:get())
    assert.are.equal(1, q:qsize())      -- b moved in at once
    assert.are.equal("put done", p:await())
    assert.are.equal("b", q:get())
    local g = corio.spawn(function() return q:get() end)
    H.turns()
    assert.is_false(g:done())
    q:put("c")
    assert.are.equal("c", g:await())
    assert.is_true(q:empty())
  end)

  it("nowait variants raise QUEUE_FULL and QUEUE_EMPTY", function()
    local q = sync.Queue(1)
    H.code("QUEUE_EMPTY", q.get_nowait, q)
    q:put_nowait(1)
    H.code("QUEUE_FULL", q.put_nowait, q, 2)
    assert.are.equal(1, q:get_nowait())
  end)

  it("task_done and join", function()
    local q = sync.Queue()
    q:join()                            -- nothing unfinished
    q:put(1)
    q:put(2)
    local joined = false
    local j = corio.spawn(function() q:join(); joined = true end)
    q:get()
    q:task_done()
    H.turns()
    assert.is_false(joined)
    q:get()
    q:task_done()
    j:await()
    assert.is_true(joined)
    H.code("INVALID_STATE", q.task_done, q)
  end)

  it("close: getters drain, then CLOSED; putters get CLOSED", function()
    local q = sync.Queue(2)
    q:put(1)
    q:put(2)
    local p = corio.spawn(function() q:put(3) end)
    H.turns()
    q:close()
    assert.is_true(q:closed())
    H.code("CLOSED", p.await, p)
    H.code("CLOSED", q.put, q, 4)
    H.code("CLOSED", q.put_nowait, q, 4)
    assert.are.equal(1, q:get())
    assert.are.equal(2, q:get_nowait())
    H.code("CLOSED", q.get, q)
    H.code("CLOSED", q.get_nowait, q)
    q:close()                           -- idempotent
  end)

  it("close wakes every waiting getter", function()
    local q = sync.Queue()
    local tasks = {}
    for i = 1, 5 do tasks[i] = corio.spawn(function() return q:get() end) end
    H.turns()
    q:close()
    for i = 1, 5 do H.code("CLOSED", tasks[i].await, tasks[i]) end
  end)

  it("close(true) drops the items and releases join", function()
    local q = sync.Queue()
    q:put(1)
    q:put(2)
    local j = corio.spawn(function() q:join(); return "joined" end)
    H.turns()
    q:close(true)
    assert.are.equal(0, q:qsize())
    assert.are.equal("joined", j:await())
    H.code("CLOSED", q.get, q)
  end)

  it("a getter cancelled while waiting takes nothing", function()
    local q = sync.Queue()
    local a = corio.spawn(function() return q:get() end)
    local b = corio.spawn(function() return q:get() end)
    H.turns()
    a:cancel()
    H.cancelled(a)
    q:put("x")
    assert.are.equal("x", b:await())
    q:put("y")
    assert.are.equal(1, q:qsize())
    assert.are.equal("y", q:get())
  end)

  it("a getter handed an item and cancelled the same turn keeps it",
    function()
    local q = sync.Queue()
    local got
    local a = corio.spawn(function() got = q:get(); corio.yield() end)
    H.turns()
    q:put("item")                       -- handed to a ...
    a:cancel()                          -- ... which is cancelled now
    H.cancelled(a)
    assert.are.equal("item", got)
    assert.is_true(q:empty())
  end)

  it("a putter cancelled while waiting puts nothing", function()
    local q = sync.Queue(1)
    q:put(1)
    local p = corio.spawn(function() q:put(2) end)
    H.turns()
    p:cancel()
    H.cancelled(p)
    assert.are.equal(1, q:get())
    assert.is_true(q:empty())
  end)

  it("a putter whose item was taken and is cancelled puts it once",
    function()
    local q = sync.Queue(1)
    q:put(1)
    local returned = false
    local p = corio.spawn(function() q:put(2); returned = true
      corio.yield() end)
    H.turns()
    assert.are.equal(1, q:get())        -- 2 moves in, p is woken ...
    p:cancel()                          -- ... and cancelled, same turn
    H.cancelled(p)
    assert.is_true(returned)
    assert.are.equal(2, q:get())
    assert.is_true(q:empty())
  end)

  it("100 producers and 100 consumers deliver every item once", function()
    local q = sync.Queue(3)
    local seen, count = {}, 0
    local producers, consumers = {}, {}
    for p = 1, 100 do
      producers[p] = corio.spawn(function()
        for i = 1, 50 do
          q:put(p * 1000 + i)
          if i % 7 == 0 then corio.yield() end
        end
      end)
    end
    for c = 1, 100 do
      consumers[c] = corio.spawn(function()
        while true do
          local ok, v = pcall(q.get, q)
          if not ok then return end     -- CLOSED
          assert(not seen[v], "duplicate item")
          seen[v] = true
          count = count + 1
          if v % 5 == 0 then corio.yield() end
        end
      end)
    end
    for p = 1, 100 do producers[p]:await() end
    q:close()
    for c = 1, 100 do consumers[c]:await() end
    assert.are.equal(5000, count)
  end)

  it("keeps items exactly-once when waiters are cancelled under load",
    function()
    local q = sync.Queue(2)
    local seen, count, produced = {}, 0, 0
    local rng = 12345
    local function rand(n)
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n
    end
    local function consumer()
      while true do
        local v = q:get()
        assert(not seen[v], "duplicate item")
        seen[v] = true
        count = count + 1
        if rand(3) == 0 then corio.yield() end
      end
    end
    local consumers = {}
    for c = 1, 20 do consumers[c] = corio.spawn(consumer) end
    local producers = {}
    for p = 1, 20 do
      producers[p] = corio.spawn(function()
        for i = 1, 100 do
          local item = p * 1000 + i
          local ok = pcall(q.put, q, item)
          if ok then produced = produced + 1 end
          if rand(4) == 0 then corio.yield() end
        end
      end)
    end
    -- cancel random waiters (consumers and producers) while it runs
    for _ = 1, 60 do
      corio.yield()
      local c = rand(20) + 1
      consumers[c]:cancel()
      local t = consumers[c]
      consumers[c] = corio.spawn(consumer)
      pcall(t.await, t)
      if rand(3) == 0 then producers[rand(20) + 1]:cancel() end
    end
    for p = 1, 20 do pcall(producers[p].await, producers[p]) end
    while not q:empty() do H.turns(1) end
    H.turns()
    for c = 1, 20 do consumers[c]:cancel() end
    for c = 1, 20 do pcall(consumers[c].await, consumers[c]) end
    assert.are.equal(produced, count)
  end)

  it("rejects bad arguments", function()
    H.message("bad argument #1 to 'Queue'", function() sync.Queue(-1) end)
    H.message("bad argument #1 to 'Queue'", function() sync.Queue("x") end)
    H.message("bad argument #1 to 'put' (value expected)", function()
      sync.Queue():put() end)
    H.message("corio.Queue expected", function()
      sync.Queue().get(sync.Lock()) end)
    assert.matches("^corio.Queue %(0 items, maxsize 3",
      tostring(sync.Queue(3)))
  end)
end)


describe("corio.sync LifoQueue and PriorityQueue", function()
  it("LifoQueue is last in, first out", function()
    local q = sync.LifoQueue(3)
    for i = 1, 3 do q:put(i) end
    local p = corio.spawn(function() q:put(4) end)
    H.turns()
    assert.are.equal(3, q:get())        -- then 4 goes on top
    p:await()
    assert.are.same({ 4, 2, 1 }, { q:get(), q:get(), q:get() })
  end)

  it("PriorityQueue: lowest first, FIFO among equals", function()
    local q = sync.PriorityQueue()
    q:put("c", 3)
    q:put("a1", 1)
    q:put("b", 2)
    q:put("a2", 1)
    q:put(5)                            -- priority: the item itself
    local out = {}
    while not q:empty() do
      local item, prio = q:get()
      out[#out + 1] = tostring(item) .. "/" .. tostring(prio)
    end
    assert.are.same({ "a1/1", "a2/1", "b/2", "c/3", "5/5" }, out)
  end)

  it("PriorityQueue keeps heap order over many items", function()
    local q = sync.PriorityQueue()
    local x = 7
    local n = 2000
    for i = 1, n do
      x = (x * 1103515245 + 12345) % 2147483648
      q:put(i, x % 100)
    end
    local lastp, lasti = -1, 0
    for _ = 1, n do
      local i, p = q:get()
      assert(p > lastp or (p == lastp and i > lasti), "out of order")
      lastp, lasti = p, i
    end
  end)

  it("PriorityQueue hands items and priorities to waiters", function()
    local q = sync.PriorityQueue(1)
    local g = corio.spawn(function() return q:get() end)
    H.turns()
    q:put("x", 9)
    assert.are.same({ "x", 9 }, { g:await() })
    q:put("a", 5)
    local p = corio.spawn(function() q:put("b", 1) end)
    H.turns()
    assert.are.same({ "a", 5 }, { q:get() })
    p:await()
    assert.are.same({ "b", 1 }, { q:get() })
  end)

  it("PriorityQueue refuses priorities it cannot order", function()
    local q = sync.PriorityQueue()
    q:put("a", 1)
    local e = H.err(q.put, q, "b", "text")
    assert.matches("attempt to compare", tostring(e))
    assert.are.equal(1, q:qsize())
    H.message("bad argument #1 to 'put' (priority expected",
      function() q:put(nil) end)
    H.message("bad argument #2 to 'put' (priority is NaN)",
      function() q:put("x", 0 / 0) end)
    assert.are.same({ "a", 1 }, { q:get() })
  end)

  it("a waiting putter whose priority cannot be ordered gets the error",
    function()
    local q = sync.PriorityQueue(2)
    q:put("a", 1)
    q:put("b", 2)
    local p = corio.spawn(function() q:put("c", {}) end)
    H.turns()
    assert.are.same({ "a", 1 }, { q:get() })
    local e = H.err(p.await, p)
    assert.matches("attempt to compare", tostring(e))
    assert.are.equal(1, q:qsize())
  end)
end)
