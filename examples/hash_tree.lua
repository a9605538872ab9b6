--[[
hash_tree.lua -- hash every file under a directory, in parallel, with
progress.

    corio examples/hash_tree.lua [dir] [workers]

The directory is listed by `find` inside a to_thread job (a blocking
io.popen must not stall the loop), then every file is hashed by a job on
a thread pool: each file is read and hashed in a worker thread, in a Lua
state of its own, while the loop prints progress.  Jobs capture nothing
but globals, so they take the path as an argument.  The hash is a 64-bit
FNV-1a over 8-byte words (a demonstration, not a cryptographic hash).
]]
local corio = require "corio"
local executor = require "corio.executor"

local dir = arg[1] or "."
local workers = tonumber(arg[2]) or 4

-- Runs in a worker: the list of regular files under d.
local function list_files(d)
  local q = "'" .. d:gsub("'", "'\\''") .. "'"
  local p = assert(io.popen("find " .. q .. " -type f -print0 2>/dev/null"))
  local out = p:read("a")
  p:close()
  local files = {}
  for path in out:gmatch("([^%z]+)%z") do files[#files + 1] = path end
  table.sort(files)
  return files
end

-- Runs in a worker: hash and size of one file, or nil and a message.
local function hash_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local h, size = -3750763034362895579, 0     -- FNV offset basis
  local prime = 0x100000001b3
  while true do
    local chunk = f:read(1 << 16)
    if not chunk then break end
    size = size + #chunk
    local whole = #chunk - #chunk % 8
    for i = 1, whole, 8 do
      h = (h ~ (string.unpack("<i8", chunk, i))) * prime
    end
    for i = whole + 1, #chunk do
      h = (h ~ chunk:byte(i)) * prime
    end
  end
  f:close()
  return string.format("%016x", h), size
end

local files = corio.to_thread(list_files, dir)
local pool <close> = executor.thread_pool(workers)
local done, bytes, t0 = 0, 0, corio.now()

local function progress()
  io.stderr:write(string.format("\r%d/%d files, %.1f MB, %.1f s", done,
    #files, bytes / 1e6, corio.now() - t0))
end

local tasks = {}
for i, path in ipairs(files) do
  tasks[i] = corio.spawn(function()
    local hash, size = pool:run(hash_file, path)
    done = done + 1
    if hash then bytes = bytes + size end
    if done % 50 == 0 or done == #files then progress() end
    return hash, size
  end)
end

local failed = 0
for i, task in ipairs(tasks) do
  local hash, size = task:await()
  if hash then
    io.write(hash, "  ", files[i], "\n")
  else
    failed = failed + 1
    io.stderr:write("\ncannot read ", files[i], ": ", tostring(size), "\n")
  end
end
progress()
io.stderr:write(string.format("\nhashed %d files with %d workers%s\n",
  #files - failed, workers, failed > 0 and (", " .. failed .. " failed") or ""))
