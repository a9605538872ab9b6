-- Regression (issue 15, point 1): a task that never yields can be
-- stopped.  Before, `while true do end` ignored two Ctrl-C, --debug said
-- nothing and SIGQUIT dumped nothing: all waited for the loop, which never
-- came back.  Each case runs a real corio child and signals it once it has
-- printed that it is spinning.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "../support.lua")

describe("regress: interrupting a step that never yields", function()
  after_each(S.cleanup)

  it("SIGINT raises CANCELLED in the spinning task: its cleanup runs, " ..
     "the main task is cancelled, exit 130", function()
    local c = S.child [[
      local corio = require "corio"
      corio.spawn(function()
        local _ <close> = setmetatable({}, { __close = function(_, e)
          print("spinner cleanup", corio.is_cancelled(e), e and e.message)
        end })
        print("spinning")
        io.stdout:flush()
        while true do end
      end)
      local _ <close> = setmetatable({}, { __close = function(_, e)
        print("main cleanup", corio.is_cancelled(e))
      end })
      corio.sleep(60)
    ]]
    c:expect("out", "spinning")
    c:kill("SIGINT")
    local code, out = c:finish()
    assert.equal(130, code)
    assert.equal("spinning\nspinner cleanup\ttrue\tinterrupted\n" ..
                 "main cleanup\ttrue\n", out)
  end)

  it("SIGINT stops a spinning main chunk (exit 130, reported once)",
     function()
    local c = S.child [[
      print("spinning")
      io.stdout:flush()
      local x = 0
      while true do x = x + 1 end
    ]]
    c:expect("out", "spinning")
    c:kill("SIGINT")
    local code, _, err = c:finish()
    assert.equal(130, code)
    assert.matches("^corio: CANCELLED: interrupted", err)
    assert.equal(1, S.count(err, "stack traceback:"))
  end)

  it("SIGINT stops a spinning callback", function()
    local c = S.child [[
      local corio = require "corio"
      corio.call_soon(function()
        print("spinning")
        io.stdout:flush()
        while true do end
      end)
      corio.sleep(60)
    ]]
    c:expect("out", "spinning")
    c:kill("SIGINT")
    local code, _, err = c:finish()
    assert.equal(130, code)
    assert.matches("interrupted", err)
  end)

  it("a second SIGINT exits 130 at once, even from a spin that swallows " ..
     "the first", function()
    local c = S.child [[
      local first = true
      while true do
        local ok, e = pcall(function()
          if first then                 -- inside the pcall: the hook may
            first = false               -- fire as print returns
            print("spinning")
            io.stdout:flush()
          end
          while true do end
        end)
        if not ok and not printed then
          printed = true
          print("swallowed " .. tostring(e.message))
          io.stdout:flush()
        end
      end
    ]]
    c:expect("out", "spinning")
    c:kill("SIGINT")
    c:expect("out", "swallowed interrupted")
    c:kill("SIGINT")
    local code = c:finish(20)
    assert.equal(130, code)
  end)

  it("--debug reports a step running over 100 ms while it runs, with the " ..
     "task's name and line", function()
    local c = S.child([[
      local corio = require "corio"
      local t = corio.spawn(function()
        print("spinning")
        io.stdout:flush()
        while true do end         -- line 5
      end)
      t:set_name("spinner")
      corio.sleep(60)
    ]], { pre = { "--debug" } })
    c:expect("out", "spinning")
    c:expect("err", "task spinner has run for")
    c:expect("err", "script.lua:5:")
    c:kill("SIGINT")
    assert.equal(130, c:finish())
  end)

  it("--debug: SIGQUIT dumps every task during a spin, the spinning one " ..
     "with where it is", function()
    local c = S.child([[
      local corio = require "corio"
      local w = corio.spawn(function() corio.sleep(60) end)
      w:set_name("sleeper")
      local t = corio.spawn(function()
        print("spinning")
        io.stdout:flush()
        while true do end         -- line 7
      end)
      t:set_name("spinner")
      corio.sleep(60)
    ]], { pre = { "--debug" } })
    c:expect("out", "spinning")
    c:kill("SIGQUIT")
    c:expect("err", "--- spinner (running)")
    c:expect("err", "script.lua:7:")
    c:expect("err", "--- sleeper (waiting)")
    c:kill("SIGINT")
    assert.equal(130, c:finish())
  end)

  it("the REPL: Ctrl-C interrupts a spinning line, an awaiting line and " ..
     "the prompt, and the REPL goes on", function()
    local c = S.child(nil, { pre = { "-i" }, stdin = true })
    c:write('print("go") while true do end\n')
    c:expect("out", "go\n")
    c:kill("SIGINT")
    c:expect("err", "interrupted\n")
    c:write('print("after spin")\n')
    c:expect("out", "after spin\n")
    c:write('print("sleeping") require("corio").sleep(60)\n')
    c:expect("out", "sleeping\n")
    c:kill("SIGINT")
    c:write('print("after sleep", require("corio").current():cancelling())\n')
    c:expect("out", "after sleep\t0\n")
    local code, _, err = c:finish()
    assert.equal(0, code)
    assert.equal(2, S.count(err, "interrupted"))
  end)
end)
