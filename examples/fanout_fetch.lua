--[[
fanout_fetch.lua -- fetch many items concurrently, at most LIMIT at a time,
each with its own deadline.

A Semaphore bounds the concurrency; corio.wait_for gives every fetch a
deadline (past it the fetch is cancelled -- its cleanup runs -- and TIMEOUT
is raised); corio.gather collects the outcomes in order.  The "network" is
simulated with sleeps (corio.net is not needed): each item takes a
pseudo-random 10..200 ms, and a few fail outright.

Run: corio examples/fanout_fetch.lua [items] [limit] [timeout_s]
]]
local corio = require "corio"
local sync = require "corio.sync"

local N = tonumber(arg and arg[1]) or 30
local LIMIT = tonumber(arg and arg[2]) or 5
local TIMEOUT = tonumber(arg and arg[3]) or 0.15

local seed = 42
local function rand(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed >> 16) % n
end

local in_flight, peak, cleaned = 0, 0, 0

-- The simulated fetch: takes some time, sometimes fails, always cleans up.
local function fetch(url, delay, fails)
  in_flight = in_flight + 1
  peak = math.max(peak, in_flight)
  local _ <close> = setmetatable({}, { __close = function()
    in_flight = in_flight - 1           -- runs on success, error, cancel
    cleaned = cleaned + 1
  end })
  corio.sleep(delay)
  if fails then error(url .. ": server said 503", 0) end
  return ("<%d bytes from %s>"):format(100 + #url * 10, url)
end

local limit = sync.Semaphore(LIMIT)

-- One item: wait for a slot, then fetch with a deadline.  Returns a
-- status and a value, so gather never sees an error.
local function fetch_one(i)
  local url = ("https://example.test/item/%d"):format(i)
  local delay, fails = (10 + rand(191)) / 1000, rand(10) == 0
  return limit:with(function()
    local ok, res = pcall(corio.wait_for, function()
      return fetch(url, delay, fails)
    end, TIMEOUT)
    if ok then return { status = "ok", value = res } end
    if corio.is_timeout(res) then return { status = "timeout" } end
    return { status = "error", value = res }
  end)
end

local t0 = corio.now()
local jobs = {}
for i = 1, N do jobs[i] = function() return fetch_one(i) end end
local results = corio.gather(jobs)
local elapsed = corio.now() - t0

local counts = { ok = 0, timeout = 0, error = 0 }
for i = 1, N do
  local r = results[i]
  counts[r.status] = counts[r.status] + 1
  if i <= 5 or r.status == "error" then
    print(("%3d %-7s %s"):format(i, r.status, tostring(r.value or "")))
  end
end
print(("%d items in %.2f s: %d ok, %d timed out, %d failed; at most %d in " ..
  "flight (limit %d); %d cleanups ran"):format(N, elapsed, counts.ok,
  counts.timeout, counts.error, peak, LIMIT, cleaned))
assert(peak <= LIMIT and cleaned == N and in_flight == 0)
