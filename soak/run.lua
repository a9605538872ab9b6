-- soak/run.lua -- the soak suite (issue 15, point 10), first items.
--   build/corio soak/run.lua [scale]     (make soak; CI: scale 0.1)
-- Each item prints its figure and fails the run past its threshold.
-- Not yet here: the slow 1 GiB reader, the 50 MB line, 10,000 spawns,
-- EMFILE under ulimit -n 64, kill -9 / half-close / RST peers.
local corio = require "corio"
local net = require "corio.net"

local SCALE = tonumber(arg and arg[1]) or tonumber(os.getenv("SOAK_SCALE")) or 1
local failed = 0

local function rss()
  local f = io.open("/proc/self/statm")
  local _, r = f:read("n", "n")
  f:close()
  return r * 4096
end

local function nfds()
  local n = 0
  local p = io.popen("ls /proc/" .. io.open("/proc/self/stat"):read("n") .. "/fd")
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local function report(name, figure, ok, limit)
  print(("%-40s %-28s %s (limit %s)"):format(name, figure, ok and "ok" or "FAIL", limit))
  if not ok then failed = failed + 1 end
end

local function settle(limit, secs)
  local t0 = corio.now()
  while rss() > limit and corio.now() - t0 < secs do corio.sleep(0.1) end
  return corio.now() - t0
end

-- Idle connections: RSS per connection (both ends here), fds back.
do
  local n = math.max(100, math.floor(9000 * SCALE))
  local srv = net.serve("127.0.0.1", 0, function(s) s:read(1) end)
  local _, port = srv:address()
  corio.sleep(0)
  local fd0, r0 = nfds(), rss()
  local cs = {}
  for i = 1, n do cs[i] = net.connect("127.0.0.1", port) end
  while srv:connections() < n do corio.sleep(0.01) end
  local per = (rss() - r0) / n / 2                 -- two ends each
  report(("%d idle connections"):format(n), ("%.2f KiB RSS each"):format(per / 1024),
         per <= 3 * 1024, "3 KiB")
  for i = 1, n do cs[i]:close() end
  cs = nil
  while srv:connections() > 0 do corio.sleep(0.01) end
  local took = settle(r0 + 8 * 2^20, 10)
  report("  memory after they close", ("+%.1f MiB in %.1f s"):format((rss() - r0) / 2^20, took),
         rss() <= r0 + 8 * 2^20 and took <= 5, "+8 MiB within 5 s")
  srv:close()
  srv:wait_closed()
  local fd1 = nfds()
  report("  fds after close", ("%d (start %d)"):format(fd1, fd0), fd1 <= fd0, "start")
end

-- Connect/close cycles: RSS after all within 1 MiB of after a tenth.
do
  local n = math.max(2000, math.floor(200000 * SCALE))
  local srv = net.serve("127.0.0.1", 0, function(s) s:read(1) end)
  local _, port = srv:address()
  local at_tenth
  for i = 1, n do
    net.connect("127.0.0.1", port):close()
    if i == n // 10 then
      collectgarbage()
      at_tenth = rss()
    end
  end
  while srv:connections() > 0 do corio.sleep(0.01) end
  collectgarbage()
  local d = rss() - at_tenth
  report(("%d connect/close cycles"):format(n), ("%+.2f MiB since %d"):format(d / 2^20, n // 10),
         d <= 2^20, "1 MiB")
  srv:close()
  srv:wait_closed()
end

-- A burst of tasks: RSS back to <= 10 % of the peak within 5 s.
do
  local n = math.max(20000, math.floor(1000000 * SCALE))
  local go = corio.future()
  for _ = 1, n do corio.spawn(function() go:await() end) end
  corio.sleep(0)
  local peak = rss()
  go:set_result()
  corio.sleep(0)
  local took = settle(peak // 10, 10)
  report(("%d tasks end"):format(n), ("%.1f -> %.1f MiB in %.1f s"):format(peak / 2^20, rss() / 2^20, took),
         rss() <= peak // 10 and took <= 5, "10 % of peak within 5 s")
end

print(failed == 0 and "soak: all passed" or ("soak: %d failed"):format(failed))
if failed > 0 then os.exit(1) end
