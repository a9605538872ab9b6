-- W8: read 10,000 files of 1 KiB with 64 reads in flight.
-- Setup (not timed): the files are made in a fresh temp directory.
-- Prints time=<s> check=<total bytes>.
local corio = require "corio"
local fs = require "corio.fs"

local N, FLIGHT, SIZE = 10000, 64, 1024
local dir = fs.mkdtemp("/tmp/corio-w8-XXXXXX")
local block = string.rep("x", SIZE)
local paths = {}
for i = 1, N do
  paths[i] = dir .. "/f" .. i
  fs.write_file(paths[i], block)
end

local t0 = corio.now()
local next_i, total = 0, 0
local function worker()
  while next_i < N do
    next_i = next_i + 1
    local data = fs.read_file(paths[next_i])
    total = total + #data
  end
end
local tasks = {}
for i = 1, FLIGHT do tasks[i] = corio.spawn(worker) end
for i = 1, FLIGHT do tasks[i]:await() end
local t = corio.now() - t0

for i = 1, N do fs.remove(paths[i]) end
fs.rmdir(dir)
print(string.format("time=%.4f check=%d", t, total))
