--[[
ws_chat.lua -- a WebSocket chat room with the browser page it serves.

GET / returns the page; GET /ws upgrades to a WebSocket.  The first message
a client sends is its name; every later one goes to everybody.  Each
client's handler task receives its messages; broadcasting sends to every
client, and a client too slow to keep up (2 s of backpressure) is dropped,
so one stuck browser cannot stall the room.

Only the public API: http.serve answers the page and req:websocket()
answers the upgrade; the self-test's clients are http.websocket().

Run: corio examples/ws_chat.lua [port]        (then open http://localhost:7780/)
     corio examples/ws_chat.lua --selftest    (three scripted clients)
]]
-- ci: --selftest
local corio = require "corio"
local http = require "corio.http"

local PAGE = [[<!doctype html>
<meta charset="utf-8"><title>corio chat</title>
<ul id="log"></ul>
<form id="f"><input id="m" autocomplete="off" placeholder="your name first"><button>send</button></form>
<script>
const sock = new WebSocket(`ws://${location.host}/ws`);
const log = document.getElementById("log"), m = document.getElementById("m");
sock.onmessage = e => { const li = document.createElement("li");
  li.textContent = e.data; log.appendChild(li); };
document.getElementById("f").onsubmit = e => { e.preventDefault();
  if (m.value) sock.send(m.value); m.value = ""; };
</script>
]]

local clients = {}                 -- WebSocket -> name

local function send(w, text)
  local t = corio.spawn(w.send, w, text)
  local ok = pcall(corio.wait_for, t, 2)
  if not ok then clients[w] = nil end
end

local function broadcast(text)
  local list = {}
  for w in pairs(clients) do list[#list + 1] = w end
  for _, w in ipairs(list) do send(w, text) end
end

local function chat(w)
  local name = w:receive()
  if not name then return end
  clients[w] = name
  broadcast(name .. " joined")
  while true do
    local ok, msg = pcall(w.receive, w)
    if not ok or not msg then break end
    broadcast(name .. ": " .. msg)
  end
  clients[w] = nil
  broadcast(name .. " left")
end

local function handle(req)
  if req.path == "/ws" then
    local ok, w = pcall(req.websocket, req)
    if not ok then return 400, {}, "a WebSocket upgrade expected\n" end
    local _ <close> = w
    return chat(w)
  end
  if req.path ~= "/" then return 404, { ["content-type"] = "text/plain" }, "not found\n" end
  return 200, { ["content-type"] = "text/html; charset=utf-8" }, PAGE
end

local function selftest()
  local srv = http.serve("127.0.0.1", 0, handle)
  local _, port = srv:address()
  -- the page
  local page = http.get("http://127.0.0.1:" .. port .. "/")
  assert(page.status == 200 and page:body():find("new WebSocket", 1, true))
  -- three clients; each waits until it has seen everybody join
  local url = "ws://127.0.0.1:" .. port .. "/ws"
  local names = { "ada", "bob", "cy" }
  local conns = {}
  for i, n in ipairs(names) do
    conns[i] = http.websocket(url)
    conns[i]:send(n)
    assert(conns[i]:receive() == n .. " joined")
  end
  conns[1]:send("hello room")
  for i = 1, 3 do
    local want = "ada: hello room"
    repeat local got = assert(conns[i]:receive()) until got == want
  end
  conns[3]:close()
  repeat local got = assert(conns[1]:receive()) until got == "cy left"
  conns[1]:close()
  conns[2]:close()
  srv:shutdown(5)
  print("selftest ok")
end

if arg[1] == "--selftest" then
  selftest()
else
  local port = tonumber(arg[1]) or 7780
  local srv = http.serve("0.0.0.0", port, handle)
  print(("chat on http://localhost:%d/"):format(port))
  srv:serve_forever()
end
