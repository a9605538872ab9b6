--[[
corio.cli -- the body of the binary's main task.

main.c parses the command line and spawns the function returned here as
the main task, with a list of actions and the script's arguments; running
them in Lua, inside the task's coroutine, lets a script's top level await.
]]
local core = require "corio.core"

-- A chunk that does not load (missing file, syntax error) is reported as
-- lua.c does: the message alone, no traceback through this file.
local function check(chunk, err)
  if not chunk then
    io.stderr:write("corio: ", err, "\n")
    core.exit_code(1)
  end
  return chunk
end

-- Ctrl-C in the REPL: interrupt what runs and go back to the prompt.
-- A line that spins gets CANCELLED "interrupted" from the interrupt hook
-- (delivered); otherwise the main task is cancelled here, which ends the
-- line's await or the prompt's read.  Returns the predicate that tells
-- such an interruption (taken back: uncancel) from any other error.
local function on_ctrl_c(corio)
  local me = corio.current()
  core.on_interrupt(function(delivered)
    if not delivered then me:cancel("interrupted") end
  end)
  return function(err)
    if not (corio.is_cancelled(err) and err.message == "interrupted") then
      return false
    end
    if me:cancelling() > 0 then me:uncancel() end
    io.stderr:write("interrupted\n")
    return true
  end
end

-- The REPL: every line runs in the main task, so it may await.  An
-- expression's values are printed; an incomplete statement reads more
-- lines.  Ctrl-C interrupts the line (see on_ctrl_c); any other
-- cancellation ends the REPL after the line unwinds.
local function repl()
  local corio = require "corio"
  local stdin = corio.stdin
  local interrupted = on_ctrl_c(corio)
  io.stdout:write("corio ", corio.version, " -- every line runs in a task",
                  " and may await\n")
  local pending = ""
  while true do
    io.stdout:write(pending == "" and "> " or ">> ")
    io.stdout:flush()
    local ok, line = pcall(stdin.read, stdin, "l")
    if not ok then
      if not interrupted(line) then error(line, 0) end
      pending = ""                            -- back to a fresh prompt
      goto continue
    end
    if line == nil then
      io.stdout:write("\n")
      return
    end
    do
    local src = pending .. line
    local chunk, err = load("return " .. src, "=stdin")
    if not chunk then chunk, err = load(src, "=stdin") end
    if not chunk and err:find("<eof>$") then
      pending = src .. "\n"                   -- incomplete: read on
    else
      pending = ""
      if not chunk then
        io.stderr:write(err, "\n")
      else
        local res = table.pack(xpcall(chunk, debug.traceback))
        if not res[1] then
          if not interrupted(res[2]) then
            io.stderr:write(tostring(res[2]), "\n")
            if corio.is_cancelled(res[2]) then return end
          end
        elseif res.n > 1 then
          print(table.unpack(res, 2, res.n))
        end
      end
    end
    end
    ::continue::
  end
end

return function(actions, args)
  for _, a in ipairs(actions) do
    if a.kind == "e" then
      local chunk = check(load(a.code, "=(command line)"))
      if not chunk then return end
      chunk()
    elseif a.kind == "l" then
      local name, mod = a.module:match("^([^=]+)=(.+)$")
      name, mod = name or a.module, mod or a.module
      _G[name] = require(mod)
    elseif a.kind == "script" then
      local chunk = check(loadfile(a.path))
      if not chunk then return end
      return chunk(table.unpack(args, 1, args.n))
    elseif a.kind == "test" then
      return require("corio.test").main(args)
    elseif a.kind == "i" then
      repl()
    end
  end
end
