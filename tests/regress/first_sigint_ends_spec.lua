-- Regression (issue 15, point 4): when the main script has finished and
-- only a server, watcher, signal handler or child keeps corio running,
-- the first SIGINT ends it (servers and handles closed, tasks cancelled
-- with their cleanup, exit 130).  Before, the first did nothing and only
-- the second exited.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "../support.lua")

-- Runs script, waits for "ready", sends one SIGINT; returns code, out.
local function one_sigint(script)
  local c = S.child(script)
  c:expect("out", "ready")
  c:kill("SIGINT")
  local code, out = c:finish(30)
  return code, out
end

describe("regress: the first SIGINT ends a program kept alive by handles",
         function()
  after_each(S.cleanup)

  it("a server with a connected client: handler cleanup runs, exit 130",
     function()
    local code, out = one_sigint [[
      local corio = require "corio"
      local net = require "corio.net"
      local server = net.serve("127.0.0.1", 0, function(stream)
        local _ <close> = setmetatable({}, { __close = function(_, e)
          print("handler cleanup", corio.is_cancelled(e))
          io.stdout:flush()
        end })
        print("ready")
        io.stdout:flush()
        stream:read("l")                      -- never comes
      end)
      local host, port = server:address()
      corio.spawn(function()                  -- a client that stays
        local s = net.connect(host, port)
        s:read("a")
      end)
    ]]
    assert.equal(130, code)
    assert.matches("handler cleanup\ttrue", out)
  end)

  it("a file watcher", function()
    local d = S.tmpdir()
    local code = one_sigint(([[
      local fs = require "corio.fs"
      W = fs.watch(%q, function() end)
      print("ready")
      io.stdout:flush()
    ]]):format(d))
    assert.equal(130, code)
  end)

  it("a signal handler that keeps the loop alive", function()
    local code = one_sigint [[
      local signal = require "corio.signal"
      H = signal.on("SIGUSR1", function() end, { keep_alive = true })
      print("ready")
      io.stdout:flush()
    ]]
    assert.equal(130, code)
  end)

  it("a running child process", function()
    -- The grandchild must not hold the child's stdout and stderr: the
    -- pipes would reach EOF only when it exits (the spec took 60 s).
    local code, out = one_sigint [[
      local process = require "corio.process"
      P = process.spawn({ "sleep", "60" },
                        { stdin = "null", stdout = "null", stderr = "null" })
      print("ready", P.pid)
      io.stdout:flush()
    ]]
    local pid = assert(out:match("ready\t(%d+)"))
    S.sh("kill " .. pid .. " 2>/dev/null")  -- orphaned to init by the exit
    assert.equal(130, code)
  end)
end)
