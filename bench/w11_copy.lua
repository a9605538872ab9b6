-- W11: copy a 1 GiB file (fs.copyfile: one pool job; libuv uses
-- copy_file_range / sendfile, in the kernel).  The source is made by
-- bench/run.py (or: head -c 1G /dev/urandom > /tmp/corio-bench-1g.bin).
-- Prints time=<s> check=<bytes copied>.
local corio = require "corio"
local fs = require "corio.fs"

local src = os.getenv("CORIO_BENCH_1G") or "/tmp/corio-bench-1g.bin"
local dst = src .. ".corio-copy"
os.execute("sync")          -- earlier runs' dirty pages: not ours
local t0 = corio.now()
fs.copyfile(src, dst)
local t = corio.now() - t0
local size = fs.stat(dst).size
fs.remove(dst)
print(string.format("time=%.4f check=%d", t, size))
