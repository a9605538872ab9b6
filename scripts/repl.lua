--[[
corio.repl -- the REPL of `corio -i` (and of `corio` on a terminal).

Every entered chunk runs in a task of its own, so it may await, and the
main task awaits it.  An expression's values are pretty-printed
(corio._pretty) and the first is kept in `_`; an incomplete statement
reads more lines.  On a terminal, lines are edited with libedit
(corio.edit: history in ~/.corio_history, Tab completion); elsewhere
plain lines are read from stdin with no prompt or escape code, so the
REPL can be scripted.

Ctrl-C (core.on_interrupt takes SIGINT from the binary's default):
  - while a line runs: cancels its task (its cleanup runs), back to the
    prompt;
  - at a prompt with text: clears it;
  - at an empty prompt: says how to leave; a second one leaves.
Ctrl-D at an empty prompt leaves; if a server or task still keeps the
loop alive, the REPL says what is open and that Ctrl-C stops it.
]]
local corio = require "corio"
local core = require "corio.core"
local pretty = require "corio._pretty"

local INTERRUPTED = {}        -- what a prompt read returns after Ctrl-C
local HISTORY_MAX = 1000

local function history_path()
  local p = os.getenv("CORIO_HISTORY")
  if p then return p ~= "" and p or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.corio_history") or nil
end

-- Where a line comes from: libedit on a terminal, plain stdin otherwise.
local function terminal_input(edit)
  local reading                 -- the future of the prompt being read
  edit.open(history_path(), HISTORY_MAX)
  edit.complete(require("corio._complete").complete)
  local input = { tty = true }
  function input.read(prompt)
    reading = corio.future()
    local f = reading
    edit.read(prompt, function(line)
      if not f:done() then f:set_result(line) end
    end)
    local line = f:await()
    reading = nil
    if type(line) == "string" and line:find("%S") then edit.add(line) end
    return line
  end
  -- Ctrl-C at the prompt: the text typed so far, or nil if no prompt.
  function input.interrupt()
    if not reading then return nil end
    local text = edit.abort()
    io.stdout:write("\n")
    io.stdout:flush()
    local f = reading
    reading = nil
    f:set_result(INTERRUPTED)
    return text or ""
  end
  function input.close() edit.close() end
  return input
end

local function plain_input()
  local input = { tty = false }
  local reader
  function input.read()
    reader = corio.current()
    local ok, line = pcall(corio.stdin.read, corio.stdin, "l")
    reader = nil
    if not ok then
      if corio.is_cancelled(line) then return INTERRUPTED end
      error(line, 0)
    end
    return line
  end
  function input.interrupt()
    if not reader then return nil end
    reader:cancel("interrupted")
    return ""
  end
  function input.close() end
  return input
end

-- The traceback of a failed line, without the REPL's own frames.
local function handler(err)
  if type(err) ~= "string" then return err end
  local tb = debug.traceback(err, 2)
  local keep = {}
  for l in tb:gmatch("[^\n]+") do
    if l:find("corio/repl.lua", 1, true) or
       l:find("[C]: in function 'xpcall'", 1, true) then
      break
    end
    keep[#keep + 1] = l
  end
  if keep[#keep] == "stack traceback:" then keep[#keep] = nil end
  return table.concat(keep, "\n")
end

-- libuv's handle types, in corio's words.
local KIND_NAMES = {
  poll = "socket/server", tcp = "TCP socket/server", pipe = "pipe/unix socket",
  udp = "UDP socket", process = "child process", signal = "signal watcher",
  fs_event = "file watcher", fs_poll = "file watcher", timer = "timer",
  tty = "terminal", async = "port",
}

-- What still keeps the loop alive once the REPL is left.
local function still_open()
  local s = core.stats()
  local out = {}
  if s.tasks > 1 then out[#out + 1] = (s.tasks - 1) .. " task(s)" end
  if s.handles > 0 then
    local kinds = {}
    for k, n in pairs(core.handle_kinds()) do
      kinds[#kinds + 1] = n .. " " .. (KIND_NAMES[k] or k)
    end
    table.sort(kinds)
    out[#out + 1] = s.handles .. " handle(s) (" .. table.concat(kinds, ", ")
      .. ")"
  end
  if s.timers > 0 then out[#out + 1] = s.timers .. " timer(s)" end
  return #out > 0 and table.concat(out, ", ") or nil
end

local function compile(src)
  local chunk, err = load("return " .. src, "=stdin")
  if not chunk then chunk, err = load(src, "=stdin") end
  if not chunk and err:find("<eof>$") then return nil, nil, true end
  return chunk, err
end

local function show(res)
  local parts = {}
  for i = 2, res.n do parts[#parts + 1] = pretty.show(res[i]) end
  io.stdout:write(table.concat(parts, "\t"), "\n")
  io.stdout:flush()
  rawset(_G, "_", res[2])
end

return function()
  local edit
  local ok_edit, mod = pcall(require, "corio.edit")
  if ok_edit and mod.isatty(0) and mod.isatty(1) then edit = mod end
  local input = edit and terminal_input(edit) or plain_input()
  local running                 -- the task of the line being run
  local warned = false          -- Ctrl-C once at an empty prompt

  core.on_interrupt(function(delivered)
    -- delivered: the interrupt hook already raised CANCELLED in the line
    -- that was spinning; by now that line may have ended and the prompt be
    -- back, which this Ctrl-C was not meant for.
    if delivered then return end
    if running then
      running:cancel("interrupted")
      return
    end
    local text = input.interrupt()
    if text == nil then return end
    if not input.tty then return end
    if text ~= "" then warned = false return end
    if warned then
      input.leave = true
    else
      warned = true
      io.stdout:write("(To exit, press Ctrl-C again or Ctrl-D)\n")
      io.stdout:flush()
    end
  end)

  if input.tty then
    io.stdout:write("corio ", corio.version, " (", _VERSION, ") -- every",
                    " line runs in a task and may await; Ctrl-D exits\n")
  end
  local pending = ""
  while not input.leave do
    local line = input.read(pending == "" and "> " or ">> ")
    if line == INTERRUPTED then
      if not input.tty then core.exit_code(130) break end
      pending = ""
    elseif line == nil then
      if input.tty then io.stdout:write("\n") end
      break
    else
      if line:find("%S") then warned = false end
      local src = pending .. line
      local chunk, err, more = compile(src)
      if more then
        pending = src .. "\n"
      elseif not chunk then
        pending = ""
        io.stderr:write(err, "\n")
      else
        pending = ""
        running = corio.spawn(function()
          return table.pack(xpcall(chunk, handler))
        end)
        local ok, res = pcall(running.await, running)
        running = nil
        if not ok then res = { false, res, n = 2 } end
        if not res[1] then
          local e = res[2]
          if corio.is_cancelled(e) and tostring(e):find("interrupted") then
            io.stderr:write("interrupted\n")
          else
            io.stderr:write(tostring(e), "\n")
          end
        elseif res.n > 1 then
          show(res)
        end
      end
    end
  end
  core.on_interrupt(nil)
  input.close()
  local open = still_open()
  if open then
    io.stderr:write("corio: still running: ", open, "; press Ctrl-C to ",
                    "stop them\n")
  end
end
