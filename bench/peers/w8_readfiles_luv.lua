-- W8 read files on luv: 10,000 files of 1 KiB (made before timing), 64
-- reads in flight, each open -> fstat -> read -> close as four callback
-- requests on libuv's pool (luv's natural way).
local uv = require "luv"
local N, FLIGHT, SIZE = 10000, 64, 1024

local dir = assert(uv.fs_mkdtemp("/tmp/luv-w8-XXXXXX"))
local block = string.rep("x", SIZE)
local paths = {}
for i = 1, N do
  paths[i] = dir .. "/f" .. i
  local fd = assert(uv.fs_open(paths[i], "w", 420))
  assert(uv.fs_write(fd, block, 0))
  uv.fs_close(fd)
end

local next_i, total = 0, 0
local function start()
  if next_i >= N then return end
  next_i = next_i + 1
  uv.fs_open(paths[next_i], "r", 0, function(err, fd)
    assert(not err, err)
    uv.fs_fstat(fd, function(err2, st)
      assert(not err2, err2)
      uv.fs_read(fd, st.size, 0, function(err3, data)
        assert(not err3, err3)
        total = total + #data
        uv.fs_close(fd, function() start() end)
      end)
    end)
  end)
end

local t0 = uv.hrtime()
for _ = 1, FLIGHT do start() end
uv.run()
local t = (uv.hrtime() - t0) / 1e9
for i = 1, N do uv.fs_unlink(paths[i]) end
uv.fs_rmdir(dir)
print(string.format("time=%.4f check=%d", t, total))
