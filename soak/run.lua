-- soak/run.lua -- the soak suite (issue 15, point 10; docs/RELIABILITY.md).
--   build/corio soak/run.lua [scale]     (make soak; CI: scale 0.1)
-- Each item prints its figure and fails the run past its threshold.
-- The peers run as child processes: soak/peer.lua (corio) and
-- soak/faults.py (Python, for resets: corio.net has no SO_LINGER 0).
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

local MYPID
do
  local f = io.open("/proc/self/stat")
  MYPID = f:read("n")
  f:close()
end

-- The fd limit.  The idle item needs 10,000 fds in this process and as
-- many in its client: when the soft limit is below the hard one, the
-- suite runs itself again in a child with the soft limit raised to the
-- hard one (Lua has no setrlimit; `ulimit -n` in sh is the portable way),
-- and exits with its status.
local function nofile_limits()
  local f = io.open("/proc/self/limits")
  local soft, hard
  for line in f:lines() do
    local s, h = line:match("^Max open files%s+(%S+)%s+(%S+)")
    if s then soft, hard = s, h end
  end
  f:close()
  if hard == "unlimited" then
    local g = io.open("/proc/sys/fs/nr_open")
    hard = g and g:read("n") or 1048576
    if g then g:close() end
  end
  return tonumber(soft) or math.huge, tonumber(hard)
end
local NOFILE
do
  local soft, hard = nofile_limits()
  if soft < hard and not os.getenv("CORIO_SOAK_NOFILE") then
    local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
    local cmd = ("CORIO_SOAK_NOFILE=%d exec /bin/sh -c 'ulimit -n %d && " ..
      "exec \"$0\" \"$@\"' %s %s %s"):format(hard, hard, q(require("corio.process").execpath), q(arg[0]),
      q(SCALE))
    local ok, how, code = os.execute(cmd)
    os.exit(how == "exit" and code or 1)
  end
  NOFILE = soft
end

-- Open fds of this process (or of pid); with `below`, only those numbered
-- under it (an fd inherited from our own parent may sit higher).
local function nfds(pid, below)
  local n = 0
  local p = io.popen("ls /proc/" .. (pid or MYPID) .. "/fd")
  for fd in p:lines() do
    if not below or tonumber(fd) < below then n = n + 1 end
  end
  p:close()
  return n
end

