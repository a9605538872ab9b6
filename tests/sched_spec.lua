-- The scheduler: run order, same-turn wakes, the per-turn budget,
-- anchoring, the low-level wait/wake protocol and scale.
local corio = require "corio"
local core = require "corio.core"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("the scheduler", function()
  it("runs tasks woken by in-loop events in the same turn, before yielders",
     function()
    local log = {}
    local f = corio.future()
    local waiter = corio.spawn(function()
      f:await()
      log[#log + 1] = "woken"
    end)
    local yielder = corio.spawn(function()
      corio.yield()                 -- parked until the next turn
      log[#log + 1] = "yielder"
    end)
    corio.spawn(function() f:set_result() end)
    waiter:await(); yielder:await()
    assert.same({ "woken", "yielder" }, log)
  end)

  it("runs ready tasks and callbacks in FIFO order", function()
    local log = {}
    local done = corio.future()
    corio.spawn(function() log[#log + 1] = "task1" end)
    corio.call_soon(function() log[#log + 1] = "cb1" end)
    corio.spawn(function() log[#log + 1] = "task2" end)
    corio.call_soon(function() log[#log + 1] = "cb2"; done:set_result() end)
    done:await()
    assert.same({ "task1", "cb1", "task2", "cb2" }, log)
  end)

  it("an endless chain of same-turn wakes does not starve timers", function()
    -- Two tasks ping-pong through futures: every wake is an in-loop event
    -- that runs in the same turn, so only the per-turn budget lets the
    -- timer fire.
    local stop = false
    corio.call_later(0.02, function() stop = true end)
    local nextreq = corio.future()
    local echo = corio.spawn(function(req)
      while true do
        local msg = req:await()
        if not msg then return end
        req = msg.next
        msg.reply:set_result()
      end
    end, nextreq)
    local rounds = 0
    local t0 = corio.now()
    while not stop and corio.now() - t0 < 10 do
      local req, reply = nextreq, corio.future()
      nextreq = corio.future()
      req:set_result({ next = nextreq, reply = reply })
      reply:await()
      rounds = rounds + 1
    end
    nextreq:set_result(false)
    echo:await()
    assert.is_true(stop)
    assert.is_true(rounds > 100)
  end)

  it("a chain of spawns does not starve timers", function()
    local stop = false
    corio.call_later(0.02, function() stop = true end)
    local count = 0
    local done = corio.future()
    local function step()
      count = count + 1
      if stop then done:set_result(count) else corio.spawn(step) end
    end
    corio.spawn(step)
    assert.is_true(done:await() > 1)
  end)

  it("keeps a running task alive though nothing refers to it", function()
    local done = corio.future()
    local weak = setmetatable({}, { __mode = "v" })
    weak[1] = corio.spawn(function()
      corio.sleep(0.02)
      done:set_result("finished")
    end)
    collectgarbage(); collectgarbage()
    assert.is_not_nil(weak[1])
    assert.equal("finished", done:await())
  end)

  it("keeps the coroutine of a task suspended in its first step", function()
    -- Such a coroutine is anchored only by its task once the step ends;
    -- a collection in between must leave every task able to resume.
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = corio.spawn(function(x)
        local t = { x }                       -- lives on the coroutine
        corio.sleep(0.01)
        corio.yield()
        return t[1] * 2
      end, i)
    end
    corio.yield()                             -- all started and suspended
    collectgarbage(); collectgarbage()
    local sum = 0
    for i = 1, 1000 do sum = sum + tasks[i]:await() end
    assert.equal(1000 * 1001, sum)
  end)

  it("reuses the coroutines of finished tasks, clean", function()
    -- A finished body leaves its coroutine to the next task: nothing of
    -- the last task (locals, stack, hook) may show through.
    local seen = {}
    for round = 1, 3 do
      local tasks = {}
      for i = 1, 300 do
        tasks[i] = corio.spawn(function(...)
          return select("#", ...), coroutine.running()
        end, round, nil)
      end
      for i = 1, 300 do
        local n, co = tasks[i]:await()
        assert.equal(2, n)
        seen[co] = true
      end
    end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct <= 300, distinct .. " coroutines for 900 tasks")
  end)

  it("a task woken by a timer and a future in one turn resumes once",
     function()
    local f = corio.future()
    local resumes = 0
    local t = corio.spawn(function()
      f:await()
      resumes = resumes + 1
      corio.sleep(0.05)
      resumes = resumes + 1
    end)
    corio.yield()
    f:set_result()
    pcall(f.set_result, f)       -- a second set is refused
    t:await()
    assert.equal(2, resumes)
  end)
end)

describe("an await across a C-call boundary", function()
  -- e.g. in a table.sort comparator: Lua cannot yield there.  The await
  -- must fail cleanly before arming anything, and the task go on sound.
  local f, sleeper
  before_each(function()
    f = corio.future()
    sleeper = corio.spawn(corio.sleep, 10)
  end)
  after_each(function()
    sleeper:cancel()
    pcall(sleeper.await, sleeper)
  end)
  local awaits = {
    sleep = function() corio.sleep(0.01) end,
    ["sleep(0)"] = function() corio.sleep(0) end,
    yield = function() corio.yield() end,
    future = function() f:await() end,
    task = function() sleeper:await() end,
    ["core.wait"] = function() core.waiter() core.wait() end,
  }
  local names = {}
  for name in pairs(awaits) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it("raises a clear error for " .. name .. " and the task goes on",
       function()
      local t = corio.spawn(function()
        local ok, err = pcall(table.sort, { 3, 2, 1 }, function(a, b)
          awaits[name]()
          return a < b
        end)
        local ok2, err2 = pcall(string.gsub, "ab", "%w", function(c)
          awaits[name]()
          return c
        end)
        corio.sleep(0.01)                   -- awaits still work after
        return ok, err, ok2, err2
      end)
      local ok, err, ok2, err2 = t:await()
      assert.is_false(ok)
      assert.is_false(ok2)
      S.is_error(err, "INVALID_STATE")
      S.is_error(err2, "INVALID_STATE")
      assert.matches("C%-call boundary", err.message)
      corio.sleep(0.03)                     -- no late wake may find it
      assert.equal(2, core.stats().tasks)   -- the runner and the sleeper
    end)
  end
end)

describe("deadlock detection", function()
  -- Test bodies run in the main task: when nothing is left that could
  -- wake it, the loop raises an error in it instead of hanging.
  it("raises INVALID_STATE in a main task that can never be woken", function()
    local ok, err = pcall(function() corio.future():await() end)
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    assert.matches("deadlock", err.message)
  end)

  it("raises each time, however many deadlocks the task survives", function()
    for _ = 1, 6 do
      local ok, err = pcall(function() corio.future():await() end)
      assert.is_false(ok)
      S.is_error(err, "INVALID_STATE")
    end
  end)

  it("covers a main task waiting on a task that waits forever", function()
    local inner = corio.spawn(function() corio.future():await() end)
    local ok, err = pcall(inner.await, inner)
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
    -- the inner task is still stuck; cancel it
    inner:cancel()
    S.is_error(S.raises(inner.await, inner), "CANCELLED")
  end)
end)

describe("core.waiter / core.wait / core.wake / core.throw", function()
  it("wake resumes the wait with every value", function()
    local task, token
    local t = corio.spawn(function()
      task, token = core.waiter()
      return table.pack(core.wait())
    end)
    corio.yield()
    assert.equal(t, task)
    assert.is_true(core.wake(task, token, 1, nil, 3))
    local r = t:await()
    assert.equal(3, r.n)
    assert.same({ 1, nil, 3 }, { r[1], r[2], r[3] })
  end)

  it("throw raises the value in the wait", function()
    local task, token
    local t = corio.spawn(function()
      task, token = core.waiter()
      return pcall(core.wait)
    end)
    corio.yield()
    local e = corio.Error("EXAMPLE", "thrown")
    assert.is_true(core.throw(task, token, e))
    local ok, err = t:await()
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("a second wake for the same wait is dropped", function()
    local task, token
    local t = corio.spawn(function()
      task, token = core.waiter()
      return core.wait()
    end)
    corio.yield()
    assert.is_true(core.wake(task, token, "first"))
    assert.is_false(core.wake(task, token, "second"))
    assert.is_false(core.throw(task, token, "third"))
    assert.equal("first", t:await())
  end)

  it("wake of a task that is not in core.wait is dropped", function()
    local task, token
    local t = corio.spawn(function()
      task, token = core.waiter()
      corio.sleep(0.02)            -- a different kind of wait
      return "slept"
    end)
    corio.yield()
    assert.is_false(core.wake(task, token, "no"))
    assert.equal("slept", t:await())
    assert.is_false(core.wake(task, token, "no"))
  end)

  it("wait raises clear errors outside a task", function()
    local out = corio.future()
    corio.call_soon(function()
      local ok1, e1 = pcall(core.waiter)
      local ok2, e2 = pcall(core.wait)
      out:set_result(ok1, e1, ok2, e2)
    end)
    local ok1, e1, ok2, e2 = out:await()
    assert.is_false(ok1)
    assert.is_false(ok2)
    S.is_error(e1, "INVALID_STATE")
    S.is_error(e2, "INVALID_STATE")
  end)

  it("wake and throw raise bad argument for wrong types", function()
    S.bad_argument(1, "wake", function() core.wake(1, 1) end)
    S.bad_argument(2, "wake", function() core.wake(corio.current(), "x") end)
    S.bad_argument(1, "throw", function() core.throw({}, 1, "e") end)
    S.bad_argument(3, "throw", function() core.throw(corio.current(), 1) end)
  end)

  it("stats() counts what is alive", function()
    local s = core.stats()
    assert.same({ tasks = 1, callbacks = 0, timers = 0, handles = 0 }, s)
    local t = corio.spawn(corio.sleep, 10)
    local h = corio.call_later(10, function() end)
    corio.yield()
    s = core.stats()
    assert.equal(2, s.tasks)
    assert.equal(1, s.callbacks)
    assert.equal(2, s.timers)
    t:cancel(); h:cancel()
    pcall(t.await, t)
  end)
end)

describe("a random mix of awaits, cancels and completions", function()
  -- Deterministic pseudo-random programs: tasks sleep, yield, await
  -- futures and each other, cancel each other and spawn more, while timer
  -- callbacks settle futures.  Nothing may crash, hang or stay alive.
  local function program(seed)
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local futures, tasks = {}, {}
    local function body(id)
      local c <close> = setmetatable({}, { __close = function()
        if rnd(3) == 1 then corio.yield() end
      end })
      for step = 1, rnd(8) do
        local k = rnd(7)
        local ok, err = pcall(function()
          if k == 1 then corio.sleep(rnd(5) / 1000)
          elseif k == 2 then corio.yield()
          elseif k == 3 then
            local f = futures[rnd(#futures)]
            if f then return f:await() end
          elseif k == 4 then
            local t = tasks[rnd(#tasks)]
            if t then return t:await() end
          elseif k == 5 then
            local t = tasks[rnd(#tasks)]
            if t then t:cancel("random") end
          elseif k == 6 then
            local f = corio.future()
            futures[#futures + 1] = f
            corio.call_later(rnd(10) / 1000, function()
              if f:done() then return end
              local r = rnd(3)
              if r == 1 then f:set_result(id, step)
              elseif r == 2 then f:set_error("e" .. id)
              else f:cancel() end
            end)
          else
            tasks[#tasks + 1] = corio.spawn(body, #tasks + 1)
          end
        end)
        if not ok and corio.is_cancelled(err) and rnd(2) == 1 then
          error(err, 0)
        end
      end
      return id
    end
    for i = 1, 40 do tasks[i] = corio.spawn(body, i) end
    local deadline = corio.now() + 20
    local all = false
    while not all and corio.now() < deadline do
      corio.sleep(0.005)
      all = true
      for _, t in ipairs(tasks) do if not t:done() then all = false end end
      for _, f in ipairs(futures) do
        if not f:done() and rnd(4) == 1 then f:set_result() end
      end
    end
    for _, f in ipairs(futures) do if not f:done() then f:cancel() end end
    for _, t in ipairs(tasks) do pcall(t.await, t) end
    for _, t in ipairs(tasks) do assert(t:done(), "a task did not finish") end
    return #tasks
  end

  for _, seed in ipairs { 1, 7, 42 } do
    it("leaves nothing behind (seed " .. seed .. ")", function()
      local n
      S.capture(function() n = program(seed) end)
      assert.is_true(n >= 40)
      corio.sleep(0.02)              -- let the last timer callbacks run
      assert.same({ tasks = 1, callbacks = 0, timers = 0, handles = 0 },
                  core.stats())
    end)
  end
end)

describe("at scale", function()
  it("100,000 tasks cancelled mid-sleep leave no live handle or task",
     function()
    local N = 100000
    collectgarbage(); collectgarbage()
    local before = collectgarbage("count")
    local tasks = {}
    local seed = 12345
    local cleaned = 0
    for i = 1, N do
      seed = (seed * 1103515245 + 12345) % 2147483648
      local d = 100 + seed % 1000
      -- (The tasks catch the CANCELLED error: one that escapes costs a
      -- traceback, which is slow with busted's modules loaded.)
      tasks[i] = corio.spawn(function()
        local ok, err = pcall(corio.sleep, d)
        if not ok and corio.is_cancelled(err) then cleaned = cleaned + 1 end
      end)
    end
    corio.yield()
    local s = core.stats()
    assert.equal(N + 1, s.tasks)
    assert.equal(N, s.timers)
    local taken = 0
    for i = 1, N do
      if tasks[i]:cancel() then taken = taken + 1 end
    end
    assert.equal(N, taken)
    for i = 1, N do tasks[i]:await() end
    assert.equal(N, cleaned)
    s = core.stats()
    assert.same({ tasks = 1, callbacks = 0, timers = 0, handles = 0 }, s)
    tasks = nil
    collectgarbage(); collectgarbage()
    -- what is left is bookkeeping that is reused, not per-task memory
    local grown = collectgarbage("count") - before
    assert.is_true(grown < 16 * 1024, "grew by " .. grown .. " KiB")
  end)

  it("shutdown unwinds tasks held in every anchor chunk", function()
    -- Anchor slots come in chunks of 65,536: 70,000 sleepers fill two.
    -- The main task fails; shutdown cancels every task, and each one's
    -- cleanup runs.
    local r = S.run([[
      local corio = require "corio"
      local N, unwound = 70000, 0
      for i = 1, N do
        corio.spawn(function()
          local _ <close> = setmetatable({}, { __close = function()
            unwound = unwound + 1
            if unwound == N then io.stdout:write("unwound ", N, "\n") end
          end })
          corio.sleep(3600)
        end)
      end
      corio.yield()
      error("boom")
    ]], { timeout = 60 })
    assert.equal(1, r.code, r.err)
    assert.matches("boom", r.err)
    assert.equal("unwound 70000\n", r.out)
  end)

  it("2,000 tasks cancelled mid-sleep end cancelled and leave nothing",
     function()
    local tasks = {}
    for i = 1, 2000 do tasks[i] = corio.spawn(corio.sleep, 100 + i) end
    corio.yield()
    for i = 2000, 1, -1 do tasks[i]:cancel() end
    local cancelled = 0
    for i = 1, 2000 do
      local ok, err = pcall(tasks[i].await, tasks[i])
      if not ok and corio.is_cancelled(err) then cancelled = cancelled + 1 end
    end
    assert.equal(2000, cancelled)
    assert.same({ tasks = 1, callbacks = 0, timers = 0, handles = 0 },
                core.stats())
  end)

  it("10,000 tasks pass their results through await", function()
    local tasks = {}
    for i = 1, 10000 do
      tasks[i] = corio.spawn(function(x)
        if x % 2 == 0 then corio.yield() end
        return x, x * 2
      end, i)
    end
    local sum = 0
    for i = 1, 10000 do
      local a, b = tasks[i]:await()
      sum = sum + a + b
    end
    assert.equal(3 * 10000 * 10001 / 2, sum)
  end)

  it("running out of memory fails tasks with ENOMEM instead of aborting", function()
    -- Tasks are spawned until memory runs out; those that cannot get a
    -- coroutine fail at once with one shared ENOMEM error (no emergency
    -- collection per task), the script goes on, and the exit code is 1.
    if S.sanitized() then return end        -- ulimit -v is not for ASan
    local r = S.run([[
      local corio = require "corio"
      local tasks = {}
      local ok = pcall(function()
        for i = 1, 1e8 do tasks[i] = corio.spawn(corio.sleep, 5) end
      end)
      corio.yield()
      local nomem = 0
      for _, t in ipairs(tasks) do
        local got, e = pcall(t.result, t)
        if not got and e.code == "ENOMEM" then nomem = nomem + 1 end
      end
      for _, t in ipairs(tasks) do t:cancel() end
      -- The heap is at its limit here: let the tasks go before building
      -- the report, or whether its strings fit depends on the layout.
      local n = #tasks
      tasks = nil
      corio.yield()
      collectgarbage()
      io.write(("spawn_ok=%s tasks=%d nomem=%d\n"):format(tostring(ok), n, nomem))
    ]], { limit = "ulimit -v 300000" })
    assert.equal(1, r.code, r.err)
    assert.matches("tasks that cannot get a coroutine fail with ENOMEM", r.err)
    assert.not_matches("PANIC", r.err)
    local n, nomem = r.out:match("spawn_ok=false tasks=(%d+) nomem=(%d+)")
    assert.is_not_nil(n, r.out .. r.err)
    assert.is_true(tonumber(n) > 1000)
    assert.is_true(tonumber(nomem) > 0)
  end)
end)

describe("an error in the scheduler's own code", function()
  -- What running out of memory inside the scheduler would do, injected at
  -- each phase of a task's step (core._inject_fault).
  local core = require "corio.core"

  for _, ph in ipairs({ "before", "returned", "finish" }) do
    it("at '" .. ph .. "' fails that task with the error, and the loop goes on", function()
      local closed = false
      core._inject_fault(ph)
      local t = corio.spawn(function()
        local guard <close> = setmetatable({}, { __close = function() closed = true end })
        return 1, 2
      end)
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.matches("fault injected in the scheduler", tostring(err))
      assert.is_true(t:done())
      assert.equal(ph ~= "before", closed)   -- the body ran unless it never started
      local u = corio.spawn(function() corio.sleep(0) return "fine" end)
      assert.equal("fine", u:await())
    end)
  end

  it("after a task suspended leaves that task alone", function()
    core._inject_fault("settled")
    local t = corio.spawn(function() corio.sleep(0.01) return "late" end)
    assert.equal("late", t:await())
  end)

  it("once a task is marked done still wakes its waiters with its results", function()
    core._inject_fault("complete")
    local t = corio.spawn(function() return 1, 2 end)
    local waiter = corio.spawn(function() return t:await() end)
    local a, b = t:await()
    assert.same({ 1, 2 }, { a, b })
    assert.same({ 1, 2 }, { waiter:await() })
  end)

  it("rejects an unknown phase", function()
    assert.matches("bad argument #1", select(2, pcall(core._inject_fault, "nowhere")))
  end)
end)
