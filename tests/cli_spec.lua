-- The corio binary: options, arguments, exit codes, reports, signals.
-- Each test runs the binary under test in a child process (blocking the
-- loop while it runs, which is fine here).
local corio = require "corio"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

local function run(text, opts)
  local r = S.run(text, opts)
  S.cleanup()
  return r
end

-- The first line of stderr and the number of tracebacks in it.
local function first_line(s) return (s:match("^[^\n]*")) end

describe("the corio binary", function()
  after_each(S.cleanup)

  describe("runs a script", function()
    it("as the main task, so its top level can await", function()
      local r = run [[
        local corio = require "corio"
        local t0 = corio.now()
        corio.sleep(0.02)
        local t = corio.spawn(function() return "child" end)
        print(t:await(), corio.now() - t0 >= 0.02, corio.current() ~= nil)
      ]]
      assert.equal(0, r.code)
      assert.equal("child\ttrue\ttrue\n", r.out)
      assert.equal("", r.err)
    end)

    it("with its arguments in arg and ...", function()
      local r = run([[
        print(select("#", ...), ...)
        print(arg[0]:match("[^/]*$"), arg[1], arg[2], arg[3], #arg)
        print(arg[-1]:match("corio$") ~= nil)
      ]], { argv = { "one", "two words", "" } })
      assert.equal(0, r.code)
      assert.equal("3\tone\ttwo words\t\n" ..
                   "script.lua\tone\ttwo words\t\t3\ntrue\n", r.out)
    end)

    it("with options at negative indices of arg, as lua does", function()
      local r = run("print(arg[-1], arg[-2], arg[-3] ~= nil, arg[-4])",
                    { pre = { "-e", "x = 1" } })
      assert.equal("x = 1\t-e\ttrue\tnil\n", r.out)
    end)

    it("waits for the other tasks after the main chunk returns", function()
      local r = run [[
        local corio = require "corio"
        corio.spawn(function() corio.sleep(0.05) print("late task") end)
        print("main done")
      ]]
      assert.equal(0, r.code)
      assert.equal("main done\nlate task\n", r.out)
    end)

    it("skips a #! first line", function()
      local r = run "#!/usr/bin/env corio\nprint('shebang ok')\n"
      assert.equal(0, r.code)
      assert.equal("shebang ok\n", r.out)
    end)

    it("ignores what the main chunk returns", function()
      local r = run "return 1, 2, 3"
      assert.equal(0, r.code)
      assert.equal("", r.out)
    end)

    it("from stdin with - and with no script", function()
      local r = run(nil, { pre = { "-", "a", "b" },
                           stdin = "print('stdin', ...)" })
      assert.equal(0, r.code)
      assert.equal("stdin\ta\tb\n", r.out)
      r = run(nil, { stdin = "local corio = require 'corio' " ..
                             "corio.sleep(0) print('piped')" })
      assert.equal("piped\n", r.out)
    end)
  end)

  describe("options", function()
    it("-i reads lines that may await, prints values, continues statements", function()
      local r = run(nil, { pre = { "-i" }, stdin = table.concat({
        "x = 40 + 2",
        "x",
        "local corio = require 'corio' corio.sleep(0.01) return 'slept'",
        "for i = 1, 2 do",
        "print('line', i)",
        "end",
        "error('oops')",
        "'after the error'",
      }, "\n") .. "\n" })
      assert.equal(0, r.code)
      assert.truthy(r.out:find("42\n", 1, true))
      assert.truthy(r.out:find('"slept"\n', 1, true))
      assert.truthy(r.out:find("line\t1\n.*line\t2\n"))
      assert.truthy(r.out:find('"after the error"\n', 1, true))
      assert.truthy(r.err:find("oops", 1, true))
    end)

    it("-e runs code in the main task, in order, before the script", function()
      local r = run("print('script', x)", { pre = {
        "-e", "corio = require 'corio' corio.sleep(0.01) x = 1 print('e1')",
        "-e", "x = x + 1 print('e2')" } })
      assert.equal(0, r.code)
      assert.equal("e1\ne2\nscript\t2\n", r.out)
    end)

    it("-e accepts its code attached (-eCODE)", function()
      local r = run(nil, { pre = { "-eprint('attached')" } })
      assert.equal("attached\n", r.out)
    end)

    it("-e alone runs without reading stdin", function()
      local r = run(nil, { pre = { "-e", "print(io.read('a'))" },
                           stdin = "not a script" })
      assert.equal(0, r.code)
      assert.equal("not a script\n", r.out)
    end)

    it("-l requires a module into a global, -l g=mod under another name",
       function()
      local d = S.tmpdir()
      S.write(d .. "/mymod.lua", "return { value = 42 }")
      local r = S.run("print(mymod.value, alias.value, mymod == alias)",
                      { pre = { "-l", "mymod", "-lalias=mymod" }, cwd = d })
      assert.equal(0, r.code)
      assert.equal("42\t42\ttrue\n", r.out)
      r = S.run(nil, { pre = { "-l", "c=corio", "-e", "c.sleep(0) print(c.now() > 0)" } })
      assert.equal("true\n", r.out)
    end)

    it("-l of a missing module fails with exit 1", function()
      local r = run("print('not reached')", { pre = { "-l", "no_such_mod" } })
      assert.equal(1, r.code)
      assert.equal("", r.out)
      assert.matches("^corio: [^\n]*module 'no_such_mod' not found", r.err)
    end)

    it("-v prints the version and exits 0 without a script", function()
      local r = run(nil, { pre = { "-v" }, stdin = "print('not run')" })
      assert.equal(0, r.code)
      assert.matches("^corio %d+%.%d+%.%d+ %(Lua 5%.4[%.%d]*, libuv %d+%.%d+%.%d+%)\n$",
                     r.out)
    end)

    it("-v with a script prints the version, then runs it", function()
      local r = run("print('ran')", { pre = { "-v" } })
      assert.equal(0, r.code)
      assert.matches("^corio [^\n]*\nran\n$", r.out)
    end)

    it("-- ends the options: what follows is the script and its args",
       function()
      local r = run("print(...)", { pre = { "--" }, argv = { "-e", "-v" } })
      assert.equal(0, r.code)
      assert.equal("-e\t-v\n", r.out)
    end)

    it("an unknown option prints the usage and exits 1", function()
      local r = run(nil, { pre = { "-x" } })
      assert.equal(1, r.code)
      assert.matches("unrecognized option '%-x'", r.err)
      assert.matches("usage:", r.err)
    end)

    it("-e with a syntax error exits 1 and names the command line", function()
      local r = run(nil, { pre = { "-e", "x = = 1" } })
      assert.equal(1, r.code)
      assert.matches("^corio: %(command line%):1: unexpected symbol", r.err)
    end)

    it("-e or -l without an argument exits 1", function()
      for _, o in ipairs { "-e", "-l" } do
        local r = run(nil, { pre = { o } })
        assert.equal(1, r.code)
        assert.matches("'" .. o .. "' needs argument", r.err)
      end
    end)
  end)

  describe("exit codes and reports", function()
    it("an uncaught error: 'corio: file:line: message', a traceback, exit 1",
       function()
      local r = run [[
        local corio = require "corio"
        local function deep()
          corio.sleep(0)
          error("top level failure")
        end
        deep()
      ]]
      assert.equal(1, r.code)
      assert.equal("", r.out)
      assert.matches("^corio: [^\n]*script%.lua:4: top level failure\n", r.err)
      assert.matches("\nstack traceback:\n", r.err, 1, true)
      assert.matches("script.lua:6:", r.err, 1, true)
      assert.equal(1, S.count(r.err, "stack traceback:"))
      assert.equal(1, S.count(r.err, "top level failure"))
    end)

    it("an uncaught corio.Error prints its readable line", function()
      local r = run [[
        error(require("corio").Error("ENOENT", "no such file", { op = "open", path = "/x" }))
      ]]
      assert.equal(1, r.code)
      assert.equal("corio: ENOENT: no such file (open /x)",
                   first_line(r.err))
    end)

    it("an uncaught non-string error prints something readable", function()
      local r = run "error({})"
      assert.equal(1, r.code)
      assert.matches("^corio: table: ", r.err)
      r = run "error(nil)"
      assert.equal(1, r.code)
      assert.equal("corio: nil", first_line(r.err))
    end)

    it("a syntax error or a missing script exits 1", function()
      local r = run "x = = 1"
      assert.equal(1, r.code)
      assert.matches("^corio: [^\n]*script%.lua:1: unexpected symbol", r.err)
      r = S.run(nil, { pre = { "/nonexistent/script.lua" } })
      assert.equal(1, r.code)
      assert.matches("^corio: cannot open /nonexistent/script%.lua", r.err)
    end)

    it("a main-task failure cancels the other tasks, whose cleanup runs",
       function()
      local r = run [[
        local corio = require "corio"
        corio.spawn(function()
          local c <close> = setmetatable({}, { __close = function(_, e)
            corio.sleep(0.01)
            print("cleanup", corio.is_cancelled(e))
          end })
          corio.sleep(60)
        end)
        corio.sleep(0.01)
        error("main failed")
      ]]
      assert.equal(1, r.code)
      assert.equal("cleanup\ttrue\n", r.out)
      assert.equal(1, S.count(r.err, "main failed"))
    end)

    it("a failed task never awaited: traceback once, exit 1", function()
      local r = run [[
        local corio = require "corio"
        corio.spawn(function()
          corio.sleep(0.01)
          error("lost in a task")
        end)
        print("main done")
      ]]
      assert.equal(1, r.code)
      assert.equal("main done\n", r.out)
      assert.matches("^corio: [^\n]*script%.lua:4: lost in a task\n", r.err)
      assert.equal(1, S.count(r.err, "lost in a task"))
      assert.equal(1, S.count(r.err, "stack traceback:"))
    end)

    it("a failed task kept alive but never awaited is reported at exit",
       function()
      local r = run [[
        local corio = require "corio"
        keep = corio.spawn(function() error("kept but lost") end)
      ]]
      assert.equal(1, r.code)
      assert.equal(1, S.count(r.err, "kept but lost"))
    end)

    it("a failed task that was awaited is not reported: exit 0", function()
      local r = run [[
        local corio = require "corio"
        local t = corio.spawn(function() error("handled") end)
        print(pcall(t.await, t))
      ]]
      assert.equal(0, r.code)
      assert.equal("", r.err)
    end)

    it("a raising callback is reported, the loop goes on, exit 1", function()
      local r = run [[
        local corio = require "corio"
        corio.call_soon(function() error("callback broke") end)
        corio.sleep(0.02)
        print("went on")
      ]]
      assert.equal(1, r.code)
      assert.equal("went on\n", r.out)
      assert.matches("^corio: [^\n]*script%.lua:2: callback broke\n", r.err)
      assert.equal(1, S.count(r.err, "callback broke"))
    end)

    it("a custom error handler takes the reports: exit 0", function()
      local r = run [[
        local corio = require "corio"
        corio.set_error_handler(function(err, info)
          print("handled", info.kind, (tostring(err):gsub("^.*: ", "")))
        end)
        corio.call_soon(function() error("cb") end)
        corio.spawn(function() error("task") end)
        corio.sleep(0.01)
        collectgarbage() collectgarbage()
      ]]
      assert.equal(0, r.code)
      assert.equal("", r.err)
      assert.matches("handled\tcallback\tcb\n", r.out, 1, true)
      assert.matches("handled\ttask\ttask\n", r.out, 1, true)
    end)

    it("a failing error handler falls back to the default report", function()
      local r = run [[
        local corio = require "corio"
        corio.set_error_handler(function() error("handler broke") end)
        corio.call_soon(function() error("original") end)
        corio.sleep(0.01)
        print("went on")
      ]]
      assert.equal(1, r.code)
      assert.equal("went on\n", r.out)
      assert.matches("handler broke", r.err)
      assert.matches("original", r.err)
    end)

    it("a deadlocked main task gets an error instead of hanging", function()
      local r = run [[
        local corio = require "corio"
        local t0 = corio.now()
        local ok, err = pcall(function() corio.future():await() end)
        print(ok, err.code, corio.now() - t0 < 5)
        corio.future():await()
      ]]
      assert.equal(1, r.code)
      assert.equal("false\tINVALID_STATE\ttrue\n", r.out)
      assert.matches("^corio: INVALID_STATE: deadlock", r.err)
    end)

    it("a main task survives any number of deadlocks it catches", function()
      local r = run [[
        local corio = require "corio"
        for i = 1, 6 do
          local ok, err = pcall(function() corio.future():await() end)
          io.write(err.code, " ")
        end
        print()
      ]]
      assert.equal(0, r.code)
      assert.equal(string.rep("INVALID_STATE ", 6) .. "\n", r.out)
    end)

    it("a deadlocked task after the main task is cancelled, not hung",
       function()
      local r = run [[
        local corio = require "corio"
        corio.spawn(function()
          local ok, err = pcall(function() corio.future():await() end)
          print("woken", ok, corio.is_cancelled(err))
        end)
      ]]
      assert.equal(0, r.code)
      assert.equal("woken\tfalse\ttrue\n", r.out)
    end)
  end)

  describe("signals", function()
    -- Starts the script in the background, waits until it printed
    -- "ready", sends SIGINT (and a second one after `second` appears),
    -- and returns the exit status, the time it all took and the output.
    local function interrupt(text, second)
      local d = S.tmpdir()
      local script = S.write(d .. "/script.lua", text)
      local q = S.shquote
      local wait_for = [[
        i=0; while ! grep -q %s %s 2>/dev/null && [ $i -lt 400 ]; do
          sleep 0.05; i=$((i+1)); done
      ]]
      local cmd = table.concat {
        q(S.corio), " ", q(script), " >", q(d .. "/out"), " 2>", q(d .. "/err"),
        " </dev/null & pid=$!\n",
        wait_for:format("ready", q(d .. "/out")),
        "kill -INT $pid\n",
        second and (wait_for:format(second, q(d .. "/out")) ..
                    "kill -INT $pid\n") or "",
        "wait $pid; echo $?\n" }
      local t0 = corio.now()
      local res = S.sh("timeout 60 sh -c " .. q(cmd))
      local elapsed = corio.now() - t0
      return tonumber(res:match("^(%d+)")), elapsed, S.read(d .. "/out"),
             S.read(d .. "/err")
    end

    it("SIGINT cancels the main task, its cleanup runs, exit 130", function()
      local code, _, out, err = interrupt [[
        local corio = require "corio"
        local ok, e = pcall(function()
          local c <close> = setmetatable({}, { __close = function(_, e)
            corio.sleep(0.01)        -- cleanup may await
            print("cleanup", corio.is_cancelled(e))
          end })
          print("ready")
          io.stdout:flush()
          corio.sleep(60)
        end)
        print("caught", corio.is_cancelled(e))
      ]]
      assert.equal(130, code)
      assert.equal("ready\ncleanup\ttrue\ncaught\ttrue\n", out)
      assert.equal("", err)
    end)

    it("SIGINT also unwinds the other tasks", function()
      local code, _, out = interrupt [[
        local corio = require "corio"
        corio.spawn(function()
          local c <close> = setmetatable({}, { __close = function()
            print("child cleanup")
          end })
          corio.sleep(60)
        end)
        corio.sleep(0.01)
        print("ready")
        io.stdout:flush()
        corio.sleep(60)
      ]]
      assert.equal(130, code)
      assert.equal("ready\nchild cleanup\n", out)
    end)

    it("an uncaught interrupt is one line, no traceback, as Node's", function()
      local code, _, out, err = interrupt [[
        local corio = require "corio"
        print("ready")
        io.stdout:flush()
        corio.sleep(60)
      ]]
      assert.equal(130, code)
      assert.equal("ready\n", out)
      assert.equal("corio: interrupted\n", err)
    end)

    it("SIGINT after the main chunk returned cancels the other tasks",
       function()
      local code, _, out, err = interrupt [[
        local corio = require "corio"
        corio.spawn(function()
          local c <close> = setmetatable({}, { __close = function(_, e)
            corio.sleep(0.01)
            print("cleanup", corio.is_cancelled(e))
          end })
          corio.sleep(0.01)
          print("ready")
          io.stdout:flush()
          corio.sleep(60)
        end)
      ]]
      assert.equal(130, code)
      assert.equal("ready\ncleanup\ttrue\n", out)
      assert.equal("", err)
    end)

    it("a second SIGINT exits at once", function()
      local code, elapsed, out = interrupt([[
        local corio = require "corio"
        local c <close> = setmetatable({}, { __close = function()
          print("slow cleanup")
          io.stdout:flush()
          corio.sleep(60)
        end })
        print("ready")
        io.stdout:flush()
        corio.sleep(60)
      ]], "slow")
      assert.equal(130, code)
      assert.is_true(elapsed < 20, "took " .. tostring(elapsed) .. " s")
      assert.equal("ready\nslow cleanup\n", out)
    end)

    it("SIGPIPE is ignored: a write to a closed pipe fails with EPIPE",
       function()
      local d = S.tmpdir()
      local script = S.write(d .. "/script.lua", [[
        local chunk = string.rep("x", 65536)
        local ok, err
        for _ = 1, 64 do
          ok, err = io.stdout:write(chunk)
          if not ok then break end
          ok, err = io.stdout:flush()
          if not ok then break end
        end
        io.stderr:write("write: ", tostring(ok), " ", tostring(err), "\n")
      ]])
      -- the child starts with SIGPIPE at its default action (we ignore it,
      -- and ignored signals are inherited); lua5.4 itself would die here
      local out = S.sh("( { env --default-signal=PIPE " .. S.shquote(S.corio) ..
                       " " .. S.shquote(script) .. "; echo \"status=$?\" >&2; }" ..
                       " | true ) 2>&1")
      assert.matches("write: nil [^\n]*Broken pipe", out)
      assert.matches("status=0\n$", out)
    end)
  end)

  describe("corio test", function()
    local function spec(files)
      local d = S.tmpdir()
      for name, text in pairs(files) do
        local sub = name:match("^(.*)/")
        if sub then os.execute("mkdir -p " .. S.shquote(d .. "/" .. sub)) end
        S.write(d .. "/" .. name, text)
      end
      local cmd = S.shquote(S.corio) .. " test " .. S.shquote(d) ..
                  " 2>&1 </dev/null"
      return S.sh(cmd)
    end

    it("runs specs whose bodies await and ends with 'N passed, N failed'",
       function()
      local out, code = spec { ["a_spec.lua"] = [[
        local corio = require "corio"
        describe("a", function()
          it("awaits", function() corio.sleep(0.01) end)
          it("spawns", function() assert.equal(1, corio.spawn(function() return 1 end):await()) end)
        end)
      ]] }
      assert.equal(0, code)
      assert.matches("\n2 passed, 0 failed\n$", out)
    end)

    it("fails a test that leaves a task or a timer alive", function()
      local out, code = spec { ["leak_spec.lua"] = [[
        local corio = require "corio"
        describe("leaky", function()
          it("leaves a sleeper", function() corio.spawn(corio.sleep, 60) end)
          it("leaves a timer", function() corio.call_later(60, print) end)
          it("is clean afterwards", function() end)
        end)
      ]] }
      assert.equal(1, code)
      assert.matches("left alive after the test: 1 task%(s%)", out)
      assert.matches("left alive after the test: 1 callback%(s%), 1 timer%(s%)",
                     out)
      assert.matches("\n1 passed, 2 failed\n$", out)
    end)

    it("counts cleanup done in after_each, at every level", function()
      local out, code = spec { ["clean_spec.lua"] = [[
        local corio = require "corio"
        describe("outer", function()
          local outer_task
          before_each(function() outer_task = corio.spawn(corio.sleep, 60) end)
          after_each(function() outer_task:cancel() end)
          describe("inner", function()
            local h
            before_each(function() h = corio.call_later(60, print) end)
            after_each(function() h:cancel() end)
            it("opens in before_each, closes in after_each", function()
              corio.sleep(0.001)
            end)
          end)
        end)
      ]] }
      assert.equal(0, code)
      assert.matches("\n1 passed, 0 failed\n$", out)
    end)

    it("fails on an error in before_each or after_each", function()
      local out, code = spec { ["hooks_spec.lua"] = [[
        describe("a", function()
          before_each(function() error("setup broke") end)
          it("never runs", function() end)
        end)
        describe("b", function()
          after_each(function() error("teardown broke") end)
          it("runs", function() end)
        end)
      ]] }
      assert.equal(1, code)
      assert.matches("setup broke", out)
      assert.matches("teardown broke", out)
    end)

    it("reports failing and erroring tests and exits 1", function()
      local out, code = spec { ["bad_spec.lua"] = [[
        describe("bad", function()
          it("fails", function() assert.equal(1, 2) end)
          it("errors", function() error("boom") end)
          it("passes", function() end)
        end)
      ]] }
      assert.equal(1, code)
      assert.matches("FAIL bad fails", out, 1, true)
      assert.matches("FAIL bad errors", out, 1, true)
      assert.matches("\n1 passed, 2 failed\n$", out)
    end)

    it("a spec with a syntax error fails the run", function()
      local out, code = spec { ["bad_spec.lua"] = "x = = 1",
                               ["good_spec.lua"] = [[
        describe("good", function() it("passes", function() end) end)
      ]] }
      assert.equal(1, code)
      assert.matches("bad_spec.lua:1: unexpected symbol", out, 1, true)
      assert.matches("\n1 passed, 1 failed\n$", out)
    end)

    it("a missing path is a clear error", function()
      local out, code = S.sh(S.shquote(S.corio) ..
                             " test /nonexistent/specs 2>&1")
      assert.equal(1, code)
      assert.equal("corio test: /nonexistent/specs: no such file or directory\n",
                   out)
    end)

    it("--gc-pause=N sets the collector's pause before the specs run; a bad value is refused", function()
      local d = S.tmpdir()
      S.write(d .. "/p_spec.lua", [[
        describe("gc", function() it("pause", function()
          local p = collectgarbage("setpause", 0)
          collectgarbage("setpause", p)
          print("pause=" .. p)
        end) end)
      ]])
      local out, code = S.sh(S.shquote(S.corio) .. " test --gc-pause=0 " ..
                             S.shquote(d) .. " 2>&1 </dev/null")
      assert.equal(0, code)
      assert.matches("pause=0\n", out, 1, true)
      out, code = S.sh(S.shquote(S.corio) .. " test " .. S.shquote(d) ..
                       " 2>&1 </dev/null")
      assert.equal(0, code)
      assert.is_nil(out:find("pause=0\n", 1, true))
      out, code = S.sh(S.shquote(S.corio) .. " test --gc-pause=fast " ..
                       S.shquote(d) .. " 2>&1 </dev/null")
      assert.equal(1, code)
      assert.matches("--gc-pause wants a whole number", out, 1, true)
    end)

    it("picks up specs in subfolders (tests/regress/)", function()
      local out, code = spec { ["regress/x_spec.lua"] = [[
        describe("regress", function() it("runs", function() end) end)
      ]] }
      assert.equal(0, code)
      assert.matches("\n1 passed, 0 failed\n$", out)
    end)

    it("exits 1 when there is no test to run", function()
      local out, code = spec { ["empty_spec.lua"] = "" }
      assert.equal(1, code)
      assert.matches("0 passed, 0 failed", out)
    end)
  end)
end)
