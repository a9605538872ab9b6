-- soak/peer.lua -- the child-process peers of soak/run.lua.
--   corio soak/peer.lua slowread PORT BYTES RATE
--       connect, read BYTES at about RATE bytes/s (64 KiB reads, paced by
--       sleeps), check the pattern, print the count; exit 0 if all came
--   corio soak/peer.lua flood PORT BYTES
--       connect, write BYTES of the pattern (no newline in it), close
--   corio soak/peer.lua echo_server
--       serve on 127.0.0.1 (port printed on stdout): each connection reads
--       a line, writes it back, then reads to EOF.  Ends when stdin ends.
--       Run under `ulimit -n 64` for the EMFILE item.
--   corio soak/peer.lua idle PORT N
--       open N connections (8 tasks connecting), print "ready N" and
--       keep them idle until stdin ends; then close them all, print
--       "closed N" and exit 0.  soak/run.lua starts it with the fd limit
--       raised, so the server's process holds only the server's ends.
--   corio soak/peer.lua hog PORT N
--       connect, ask for N bytes, print "ready", never read: for kill -9
-- The pattern: byte i (from 0) is PAT[i % 251] (no "\n" in it), so a
-- reader checks any piece from its offset alone.
local corio = require "corio"
local net = require "corio.net"

local mode = arg[1]

local PAT = {}
for i = 0, 250 do PAT[#PAT + 1] = string.char(65 + i % 26) end
PAT = table.concat(PAT)
local BIG = PAT:rep(300)                 -- 75,300 bytes: any 64 KiB piece

local function piece(off, n)             -- the pattern at offset off
  local o = off % 251
  return BIG:sub(o + 1, o + n)
end

if mode == "slowread" then
  local port, bytes, rate = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local s = net.connect("127.0.0.1", port)
  local got, bad, t0 = 0, 0, corio.now()
  while true do
    local d = s:read(65536)
    if not d then break end
    if d ~= piece(got, #d) then bad = bad + 1 end
    got = got + #d
    local ahead = got / rate - (corio.now() - t0)
    if ahead > 0.001 then corio.sleep(ahead) end
  end
  s:close()
  print(got, bad)
  os.exit(got == bytes and bad == 0 and 0 or 1)
elseif mode == "flood" then
  local port, bytes = tonumber(arg[2]), tonumber(arg[3])
  local s = net.connect("127.0.0.1", port)
  local sent = 0
  while sent < bytes do
    local n = math.min(65536, bytes - sent)
    s:write(piece(sent, n))
    sent = sent + n
  end
  s:close()
elseif mode == "echo_server" then
  local srv = net.serve("127.0.0.1", 0, function(s)
    local line = s:read("L")
    if line then
      s:write(line)
      s:read("a")
    end
  end)
  local _, port = srv:address()
  io.stdout:write(port, "\n")
  io.stdout:flush()
  corio.stdin:read("a")
  srv:close()
  srv:abort_clients()
  srv:wait_closed()
elseif mode == "idle" then
  local port, n = tonumber(arg[2]), tonumber(arg[3])
  local cs, next_i = {}, 1
  local tasks = {}
  for t = 1, 8 do
    tasks[t] = corio.spawn(function()
      while next_i <= n do
        local i = next_i
        next_i = i + 1
        cs[i] = net.connect("127.0.0.1", port)
      end
    end)
  end
  for t = 1, #tasks do tasks[t]:await() end
  io.stdout:write("ready ", #cs, "\n")
  io.stdout:flush()
  corio.stdin:read("a")
  for i = 1, #cs do cs[i]:close() end
  io.stdout:write("closed ", #cs, "\n")
  io.stdout:flush()
elseif mode == "hog" then
  local s = net.connect("127.0.0.1", tonumber(arg[2]))
  s:write(arg[3], "\n")
  io.stdout:write("ready\n")
  io.stdout:flush()
  corio.sleep(3600)
else
  error("soak/peer.lua: unknown mode " .. tostring(mode))
end
