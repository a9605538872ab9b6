-- corio.stdin / stdout / stderr as Streams, on files and pipes (run in
-- child corio processes).
local corio = require "corio"

local function mypid()
  local f = io.open("/proc/self/stat")
  local pid = f:read("n")
  f:close()
  return pid
end

local BIN
local function bin()
  if not BIN then
    local p = io.popen("readlink /proc/" .. mypid() .. "/exe")
    BIN = p:read("l")
    p:close()
  end
  return BIN
end

local tmp = (os.getenv("TMPDIR") or "/tmp") .. "/corio-stdio-" .. mypid()

-- Runs a shell command line in which CORIO is the binary; returns its
-- output and whether it succeeded.
local function sh(cmd)
  cmd = cmd:gsub("CORIO", bin())
  local p = io.popen(cmd:find("2>", 1, true) and cmd or cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function q(code)
  return "'" .. code:gsub("'", "'\\''") .. "'"
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

describe("net stdio", function()
  setup(function() os.execute("mkdir -p " .. tmp) end)
  teardown(function() os.execute("rm -rf " .. tmp) end)

  it("stdin on a file reads to the end", function()
    local data = string.rep("0123456789", 20000) .. "tail"
    write_file(tmp .. "/in", data)
    local out, ok = sh("CORIO -e " .. q([[
      local corio = require "corio"
      local all = corio.stdin:read("a")
      io.write(#all, " ", all:sub(-4))
    ]]) .. " < " .. tmp .. "/in")
    assert.is_true(ok, out)
    assert.equal(#data .. " tail", out)
  end)

  it("stdin on a file reads lines", function()
    write_file(tmp .. "/lines", "a\nb\n\nc")
    local out, ok = sh("CORIO -e " .. q([[
      local corio = require "corio"
      for l in corio.stdin:lines() do io.write("[", l, "]") end
    ]]) .. " < " .. tmp .. "/lines")
    assert.is_true(ok, out)
    assert.equal("[a][b][][c]", out)
  end)

  it("stdin on a pipe", function()
    local out, ok = sh("printf 'x\\ny\\n' | CORIO -e " .. q([[
      local corio = require "corio"
      io.write(corio.stdin:read("l"), "+", corio.stdin:read("L"))
      io.write(tostring(corio.stdin:read("l")))
    ]]))
    assert.is_true(ok, out)
    assert.equal("x+y\nnil", out)
  end)

  it("stdout and stderr on a pipe, in order, with print still working", function()
    local out, ok = sh("CORIO -e " .. q([[
      local corio = require "corio"
      corio.stdout:write("one\n")
      corio.stdout:drain()
      io.stdout:write("two\n") io.stdout:flush()
      corio.stdout:write(("z"):rep(300000), "\n")
      corio.stdout:drain()
      print("three")
    ]]) .. " | sort | uniq -c | sort -n | awk '{print $1}' | tr '\\n' ' '")
    assert.is_true(ok, out)
    assert.equal("1 1 1 1 ", out)
  end)

  it("stdout on a file", function()
    local out, ok = sh("CORIO -e " .. q([[
      local corio = require "corio"
      for i = 1, 1000 do corio.stdout:write(i, "\n") end
      corio.stdout:close()
    ]]) .. " > " .. tmp .. "/out; wc -l < " .. tmp .. "/out")
    assert.is_true(ok, out)
    assert.equal("1000", out:match("%d+"))
  end)

  it("stderr is a stream too", function()
    local out, ok = sh("CORIO -e " .. q([[
      local corio = require "corio"
      corio.stderr:write("to stderr\n")
    ]]) .. " 2>&1 >/dev/null")
    assert.is_true(ok, out)
    assert.equal("to stderr\n", out)
  end)

  it("a stdin read does not keep the process alive once cancelled", function()
    local t0 = os.time()
    local out, ok = sh("(sleep 1; echo late 2>/dev/null) | CORIO -e " .. q([[
      local corio = require "corio"
      local t = corio.spawn(function() return corio.stdin:read("l") end)
      corio.sleep(0.05)
      t:cancel()
      io.write(tostring(pcall(t.await, t)))
    ]]))
    assert.is_true(ok, out)
    assert.equal("false", out)
    -- The pipeline waits for sleep; the point is corio itself did not hang
    -- on its read (it printed and exited), which the output shows.
    assert.is_true(os.time() - t0 < 30)
  end)

  it("stdin and stdout on a terminal", function()
    if not os.execute("command -v script >/dev/null 2>&1") then
      pending("no script(1) to make a pseudo-terminal")
      return
    end
    local code = [[
      local corio = require "corio"
      corio.stdout:write("prompt> ")
      local l = corio.stdin:read("l")
      corio.stdout:write("got [", l, "]\n")
    ]]
    local out, ok = sh("printf 'typed\n' | script -qec \"CORIO -e " ..
      q(code):gsub('"', '\\"') .. "\" /dev/null")
    assert.is_true(ok, out)
    assert.matches("got %[typed%]", out)
  end)

  it("the stdio streams are the same objects every time", function()
    assert.equal(corio.stdout, corio.stdout)
    assert.equal(require("corio.net").stdout, corio.stdout)
  end)
end)
