-- W10 executor: count the primes below 5,000,000 by trial division as two
-- equal-work jobs (n = 1 and n = 3 mod 4), first on a pool of 1 worker
-- thread, then on 2; then 10,000 empty jobs sent one at a time.
-- Prints time= (the sum), t1=, t2=, rtt_us= and check= (the prime count).
local corio = require "corio"
local executor = require "corio.executor"
local N = tonumber(os.getenv("W10_N")) or 5000000
local EMPTY = 10000

-- A job may capture only _ENV, so the limit travels as an argument.
local function primes(k, limit)
  local count = 0
  for n = (k == 0 and 5 or 3), limit - 1, 4 do
    local prime = true
    local d = 3
    while d * d <= n do
      if n % d == 0 then prime = false break end
      d = d + 2
    end
    if prime then count = count + 1 end
  end
  return count
end

local function both(pool)
  local t0 = corio.now()
  local a = corio.spawn(function() return pool:run(primes, 0, N) end)
  local b = corio.spawn(function() return pool:run(primes, 1, N) end)
  local count = a:await() + b:await() + 1           -- + 1: the prime 2
  return count, corio.now() - t0
end

local p1 = executor.thread_pool(1)
p1:run(function() end)                               -- start the worker
local c1, t1 = both(p1)
p1:close()

local p2 = executor.thread_pool(2)
p2:map(function() end, { 1, 2 })                     -- start both workers
local c2, t2 = both(p2)
assert(c1 == c2)

local empty = function() end
local t0 = corio.now()
for _ = 1, EMPTY do p2:run(empty) end
local te = corio.now() - t0
p2:close()

print(string.format("time=%.6f t1=%.6f t2=%.6f rtt_us=%.2f check=%d",
  t1 + t2 + te, t1, t2, te / EMPTY * 1e6, c1))
