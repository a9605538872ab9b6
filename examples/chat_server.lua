--[[
chat_server.lua -- a line-based chat: the first line a client sends is its
name; every later line goes to all the other clients.

Each client has a handler task reading its lines.  Broadcasting writes to
every other client's stream; a client too slow to keep up only slows down
the broadcaster up to its stream's write buffer, then is dropped (a
per-write deadline), so one stuck client cannot stall the room.

Run: corio examples/chat_server.lua [port]      (then: nc localhost 7778)
     corio examples/chat_server.lua --selftest (three scripted clients)
]]
-- ci: --selftest
local corio = require "corio"
local net = require "corio.net"

local clients = {}                 -- stream -> name

-- Writes to one client; gives up (and drops it) after 2 s of backpressure.
local function send(stream, text)
  local t = corio.spawn(stream.write, stream, text)
  local timer = corio.call_later(2, function() t:cancel("too slow") end)
  local ok = pcall(t.await, t)
  timer:cancel()
  if not ok then
    clients[stream] = nil
    stream:abort()
  end
end

local function broadcast(from, text)
  for stream in pairs(clients) do
    if stream ~= from then send(stream, text) end
  end
end

local function handle(stream)
  stream:write("name? ")
  local name = stream:read("l")
  if not name or name == "" then return end
  clients[stream] = name
  broadcast(stream, name .. " joined\n")
  for line in stream:lines() do
    broadcast(stream, ("<%s> %s\n"):format(name, line))
  end
  clients[stream] = nil
  broadcast(stream, name .. " left\n")
end

if arg[1] ~= "--selftest" then
  local server = net.serve("0.0.0.0", tonumber(arg[1]) or 7778, handle)
  print("chat server on port " .. select(2, server:address()))
  server:serve_forever()
  return
end

-- Self-test: alice, bob and carol join; each says hello; each must see
-- the others' greetings.
local server = net.serve("127.0.0.1", 0, handle, { limit = 4096 })
local _, port = server:address()
local names = { "alice", "bob", "carol" }
local streams = {}
for i, name in ipairs(names) do
  local s = net.connect("127.0.0.1", port)
  assert(s:readexactly(6) == "name? ")
  s:write(name, "\n")
  streams[i] = s
  if i > 1 then                    -- the earlier ones see the join
    for j = 1, i - 1 do assert(streams[j]:read("l") == name .. " joined") end
  end
end
for i, s in ipairs(streams) do s:write("hello from ", names[i], "\n") end
for i, s in ipairs(streams) do
  local seen = {}
  for _ = 1, #names - 1 do seen[#seen + 1] = s:read("l") end
  table.sort(seen)
  local want = {}
  for j, other in ipairs(names) do
    if j ~= i then want[#want + 1] = ("<%s> hello from %s"):format(other, other) end
  end
  assert(table.concat(seen, "|") == table.concat(want, "|"),
    table.concat(seen, "|"))
end
for _, s in ipairs(streams) do s:close() end
server:close()
server:wait_closed()
print("selftest ok")
