-- Errors: corio.Error objects, errors through await, tracebacks, and the
-- report of errors nobody else sees (corio.set_error_handler).
local corio = require "corio"
local fs = require "corio.fs"
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "support.lua")

describe("corio.Error", function()
  it("makes a table with code, message and extra fields", function()
    local e = corio.Error("ENOENT", "no such file or directory",
                          { op = "open", path = "/nope" })
    assert.equal("table", type(e))
    assert.equal("ENOENT", e.code)
    assert.equal("no such file or directory", e.message)
    assert.equal("open", e.op)
    assert.equal("/nope", e.path)
  end)

  it("uses the code as the message by default", function()
    local e = corio.Error("TIMEOUT")
    assert.equal("TIMEOUT", e.message)
    assert.is_nil(e.op)
  end)

  it("tostring gives one readable line", function()
    assert.equal("X: y", tostring(corio.Error("X", "y")))
    assert.equal("ENOENT: no such file (open /a/b)", tostring(corio.Error(
      "ENOENT", "no such file", { op = "open", path = "/a/b" })))
    assert.equal("ECONNREFUSED: refused (connect example.org:80)",
      tostring(corio.Error("ECONNREFUSED", "refused",
                           { op = "connect", host = "example.org", port = 80 })))
    assert.equal("E: m (/p)", tostring(corio.Error("E", "m", { path = "/p" })))
    local s = tostring(corio.Error("E", "m", { op = "x" }))
    assert.is_nil(s:find("\n"))
  end)

  it("tostring keeps long fields whole", function()
    -- A field past the string buffer's first block once made tostring
    -- read freed memory (and crash the binary on a long failing path).
    local path = string.rep("p", 100000)
    local s = tostring(corio.Error("X", "m", { op = "open", path = path }))
    assert.equal("X: m (open " .. path .. ")", s)
    local host = string.rep("h", 5000)
    assert.equal("E: " .. path .. " (" .. host .. ":8080)",
      tostring(corio.Error("E", path, { host = host, port = 8080 })))
    local ok, err = pcall(fs.open, "/nonexistent/" .. string.rep("d/", 600) .. "x")
    assert.is_false(ok)
    assert.matches("^ENOENT: .*d/x%)$", tostring(err))
  end)

  it("tostring never fails on a damaged error", function()
    local e = corio.Error("E", "m")
    e.code, e.message = nil, {}
    assert.equal("ERROR", tostring(e))
  end)

  it("Error.is tells corio errors apart", function()
    local e = corio.Error("CLOSED", "closed")
    assert.is_true(corio.Error.is(e))
    assert.is_true(corio.Error.is(e, "CLOSED"))
    assert.is_false(corio.Error.is(e, "TIMEOUT"))
    assert.is_false(corio.Error.is({ code = "CLOSED", message = "x" }))
    assert.is_false(corio.Error.is("CLOSED"))
    assert.is_false(corio.Error.is(nil))
  end)

  it("is_cancelled and is_timeout test the kind", function()
    local c, t = corio.Error("CANCELLED"), corio.Error("TIMEOUT")
    assert.is_true(corio.is_cancelled(c))
    assert.is_false(corio.is_cancelled(t))
    assert.is_true(corio.is_timeout(t))
    assert.is_false(corio.is_timeout(c))
    for _, v in ipairs { "CANCELLED", "TIMEOUT", 1, true, {} } do
      assert.is_false(corio.is_cancelled(v))
      assert.is_false(corio.is_timeout(v))
    end
    assert.is_false(corio.is_cancelled())
    assert.is_false(corio.is_timeout(nil))
  end)

  it("raises bad argument for wrong types", function()
    S.bad_argument(1, "Error", function() corio.Error() end)
    S.bad_argument(1, "Error", function() corio.Error({}) end)
    S.bad_argument(2, "Error", function() corio.Error("X", {}) end)
    S.bad_argument(3, "Error", function() corio.Error("X", "m", 5) end)
    S.bad_argument(2, "is", function() corio.Error.is({}, {}) end)
  end)
end)

