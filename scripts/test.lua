--[[
corio.test -- `corio test [paths]`: Debian's busted, run inside corio.

The whole busted run happens in the binary's main task, so every test
body (and before_each/after_each) may await.  After each test the runner
lets the loop settle and checks that the test left nothing alive: no task
besides the runner, no pending callback or timer, no active handle.  A
leak fails the test (and is cleaned up so the next test starts clean).
The run ends with the line `N passed, N failed` and exits 1 on failure.
Options (see USAGE): --filter/--exclude, --list, --shuffle with a printed
seed, --output=junit, a per-test --timeout; with no path, spec/ and tests/
(those that exist) are searched, busted's convention and corio's.
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
  if s.handles > 0 then
    local kinds = {}
    for k, n in pairs(core.handle_kinds()) do kinds[#kinds + 1] = n .. " " .. k end
    table.sort(kinds)
    out[#out + 1] = s.handles .. " handle(s) (" .. table.concat(kinds, ", ")
      .. ")"
  end
  if #out == 0 then return nil end
  if core.debugging() then             -- CORIO_DEBUG=1: where they were made
    local seen, sites = {}, {}
    for _, h in ipairs(require("corio.debug").handles()) do
      local key = h.kind .. " created at " .. h.created
      if h.active and not seen[key] then
        seen[key] = true
        sites[#sites + 1] = key
      end
    end
    table.sort(sites)
    if #sites > 0 then out[#out + 1] = table.concat(sites, ", ") end
  end
  return table.concat(out, ", ")
end

-- Cancels whatever a test left behind and waits for it to unwind.
local function cleanup()
  core.cancel_others("test left it running")
  core.close_others()          -- a server, watcher or handler left open
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

local USAGE = [[
usage: corio test [options] [paths]
  --filter=PAT    run only tests whose full name matches the Lua pattern
  --exclude=PAT   skip tests whose full name matches
  --list          list the tests, run nothing
  --shuffle[=N]   random order (seed N, else a new one, printed)
  --output=junit  JUnit XML on stdout, the summary line on stderr
  --timeout=S     cancel a test still awaiting after S seconds
  --gc-pause=N    the collector's pause (0: collect all the time)
With no path: spec/ and tests/, those that exist.
]]

local function usage_error(msg)
  io.stderr:write("corio test: ", msg, "\n", USAGE)
  core.exit_code(1)
end

-- Parses options; returns opts, paths (nil after --help or an error).
local function parse(args)
  local o = { filter = {}, filterOut = {}, tags = {}, excludeTags = {} }
  local paths = {}
  local i, n = 1, args.n or #args
  while i <= n do
    local a = args[i]
    local key, val = a:match("^%-%-([%w_-]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_-]+)$") end
    local function value()
      if val then return val end
      i = i + 1
      return args[i] or ""
    end
    if key == "filter" then o.filter[#o.filter + 1] = value()
    elseif key == "exclude" or key == "filter-out" then
      o.filterOut[#o.filterOut + 1] = value()
    elseif key == "list" then o.list = true
    elseif key == "shuffle" then
      o.shuffle = true
      o.seed = val and tonumber(val)
    elseif key == "seed" then o.seed = tonumber(value())
    elseif key == "output" then o.output = value()
    elseif key == "timeout" then o.timeout = tonumber(value())
    elseif key == "gc-pause" then
      local pause = tonumber(value())
      if not pause or pause < 0 or pause % 1 ~= 0 then
        return usage_error("--gc-pause wants a whole number (percent)")
      end
      collectgarbage("setpause", pause)
    elseif key == "help" then
      io.stdout:write(USAGE)
      return nil
    elseif key or a:match("^%-") then
      return usage_error("unknown option '" .. a .. "'")
    else
      paths[#paths + 1] = a
    end
    i = i + 1
  end
  if o.output and o.output ~= "junit" then
    return usage_error("--output: only 'junit' is known")
  end
  if o.timeout ~= nil and not (o.timeout > 0) then
    return usage_error("--timeout needs a positive number of seconds")
  end
  return o, paths
end

local function exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end

local function xml(s)
  s = tostring(s):gsub("[<>&\"]", { ["<"] = "&lt;", [">"] = "&gt;",
    ["&"] = "&amp;", ['"'] = "&quot;" })
  return (s:gsub("[%z\1-\8\11\12\14-\31]", "?"))
end

-- The JUnit XML report CI systems read.
local function junit(cases, seconds)
  local nfail = 0
  for _, c in ipairs(cases) do if c.failure then nfail = nfail + 1 end end
  local out = { '<?xml version="1.0" encoding="UTF-8"?>',
    string.format('<testsuites><testsuite name="corio test" tests="%d" ' ..
                  'failures="%d" errors="0" time="%.3f">', #cases, nfail,
                  seconds) }
  for _, c in ipairs(cases) do
    local head = string.format('  <testcase classname="%s" name="%s" ' ..
                               'time="%.3f"', xml(c.file or ""),
                               xml(c.name), c.time or 0)
    if c.failure then
      out[#out + 1] = head .. '>'
      out[#out + 1] = '    <failure message="' ..
        xml(c.failure:match("[^\n]*")) .. '">' .. xml(c.failure) ..
        '</failure>'
      out[#out + 1] = '  </testcase>'
    elseif c.skipped then
      out[#out + 1] = head .. '><skipped/></testcase>'
    else
      out[#out + 1] = head .. '/>'
    end
  end
  out[#out + 1] = '</testsuite></testsuites>'
  return table.concat(out, "\n") .. "\n"
end

function M.main(args)
  local opts, paths = parse(args)
  if not opts then return end
  if #paths == 0 then
    for _, p in ipairs { "spec", "tests" } do
      if exists(p) then paths[#paths + 1] = p end
    end
    if #paths == 0 then paths[1] = "tests" end
  end
  local quiet = opts.output == "junit" or opts.list
  local function progress(c)
    if quiet then return end
    io.stdout:write(c)
    io.stdout:flush()
  end
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
  local cases = {}              -- for --output=junit
  local started = corio.now()
  local me = corio.current()
  local timer                   -- --timeout of the running test
  local t_start

  local function report(name, message, trace)
    failed = failed + 1
    local where = trace and trace.short_src and
      (trace.short_src .. ":" .. tostring(trace.currentline)) or ""
    reports[#reports + 1] = string.format("FAIL %s\n  %s %s\n", name, where,
      tostring(message))
    cases[#cases + 1] = { name = name, file = trace and trace.short_src,
                          failure = where .. " " .. tostring(message),
                          time = t_start and corio.now() - t_start }
    progress("F")
  end

  -- --timeout: a test still awaiting after it is cancelled (its cleanup
  -- runs) and fails with "test timed out"; one that never awaits cannot
  -- be stopped this way.
  busted.subscribe({ "test", "start" }, function()
    t_start = corio.now()
    if opts.timeout then
      timer = corio.call_later(opts.timeout, function()
        me:cancel(string.format("test timed out after %g s", opts.timeout))
      end)
    end
    return nil, true
  end)
  local function disarm()
    if timer then
      timer:cancel()
      timer = nil
      while me:cancelling() > 0 do me:uncancel() end
    end
  end

  -- busted publishes "test end" *before* it runs the after_each hooks, so
  -- the end handler only records the outcome; the leak check runs in an
  -- after_each hook on the root context, which busted runs after every
  -- other after_each (innermost first): cleanup done in after_each counts.
  local last                  -- {name=, ok=} of the test being torn down
  busted.subscribe({ "test", "end" }, function(element, parent, status, trace)
    if status == "pending" then
      skipped = skipped + 1
      cases[#cases + 1] = { name = fullname(element, busted), skipped = true }
      progress("-")
    else
      last = { name = fullname(element, busted), ok = status == "success",
               file = element.trace and element.trace.short_src }
    end
    return nil, true
  end)
  busted.executors.after_each(function()
    local t = last
    last = nil
    disarm()
    settle()
    local leak = leaks()
    if t and t.ok and leak then
      report(t.name, "left alive after the test: " .. leak)
    elseif t and t.ok then
      passed = passed + 1
      cases[#cases + 1] = { name = t.name, file = t.file,
                            time = t_start and corio.now() - t_start }
      progress(".")
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

  require("busted.modules.filter_loader")()(busted, opts)
  local loader = require("busted.modules.test_file_loader")(busted, { "lua" })
  loader(paths, { "_spec" }, { excludes = {}, verbose = false, recursive = true })
  local execute = require("busted.execute")(busted)
  local seed = opts.seed or (os.time() % 1000000)
  if opts.shuffle then
    io.stderr:write("corio test: shuffled with seed ", seed,
                    " (--shuffle=", seed, " repeats this order)\n")
  end
  execute(1, { seed = seed, shuffle = opts.shuffle or false,
               sort = not opts.shuffle })
  busted.publish({ "exit" })
  if opts.list then return end

  local line = string.format("%d passed, %d failed", passed, failed)
  if skipped > 0 then line = line .. string.format(", %d skipped", skipped) end
  if opts.output == "junit" then
    io.stdout:write(junit(cases, corio.now() - started))
    io.stdout:flush()
    for _, r in ipairs(reports) do io.stderr:write(r) end
    io.stderr:write(line, "\n")
  else
    io.stdout:write("\n")
    for _, r in ipairs(reports) do io.stdout:write(r) end
    io.stdout:write(line, "\n")
    io.stdout:flush()
  end
  if failed > 0 or passed == 0 then core.exit_code(1) end
end

return M
