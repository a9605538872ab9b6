-- Regression (issue 15, point 7): misuse errors name the caller's line,
-- not corio/net.lua:157-style lines inside corio, in every module; and
-- File.__close, File.__tostring, Process.__tostring called on the wrong
-- object raise `bad argument`, not "attempt to index".
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "../support.lua")

local SRC = debug.getinfo(1, "S").short_src

-- Calls fn (a closure making the call as a script would, on one line)
-- and checks the error is "<this file>:<that line>: bad argument".
local function at_caller(fn)
  local line = debug.getinfo(fn, "S").linedefined
  local err = S.raises(fn)
  assert(type(err) == "string", "not a string error: " .. tostring(err))
  local want = SRC .. ":" .. line .. ": bad argument"
  assert(err:find(want, 1, true), "expected '" .. want .. "' in: " .. err)
  return err
end

describe("regress: misuse errors point at the caller", function()
  after_each(S.cleanup)

  it("corio.net", function()
    local net = require "corio.net"
    at_caller(function() net.connect("localhost:6399") end)
    at_caller(function() net.serve("127.0.0.1", 0, "x") end)
    at_caller(function() net.connect_unix("") end)
  end)

  it("corio.process", function()
    local process = require "corio.process"
    at_caller(function() process.exec("ls -l") end)
    at_caller(function() process.spawn({ "echo" }, { stdout = "pipes" }) end)
    local p = process.spawn({ "true" })
    local e = at_caller(function() getmetatable(p).__tostring(42) end)
    assert.matches("corio.Process expected, got number", e, 1, true)
    p:wait()
  end)

  it("corio.fs", function()
    local fs = require "corio.fs"
    at_caller(function() fs.open({}) end)
    at_caller(function() fs.open("/dev/null", "q") end)
    local f = fs.open("/dev/null")
    local e = at_caller(function() getmetatable(f).__close(42) end)
    assert.matches("corio.File expected, got number", e, 1, true)
    at_caller(function() getmetatable(f).__tostring(42) end)
    f:close()
  end)

  it("corio.signal", function()
    local signal = require "corio.signal"
    at_caller(function() signal.on("SIGFOO", print) end)
    at_caller(function() signal.on("SIGUSR1", print, 1) end)
  end)

  it("corio, corio.sync (composition and primitives)", function()
    at_caller(function() corio.timeout("x", print) end)
    at_caller(function() corio.gather(1) end)
  end)
end)
