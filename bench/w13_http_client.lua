-- W13: keep-alive HTTP client.  corio w13_http_client.lua URL N CONC
-- GETs URL N times from CONC tasks over one corio.http client (keep-alive
-- pool, CONC idle connections kept), after a warm-up of CONC*10 GETs; prints
-- time= (wall, s), cpu= (this process's user+system, s, /proc/self/stat)
-- and ok= (answers that were 200 with the expected body).  Driven by
-- bench/http_client.py.
local corio = require "corio"
local http = require "corio.http"

local url, n, conc = arg[1], tonumber(arg[2] or 20000), tonumber(arg[3] or 16)

local TICK = 100
local function cpu()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICK
end

local cl <close> = http.client({ max_idle_per_host = conc })
local ok = 0
local function worker(count)
  for _ = 1, count do
    local r = cl:get(url)
    if r.status == 200 and r:body() == "hello" then ok = ok + 1 end
  end
end

local function run(total)
  local ts = {}
  for i = 1, conc do
    ts[i] = corio.spawn(worker, total // conc + (i <= total % conc and 1 or 0))
  end
  for i = 1, conc do ts[i]:await() end
end

run(conc * 10)
ok = 0
local c0, t0 = cpu(), corio.now()
run(n)
local t1, c1 = corio.now(), cpu()
print(("time=%.4f cpu=%.4f ok=%d"):format(t1 - t0, c1 - c0, ok))
