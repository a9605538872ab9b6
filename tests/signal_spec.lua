local corio = require "corio"
local signal = require "corio.signal"
local process = require "corio.process"

local function bad_argument(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.is_truthy(tostring(err):find("bad argument", 1, true), tostring(err))
end

describe("signal", function()
  it("a signal sent to self is delivered to on()", function()
    local fut = corio.future()
    local h = signal.on("SIGUSR1", function(name) fut:set_result(name) end,
                        { keep_alive = true })
    assert.is_truthy(tostring(h):find("SIGUSR1", 1, true))
    process.kill(process.pid, "SIGUSR1")
    assert.are.equal("SIGUSR1", fut:await())
    h:close()
    h:close()                                  -- idempotent
    assert.is_truthy(tostring(h):find("closed", 1, true))
  end)

  it("wait() suspends until the signal arrives", function()
    local t = corio.spawn(signal.wait, "USR2")
    corio.yield()
    process.kill(process.pid, "USR2")
    assert.are.equal("SIGUSR2", t:await())
  end)

  it("every handler of a signal runs, in order", function()
    local got = {}
    local done = corio.future()
    local a = signal.on("SIGUSR1", function() got[#got + 1] = "a" end,
                        { keep_alive = true })
    local b <close> = signal.on(10, function()
      got[#got + 1] = "b"
      done:set_result()
    end)
    process.kill(process.pid, "SIGUSR1")
    done:await()
    assert.are.same({ "a", "b" }, got)
    a:close()
  end)

  it("a cancelled wait closes its handler", function()
    local t = corio.spawn(signal.wait, "SIGHUP")
    corio.yield()
    t:cancel()
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.is_true(corio.is_cancelled(err))
  end)

  it("a closed handler does not run", function()
    local n = 0
    local h = signal.on("SIGUSR1", function() n = n + 1 end)
    h:close()
    local w = corio.spawn(signal.wait, "SIGUSR1")   -- keeps SIGUSR1 caught
    corio.yield()
    process.kill(process.pid, "SIGUSR1")
    w:await()
    assert.are.equal(0, n)
  end)

  it("SIGPIPE stays ignored after its last handler closes", function()
    local h = signal.on("SIGPIPE", function() end)
    h:close()
    process.kill(process.pid, "SIGPIPE")       -- would kill us if default
    corio.sleep(0.05)
  end)

  it("a handler alone does not keep the loop alive", function()
    local h = signal.on("SIGUSR1", function() end)
    assert.are.equal(0, require("corio.core").stats().handles)
    h:close()
  end)

  it("names and numbers", function()
    assert.are.equal(15, signal.signum("SIGTERM"))
    assert.are.equal(15, signal.signum("TERM"))
    assert.are.equal(15, signal.signum(15))
    assert.is_nil(signal.signum("NOPE"))
    assert.are.equal("SIGINT", signal.name(2))
  end)

  it("signum: nil when unknown, bad argument for other types", function()
    assert.is_nil(signal.signum("NOPE"))
    assert.is_nil(signal.signum(""))
    assert.is_nil(signal.signum(0))
    assert.is_nil(signal.signum(65))
    assert.is_nil(signal.signum(1.5))
    assert.are.equal(15, signal.signum(15.0))
    for _, v in ipairs { true, false, {}, print, coroutine.create(print) } do
      local ok, err = pcall(signal.signum, v)
      assert.is_false(ok, type(v))                 -- was a quiet nil
      assert.is_truthy(tostring(err):find(
        "bad argument #1 to 'signum' (signal name or number expected, got "
          .. type(v) .. ")", 1, true), tostring(err))
    end
    bad_argument(signal.signum, nil)
    bad_argument(signal.signum)
    bad_argument(process.kill, process.pid, {})
    local ok, err = pcall(signal.wait, {})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("bad argument #1 to 'wait' (signal "
      .. "name or number expected, got table)", 1, true), tostring(err))
  end)

  it("checks its arguments", function()
    bad_argument(signal.on, "SIGNOPE", function() end)
    bad_argument(signal.on, {}, function() end)
    bad_argument(signal.on, "SIGTERM", "x")
    bad_argument(signal.on, "SIGKILL", function() end)
    bad_argument(signal.on, "SIGTERM", function() end, 5)
    bad_argument(signal.wait, "SIGNOPE")
    bad_argument(process.kill, process.pid, "SIGNOPE")
  end)
end)
