-- corio.executor: to_thread, thread_pool, process_pool.
local corio = require "corio"
local executor = require "corio.executor"

local CORIO = (arg and arg[-1]) or "build/corio"

-- Under ThreadSanitizer (make tsan) a signal reaches a thread only when
-- that thread enters a call TSan intercepts: the executor's interrupt
-- signal never reaches a job spinning in pure Lua (`while true do end`),
-- so those cases would spin forever (natively they pass: it is TSan's
-- limitation, the reason the embed tests run with CORIO_EMBED_NO_SPIN).
-- Under TSan the jobs that never end call os.time() on each turn instead,
-- which lets the signal in: the interrupt path is still exercised there.
local TSAN = (function()
  local f = io.open("/proc/self/maps")
  if not f then return false end
  local maps = f:read("a")
  f:close()
  return maps:find("libtsan", 1, true) ~= nil
end)()

-- Waits (bounded) until a file exists; jobs report through files because
-- they share nothing else with the caller.
local function wait_file(path, seconds)
  local deadline = corio.now() + (seconds or 10)
  while corio.now() < deadline do
    local f = io.open(path)
    if f then f:close() return true end
    corio.sleep(0.01)
  end
  return false
end

local function spin_until_file(path)
  -- a job: burns CPU until `path` exists (or 60 s pass)
  return function(p)
    local t0 = os.time()
    while os.time() - t0 < 60 do
      for _ = 1, 1e5 do end
      local f = io.open(p)
      if f then f:close() return "released" end
    end
    return "timeout"
  end, path
end

local function touch(path)
  local f = assert(io.open(path, "w"))
  f:close()
end

