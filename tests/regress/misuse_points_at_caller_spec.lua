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

  -- Found by the audit of 2026-12-05: C checks reached through corio's
  -- own scripts (tls.context, process.spawn's fields, fs modes) and the
  -- HTTP and JSON scripts' fixed error levels named corio's lines; an
  -- HTTP timeout given as a string failed deep inside the request.
  it("corio.tls (options checked in C, reached through tls.lua)", function()
    local tls = require "corio.tls"
    local e = at_caller(function() tls.context({ verify = 3 }) end)
    assert.matches("option 'verify' must be a boolean", e, 1, true)
    at_caller(function() tls.context({ min_version = "1.1" }) end)
    at_caller(function() tls.connect("127.0.0.1", 1, { cert = 3 }) end)
    at_caller(function() tls.serve("127.0.0.1", 0, print, { key = {} }) end)
  end)

  it("corio.process (fields checked in C)", function()
    local process = require "corio.process"
    local e = at_caller(function() process.spawn({ "true" }, { uid = "x" }) end)
    assert.matches("field 'uid'", e, 1, true)
    at_caller(function() process.spawn({ "true" }, { cwd = 3 }) end)
    at_caller(function() process.spawn({ "true" }, { stdout = -1 }) end)
  end)

  it("corio.fs (modes checked in C)", function()
    local fs = require "corio.fs"
    local dir = fs.mkdtemp("/tmp/corio-misuse-XXXXXX")
    at_caller(function() fs.open(dir .. "/f", "w", "x") end)
    local e = at_caller(function() fs.open(dir .. "/f", "w", {}) end)
    assert.matches("mode expected, got table", e, 1, true)
    at_caller(function() fs.mkdir(dir .. "/d", { mode = "9" }) end)
    at_caller(function() fs.mkdir(dir .. "/d", "x") end)
    at_caller(function() fs.mkdir(dir .. "/d/e", { parents = true, mode = "9" }) end)
    at_caller(function() fs.mkdir(dir .. "/d/e", { parents = true, mode = {} }) end)
    fs.mkdir(dir .. "/d/e", { parents = true, mode = "700" })
    assert.are.equal("directory", fs.stat(dir .. "/d/e").type)
    fs.rmdir(dir .. "/d/e")
    fs.rmdir(dir .. "/d")
    assert.is_false(fs.exists(dir .. "/f"))
    fs.rmdir(dir)
  end)

  it("corio.http (options, headers, server)", function()
    local http = require "corio.http"
    local e = at_caller(function() http.request("GET", "http://127.0.0.1:1/", { timeout = "x" }) end)
    assert.matches("option 'timeout' must be a number >= 0", e, 1, true)
    at_caller(function() http.get("http://127.0.0.1:1/", { decompress = 1 }) end)
    at_caller(function() http.get("http://127.0.0.1:1/", { headers = { a = {} } }) end)
    at_caller(function() http.get("https://127.0.0.1:1/", { tls = 5 }) end)
    at_caller(function() http.headers(1) end)
    at_caller(function() http.client({ read_timeout = -1 }) end)
    at_caller(function() http.serve("127.0.0.1", 0, print, { max_body_size = "big" }) end)
    at_caller(function() http.serve("127.0.0.1", 0, "x") end)
    at_caller(function() http.websocket("http://x/") end)
  end)

  it("corio.json", function()
    local json = require "corio.json"
    at_caller(function() json.decode(1) end)
    at_caller(function() json.array(1) end)
  end)

  it("corio.executor", function()
    local ex = require "corio.executor"
    at_caller(function() ex.thread_pool("x") end)
    at_caller(function() ex.to_thread(1) end)
  end)

  it("corio, corio.sync (composition and primitives)", function()
    at_caller(function() corio.timeout("x", print) end)
    at_caller(function() corio.gather(1) end)
    local sync = require "corio.sync"
    at_caller(function() sync.Semaphore("x") end)
    at_caller(function() sync.Queue(-1) end)
    at_caller(function() sync.Condition(1) end)
  end)
end)