-- An error nobody observed (a handler, callback or task that failed
-- outside the items' own pcalls) fails the run.
corio.set_error_handler(function(err, info)
  io.stderr:write("soak: unobserved ", info.kind, " error: ", tostring(err), "\n",
                  info.traceback or "", "\n")
  failed = failed + 1
end)

-- fds back to fd0: closes finish on a later loop turn, so this polls
-- (up to 5 s); past that it lists the fds on stderr.
local function fds_back(fd0)
  local t0, fd1 = corio.now(), nfds()
  while fd1 > fd0 and corio.now() - t0 < 5 do
    corio.sleep(0.1)
    fd1 = nfds()
  end
  if fd1 > fd0 then os.execute("ls -l /proc/" .. MYPID .. "/fd >&2") end
  return fd1
end

local function report(name, figure, ok, limit)
  print(("%-40s %-28s %s (limit %s)"):format(name, figure, ok and "ok" or "FAIL", limit))
  if not ok then failed = failed + 1 end
end

-- libuv keeps one fd (/dev/null, for its EMFILE trick) from the first
-- stream a loop makes on: make it now, so that no item counts it.
do
  local warm = net.serve("127.0.0.1", 0, function() end)
  net.connect("127.0.0.1", select(2, warm:address())):close()
  warm:close()
  warm:wait_closed()
end

-- Items run in order; SOAK_ONLY (a Lua pattern) picks some by name:
-- idle, cycles, tasks, slowreader, longline, spawns, emfile, faults.
local ONLY = os.getenv("SOAK_ONLY")
-- An item that raises or runs past its time fails the run, and the
-- items after it still run.
local ITEM_LIMIT = SCALE >= 1 and 600 or 120
local function item(name, fn)
  if ONLY and not name:find(ONLY) then return end
  local ok, err = pcall(corio.timeout, ITEM_LIMIT, fn)
  if not ok then
    report(name, tostring(err), false, ("no error, within %d s"):format(ITEM_LIMIT))
  end
end

local function settle(limit, secs)
  local t0 = corio.now()
  while rss() > limit and corio.now() - t0 < secs do corio.sleep(0.1) end
  return corio.now() - t0
end

-- {====================================================================
-- The peers' helpers
-- =====================================================================

local process = require "corio.process"
local DIR = arg[0]:match("^(.*)/") or "."
local CORIO = process.execpath
local PEER = DIR .. "/peer.lua"
local FAULTS = DIR .. "/faults.py"
local PYTHON = "/usr/bin/python3"

-- The pattern soak/peer.lua writes and checks: byte i is PAT[i % 251].
local PAT = {}
for i = 0, 250 do PAT[#PAT + 1] = string.char(65 + i % 26) end
PAT = table.concat(PAT)
local BIG = PAT:rep(300)
local function piece(off, n)
  local o = off % 251
  return BIG:sub(o + 1, o + n)
end

local TICK = 100                          -- clock ticks per second
do
  local p = io.popen("getconf CLK_TCK")
  TICK = tonumber(p:read("l")) or 100
  p:close()
end

-- CPU seconds (user + system) a process has used so far.
local function cputime(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- fields[1] is the state (field 3); utime and stime are fields 14, 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICK
end

-- This process's children as {pid = state}, from /proc (no ps: the
-- listing `ls` itself and popen's shell are left out by name).
local function children()
  local t = {}
  local p = io.popen("ls /proc")
  for name in p:lines() do
    local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/stat")
    if f then
      local line = f:read("a") or ""
      f:close()
      local comm, st, ppid = line:match("%((.*)%) (%S) (%d+)")
      if ppid and tonumber(ppid) == MYPID and comm ~= "ls" and comm ~= "sh" then
        t[tonumber(name)] = st
      end
    end
  end
  p:close()
  return t
end

-- Track the peak RSS while fn runs (sampled every 20 ms).
local function peak_rss(fn)
  local peak = rss()
  local done = false
  local sampler = corio.spawn(function()
    while not done do
      local r = rss()
      if r > peak then peak = r end
      corio.sleep(0.02)
    end
  end)
  local ok, err = pcall(fn)
  done = true
  sampler:cancel()
  pcall(sampler.await, sampler)
  local r = rss()
  if r > peak then peak = r end
  if not ok then error(err, 0) end
  return peak
end

-- {====================================================================
-- 10,000 idle connections: the server's RSS per connection, and RSS and
-- fds back once they close.  The clients live in a child process
-- (soak/peer.lua idle), so this process holds only the server's ends:
-- 10,000 fds here and 10,000 there, each process with its soft fd limit
-- raised to the hard one (see the top of this file).  Where the hard
-- limit is too low for that, the count is cut to fit, and said so.
-- =====================================================================
item("idle", function()
  local want = math.max(100, math.floor(10000 * SCALE))
  local n = math.min(want, NOFILE - 64)
  if n < want then
    print(("  note: RLIMIT_NOFILE hard limit %d is too low for %d idle " ..
      "connections; measuring %d"):format(NOFILE, want, n))
  end
  local srv = net.serve("127.0.0.1", 0, function(s) s:read(1) end,
    { backlog = 1024 })
  local _, port = srv:address()
  corio.sleep(0)
  collectgarbage()
  local fd0, r0 = nfds(), rss()
  local t0 = corio.now()
  local proc = process.spawn({ "/bin/sh", "-c", ('ulimit -n %d && exec "$0" "$@"')
    :format(NOFILE), CORIO, PEER, "idle", port, n },
    { stdin = "pipe", stdout = "pipe" })
  local ready = proc.stdout:read("l")
  while srv:connections() < n and corio.now() - t0 < 120 do corio.sleep(0.01) end
  local took = corio.now() - t0
  collectgarbage()
  local conns, r1 = srv:connections(), rss()
  local per = (r1 - r0) / n
  report(("%d idle connections"):format(n),
         ("%.2f KiB server RSS each"):format(per / 1024),
         ready == "ready " .. n and conns == n and per <= 3 * 1024, "3 KiB")
  print(("  (%d connected in %.1f s; %d fds in this process, %d in the " ..
    "client's)"):format(conns, took, nfds(), nfds(proc.pid)))
  proc.stdin:close()
  local closed = proc.stdout:read("l")
  proc.stdout:close()
  local code = proc:wait()
  while srv:connections() > 0 and corio.now() - t0 < 240 do corio.sleep(0.01) end
  local left = srv:connections()
  local took2 = settle(r0 + 8 * 2^20, 10)
  report("  memory after they close", ("+%.1f MiB in %.1f s"):format((rss() - r0) / 2^20, took2),
         left == 0 and code == 0 and closed == "closed " .. n and
         rss() <= r0 + 8 * 2^20 and took2 <= 5, "+8 MiB within 5 s")
  srv:close()
  srv:wait_closed()
  local fd1 = fds_back(fd0)
  report("  fds after close", ("%d (start %d, the listener included)"):format(fd1, fd0),
         fd1 <= fd0, "start")
end)

item("cycles", function()
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
end)

-- A burst of tasks: RSS back to <= 10 % of the peak within 5 s.
item("tasks", function()
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
end)

-- {====================================================================
-- A slow reader of 1 GiB: the server's RSS stays flat, its write
-- buffer never passes the high-water mark (backpressure holds).
-- =====================================================================
item("slowreader", function()
  local bytes = math.max(64 * 2^20, math.floor(2^30 * SCALE)) // 1
  local rate = 100 * 2^20                 -- the reader's pace, bytes/s
  local HIGH = 64 * 1024
  local CH = BIG:sub(1, 251 * 261)        -- 65,511 bytes: every chunk the same
  local maxq, sent = 0, 0
  local done = corio.future()
  collectgarbage()
  local r0 = rss()
  local srv = net.serve("127.0.0.1", 0, function(s)
    s:set_write_buffer_limits(HIGH)
    local ok, err = pcall(function()
      while sent < bytes do
        local n = math.min(#CH, bytes - sent)
        s:write(n == #CH and CH or CH:sub(1, n))
        sent = sent + n
        local q = s:get_write_buffer_size()
        if q > maxq then maxq = q end
      end
      s:drain()
    end)
    done:set_result(ok or err)
  end)
  local _, port = srv:address()
  local t0 = corio.now()
  local proc
  local peak = peak_rss(function()
    proc = process.spawn({ CORIO, PEER, "slowread", port, bytes, rate },
                         { stdout = "pipe" })
    done:await()
  end)
  local out = proc.stdout:read("a")
  proc.stdout:close()
  local code = proc:wait()
  local took = corio.now() - t0
  srv:close()
  srv:wait_closed()
  local grew = (peak - r0) / 2^20
  report(("slow reader of %d MiB"):format(bytes // 2^20),
         ("%.0f MiB/s, server RSS +%.2f MiB"):format(bytes / took / 2^20, grew),
         done:result() == true and code == 0 and grew <= 2,
         "all bytes, RSS +2 MiB")
  if code ~= 0 then io.stderr:write("  reader: ", out) end
  report("  write buffer after each write", ("<= %d bytes"):format(maxq),
         maxq <= HIGH, ("high water %d"):format(HIGH))
end)

-- {====================================================================
-- A 50 MB line without a newline: read("l") raises LIMIT, RSS stays
-- bounded, and every byte can still be read afterwards.
-- =====================================================================
item("longline", function()
  local bytes = math.max(5 * 10^6, math.floor(50 * 10^6 * SCALE)) // 1
  local result = corio.future()
  collectgarbage()
  local r0 = rss()
  local srv = net.serve("127.0.0.1", 0, function(s)
    local ok, err = pcall(s.read, s, "l")
    local limit_ok = not ok and corio.Error.is(err, "LIMIT") and err.limit == 65536
    local got, bad = 0, 0
    while true do
      local d = s:read(65536)
      if not d then break end
      if d ~= piece(got, #d) then bad = bad + 1 end
      got = got + #d
    end
    result:set_result({ limit_ok = limit_ok, err = err, got = got, bad = bad })
  end)
  local _, port = srv:address()
  local proc
  local peak = peak_rss(function()
    proc = process.spawn({ CORIO, PEER, "flood", port, bytes })
    result:await()
  end)
  local code = proc:wait()
  srv:close()
  srv:wait_closed()
  local r = result:result()
  local grew = (peak - r0) / 2^20
  report(("%d MB line, no newline"):format(bytes // 10^6),
         ("%s, RSS +%.2f MiB"):format(r.limit_ok and "LIMIT" or tostring(r.err), grew),
         r.limit_ok and grew <= 4 and code == 0, "LIMIT, RSS +4 MiB")
  report("  bytes read after LIMIT", ("%d of %d, %d bad pieces"):format(r.got, bytes, r.bad),
         r.got == bytes and r.bad == 0, "all, in order")
end)

-- {====================================================================
-- 10,000 spawns: no zombie, fds back to start.  A third collect output
-- through pipes (process.exec), a third are waited for, a third are
-- forgotten (the runtime reaps them).
-- =====================================================================
item("spawns", function()
  local n = math.max(300, math.floor(10000 * SCALE))
  local fd0 = nfds()
  local bad, i = 0, 0
  local t0 = corio.now()
  local function worker()
    while i < n do
      i = i + 1
      local j = i
      local k = j % 3
      if k == 0 then
        local r = process.exec({ "echo", j })
        if r.code ~= 0 or r.stdout ~= j .. "\n" then bad = bad + 1 end
      elseif k == 1 then
        local p = process.spawn({ "true" }, { stdin = "null", stdout = "null" })
        if p:wait() ~= 0 then bad = bad + 1 end
      else
        process.spawn({ "true" }, { stdin = "null", stdout = "null" })
      end
    end
  end
  local ws = {}
  for w = 1, 8 do ws[w] = corio.spawn(worker) end
  for w = 1, 8 do ws[w]:await() end
  local took = corio.now() - t0
  -- The forgotten ones: wait (up to 30 s) until no child is left.
  local kids, left, zombies
  local t1 = corio.now()
  repeat
    corio.sleep(0.05)
    kids, left, zombies = children(), 0, 0
    for _, st in pairs(kids) do
      left = left + 1
      if st:find("Z") then zombies = zombies + 1 end
    end
  until left == 0 or corio.now() - t1 > 30
  collectgarbage()
  local fd1 = fds_back(fd0)
  report(("%d spawns"):format(n),
         ("%.0f/s, %d zombies, %d children left"):format(n / took, zombies, left),
         bad == 0 and left == 0, "no zombie, all exit 0")
  report("  fds after the spawns", ("%d (start %d)"):format(fd1, fd0), fd1 <= fd0, "start")
end)

-- {====================================================================
-- EMFILE under ulimit -n 64: a corio server in a child with 64 fds,
-- flooded with connections.  accept fails with EMFILE; the server burns
-- no CPU while it waits, and serves the queued clients once fds free.
-- =====================================================================
item("emfile", function()
  local n = 150
  local proc = process.spawn({ "sh", "-c", 'ulimit -n 64; exec "$0" "$1" echo_server',
                               CORIO, PEER }, { stdin = "pipe", stdout = "pipe" })
  local port = tonumber(proc.stdout:read("l"))
  local served, errors = 0, {}
  local conns, release = {}, require("corio.sync").Event()
  local clients = {}
  for c = 1, n do
    clients[c] = corio.spawn(function()
      local ok, err = pcall(function()
        local s = net.connect("127.0.0.1", port)
        conns[c] = s
        s:write(c, "\n")
        local line = s:read("l")
        if line ~= tostring(c) then error("wrong answer " .. tostring(line)) end
        served = served + 1
        release:wait()
        s:close()
      end)
      if not ok then errors[#errors + 1] = tostring(err) end
    end)
  end
  -- Wait until the server is out of fds (0-63 all open) and the count
  -- has stopped growing for half a second (or 30 s have passed).
  local last, since, t = -1, corio.now(), corio.now()
  while served < n and corio.now() - t < 30 do
    if served ~= last then last, since = served, corio.now() end
    if corio.now() - since >= 0.5 and nfds(proc.pid, 64) == 64 then break end
    corio.sleep(0.05)
  end
  local stuck, cfds = served, nfds(proc.pid, 64)
  local cpu0, t0 = cputime(proc.pid), corio.now()
  corio.sleep(3)
  local cpu = (cputime(proc.pid) - cpu0) / (corio.now() - t0)
  local still = served
  -- Free the fds: the first clients close, the rest are served.
  release:set()
  local t1 = corio.now()
  for c = 1, n do clients[c]:await() end
  local after = corio.now() - t1
  proc.stdin:close()
  local code = proc:wait()
  proc.stdout:close()
  report("EMFILE under ulimit -n 64",
         ("%d of %d served, %d of fds 0-63 open, %.1f %% CPU"):format(stuck, n, cfds, cpu * 100),
         stuck < n and cfds == 64 and still == stuck and cpu <= 0.05, "64 fds, stalls, CPU 5 %")
  report("  accepts again when fds free up",
         ("%d of %d served in %.1f s, exit %d"):format(served, n, after, code),
         served == n and #errors == 0 and code == 0, "all, exit 0")
  if #errors > 0 then io.stderr:write("  ", errors[1], "\n") end
end)

-- {====================================================================
-- kill -9, half-close and RST peers: only corio.Error values reach the
-- script (the handlers' pcall, the clients'), and healthy clients that
-- run meanwhile are unaffected.
-- =====================================================================
item("faults", function()
  local n = math.max(300, math.floor(600 * SCALE))
  local codes, strange = {}, {}
  local function tally(err)
    if corio.Error.is(err) and type(err.code) == "string" then
      codes[err.code] = (codes[err.code] or 0) + 1
    else
      strange[#strange + 1] = tostring(err)
    end
  end
  local faults = 0
  -- The server: a line with n, n bytes back, then EOF awaited.
  local CH = BIG:sub(1, 65536)
  local fd0 = nfds()
  local srv = net.serve("127.0.0.1", 0, function(s)
    local ok, err = pcall(function()
      local line = s:read("l")
      local want = tonumber(line)
      if not want then return end
      local left = want
      while left > 0 do
        local k = math.min(#CH, left)
        s:write(k == #CH and CH or CH:sub(1, k))
        left = left - k
      end
      s:read("a")
    end)
    if not ok then tally(err) end
  end)
  local _, port = srv:address()
  -- Healthy clients, meanwhile.
  local healthy, sick, stop = 0, {}, false
  local function healthy_client()
    while not stop do
      local ok, err = pcall(function()
        local s <close> = net.connect("127.0.0.1", port)
        s:write("100000\n")
        local d = s:readexactly(100000)
        if d ~= CH:rep(2):sub(1, 100000) then error("wrong answer") end
        s:shutdown()
      end)
      if ok then healthy = healthy + 1 else sick[#sick + 1] = tostring(err) end
    end
  end
  local hs = {}
  for h = 1, 4 do hs[h] = corio.spawn(healthy_client) end

  -- 1. RST and half-close clients (Python).
  local r = process.exec({ PYTHON, FAULTS, "clients", port, n })
  local halfclose = r.stdout:match("half%-close ok %d+ bad %d+") or r.stderr
  faults = faults + n

  -- 2. kill -9 clients: each asks for 1 GB, never reads, and is killed
  -- while the server is blocked writing to it.
  local nkill = math.max(10, math.floor(40 * SCALE))
  local killed = 0
  for _ = 1, nkill do
    local p = process.spawn({ CORIO, PEER, "hog", port, 1000000000 }, { stdout = "pipe" })
    if p.stdout:read("l") == "ready" then
      corio.sleep(0.02)
      p:kill("SIGKILL")
      if select(2, p:wait()) == "SIGKILL" then killed = killed + 1 end
    end
    p.stdout:close()
  end
  faults = faults + nkill

  -- 3. A faulting server (Python): resets, half answers, half-closes.
  local m = math.max(100, math.floor(400 * SCALE)) // 4 * 4
  local ps = process.spawn({ PYTHON, FAULTS, "server", m }, { stdout = "pipe" })
  local fport = tonumber(ps.stdout:read("l"))
  local complete, i = 0, 0
  local function faulty_client()
    while i < m do
      i = i + 1
      local ok, err = pcall(function()
        local s <close> = net.connect("127.0.0.1", fport)
        s:write("100000\n")
        local d = s:read("a")
        if #d == 100000 then complete = complete + 1 end
      end)
      if not ok then tally(err) end
    end
  end
  local cs = {}
  for c = 1, 8 do cs[c] = corio.spawn(faulty_client) end
  for c = 1, 8 do cs[c]:await() end
  local scode = ps:wait()
  ps.stdout:close()
  faults = faults + m

  -- 4. kill -9 of that server with clients connected.
  local nk = math.max(10, math.floor(50 * SCALE))
  ps = process.spawn({ PYTHON, FAULTS, "server", 1000000 }, { stdout = "pipe" })
  fport = tonumber(ps.stdout:read("l"))
  local waiting, gone = {}, 0
  for c = 1, nk do
    waiting[c] = corio.spawn(function()
      local ok, err = pcall(function()
        local s <close> = net.connect("127.0.0.1", fport)
        s:write("1000000000\n")
        s:read("a")
      end)
      if not ok then tally(err) end
      gone = gone + 1
    end)
  end
  corio.sleep(0.2)
  ps:kill("SIGKILL")
  for c = 1, nk do waiting[c]:await() end
  ps:wait()
  ps.stdout:close()
  faults = faults + nk

  stop = true
  for h = 1, 4 do hs[h]:await() end
  while srv:connections() > 0 do corio.sleep(0.01) end
  srv:close()
  srv:wait_closed()
  collectgarbage()
  local fd1 = fds_back(fd0)
  local seen, nerr = {}, 0
  for code, k in pairs(codes) do
    seen[#seen + 1] = code .. " " .. k
    nerr = nerr + k
  end
  table.sort(seen)
  report(("%d peer faults"):format(faults),
         ("%d corio.Error, %d other"):format(nerr, #strange),
         #strange == 0 and r.code == 0 and killed == nkill and scode == 0 and gone == nk,
         "only corio.Error")
  print("  " .. table.concat(seen, ", "))
  if #strange > 0 then io.stderr:write("  ", strange[1], "\n") end
  report("  " .. halfclose, ("%d of %d half-closing servers' answers whole"):format(complete, m // 4),
         r.code == 0 and complete == m // 4, "all whole")
  report("  healthy clients meanwhile", ("%d round trips, %d failed"):format(healthy, #sick),
         #sick == 0 and healthy > 0, "none failed")
  if #sick > 0 then io.stderr:write("  ", sick[1], "\n") end
  report("  fds after the faults", ("%d (start %d)"):format(fd1, fd0), fd1 <= fd0, "start")
end)

print(failed == 0 and "soak: all passed" or ("soak: %d failed"):format(failed))
if failed > 0 then os.exit(1) end
