-- W3 sleepers on luv: 100,000 coroutine tasks each sleeping a pseudo-random
-- 0..1000 ms on its own uv timer, then awaited in order.
local uv = require "luv"
local N = 100000

-- Deterministic LCG (seed 42), identical in every runtime.
local delays, x = {}, 42
for i = 1, N do
  x = (x * 1103515245 + 12345) % 2147483648
  delays[i] = x % 1001
end

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

local function sleep(ms)
  local co, timer = coroutine.running(), uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

local function sleeper(ms)
  sleep(ms)
  return ms
end

spawn(function()
  local t0 = uv.hrtime()
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(sleeper, delays[i]) end
  local total = 0
  for i = 1, N do total = total + await(tasks[i]) end
  local t1 = uv.hrtime()
  print(string.format("time=%.6f check=%d", (t1 - t0) / 1e9, total))
end)
uv.run()
