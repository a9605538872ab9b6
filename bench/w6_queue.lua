-- W6 queue: 1,000,000 items through Queue(1) from one producer task to one
-- consumer task.
local corio = require "corio"
local sync = require "corio.sync"
local N = 1000000

local q = sync.Queue(1)

local t0 = corio.now()
local producer = corio.spawn(function()
  for i = 1, N do q:put(i) end
end)
local sum = 0
for _ = 1, N do sum = sum + q:get() end
producer:await()
local t1 = corio.now()

print(string.format("time=%.6f check=%d", t1 - t0, sum))
