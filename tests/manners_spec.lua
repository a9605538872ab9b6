-- The binary's manners: --help, a quiet Ctrl-C, a quiet end when the
-- reader of stdout goes away, and output in program order.
local corio = require "corio"
local process = require "corio.process"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "support.lua")

-- Starts `corio [pre] script`, waits for its "ready" line, sends SIGINT;
-- returns code, stdout, stderr.
local function interrupt(text, pre)
  local script = S.write(S.tmpdir() .. "/s.lua", text)
  local argv = { S.corio }
  for _, a in ipairs(pre or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = script
  local p = process.spawn(argv, { stdout = "pipe", stderr = "pipe" })
  local err = corio.spawn(function() return p.stderr:read("a") end)
  local first = corio.timeout(60, p.stdout.read, p.stdout, "l")
  assert.equal("ready", first)
  p:kill("SIGINT")
  local rest = p.stdout:read("a")
  local code = corio.timeout(60, p.wait, p)
  return code, first .. "\n" .. rest, err:await()
end

local SLEEPER = [[
  print("ready")
  local ok, e = pcall(corio.sleep, 60)
  print("cleanup", ok)
  error(e, 0)
]]

describe("the corio binary's manners", function()
  after_each(S.cleanup)

  it("--help prints the usage on stdout and exits 0", function()
    for _, opt in ipairs { "--help", "-h" } do
      local r = S.run(nil, { pre = { opt } })
      assert.equal(0, r.code)
      assert.truthy(r.out:find("^usage: "))
      assert.truthy(r.out:find("bundle", 1, true))
      assert.truthy(r.out:find("--debug", 1, true))
      assert.equal("", r.err)
    end
  end)

  it("Ctrl-C ends a script with 130 and one line, after its cleanup", function()
    local code, out, err = interrupt(SLEEPER)
    assert.equal(130, code)
    assert.equal("ready\ncleanup\tfalse\n", out)
    assert.equal("corio: interrupted\n", err)
  end)

  it("Ctrl-C under --debug keeps the traceback", function()
    local code, _, err = interrupt(SLEEPER, { "--debug" })
    assert.equal(130, code)
    assert.truthy(err:find("CANCELLED: interrupted", 1, true))
    assert.truthy(err:find("stack traceback", 1, true))
  end)

  it("an error raised by the cleanup after Ctrl-C is still reported", function()
    local code, _, err = interrupt([[
      print("ready")
      pcall(corio.sleep, 60)
      error("cleanup failed")
    ]])
    assert.equal(130, code)
    assert.truthy(err:find("cleanup failed", 1, true))
  end)

  for _, how in ipairs { "print(i)", "corio.stdout:write(i, '\\n')" } do
    it("ends quietly when the reader of stdout goes away (" .. how .. ")",
       function()
      local d = S.tmpdir()
      local script = S.write(d .. "/s.lua",
        "for i = 1, math.huge do " .. how .. " end")
      local out = S.sh("bash -c " .. S.shquote(
        S.shquote(S.corio) .. " " .. S.shquote(script) .. " 2>" ..
        S.shquote(d .. "/err") .. " | head -n 2; echo \"rc=${PIPESTATUS[0]}\""))
      assert.equal("1\n2\nrc=0\n", out)
      assert.equal("", S.read(d .. "/err"))
    end)
  end

  it("print, io.write and corio.stdout come out in program order", function()
    local r = S.run([[
      io.write("1 ") corio.stdout:write("2 ") io.write("3 ")
      corio.stdout:write("4\n") print("5") corio.stdout:write("6\n")
      io.stderr:write("a ") corio.stderr:write("b\n")
    ]])
    assert.equal(0, r.code)
    assert.equal("1 2 3 4\n5\n6\n", r.out)
    assert.equal("a b\n", r.err)
  end)
end)
