-- The REPL (corio -i, and corio with no script on a terminal): line
-- editing, history, completion, Ctrl-C and Ctrl-D through a real
-- pseudo-terminal (tests/pty.lua), and plain lines when stdin is a pipe.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "support.lua")
local P = dofile(here .. "pty.lua")

local function run(text, opts)
  local r = S.run(text, opts)
  S.cleanup()
  return r
end

describe("the REPL", function()
  local t, hist
  before_each(function()
    hist = S.tmpdir() .. "/history"
  end)
  after_each(function()
    if t then t:kill() end
    t = nil
    S.cleanup()
  end)

  local function start(args)
    t = P.open(S.corio, args or {}, { CORIO_HISTORY = hist })
    t:expect("Ctrl-D exits")
    t:expect("> ")
  end

  describe("on a terminal", function()
    it("starts on `corio` with no script, runs lines that await, " ..
       "pretty-prints values and keeps the first in _", function()
      start({})
      t:send("corio.sleep(0.01) return 40 + 2, 'a\\nb'\r")
      t:expect('42\t"a\\nb"')
      t:send("_ + 1\r")
      t:expect("43")
      t:send("{ 10, 20, name = 'x', sub = { 1, 2, 3 } }\r")
      t:expect('{ 10, 20, name = "x", sub = {…3} }  (4 entries)')
      t:send("\4")
      local code = t:finish()
      assert.equal(0, code)
    end)

    it("reads a statement over several lines", function()
      start({ "-i" })
      t:send("for i = 1, 2 do\r")
      t:expect(">> ")
      t:send("print('line', i)\r")
      t:expect(">> ")
      t:send("end\r")
      t:expect("line\t2")
      t:send("\4")
      assert.equal(0, (t:finish()))
    end)

    it("completes globals, corio fields, module fields and methods", function()
      start({})
      -- each completion is checked by running the completed line (the
      -- terminal redraws with escape codes, so the echo is not matched)
      t:send("corio.sle\t")
      t:expect("sle")
      t:send("(0) return 'do' .. 'ne'\r")
      t:expect('"done"')
      t:send("corio.net.conn\t\t")
      t:expect("connect_unix")
      t:send("\21f = corio.future()\r")
      t:expect("> ")
      t:send("f:set_r\t")
      t:expect("set_r")
      t:send("(7 * 6) return f:result()\r")
      t:expect("42")
      t:send("corout\t")
      t:expect("corout")
      t:send(".runn\t")
      t:expect("runn")
      t:send("() return 'c' .. 'o'\r")
      t:expect('"co"')
      t:send("\21\4")
      assert.equal(0, (t:finish()))
    end)

    it("keeps a bounded history in its file", function()
      start({})
      t:send("x = 'first'\r")
      t:expect("> ")
      t:send("\4")
      t:finish()
      assert.truthy(S.read(hist):find("first", 1, true))
      start({})
      t:send("\27[A")                        -- arrow up: the last line
      t:expect("x = 'first'")
      t:send("\r\4")
      t:finish()
    end)

    it("Ctrl-C cancels a running line (its cleanup runs) and returns " ..
       "to the prompt", function()
      start({})
      t:send("do print('run' .. 'ning') local ok, e = " ..
             "pcall(corio.sleep, 60) print('clean' .. 'up', e) end\r")
      t:expect("running")
      t:send("\3")
      t:expect("cleanup")
      t:expect("interrupted")
      t:expect("> ")
      t:send("'still here'\r")
      t:expect('"still here"')
      t:send("\4")
      assert.equal(0, (t:finish()))
    end)

    it("Ctrl-C clears a typed line; at an empty prompt it says how to " ..
       "leave, and a second one leaves", function()
      start({})
      t:send("abc")
      t:expect("abc")
      t:send("\3")
      t:expect("> ")
      t:send("'next'\r")
      local seen = t:expect('"next"')
      assert.falsy(seen:find("abc", 1, true))  -- the cleared text is gone
      t:send("\3")
      t:expect("press Ctrl-C again or Ctrl-D")
      t:send("\3")
      local code, out = t:finish()
      assert.equal(0, code)
      assert.falsy(out:find("CANCELLED", 1, true))
      assert.falsy(out:find("traceback", 1, true))
    end)

    it("Ctrl-D while a server runs says what is still open", function()
      start({})
      t:send("srv = corio.net.serve('127.0.0.1', 0, function() end) " ..
             "corio.spawn(function() corio.sleep(0.2) srv:close() end)\r")
      t:expect("> ")
      t:send("\4")
      t:expect("still running:")
      t:expect("socket/server")
      local code = t:finish()
      assert.equal(0, code)
    end)
  end)

  describe("with stdin not a terminal", function()
    it("reads plain lines: no banner, no prompt, no escape code", function()
      local r = run(nil, { pre = { "-i" }, stdin =
        "x = 40 + 2\nx\n{ 1, 2 }\ncorio.sleep(0.01) return 'slept'\n" ..
        "error('oops')\n'after'\n" })
      assert.equal(0, r.code)
      assert.equal('42\n{ 1, 2 }  (2 entries)\n"slept"\n"after"\n', r.out)
      assert.truthy(r.err:find("oops", 1, true))
      assert.falsy(r.err:find("\27", 1, true))
    end)

    it("shows a corio.Error as its line", function()
      local r = run(nil, { pre = { "-i" }, stdin =
        "corio.Error('TIMEOUT', 'too slow')\n" ..
        "corio.wait_for(corio.sleep, 0.01, 1)\n" })
      assert.equal(0, r.code)
      assert.truthy(r.out:find("TIMEOUT", 1, true) or
                    r.err:find("TIMEOUT", 1, true))
    end)
  end)

  it("corio is a global in -e code", function()
    local r = run(nil, { pre = { "-e", "corio.sleep(0.01) print(corio.now() > 0)" } })
    assert.equal(0, r.code)
    assert.equal("true\n", r.out)
  end)
end)
