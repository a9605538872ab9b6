-- W10 executor on luv: the primes jobs and the empty round trips through
-- uv.new_work (libuv's thread pool, a Lua state per pool thread).  One
-- worker = the two jobs queued one after the other; two workers = both
-- queued at once.  A coroutine sequences the steps; after_work resumes it.
local uv = require "luv"
local N = tonumber(os.getenv("W10_N")) or 5000000
local EMPTY = 10000

-- A work function is sent as bytecode: no upvalues, the limit is an arg.
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

local main
local function resume(...) assert(coroutine.resume(main, ...)) end
local work = uv.new_work(primes, resume)
local empty = uv.new_work(function() end, resume)
local function now() return uv.hrtime() / 1e9 end

main = coroutine.create(function()
  empty:queue() coroutine.yield()           -- warm up the pool
  empty:queue() empty:queue() coroutine.yield() coroutine.yield()

  local t0 = now()
  work:queue(0, N)
  local a = coroutine.yield()
  work:queue(1, N)
  local b = coroutine.yield()
  local t1 = now() - t0
  local c1 = a + b + 1                      -- + 1: the prime 2

  t0 = now()
  work:queue(0, N)
  work:queue(1, N)
  a = coroutine.yield()
  b = coroutine.yield()
  local t2 = now() - t0
  assert(a + b + 1 == c1)

  t0 = now()
  for _ = 1, EMPTY do
    empty:queue()
    coroutine.yield()
  end
  local te = now() - t0
  print(string.format("time=%.6f t1=%.6f t2=%.6f rtt_us=%.2f check=%d",
    t1 + t2 + te, t1, t2, te / EMPTY * 1e6, c1))
end)
resume()
uv.run()
