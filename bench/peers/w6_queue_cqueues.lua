-- W6 queue on cqueues: 1,000,000 items through a channel of capacity 1 from
-- one producer to one consumer coroutine, with cqueues.condition variables
-- for "not empty" and "not full".
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local N = 1000000

local cq = cqueues.new()

local function channel(max)
  return { max = max, items = {}, h = 1, t = 0,
    notempty = condition.new(), notfull = condition.new() }
end

local function put(ch, v)
  while ch.t - ch.h + 1 >= ch.max do ch.notfull:wait() end
  ch.t = ch.t + 1
  ch.items[ch.t] = v
  ch.notempty:signal(1)
end

local function get(ch)
  while ch.h > ch.t do ch.notempty:wait() end
  local v = ch.items[ch.h]
  ch.items[ch.h] = nil
  ch.h = ch.h + 1
  if ch.h > ch.t then ch.h, ch.t = 1, 0 end
  ch.notfull:signal(1)
  return v
end

cq:wrap(function()
  local q = channel(1)
  local t0 = cqueues.monotime()
  local done = condition.new()
  local finished = false
  cq:wrap(function()
    for i = 1, N do put(q, i) end
    finished = true
    done:signal()
  end)
  local sum = 0
  for _ = 1, N do sum = sum + get(q) end
  if not finished then done:wait() end
  local t1 = cqueues.monotime()
  print(string.format("time=%.6f check=%d", t1 - t0, sum))
end)
assert(cq:loop())
