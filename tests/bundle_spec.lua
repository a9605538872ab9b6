-- corio bundle: one standalone executable that runs from anywhere.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "support.lua")

local function sh(cmd) return S.sh(cmd .. " 2>&1") end

-- Writes an app (a script, a module in a subfolder, one beside it),
-- bundles it, removes the sources; returns the bundle's path.
local function build(extra)
  local src, dest = S.tmpdir(), S.tmpdir()
  os.execute("mkdir -p " .. S.shquote(src .. "/lib"))
  S.write(src .. "/app.lua", [[
    local util = require "lib.util"
    local helper = require("helper")
    print("args", select("#", ...), ...)
    print(util.twice(21), helper.name)
    corio.sleep(0.01)
    if arg[1] == "fail" then util.boom() end
    os.exit(tonumber(arg[1]) or 0)
  ]] .. (extra or ""))
  S.write(src .. "/lib/util.lua", "local M = {}\n" ..
    "function M.twice(x) return x * 2 end\n" ..
    "function M.boom() error('boom from util') end\nreturn M\n")
  S.write(src .. "/helper.lua", "return { name = 'helper' }\n")
  local out, code = sh("cd " .. S.shquote(src) .. " && " ..
    S.shquote(S.corio) .. " bundle app.lua -o " .. S.shquote(dest .. "/app"))
  os.execute("rm -rf " .. S.shquote(src))
  return dest .. "/app", code, out
end

describe("corio bundle", function()
  after_each(S.cleanup)

  it("runs from another folder with the sources gone, with its arguments",
     function()
    local app, code = build()
    assert.equal(0, code)
    local out, rc = sh("cd / && " .. S.shquote(app) .. " a 'b c' test -e")
    assert.equal(0, rc)
    assert.equal("args\t4\ta\tb c\ttest\t-e\n42\thelper\n", out)
  end)

  it("keeps exit codes and names the original files in tracebacks",
     function()
    local app = build()
    local _, rc = sh(S.shquote(app) .. " 7")
    assert.equal(7, rc)
    local out, rc2 = sh(S.shquote(app) .. " fail")
    assert.equal(1, rc2)
    assert.truthy(out:find("lib/util.lua:3: boom from util", 1, true))
    assert.truthy(out:find("app.lua:6", 1, true))
  end)

  it("is about the size of the binary", function()
    local app = build()
    local size = function(p)
      local f = assert(io.open(p, "rb"))
      local n = f:seek("end")
      f:close()
      return n
    end
    assert.truthy(size(app) < size(S.corio) * 1.1)
  end)

  it("refuses a C module clearly", function()
    local d = S.tmpdir()
    S.write(d .. "/app.lua", "local x = require 'native'\n")
    S.write(d .. "/native.so", "not really a library")
    local out, code = sh("cd " .. S.shquote(d) .. " && " ..
      S.shquote(S.corio) .. " bundle app.lua")
    assert.equal(1, code)
    assert.truthy(out:find("module 'native' is a C module", 1, true))
  end)

  it("says when the script does not exist", function()
    local out, code = sh(S.shquote(S.corio) .. " bundle /nonexistent.lua")
    assert.equal(1, code)
    assert.truthy(out:find("corio bundle:", 1, true))
  end)
end)
