--[[
tests/pty.lua -- drives the corio binary through a pseudo-terminal (not a
spec).  util-linux's `script` (in every Debian) owns the pty: what the
test writes to its stdin reaches the terminal as typed keys (so "\3" is
Ctrl-C: the line discipline turns it into SIGINT), and everything the
program draws comes back on its stdout.  Every step waits for output, never
for time, so it holds on a loaded machine.

  local P = dofile(dir .. "pty.lua")
  local t = P.open(S.corio, { "-i" }, { CORIO_HISTORY = path })
  t:expect("> ")          -- waits (60 s at most) for text after the mark
  t:send("1 + 1\r")
  t:expect("2")
  local code, out = t:finish()   -- closes the keyboard, waits for exit
]]
local corio = require "corio"
local process = require "corio.process"

local P = {}
local Pty = {}
Pty.__index = Pty

local function shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function P.open(binary, args, env)
  local cmd = { "exec", shquote(binary) }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = shquote(a) end
  local e = {}
  for k, v in pairs(process.env) do e[k] = v end
  e.TERM = "xterm"
  for k, v in pairs(env or {}) do e[k] = v end
  local p = process.spawn({ "script", "-qfec", table.concat(cmd, " "),
                            "/dev/null" },
                          { stdin = "pipe", stdout = "pipe", env = e })
  return setmetatable({ p = p, out = "", mark = 1 }, Pty)
end

-- Waits until `text` (plain) appears after the mark; moves the mark past
-- it and returns everything from the old mark to it.
function Pty:expect(text, seconds)
  local from = self.mark
  local ok, err = pcall(corio.timeout, seconds or 60, function()
    while not self.out:find(text, self.mark, true) do
      local d = self.p.stdout:read(4096)
      if not d then error("EOF", 0) end
      self.out = self.out .. d
    end
  end)
  if not ok then
    error(string.format("pty: %q not seen (%s); output so far:\n%s", text,
                        tostring(err), self.out), 2)
  end
  local _, e = self.out:find(text, self.mark, true)
  self.mark = e + 1
  return self.out:sub(from, e)
end

function Pty:send(keys)
  self.p.stdin:write(keys)
end

-- Closes the keyboard, reads what is left, returns exit code and output.
function Pty:finish()
  pcall(self.p.stdin.close, self.p.stdin)
  corio.timeout(60, function()
    while true do
      local d = self.p.stdout:read(4096)
      if not d then break end
      self.out = self.out .. d
    end
  end)
  local code = self.p:wait()
  return code, self.out
end

-- Kills the child if a test failed half-way.
function Pty:kill()
  pcall(self.p.kill, self.p, "SIGKILL")
  pcall(self.p.wait, self.p)
  pcall(self.p.stdout.close, self.p.stdout)
  pcall(self.p.stdin.close, self.p.stdin)
end

return P
