-- fs.lines against io.lines on one file: by default 2,000,000 lines of
-- 27 bytes (55 MB, the figure of issue 15), read the same way by both,
-- interleaved ROUNDS times; prints each median and the ratio (target
-- <= 1.5; past it the run exits 1).  CPU time (os.clock), so a loaded
-- machine skews it less.
--   build/corio bench/fs_lines.lua [lines] [rounds]
local corio = require "corio"
local fs = require "corio.fs"

local LINES = tonumber(arg and arg[1]) or 2000000
local ROUNDS = tonumber(arg and arg[2]) or 5
local dir = fs.mkdtemp("/tmp/corio-lines-XXXXXX")
local path = dir .. "/lines.txt"
do
  local f <close> = assert(io.open(path, "w"))
  local line = string.rep("x", 26) .. "\n"
  local block = string.rep(line, 1000)
  for _ = 1, LINES // 1000 do f:write(block) end
end

local function count_io()
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end

local function count_fs()
  local n = 0
  for _ in fs.lines(path) do n = n + 1 end
  return n
end

local function timed(fn)
  local c0, w0 = os.clock(), corio.now()
  local n = fn()
  assert(n == LINES, "read " .. n .. " lines")
  return os.clock() - c0, corio.now() - w0
end

local io_t, fs_t = {}, {}
for i = 1, ROUNDS do
  io_t[i] = timed(count_io)
  fs_t[i] = timed(count_fs)
end
table.sort(io_t)
table.sort(fs_t)
local mi, mf = io_t[(ROUNDS + 1) // 2], fs_t[(ROUNDS + 1) // 2]
print(("io.lines  %.3f s CPU (median of %d)"):format(mi, ROUNDS))
print(("fs.lines  %.3f s CPU"):format(mf))
print(("ratio     %.2f (target <= 1.5)"):format(mf / mi))
fs.remove(path)
fs.rmdir(dir)
-- Past the target the run fails (exit 1), so a slower fs.lines is seen.
if mf / mi > 1.5 then
  io.stderr:write("fs_lines: fs.lines is past 1.5x io.lines\n")
  os.exit(1)
end