describe("an error through await", function()
  it("keeps a corio.Error's identity, code and message", function()
    local e = corio.Error("EPIPE", "broken pipe", { op = "write" })
    local t = corio.spawn(function()
      corio.sleep(0)
      error(e)
    end)
    local err = S.raises(t.await, t)
    assert.equal(e, err)
    assert.equal("EPIPE", err.code)
    assert.equal("broken pipe", err.message)
    assert.equal("write", err.op)
  end)

  it("keeps a string error with its position", function()
    local line
    local t = corio.spawn(function()
      corio.yield()
      line = debug.getinfo(1, "l").currentline + 1
      error("plain failure")
    end)
    local err = S.raises(t.await, t)
    assert.equal("tests/error_spec.lua:" .. line .. ": plain failure",
                 err:match("[^/]*tests/error_spec.lua:.*$") or err)
  end)

  it("keeps a runtime error and names its line in the traceback", function()
    local line
    local t = corio.spawn(function()
      corio.yield()
      local x = nil
      line = debug.getinfo(1, "l").currentline + 1
      return x.field
    end)
    local err = S.raises(t.await, t)
    assert.matches("attempt to index a nil value", err)
    assert.matches("error_spec.lua:" .. line .. ":", err, 1, true)
    assert.matches("error_spec.lua:" .. line .. ":", t:traceback(), 1, true)
  end)

  it("keeps non-string values: numbers, tables, booleans, nil", function()
    local tbl = {}
    for _, v in ipairs { 42, tbl, false } do
      local t = corio.spawn(function() corio.yield() error(v) end)
      assert.equal(v, S.raises(t.await, t))
    end
    local t = corio.spawn(function() error(nil) end)
    assert.is_nil(S.raises(t.await, t))
    assert.is_true(t:done())
    assert.is_false(t:cancelled())
  end)

  it("passes through a chain of tasks unchanged", function()
    local e = corio.Error("DEEP", "from the bottom")
    local function level(n)
      if n == 0 then corio.yield() error(e) end
      return corio.spawn(level, n - 1):await()
    end
    local t = corio.spawn(level, 5)
    assert.equal(e, S.raises(t.await, t))
  end)

  it("the traceback names every line of a nested failure", function()
    local l1, l2
    local function inner()
      l2 = debug.getinfo(1, "l").currentline + 1
      error("nested")
    end
    local t = corio.spawn(function()
      corio.sleep(0)
      l1 = debug.getinfo(1, "l").currentline + 1
      inner()
    end)
    S.raises(t.await, t)
    local tb = t:traceback()
    assert.matches("error_spec.lua:" .. l2 .. ":", tb, 1, true)
    assert.matches("error_spec.lua:" .. l1 .. ":", tb, 1, true)
    assert.matches("inner", tb)
  end)

  it("the traceback of a failure in <close> cleanup names that line",
     function()
    local line
    local t = corio.spawn(function()
      local c <close> = setmetatable({}, { __close = function()
        line = debug.getinfo(1, "l").currentline + 1
        error("cleanup broke")
      end })
      corio.sleep(10)
    end)
    corio.yield()
    t:cancel()
    local err = S.raises(t.await, t)
    assert.matches("cleanup broke", err)
    assert.matches("error_spec.lua:" .. line .. ":", t:traceback(), 1, true)
  end)
end)

describe("corio.set_error_handler", function()
  it("returns the previous handler; nil restores the default", function()
    local h1 = function() end
    local h2 = function() end
    local prev = corio.set_error_handler(h1)
    assert.equal(h1, corio.set_error_handler(h2))
    assert.equal(h2, corio.set_error_handler(prev))
    assert.equal(prev, corio.set_error_handler(prev))
  end)

  it("raises bad argument for a non-function", function()
    S.bad_argument(1, "set_error_handler",
                   function() corio.set_error_handler(42) end)
    S.bad_argument(1, "set_error_handler",
                   function() corio.set_error_handler({}) end)
  end)

  it("reports a failed task never awaited once, with its traceback",
     function()
    local line
    local reports = S.capture(function()
      corio.spawn(function()
        line = debug.getinfo(1, "l").currentline + 1
        error(corio.Error("LOST", "nobody awaited me"))
      end)
      corio.yield()
      S.flush()
      S.flush()
    end)
    assert.equal(1, #reports)
    local r = reports[1]
    assert.equal("task", r.kind)
    assert.equal("LOST", r.err.code)
    assert.matches("error_spec.lua:" .. line .. ":", r.traceback, 1, true)
  end)

  it("does not report a failed task that was awaited", function()
    local reports = S.capture(function()
      local t = corio.spawn(function() error("seen") end)
      pcall(t.await, t)
      t = nil
      S.flush()
    end)
    assert.equal(0, #reports)
  end)

  it("does not report a failed task whose error was read", function()
    local reports = S.capture(function()
      local t = corio.spawn(function() error("seen") end)
      corio.yield()
      assert.matches("seen", t:error())
      t = nil
      S.flush()
    end)
    assert.equal(0, #reports)
  end)

  it("does not report a failed task with a done callback", function()
    local reports = S.capture(function()
      local t = corio.spawn(function() error("seen") end)
      local f = corio.future()
      t:add_done_callback(function() f:set_result() end)
      f:await()
      t = nil
      S.flush()
    end)
    assert.equal(0, #reports)
  end)

  it("does not report a task that finished well", function()
    local reports = S.capture(function()
      corio.spawn(function() return 1 end)
      corio.yield()
      S.flush()
    end)
    assert.equal(0, #reports)
  end)

  it("reports each of many lost tasks once", function()
    local reports = S.capture(function()
      for i = 1, 20 do corio.spawn(function() error("lost " .. i, 0) end) end
      corio.yield()
      S.flush()
      S.flush()
    end)
    assert.equal(20, #reports)
    local seen = {}
    for _, r in ipairs(reports) do seen[r.err] = (seen[r.err] or 0) + 1 end
    for i = 1, 20 do assert.equal(1, seen["lost " .. i]) end
  end)
end)
