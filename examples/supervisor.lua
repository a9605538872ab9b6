--[[
supervisor.lua -- keep a child process running: restart it when it
crashes (with exponential backoff, up to a limit), and forward SIGTERM
to it so that `kill <supervisor>` stops the child cleanly first.

  * the child's exit status comes from proc:wait() -- it is reaped by the
    runtime whether or not we wait, so no zombie is left behind;
  * SIGTERM and SIGHUP reach us through signal.on as loop callbacks; we
    pass them on with proc:kill(), which never signals a pid whose exit
    was already seen;
  * a clean exit (code 0) ends supervision; so does the restart limit.

Run: corio examples/supervisor.lua [-n MAX_RESTARTS] [-- CMD ARGS...]
Without a command it runs a demo: a child that crashes twice, then a
SIGTERM that the supervisor sends itself after 1.5 s, as `kill` would.
]]
local corio = require "corio"
local process = require "corio.process"
local signal = require "corio.signal"

local max_restarts, cmd = 5, nil
local i = 1
while i <= #arg do
  if arg[i] == "-n" then i = i + 1; max_restarts = assert(tonumber(arg[i]))
  elseif arg[i] == "--" then cmd = table.move(arg, i + 1, #arg, 1, {}); break
  else io.stderr:write("usage: corio examples/supervisor.lua [-n N] [-- CMD ...]\n"); os.exit(2) end
  i = i + 1
end

local demo = cmd == nil or #cmd == 0
if demo then
  -- Crashes on its first two runs (it counts them in a file), then runs
  -- until SIGTERM.
  local state = os.tmpname()
  cmd = { "sh", "-c", [[
    n=$(cat "$0" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$0"
    if [ $n -le 2 ]; then echo "  child $$: run $n, crashing"; exit 3; fi
    trap 'echo "  child $$: got SIGTERM, cleaning up"; exit 0' TERM
    echo "  child $$: run $n, serving"
    while :; do sleep 0.05; done
  ]], state }
  corio.spawn(function()
    corio.sleep(1.5)
    print("demo: sending SIGTERM to the supervisor (pid " .. process.pid .. ")")
    process.kill(process.pid, "SIGTERM")
    corio.sleep(0.5)
    os.remove(state)
  end)
end

local function log(fmt, ...) print(("supervisor: " .. fmt):format(...)) end

local child, stopping = nil, nil
local wakeup = corio.future()            -- resolved to stop a backoff
local function forward(name)
  stopping = name
  if child and child:kill(name) then log("forwarded %s to %d", name, child.pid) end
  if not wakeup:done() then wakeup:set_result() end
end
local term <close> = signal.on("SIGTERM", forward)
local hup <close> = signal.on("SIGHUP", forward)

local restarts, backoff = 0, 0.1
while true do
  local ok, p = pcall(process.spawn, cmd)
  if not ok then log("cannot start %s: %s", cmd[1], tostring(p)); os.exit(1) end
  child = p
  log("started %s (pid %d)", cmd[1], child.pid)
  local code, sig = child:wait()
  log("pid %d exited with %d%s", child.pid, code, sig and (" (" .. sig .. ")") or "")
  if stopping then log("stopped by %s", stopping); break end
  if code == 0 then log("clean exit, done"); break end
  restarts = restarts + 1
  if restarts > max_restarts then log("giving up after %d restarts", max_restarts); os.exit(1) end
  log("restart %d in %.1f s", restarts, backoff)
  corio.wait({ wakeup }, { timeout = backoff })
  if stopping then log("stopped by %s during backoff", stopping); break end
  backoff = math.min(backoff * 2, 5)
end