local function expect_error(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.is_truthy(tostring(err):find(pattern), tostring(err))
  return err
end

local function nested(depth)
  local t = { leaf = true }
  for i = 1, depth - 1 do t = { child = t, level = i } end
  return t
end

local function depth_of(t)
  local d = 0
  while t do d, t = d + 1, t.child end
  return d
end

for _, kind in ipairs { "thread", "process" } do
  describe("executor " .. kind .. " pool", function()
    local pool
    local function run(...) return pool:run(...) end
    before_each(function()
      pool = kind == "thread" and executor.thread_pool(2)
                               or executor.process_pool(2)
    end)
    after_each(function() pool:close() end)

    it("runs a function and returns all its results", function()
      local a, b, c = run(function(x, y) return x + y, x * y, "z" end, 3, 4)
      assert.are.equal(7, a)
      assert.are.equal(12, b)
      assert.are.equal("z", c)
    end)

    it("copies values exactly: nil, booleans, integers vs floats, zeros in strings, nested tables", function()
      local r = table.pack(run(function(...) return ... end,
        nil, true, false, 3, 3.0, -0.0, math.maxinteger, 1/0, "a\0b\0",
        { 1, nil, 3, x = { y = { z = "deep" } }, [2.5] = "f", [true] = 1 }))
      assert.are.equal(10, r.n)
      assert.is_nil(r[1])
      assert.is_true(r[2])
      assert.is_false(r[3])
      assert.are.equal("integer", math.type(r[4]))
      assert.are.equal("float", math.type(r[5]))
      assert.are.equal(math.maxinteger, r[7])
      assert.are.equal(math.huge, r[8])
      assert.are.equal("a\0b\0", r[9])
      assert.are.equal(4, #r[9])
      local t = r[10]
      assert.are.equal(1, t[1])
      assert.is_nil(t[2])
      assert.are.equal(3, t[3])
      assert.are.equal("deep", t.x.y.z)
      assert.are.equal("f", t[2.5])
      assert.are.equal(1, t[true])
    end)

    it("keeps shared subtables shared", function()
      local shared = { 1 }
      local r = run(function(t) return t.a == t.b, t end, { a = shared, b = shared })
      assert.is_true(r)
    end)

    it("raises bad argument before running anything", function()
      local marker = os.tmpname()
      os.remove(marker)
      local job = function(path, _) local f = io.open(path, "w") f:close() end
      expect_error("bad argument #3 to 'run' %(cannot copy a function%)",
        function() return (pool:run(job, marker, print)) end)
      expect_error("bad argument #3 to 'run' %(cannot copy a userdata%)",
        function() return (pool:run(job, marker, io.stdout)) end)
      local cyc = {} cyc.self = cyc
      expect_error("bad argument #3 to 'run' %(cycle in table%)",
        function() return (pool:run(job, marker, { ok = { cyc } })) end)
      expect_error("bad argument #3 to 'run' %(cannot copy a thread%)",
        function() return (pool:run(job, marker, coroutine.create(print))) end)
      local up = 1
      expect_error("bad argument #1 to 'run' %(function has upvalue 'up'",
        function() return (pool:run(function() return up end)) end)
      expect_error("bad argument #1 to 'run' %(cannot send a C function",
        function() return (pool:run(print)) end)
      expect_error("bad argument #1 to 'run' %(function expected",
        function() return (pool:run(42)) end)
      expect_error("bad argument #2 to 'map' %(item 2: cannot copy a function%)",
        function() return (pool:map(job, { 1, print })) end)
      expect_error("bad argument #2 to 'map' %(table expected",
        function() return (pool:map(job, 7)) end)
      expect_error("bad argument #1 to 'run' %(corio.Executor expected, got table%)",
        function() return (pool.run({}, job)) end)
      corio.sleep(0.1)
      assert.is_nil(io.open(marker))
    end)

    it("raises a job's error with the worker's message and traceback", function()
      local err = expect_error("boom", run, function()
        local function inner() error("boom") end
        inner()
      end)
      assert.is_truthy(err:find("executor_spec.lua:%d+: boom"), err)
      assert.is_truthy(err:find("worker stack traceback:", 1, true), err)
      assert.is_truthy(err:find("in upvalue 'inner'", 1, true) or
                       err:find("in local 'inner'", 1, true), err)
    end)

    it("raises a job's error table with its fields and a traceback", function()
      local ok, err = pcall(run, function() error({ code = 42 }) end)
      assert.is_false(ok)
      assert.are.equal(42, err.code)
      assert.is_truthy(err.traceback:find("stack traceback", 1, true))
    end)

    it("refuses a result that cannot be copied", function()
      expect_error("bad result #2 from job %(cannot copy a function%)", run,
        function() return 1, print end)
    end)

    it("copies 10 MB strings both ways", function()
      local big = string.rep("x\0yz", 10 * 1024 * 1024 // 4)
      local n, back = run(function(s) return #s, s:upper() end, big)
      assert.are.equal(#big, n)
      assert.are.equal(#big, #back)
      assert.are.equal("X\0YZ", back:sub(1, 4))
    end)

    it("copies tables nested 1,000 deep both ways", function()
      local t = run(function(x)
        local d, c = 0, x
        while c do d, c = d + 1, c.child end
        x.depth = d
        return x
      end, nested(1000))
      assert.are.equal(1000, t.depth)
      assert.are.equal(1000, depth_of(t))
    end)

    it("runs 10,000 small jobs", function()
      local list = {}
      for i = 1, 10000 do list[i] = i end
      local r = pool:map(function(x) return x * 2 end, list)
      assert.are.equal(10000, #r)
      for i = 1, 10000 do assert.are.equal(2 * i, r[i]) end
      local sum = 0
      for i = 1, 2000 do sum = sum + run(function(x) return x end, i) end
      assert.are.equal(2000 * 2001 // 2, sum)
    end)

    it("map returns the first results in order, {} for {}", function()
      local r = pool:map(function(x) return x * 10, "ignored" end, { 3, 1, 2 })
      assert.are.same({ 30, 10, 20 }, r)
      assert.are.same({}, pool:map(function() end, {}))
    end)

    it("map raises the first error", function()
      expect_error("bad item", pool.map, pool, function(x)
        if x == 3 then error("bad item") end
        return x
      end, { 1, 2, 3, 4 })
    end)

    it("interrupts a job that never ends when its task is cancelled", function()
      local task = corio.spawn(function()
        return pool:run(TSAN and function() while true do os.time() end end
                             or function() while true do end end)
      end)
      corio.sleep(0.2)
      task:cancel()
      local ok, err = pcall(task.await, task)
      assert.is_false(ok)
      assert.is_true(corio.is_cancelled(err))
      -- both workers are usable again
      assert.are.same({ 1, 2 }, pool:map(function(x) return x end, { 1, 2 }))
    end)

    it("stops a job that keeps catching the interrupt", function()
      local task = corio.spawn(function()
        return pool:run(TSAN and function()
          while true do pcall(function() while true do os.time() end end) end
        end or function()
          while true do pcall(function() while true do end end) end
        end)
      end)
      corio.sleep(0.2)
      task:cancel()
      assert.is_false(pcall(task.await, task))
      assert.are.equal(5, run(function() return 5 end))
    end)

    it("interrupts a job spinning inside coroutines", function()
      for _, body in ipairs(TSAN and {
        function() coroutine.wrap(function() while true do os.time() end end)() end,
        function()
          local co = coroutine.create(function()
            coroutine.wrap(function() while true do os.time() end end)()
          end)
          coroutine.resume(co)
          while true do os.time() end
        end,
      } or {
        function() coroutine.wrap(function() while true do end end)() end,
        function()
          local co = coroutine.create(function()
            coroutine.wrap(function() while true do end end)()
          end)
          coroutine.resume(co)
          while true do end
        end,
      }) do
        local task = corio.spawn(function() return pool:run(body) end)
        corio.sleep(0.2)
        task:cancel()
        assert.is_false(pcall(task.await, task))
      end
      local gen = pool:run(function()
        local out = {}
        for v in coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end) do
          out[#out + 1] = v
        end
        local ok, err = pcall(coroutine.wrap(function() error("inner") end))
        return out, ok, err
      end)
      assert.are.same({ 1, 2, 3 }, gen)
      assert.are.equal(2, pool:map(function() return 2 end, { 1, 2 })[2])
    end)

    it("drops a queued job when its task is cancelled", function()
      local gate, marker = os.tmpname(), os.tmpname()
      os.remove(gate)
      os.remove(marker)
      local blockers = {}
      for i = 1, 2 do                       -- fill both workers
        blockers[i] = corio.spawn(function() return run(spin_until_file(gate)) end)
      end
      corio.sleep(0.2)
      local queued = corio.spawn(function()
        return run(function(p) local f = io.open(p, "w") f:close() end, marker)
      end)
      corio.sleep(0.1)
      queued:cancel()
      assert.is_false(pcall(queued.await, queued))
      touch(gate)
      for i = 1, 2 do assert.are.equal("released", blockers[i]:await()) end
      assert.are.equal(1, run(function() return 1 end))
      assert.is_nil(io.open(marker))
      os.remove(gate)
    end)

    it("keeps a worker's state between jobs, and renews it after an interrupt", function()
      local one = kind == "thread" and executor.thread_pool(1)
                                    or executor.process_pool(1)
      one:run(function() KEPT = "yes" end)
      assert.are.equal("yes", one:run(function() return KEPT end))
      local task = corio.spawn(function()
        return one:run(TSAN and function() KEPT = "dirty" while true do os.time() end end
                            or function() KEPT = "dirty" while true do end end)
      end)
      corio.sleep(0.2)
      task:cancel()
      pcall(task.await, task)
      assert.is_nil(one:run(function() return KEPT end))
      one:close()
    end)

    it("close is idempotent, then run raises CLOSED", function()
      pool:close()
      pool:close()
      local err = expect_error("CLOSED", pool.run, pool, function() end)
      assert.are.equal("CLOSED", err.code)
      assert.is_truthy(tostring(pool):find("closed"))
    end)

    it("lets jobs submitted before close finish", function()
      local t = corio.spawn(function()
        return pool:run(function() for _ = 1, 1e6 do end return "done" end)
      end)
      corio.yield()
      pool:close()
      assert.are.equal("done", t:await())
    end)

    it("closes as a to-be-closed variable", function()
      local p2
      do
        local p <close> = kind == "thread" and executor.thread_pool(1)
                                           or executor.process_pool(1)
        p2 = p
        assert.are.equal(2, p:run(function() return 2 end))
      end
      expect_error("CLOSED", p2.run, p2, function() end)
    end)
  end)
end

describe("executor", function()
  it("to_thread runs on the default pool", function()
    assert.are.equal(corio.to_thread, executor.to_thread)
    local a, b = corio.to_thread(function(x) return x, x + 0.5 end, 1)
    assert.are.equal(1, a)
    assert.are.equal(1.5, b)
    expect_error("bad argument #2 to '[%w.]*to_thread' %(cannot copy a function%)",
      corio.to_thread, function() end, print)
  end)

  it("rejects a bad pool size", function()
    expect_error("bad argument #1 to '[%w.]*thread_pool' %(size must be 1..1024%)",
      executor.thread_pool, 0)
    expect_error("bad argument #1 to '[%w.]*process_pool'", executor.process_pool, "x")
    expect_error("bad argument #2 to '[%w.]*process_pool'", executor.process_pool, 1, 5)
  end)

  it("raises outside a task", function()
    local co = coroutine.create(function()
      return pcall(corio.to_thread, function() end)
    end)
    local _, ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("inside a coroutine nested in a task", 1, true)
      or tostring(err):find("not inside a task", 1, true), tostring(err))
  end)

  it("keeps the loop and file I/O responsive while every thread is busy", function()
    local pool = executor.thread_pool(6)   -- more than libuv's 4 fs threads
    local gate = os.tmpname()
    os.remove(gate)
    local busy = {}
    for i = 1, 6 do
      busy[i] = corio.spawn(function() return (pool:run(spin_until_file(gate))) end)
    end
    corio.sleep(0.3)                        -- all six are spinning
    local fs_ok, fs = pcall(require, "corio.fs")
    for _ = 1, 5 do
      local t0 = corio.now()
      if fs_ok then fs.stat(".") else executor._fs_probe(".") end
      local dt = corio.now() - t0
      -- (TSan makes every call several times slower: a looser bound there)
      assert.is_true(dt < (TSAN and 1 or 0.1), "file I/O took " .. dt .. " s")
      t0 = corio.now()
      corio.sleep(0.02)
      dt = corio.now() - t0
      assert.is_true(dt < (TSAN and 1 or 0.12), "a 20 ms sleep took " .. dt .. " s")
    end
    touch(gate)
    for i = 1, 6 do assert.are.equal("released", busy[i]:await()) end
    os.remove(gate)
    pool:close()
  end)

  it("does not keep the loop spinning while a long job runs", function()
    -- The loop waits awake only for jobs that have been short: after a
    -- burst of empty jobs, a 0.4 s job must leave the loop thread asleep.
    local function loop_cpu()              -- the main thread's CPU seconds
      local pf = assert(io.open("/proc/self/stat"))
      local pid = pf:read("n")
      pf:close()
      local f = assert(io.open("/proc/self/task/" .. pid .. "/stat"))
      local line = f:read("a")
      f:close()
      local u, s = line:match("^%d+ %b() %S+" .. (" %S+"):rep(10) .. " (%d+) (%d+)")
      return (tonumber(u) + tonumber(s)) / 100
    end
    local pool = executor.thread_pool(1)
    for _ = 1, 200 do pool:run(function() end) end
    local c0 = loop_cpu()
    local t0 = corio.now()
    pool:run(function()
      local f = io.popen("sleep 0.4")
      f:read("a")
      f:close()
    end)
    local wall = corio.now() - t0
    local spent = loop_cpu() - c0
    assert.is_true(wall >= 0.35, "the job took " .. wall .. " s")
    assert.is_true(spent < 0.15, "the loop thread used " .. spent .. " s of CPU")
    pool:close()
  end)

  it("fails the job of a process worker that dies and replaces the worker", function()
    local pool = executor.process_pool(1)
    local err = expect_error("WORKER_DIED", pool.run, pool, function() os.exit(3) end)
    assert.are.equal("WORKER_DIED", err.code)
    assert.is_truthy(err.message:find("exit code 3", 1, true), err.message)
    -- a crash, as a C module could cause
    err = expect_error("WORKER_DIED", pool.run, pool, function()
      local pid = io.open("/proc/self/stat"):read("n")
      os.execute("kill -ABRT " .. pid)
      while true do end
    end)
    assert.is_truthy(err.message:find("SIGABRT", 1, true), err.message)
    assert.are.equal("alive", pool:run(function() return "alive" end))
    pool:close()
  end)

  it("reaps the workers of a closed or collected process pool", function()
    local function gone(pid)
      local deadline = corio.now() + 5
      while corio.now() < deadline do
        local f = io.open("/proc/" .. pid .. "/stat")   -- zombies have one
        if not f then return true end
        f:close()
        corio.sleep(0.02)
      end
      return false
    end
    local getpid = function() return io.open("/proc/self/stat"):read("n") end
    local pool = executor.process_pool(2)
    local pids = pool:map(getpid, { 1, 2 })
    pool:close()
    for _, pid in ipairs(pids) do assert.is_true(gone(pid)) end
    local pid
    do
      local lost = executor.process_pool(1)
      pid = lost:run(getpid)
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(gone(pid))
  end)

  it("keeps an executor alive while a task waits for it", function()
    local t = corio.spawn(function()
      return executor.thread_pool(1):run(function() for _ = 1, 2e6 do end return "ok" end)
    end)
    corio.yield()
    collectgarbage()
    collectgarbage()
    assert.are.equal("ok", t:await())
    collectgarbage()
  end)

  it("process workers do not share the parent's state", function()
    local pool = executor.process_pool(1)
    SHARED_GLOBAL = 1
    assert.is_nil(pool:run(function() return SHARED_GLOBAL end))
    assert.is_nil(pool:run(function() return package.loaded.corio end))
    SHARED_GLOBAL = nil
    pool:close()
  end)

  it("cancels and joins jobs when the program ends", function()
    -- The main task fails while jobs run and wait in the queue: the binary
    -- cancels everything, interrupts and joins the workers, and exits.
    local script = [[
      local corio = require "corio"
      local ex = require "corio.executor"
      local tp, pp = ex.thread_pool(2), ex.process_pool(2)
      for _, p in ipairs { tp, pp } do
        for _ = 1, 4 do corio.spawn(function() p:run(function() while true do end end) end) end
      end
      corio.spawn(function() corio.to_thread(function() while true do end end) end)
      corio.sleep(0.3)
      error("main done")
    ]]
    if TSAN then script = script:gsub("while true do end", "while true do os.time() end") end
    local cmd = string.format("timeout 20 %s -e %q 2>&1; echo status=$?", CORIO, script)
    local t0 = corio.now()
    local out = corio.to_thread(function(c)
      local p = io.popen(c)
      local s = p:read("a")
      p:close()
      return s
    end, cmd)
    assert.is_truthy(out:find("main done", 1, true), out)
    assert.is_truthy(out:find("status=1\n", 1, true), out)
    assert.is_true(corio.now() - t0 < 10)
  end)

  it("works in a stock lua5.4 with corio.so", function()
    local f = io.open("/usr/bin/lua5.4")
    if not f then return end
    f:close()
    local script = [[
      package.cpath = "build/?.so;" .. package.cpath
      local corio = require "corio"
      local ex = require "corio.executor"
      local pp = ex.process_pool(2)
      print(corio.run(function()
        local r = corio.to_thread(function(x) return x + 1 end, 1) + pp:run(function() return 40 end)
        corio.spawn(function() corio.to_thread(function() while true do end end) end)
        corio.spawn(function() pp:run(function() while true do end end) end)
        corio.sleep(0.2)
        return r
      end))
    ]]
    local out = corio.to_thread(function(c)
      local p = io.popen(c)
      local s = p:read("a")
      p:close()
      return s
    end, string.format("timeout 20 lua5.4 -e %q 2>&1; echo status=$?", script))
    assert.is_truthy(out:find("^42\n"), out)
    assert.is_truthy(out:find("status=0", 1, true), out)
  end)
end)
