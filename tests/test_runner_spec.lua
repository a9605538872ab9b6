-- corio test: options busted users expect, run on a small suite in a
-- child process.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "support.lua")

local SUITE = [[
describe("math", function()
  it("adds", function() assert.equal(2, 1 + 1) end)
  it("awaits", function() corio.sleep(0.01) end)
  it("fails <odd>", function() assert.equal(1, 2) end)
  it("hangs", function()
    local ok, e = pcall(corio.sleep, 60)
    _G.cleanup_ran = true
    error(e, 0)
  end)
  it("leaks", function() corio.spawn(corio.sleep, 60) end)
end)
]]

-- Runs `corio test args` in a folder holding the suite under spec/.
local function corio_test(args)
  local d = S.tmpdir()
  os.execute("mkdir -p " .. S.shquote(d .. "/spec"))
  S.write(d .. "/spec/math_spec.lua", SUITE)
  local out, code = S.sh("cd " .. S.shquote(d) .. " && timeout 120 " ..
    S.shquote(S.corio) .. " test " .. args .. " 2>" .. S.shquote(d .. "/err"))
  return out, code, S.read(d .. "/err")
end

describe("corio test", function()
  after_each(S.cleanup)

  it("finds spec/ with no path; --list lists and runs nothing", function()
    local out, code = corio_test("--list")
    assert.equal(0, code)
    assert.truthy(out:find("math_spec.lua:2: math adds", 1, true))
    assert.truthy(out:find("math leaks", 1, true))
    assert.falsy(out:find("passed", 1, true))
  end)

  it("--filter and --exclude pick tests by full name", function()
    local out, code = corio_test("--filter=add --filter='^math aw'")
    assert.equal(0, code)
    assert.truthy(out:find("2 passed, 0 failed", 1, true))
    out = corio_test("--exclude=hangs --exclude=leaks --exclude=odd")
    assert.truthy(out:find("2 passed, 0 failed", 1, true))
  end)

  it("--timeout cancels a test that awaits too long; the leak check " ..
     "names what was left", function()
    local out, code = corio_test("--timeout 0.3")
    assert.equal(1, code)
    assert.truthy(out:find("test timed out after 0.3 s", 1, true))
    assert.truthy(out:find("FAIL math leaks", 1, true))
    assert.truthy(out:find("left alive after the test: 1 task(s)", 1, true))
    assert.truthy(out:find("2 passed, 3 failed", 1, true))
  end)

  it("under CORIO_DEBUG=1 the leak check names where a handle was made",
     function()
    local d = S.tmpdir()
    S.write(d .. "/leak_spec.lua", [=[
describe("net", function()
  it("leaves a server", function()
    corio.net.serve("127.0.0.1", 0, function() end)
  end)
end)
]=])
    local out, code = S.sh("cd " .. S.shquote(d) .. " && CORIO_DEBUG=1 " ..
      "timeout 120 " .. S.shquote(S.corio) .. " test leak_spec.lua 2>&1")
    assert.equal(1, code)
    assert.truthy(out:find("left alive after the test: 1 handle(s) (1 poll)"
      .. ", Server created at leak_spec.lua:3", 1, true), out)
    out = S.sh("cd " .. S.shquote(d) .. " && timeout 120 " ..
      S.shquote(S.corio) .. " test leak_spec.lua 2>&1")
    assert.falsy(out:find("created at", 1, true))
  end)

  it("--shuffle prints its seed and the same seed gives the same order",
     function()
    local a, _, err = corio_test("--shuffle=42 --list")
    local b = corio_test("--shuffle=42 --list")
    assert.truthy(err:find("seed 42", 1, true))
    assert.equal(a, b)
  end)

  it("--output=junit writes JUnit XML", function()
    local out, code, err = corio_test("--output=junit --timeout=0.3")
    assert.equal(1, code)
    assert.truthy(out:find('^<%?xml'))
    assert.truthy(out:find('tests="5" failures="3"', 1, true))
    assert.truthy(out:find('name="math fails &lt;odd&gt;"', 1, true))
    assert.truthy(out:find('<failure message=', 1, true))
    assert.truthy(err:find("2 passed, 3 failed", 1, true))
  end)

  it("refuses an unknown option or output", function()
    local _, code, err = corio_test("--bogus")
    assert.equal(1, code)
    assert.truthy(err:find("unknown option '--bogus'", 1, true))
    _, code = corio_test("--output=tap")
    assert.equal(1, code)
    _, code = corio_test("--timeout=-1")
    assert.equal(1, code)
  end)
end)
