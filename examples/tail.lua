--[[
tail.lua -- `tail -f` built on fs.watch.

Prints the last lines of a file, then follows it: fs.watch tells us when
the file changes, and we read what was appended from where we stopped
(a File keeps its position).  No polling.  If the file shrinks (truncated
or rewritten) we start again from its beginning; if it is renamed away
(log rotation) we reopen the path.

Run: corio examples/tail.lua [-n LINES] [-t SECONDS] FILE
     -t stops after SECONDS (default: follow until ^C)
Without FILE it runs a demo: a writer task appends a line every 0.1 s to
a temporary file, which is followed for 1.5 s.
]]
local corio = require "corio"
local fs = require "corio.fs"

local nlines, duration, path = 10, nil, nil
local i = 1
while i <= #arg do
  if arg[i] == "-n" then i = i + 1; nlines = assert(tonumber(arg[i]))
  elseif arg[i] == "-t" then i = i + 1; duration = assert(tonumber(arg[i]))
  else path = arg[i] end
  i = i + 1
end

local writer
if path == nil then                      -- the demo
  local dir = fs.mkdtemp("/tmp/corio-tail-XXXXXX")
  path = dir .. "/demo.log"
  fs.write_file(path, "first line\nsecond line\n")
  duration = duration or 1.5
  writer = corio.spawn(function()
    local ok = pcall(function()
      for n = 1, 100 do
        corio.sleep(0.1)
        fs.write_file(path, ("line %d at %.2f\n"):format(n, corio.now()), { append = true })
      end
    end)
    fs.remove(path)
    fs.rmdir(dir)
    if not ok then return end
  end)
end

-- The last n lines of what is in f now; leaves f at its end.
local function last_lines(f, n)
  local size = f:seek("end")
  local from = math.max(0, size - 64 * 1024)   -- enough for n usual lines
  f:seek("set", from)
  local text = f:read("a")
  local lines = {}
  for line in text:gmatch("[^\n]*\n") do lines[#lines + 1] = line end
  if from > 0 then table.remove(lines, 1) end    -- a partial first line
  return table.concat(lines, "", math.max(1, #lines - n + 1))
end

local f = fs.open(path)
io.write(last_lines(f, nlines))
io.stdout:flush()

local changed = corio.future()
local function on_change(_, event)
  if not changed:done() then changed:set_result(event) end
end
local watcher = fs.watch(path, on_change)

local deadline = duration and corio.now() + duration
while true do
  local left = deadline and deadline - corio.now()
  if left and left <= 0 then break end
  corio.wait({ changed }, { timeout = left })
  local event = changed:done() and changed:result()
  changed = corio.future()
  if event == "rename" then                      -- rotated: follow the path
    watcher:close()
    f:close()
    local ok, nf = pcall(fs.open, path)
    if not ok then break end
    f = nf
    watcher = fs.watch(path, on_change)
  end
  if f:stat().size < f:seek() then f:seek("set", 0) end   -- truncated
  local data = f:read("a")
  if data ~= "" then
    io.write(data)
    io.stdout:flush()
  end
end
watcher:close()
f:close()
if writer then writer:cancel(); pcall(writer.await, writer) end
