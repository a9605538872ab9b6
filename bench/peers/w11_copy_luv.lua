-- W11 copy a 1 GiB file with luv's fs_copyfile (source made by run.py).
local uv = require "luv"
local src = os.getenv("CORIO_BENCH_1G") or "/tmp/corio-bench-1g.bin"
local dst = src .. ".luv-copy"
os.execute("sync")
local t0, t = uv.hrtime(), nil
uv.fs_copyfile(src, dst, function(err)
  assert(not err, err)
  t = (uv.hrtime() - t0) / 1e9
end)
uv.run()
local size = uv.fs_stat(dst).size
uv.fs_unlink(dst)
print(string.format("time=%.4f check=%d", t, size))
