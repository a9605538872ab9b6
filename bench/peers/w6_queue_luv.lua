-- W6 queue on luv: 1,000,000 items through a channel of capacity 1 from one
-- producer coroutine to one consumer coroutine.  A small scheduler: an idle
-- handle drains the ready queue each loop turn, and a coroutine woken while
-- it drains (a channel hand-off) runs in the same turn, as in corio.  The
-- channel hands items straight to a waiting getter, and moves a waiting
-- putter's item in when a get frees the slot.
local uv = require "luv"
local N = 1000000

local rco, rval, rh, rt = {}, {}, 1, 0
local idle, idling = uv.new_idle(), false

local function run_ready()
  while rh <= rt do
    local co, v = rco[rh], rval[rh]
    rco[rh], rval[rh] = nil, nil
    rh = rh + 1
    assert(coroutine.resume(co, v))
  end
  rh, rt = 1, 0
  idle:stop()
  idling = false
end

local function wake(co, v)
  rt = rt + 1
  rco[rt], rval[rt] = co, v
  if not idling then idling = true; idle:start(run_ready) end
end

local function spawn(fn)
  local task = { done = false }
  wake(coroutine.create(function()
    task.value = fn()
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

local function channel(max)
  return { max = max, items = {}, ih = 1, it = 0,
    getters = {}, gh = 1, gt = 0, putters = {}, pvals = {}, ph = 1, pt = 0 }
end

local function put(ch, v)
  if ch.gh <= ch.gt then                -- a getter waits: hand it over
    local co = ch.getters[ch.gh]
    ch.getters[ch.gh] = nil
    ch.gh = ch.gh + 1
    if ch.gh > ch.gt then ch.gh, ch.gt = 1, 0 end
    wake(co, v)
    return
  end
  if ch.it - ch.ih + 1 < ch.max then
    ch.it = ch.it + 1
    ch.items[ch.it] = v
    return
  end
  ch.pt = ch.pt + 1
  ch.putters[ch.pt], ch.pvals[ch.pt] = coroutine.running(), v
  coroutine.yield()
end

local function get(ch)
  if ch.ih <= ch.it then
    local v = ch.items[ch.ih]
    ch.items[ch.ih] = nil
    ch.ih = ch.ih + 1
    if ch.ph <= ch.pt then              -- a putter waits: take its item
      ch.it = ch.it + 1
      ch.items[ch.it] = ch.pvals[ch.ph]
      local co = ch.putters[ch.ph]
      ch.putters[ch.ph], ch.pvals[ch.ph] = nil, nil
      ch.ph = ch.ph + 1
      if ch.ph > ch.pt then ch.ph, ch.pt = 1, 0 end
      wake(co)
    end
    if ch.ih > ch.it then ch.ih, ch.it = 1, 0 end
    return v
  end
  ch.gt = ch.gt + 1
  ch.getters[ch.gt] = coroutine.running()
  return coroutine.yield()
end

spawn(function()
  local q = channel(1)
  local t0 = uv.hrtime()
  local producer = spawn(function()
    for i = 1, N do put(q, i) end
  end)
  local sum = 0
  for _ = 1, N do sum = sum + get(q) end
  await(producer)
  local t1 = uv.hrtime()
  print(string.format("time=%.6f check=%d", (t1 - t0) / 1e9, sum))
end)
uv.run()
