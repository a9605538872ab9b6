--[[
port_scanner.lua -- a TCP connect scanner: tries every port of a range,
at most CONCURRENCY connects at a time, each with its own deadline.

A fixed pool of worker tasks takes ports from a shared counter, so at most
CONCURRENCY connects are in flight.  A connect that takes longer than the
timeout is cancelled (the socket is closed, nothing leaks) and counted as
filtered; a refused one means closed.

Run: corio examples/port_scanner.lua HOST [FIRST-LAST] [CONCURRENCY] [TIMEOUT_S]
     corio examples/port_scanner.lua --selftest   (scans a few local ports)
]]
-- ci: --selftest
local corio = require "corio"
local net = require "corio.net"

-- Runs fn(...) in a task of its own and cancels it after s seconds
-- (corio.wait_for does the same where composition helpers are loaded).
local function with_deadline(s, fn, ...)
  local task = corio.spawn(fn, ...)
  local timer = corio.call_later(s, function() task:cancel("timeout") end)
  local ok, res = pcall(task.await, task)
  timer:cancel()
  if not ok then error(res, 0) end
  return res
end

local function scan(host, first, last, concurrency, timeout)
  local open, closed, filtered = {}, 0, 0
  local next_port = first
  local function worker()
    while next_port <= last do
      local port = next_port
      next_port = next_port + 1
      local ok, err = pcall(with_deadline, timeout, net.connect, host, port)
      if ok then
        err:close()                  -- err is the Stream here
        open[#open + 1] = port
      elseif corio.is_cancelled(err) then
        filtered = filtered + 1
      else
        closed = closed + 1
      end
    end
  end
  local workers = {}
  for i = 1, math.min(concurrency, last - first + 1) do
    workers[i] = corio.spawn(worker)
  end
  for _, w in ipairs(workers) do w:await() end
  table.sort(open)
  return open, closed, filtered
end

if arg[1] ~= "--selftest" then
  local host = arg[1] or "127.0.0.1"
  local first, last = (arg[2] or "1-1024"):match("^(%d+)%-(%d+)$")
  first, last = tonumber(first) or 1, tonumber(last) or 1024
  local t0 = corio.now()
  local open, closed, filtered = scan(host, first, last,
    tonumber(arg[3]) or 100, tonumber(arg[4]) or 1.0)
  for _, port in ipairs(open) do print(("%s:%d open"):format(host, port)) end
  print(("%d open, %d closed, %d filtered in %.2f s"):format(#open, closed,
    filtered, corio.now() - t0))
  return
end

-- Self-test: open three servers, scan a range of 200 ports around them.
local servers, ports = {}, {}
for i = 1, 3 do
  servers[i] = net.serve("127.0.0.1", 0, function() end)
  ports[i] = select(2, servers[i]:address())
end
table.sort(ports)
local lo, hi = math.max(1, ports[1] - 100), math.min(65535, ports[1] + 100)
local open = scan("127.0.0.1", lo, hi, 50, 1.0)
local found = {}
for _, p in ipairs(open) do found[p] = true end
for _, p in ipairs(ports) do
  if p >= lo and p <= hi then assert(found[p], "missed open port " .. p) end
end
print(("scanned %d ports, %d open"):format(hi - lo + 1, #open))
for _, s in ipairs(servers) do s:close() end
print("selftest ok")
