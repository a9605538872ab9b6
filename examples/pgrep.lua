--[[
pgrep.lua -- a parallel grep over a directory tree.

One task walks the tree (fs.readdir, recursively); every regular file it
finds is searched by a task of its own, but at most JOBS files are read at
once (a Semaphore), so a huge tree never opens thousands of files or holds
them all in memory.  Each file is read whole with fs.read_file -- one
thread-pool job -- and searched with Lua patterns (plain text with -F).
Matches print as `path:line:text`, grouped per file, files in the order
they finish.

Run: corio examples/pgrep.lua [-F] [-j JOBS] PATTERN [DIR]
     corio examples/pgrep.lua -F luaopen_corio bindings
]]
-- ci: -F luaopen_corio bindings
local corio = require "corio"
local fs = require "corio.fs"
local sync = require "corio.sync"

local args, plain, jobs = {}, false, 16
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-F" then plain = true
  elseif a == "-j" then i = i + 1; jobs = assert(tonumber(arg[i]), "-j needs a number")
  else args[#args + 1] = a end
  i = i + 1
end
local pattern, root = args[1], args[2] or "."
if not pattern then
  io.stderr:write("usage: corio examples/pgrep.lua [-F] [-j JOBS] PATTERN [DIR]\n")
  os.exit(2)
end

local slots = sync.Semaphore(jobs)
local group <close> = corio.group()
local nfiles, nmatches = 0, 0

local function search(path)
  slots:acquire()
  local ok, data = pcall(fs.read_file, path)
  slots:release()
  if not ok then
    io.stderr:write("pgrep: ", tostring(data), "\n")
    return
  end
  if data:find("\0", 1, true) then return end          -- binary: skip
  local out, n = {}, 0
  for line in data:gmatch("([^\n]*)\n?") do
    n = n + 1
    if line:find(pattern, 1, plain) then
      out[#out + 1] = ("%s:%d:%s"):format(path, n, line)
    end
  end
  if #out > 0 then
    nmatches = nmatches + #out
    io.write(table.concat(out, "\n"), "\n")
  end
end

local function walk(dir)
  local ok, entries = pcall(fs.readdir, dir)
  if not ok then
    io.stderr:write("pgrep: ", tostring(entries), "\n")
    return
  end
  table.sort(entries, function(a, b) return a.name < b.name end)
  for _, e in ipairs(entries) do
    local path = dir == "." and e.name or dir .. "/" .. e.name
    if e.type == "directory" then
      if e.name ~= ".git" then walk(path) end
    elseif e.type == "file" then
      nfiles = nfiles + 1
      group:spawn(search, path)
    end
  end
end

local t0 = corio.now()
walk(root)
group:wait()
io.stderr:write(("pgrep: %d matches in %d files, %.3f s\n"):format(
  nmatches, nfiles, corio.now() - t0))
