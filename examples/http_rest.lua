-- A JSON REST API and its client in one script: the server keeps a todo
-- list; the client creates, lists and deletes items over keep-alive.
-- Run: corio examples/http_rest.lua
local http = require "corio.http"

local todos, next_id = {}, 1
local srv = http.serve("127.0.0.1", 0, function(req)
  local id = tonumber(req.path:match("^/todos/(%d+)$"))
  if req.path == "/todos" and req.method == "GET" then
    local list = {}
    for _, t in pairs(todos) do list[#list + 1] = t end
    table.sort(list, function(a, b) return a.id < b.id end)
    return 200, {}, require("corio.json").array(list)
  elseif req.path == "/todos" and req.method == "POST" then
    local t = req:json()
    t.id, next_id = next_id, next_id + 1
    todos[t.id] = t
    return 201, {}, t
  elseif id and req.method == "DELETE" then
    if not todos[id] then return 404, {}, { error = "no such todo" } end
    todos[id] = nil
    return 204
  end
  return 404, {}, { error = "not found" }
end)
local _, port = srv:address()
local base = "http://127.0.0.1:" .. port

local client <close> = http.client()
for _, title in ipairs({ "write docs", "run benchmarks" }) do
  local r = client:post(base .. "/todos", nil, { json = { title = title } })
  print(r.status, r:json().id, title)
end
assert(client:delete(base .. "/todos/1").status == 204)
local list = client:get(base .. "/todos"):json()
print(#list .. " left:", list[1].title)
assert(#list == 1 and list[1].id == 2)
srv:shutdown(5)
