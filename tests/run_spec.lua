-- corio.run: inside a running loop (here) and from stock lua5.4 with
-- build/corio.so (in a child process).
local corio = require "corio"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("corio.run inside a running loop", function()
  it("raises INVALID_STATE in a task", function()
    local err = S.is_error(S.raises(corio.run, function() end),
                           "INVALID_STATE")
    assert.matches("already running", err.message)
    assert.equal("run", err.op)
  end)

  it("raises INVALID_STATE in a callback", function()
    local f = corio.future()
    corio.call_soon(function() f:set_result(pcall(corio.run, print)) end)
    local ok, err = f:await()
    assert.is_false(ok)
    S.is_error(err, "INVALID_STATE")
  end)

  it("raises bad argument for a value that is not callable", function()
    S.bad_argument(1, "run", function() corio.run() end)
    S.bad_argument(1, "run", function() corio.run(42) end)
  end)
end)

local so = S.builddir .. "/corio.so"
local have_lua = S.sh("command -v lua5.4 >/dev/null 2>&1; echo $?")
  :match("^0")
local have_so = io.open(so) ~= nil

-- An ASan build of corio.so needs the sanitizer runtimes preloaded into
-- the (uninstrumented) lua5.4.
local preload = ""
if have_so then
  local libs = {}
  for lib in S.sh("ldd " .. S.shquote(so) .. " 2>/dev/null")
               :gmatch("(/%S*lib[a-z]*san%.so[%.%d]*)") do
    libs[#libs + 1] = lib
  end
  if #libs > 0 then
    preload = "LD_PRELOAD=" .. S.shquote(table.concat(libs, " ")) .. " "
  end
end

-- Runs Lua code in stock lua5.4 with corio.so on its cpath.
local function lua(code)
  local d = S.tmpdir()
  local path = S.write(d .. "/main.lua",
    "package.cpath = " .. string.format("%q", S.builddir .. "/?.so;") ..
    " .. package.cpath\n" .. code)
  local line = preload .. "lua5.4 " .. S.shquote(path) .. " >" .. S.shquote(d .. "/out")
    .. " 2>" .. S.shquote(d .. "/err") .. " </dev/null"
  local _, code_ = S.sh(line)
  local r = { code = code_, out = S.read(d .. "/out"), err = S.read(d .. "/err") }
  S.cleanup()
  return r
end

if not (have_lua and have_so) then
  pending("corio.run from stock lua5.4 (needs lua5.4 and " .. so .. ")")
  return
end

describe("corio.run from stock lua5.4", function()
  it("runs the documented one-liner", function()
    local d = S.tmpdir()
    local out = S.sh("cd " .. S.shquote(d) .. " && " .. preload .. "LUA_CPATH=" ..
      S.shquote(S.builddir .. "/?.so") .. " lua5.4 -e " .. S.shquote(
      'package.cpath="' .. S.builddir .. '/?.so;"..package.cpath; ' ..
      'local corio=require"corio"; print(corio.run(function() ' ..
      'corio.sleep(0.01) return 1,2 end))') .. " 2>&1")
    S.cleanup()
    assert.equal("1\t2\n", out)
  end)

  it("passes arguments and returns every result", function()
    local r = lua [[
      local corio = require "corio"
      print(select("#", corio.run(function(...) return ... end, 1, nil, 3, nil)))
      print(corio.run(function(a, b)
        local t = corio.spawn(function() corio.sleep(0.01) return a * b end)
        return t:await(), "x"
      end, 6, 7))
    ]]
    assert.equal(0, r.code)
    assert.equal("4\n42\tx\n", r.out)
    assert.equal("", r.err)
  end)

  it("raises the task's error unchanged", function()
    local r = lua [[
      local corio = require "corio"
      local e = corio.Error("EXAMPLE", "failed in run")
      local ok, err = pcall(corio.run, function() corio.sleep(0) error(e) end)
      print(ok, err == e, err.code, err.message)
      ok, err = pcall(corio.run, function() error("plain") end)
      print(ok, err)
    ]]
    assert.equal(0, r.code)
    assert.equal("false\ttrue\tEXAMPLE\tfailed in run\n" ..
                 "false\tmain.lua:6: plain\n",
                 r.out:gsub("[^\t\n]*/main%.lua", "main.lua"))
  end)

  it("can run several times in one state", function()
    local r = lua [[
      local corio = require "corio"
      for i = 1, 3 do
        io.write(corio.run(function() corio.sleep(0.001) return i end), " ")
      end
      print(pcall(corio.run, function() error("x", 0) end))
      print(corio.run(function() return "again" end))
    ]]
    assert.equal(0, r.code)
    assert.equal("1 2 3 false\tx\nagain\n", r.out)
  end)

  it("cancels what is left at the end and lets its cleanup run", function()
    local r = lua [[
      local corio = require "corio"
      print(corio.run(function()
        corio.spawn(function()
          local c <close> = setmetatable({}, { __close = function(_, e)
            corio.sleep(0.01)
            print("cleanup", corio.is_cancelled(e))
          end })
          corio.sleep(60)
        end)
        corio.sleep(0.01)
        return "main done"
      end))
      print("after")
    ]]
    assert.equal(0, r.code)
    assert.equal("cleanup\ttrue\nmain done\nafter\n", r.out)
  end)

  it("raises instead of nesting", function()
    local r = lua [[
      local corio = require "corio"
      print(corio.run(function()
        local ok, err = pcall(corio.run, function() end)
        return ok, err.code
      end))
    ]]
    assert.equal("false\tINVALID_STATE\n", r.out)
  end)

  it("raises instead of hanging when the task can never be woken", function()
    local r = lua [[
      local corio = require "corio"
      local ok, err = pcall(corio.run, function() corio.future():await() end)
      print(ok, err.code, err.message:match("deadlock") ~= nil)
    ]]
    assert.equal("false\tINVALID_STATE\ttrue\n", r.out)
  end)

  it("raises a deadlock error however many times the task survives one",
     function()
    local r = lua [[
      local corio = require "corio"
      print(corio.run(function()
        local n = 0
        for _ = 1, 6 do
          local ok, err = pcall(function() corio.future():await() end)
          if not ok and err.code == "INVALID_STATE" then n = n + 1 end
        end
        return n
      end))
    ]]
    assert.equal("6\n", r.out)
  end)

  it("raises a clear error when awaiting outside corio.run", function()
    local r = lua [[
      local corio = require "corio"
      local ok, err = pcall(corio.sleep, 1)
      print(ok, err.code, err.message:match("not inside a task") ~= nil)
      local f = corio.future()
      ok, err = pcall(f.await, f)
      print(ok, err.code)
      print(pcall(corio.yield))
      print(corio.current())
    ]]
    assert.equal(0, r.code)
    assert.matches("^false\tINVALID_STATE\ttrue\nfalse\tINVALID_STATE\n" ..
                   "false\tINVALID_STATE: yield: not inside a task[^\n]*\nnil\n$",
                   r.out)
  end)

  it("runs tasks and callbacks made before it", function()
    local r = lua [[
      local corio = require "corio"
      local t = corio.spawn(function() return "spawned before" end)
      corio.call_soon(function() print("callback before") end)
      print(corio.run(function() return t:await() end))
    ]]
    assert.equal("callback before\nspawned before\n", r.out)
  end)

  it("reports a failed task nobody awaited, once", function()
    local r = lua [[
      local corio = require "corio"
      print(corio.run(function()
        corio.spawn(function() error("lost failure") end)
        corio.sleep(0.01)
        return "ok"
      end))
    ]]
    assert.equal(0, r.code)
    assert.equal("ok\n", r.out)
    assert.equal(1, S.count(r.err, "lost failure"))
    assert.matches("^corio: [^\n]*main%.lua:4: lost failure\n", r.err)
    assert.matches("stack traceback:", r.err, 1, true)
  end)

  it("reports a raising callback and goes on", function()
    local r = lua [[
      local corio = require "corio"
      print(corio.run(function()
        corio.call_soon(function() error("callback failure") end)
        corio.sleep(0.01)
        return "went on"
      end))
    ]]
    assert.equal("went on\n", r.out)
    assert.equal(1, S.count(r.err, "callback failure"))
  end)

  it("shares one module between require 'corio' calls", function()
    local r = lua [[
      local a = require "corio"
      local b = require "corio"
      local core = require "corio.core"
      print(a == b, a.spawn == core.spawn, type(a.version))
    ]]
    assert.equal("true\ttrue\tstring\n", r.out)
  end)
end)
