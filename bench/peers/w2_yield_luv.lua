-- W2 yields on luv: 1,000 coroutine tasks each yielding to the event loop
-- 1,000 times.  Ready queue drained once per loop turn by an idle handle;
-- a yield re-queues the coroutine for the next turn.
local uv = require "luv"
local TASKS, YIELDS = 1000, 1000

local ready, nready, spare = {}, 0, {}
local idle, idling = uv.new_idle(), false

local function run_ready()
  local q, n = ready, nready
  ready, nready = spare, 0        -- anything woken now runs next turn
  for i = 1, n do
    local co = q[i]
    q[i] = nil
    assert(coroutine.resume(co))
  end
  spare = q
  if nready == 0 then idle:stop(); idling = false end
end

local function wake(co)
  nready = nready + 1
  ready[nready] = co
  if not idling then idling = true; idle:start(run_ready) end
end

local function spawn(fn, arg)
  local task = { done = false }
  wake(coroutine.create(function()
    task.value = fn(arg)
    task.done = true
    if task.waiter then wake(task.waiter) end
  end))
  return task
end

local function await(task)
  if not task.done then
    task.waiter = coroutine.running()
    coroutine.yield()
  end
  return task.value
end

local function yield()
  wake(coroutine.running())
  coroutine.yield()
end

local function work()
  for _ = 1, YIELDS do yield() end
  return YIELDS
end

spawn(function()
  local t0 = uv.hrtime()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = spawn(work) end
  local total = 0
  for i = 1, TASKS do total = total + await(tasks[i]) end
  local t1 = uv.hrtime()
  print(string.format("time=%.6f check=%d", (t1 - t0) / 1e9, total))
end)
uv.run()
