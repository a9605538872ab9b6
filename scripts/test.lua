--[[
corio.test -- `corio test [paths]`: Debian's busted, run inside corio.

The whole busted run happens in the binary's main task, so every test
body (and before_each/after_each) may await.  After each test the runner
lets the loop settle and checks that the test left nothing alive: no task
besides the runner, no pending callback or timer, no active handle.  A
leak fails the test (and is cleaned up so the next test starts clean).
The run ends with the line `N passed, N failed` and exits 1 on failure.
`--gc-pause=N` sets the collector's pause first (0: a new cycle starts
as soon as one ends, so finalizers and weak tables are exercised at
every allocation; CI runs the suite once that way).
]]
local corio = require "corio"
local core = require "corio.core"

local M = {}

-- Lets cancelled or finishing tasks unwind: a few loop turns, then a
-- wait for pending timers (bounded).
local function settle()
  for _ = 1, 3 do corio.yield() end
  collectgarbage()
  collectgarbage()
  local deadline = corio.now() + 2
  while corio.now() < deadline do
    local s = core.stats()
    if s.tasks <= 1 and s.callbacks == 0 and s.timers == 0 and s.handles == 0 then
      break
    end
    corio.sleep(0.01)
  end
end

local function leaks()
  local s = core.stats()
  local out = {}
  if s.tasks > 1 then out[#out + 1] = (s.tasks - 1) .. " task(s)" end
  if s.callbacks > 0 then out[#out + 1] = s.callbacks .. " callback(s)" end
  if s.timers > 0 then out[#out + 1] = s.timers .. " timer(s)" end
  if s.handles > 0 then out[#out + 1] = s.handles .. " handle(s)" end
  if #out > 0 then return table.concat(out, ", ") end
end

-- Cancels whatever a test left behind and waits for it to unwind.
local function cleanup()
  core.cancel_others("test left it running")
  settle()
end

local function fullname(element, busted)
  local names = {}
  local e = element
  while e and e.descriptor ~= "file" do
    if e.name then table.insert(names, 1, e.name) end
    e = busted.context.parent(e)
  end
  return table.concat(names, " ")
end

function M.main(args)
  local paths = {}
  for i = 1, args.n or #args do
    local pause = args[i]:match("^%-%-gc%-pause=(%d+)$")
    if pause then collectgarbage("setpause", tonumber(pause))
    elseif args[i]:match("^%-%-gc%-pause") then
      io.stderr:write("corio test: --gc-pause wants a whole number (percent)\n")
      core.exit_code(1)
      return
    else paths[#paths + 1] = args[i] end
  end
  if #paths == 0 then paths[1] = "tests" end
  for _, p in ipairs(paths) do       -- busted's loader fails obscurely
    local f = io.open(p)
    if not f then
      io.stderr:write("corio test: ", p, ": no such file or directory\n")
      core.exit_code(1)
      return
    end
    f:close()
  end

  require("busted.languages.en")            -- busted's messages
  local busted = require("busted.core")()
  require("busted")(busted)
  busted.register("file", "file", {})

  local passed, failed, skipped = 0, 0, 0
  local reports = {}

  local function report(name, message, trace)
    failed = failed + 1
    local where = trace and trace.short_src and
      (trace.short_src .. ":" .. tostring(trace.currentline)) or ""
    reports[#reports + 1] = string.format("FAIL %s\n  %s %s\n", name, where,
      tostring(message))
    io.stdout:write("F")
    io.stdout:flush()
  end

  -- busted publishes "test end" *before* it runs the after_each hooks, so
  -- the end handler only records the outcome; the leak check runs in an
  -- after_each hook on the root context, which busted runs after every
  -- other after_each (innermost first): cleanup done in after_each counts.
  local last                  -- {name=, ok=} of the test being torn down
  busted.subscribe({ "test", "end" }, function(element, parent, status, trace)
    if status == "pending" then
      skipped = skipped + 1
      io.stdout:write("-")
    else
      last = { name = fullname(element, busted), ok = status == "success" }
    end
    return nil, true
  end)
  busted.executors.after_each(function()
    local t = last
    last = nil
    settle()
    local leak = leaks()
    if t and t.ok and leak then
      report(t.name, "left alive after the test: " .. leak)
    elseif t and t.ok then
      passed = passed + 1
      io.stdout:write(".")
      io.stdout:flush()
    end
    if leak then cleanup() end
  end)

  busted.subscribe({ "failure", "it" }, function(element, parent, message, trace)
    report(fullname(element, busted), message, trace)
    return nil, true
  end)
  busted.subscribe({ "error", "it" }, function(element, parent, message, trace)
    report(fullname(element, busted), message, trace)
    return nil, true
  end)
  for _, what in ipairs { "file", "describe", "before_each", "after_each" } do
    for _, kind in ipairs { "failure", "error" } do
      busted.subscribe({ kind, what }, function(element, parent, message, trace)
        report((element.name or what) .. " (" .. what .. ")", message, trace)
        return nil, true
      end)
    end
  end
  busted.subscribe({ "error" }, function(element, parent, message)
    if element and element.descriptor == nil then
      report("(loading tests)", message)     -- e.g. no test files match
    end
    return nil, true
  end)

  local loader = require("busted.modules.test_file_loader")(busted, { "lua" })
  loader(paths, { "_spec" }, { excludes = {}, verbose = false, recursive = true })
  local execute = require("busted.execute")(busted)
  execute(1, { seed = 1, shuffle = false, sort = true })
  busted.publish({ "exit" })

  io.stdout:write("\n")
  for _, r in ipairs(reports) do io.stdout:write(r) end
  local line = string.format("%d passed, %d failed", passed, failed)
  if skipped > 0 then line = line .. string.format(", %d skipped", skipped) end
  io.stdout:write(line, "\n")
  io.stdout:flush()
  if failed > 0 or passed == 0 then core.exit_code(1) end
end

return M
