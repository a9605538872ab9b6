-- A webhook receiver: accepts JSON POSTs on /hook that carry the shared
-- secret in an X-Webhook-Token header, queues each event for a worker task
-- and answers 202 at once.  Wrong token 401, not JSON 400 (or 415), other
-- methods 405, bodies past 64 KiB 413 (the server's max_body_size).
--
-- corio has no HMAC primitive (corio.tls exposes no digest), so the
-- sender proves itself with a shared secret compared in constant time;
-- put the receiver behind HTTPS (http.serve's opts.tls) so the secret
-- never travels in clear.
--
-- Run: WEBHOOK_SECRET=s3cret corio examples/webhook_receiver.lua [PORT]
-- With --check it starts its server, sends good and bad deliveries with
-- corio.http, checks the answers and what the worker saw, exits 0 (CI).
-- ci: --check
local corio = require "corio"
local http = require "corio.http"
local json = require "corio.json"
local sync = require "corio.sync"

-- equal strings in a time that depends on the length only
local function same(a, b)
  if type(a) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

local function receiver(secret, events)
  return function(req)
    if req.path ~= "/hook" then return 404, {}, { error = "not found" } end
    if req.method ~= "POST" then return 405, { Allow = "POST" }, { error = "POST only" } end
    if not same(req.headers["x-webhook-token"], secret) then
      return 401, {}, { error = "bad token" }
    end
    local ctype = (req.headers["content-type"] or ""):match("^[^;]*"):lower()
    if ctype ~= "application/json" then return 415, {}, { error = "JSON expected" } end
    local ok, event = pcall(req.json, req)
    if not ok then
      -- a body past max_body_size: the server answers 413 itself
      if type(event) == "table" and event.status then error(event, 0) end
      return 400, {}, { error = "invalid JSON" }
    end
    if type(event) ~= "table" or type(event.id) ~= "string" then
      return 400, {}, { error = "an event needs a string id" }
    end
    events:put(event)              -- the worker handles it after we answer
    return 202, {}, { received = event.id }
  end
end

local function serve(port, secret, events)
  return http.serve("127.0.0.1", port, receiver(secret, events), { max_body_size = 65536 })
end

local function check()
  local secret = "s3cret-" .. tostring(os.time())
  local events = sync.Queue(100)
  local seen, three = {}, corio.future()
  local worker = corio.spawn(function()
    while true do
      local e = events:get()
      seen[#seen + 1] = e.type .. ":" .. e.id
      if #seen == 3 then three:set_result() end
    end
  end)
  local srv = serve(0, secret, events)
  local _, port = srv:address()
  local url = "http://127.0.0.1:" .. port .. "/hook"
  local cl <close> = http.client()
  local function post(body, headers)
    local r = cl:post(url, body, { headers = headers })
    return r.status, r:json()
  end
  local good = { ["X-Webhook-Token"] = secret, ["Content-Type"] = "application/json" }

  for i = 1, 3 do
    local status, answer = post(json.encode({ id = "ev" .. i, type = "push" }), good)
    assert(status == 202 and answer.received == "ev" .. i, status)
  end
  print("3 deliveries accepted")

  local status = post('{"id":"x"}', { ["X-Webhook-Token"] = secret .. "x", ["Content-Type"] = "application/json" })
  assert(status == 401)
  status = post('{"id":"x"}', { ["Content-Type"] = "application/json" })
  assert(status == 401)
  status = post("{not json", good)
  assert(status == 400)
  status = post('{"id":"x"}', { ["X-Webhook-Token"] = secret, ["Content-Type"] = "text/plain" })
  assert(status == 415)
  local r = cl:get(url)
  assert(r.status == 405 and r.headers["allow"] == "POST")
  r:body()
  r = cl:post(url, ("x"):rep(70000), { headers = good })
  assert(r.status == 413, r.status)
  r:body()
  print("bad token 401, bad JSON 400, wrong type 415, GET 405, too big 413")

  -- the worker runs after each answer: wait until it has seen all three
  corio.wait_for(three, 10)
  assert(table.concat(seen, ",") == "push:ev1,push:ev2,push:ev3", table.concat(seen, ","))
  print("worker saw " .. table.concat(seen, ","))
  worker:cancel()
  srv:shutdown(5)
  print("webhook receiver: all checks passed")
end

if arg[1] == "--check" then
  check()
else
  local secret = os.getenv("WEBHOOK_SECRET")
  if not secret or secret == "" then
    io.stderr:write("set WEBHOOK_SECRET to the secret the senders use\n")
    os.exit(2)
  end
  local events = sync.Queue(1000)
  corio.spawn(function()
    while true do
      local e = events:get()
      print(("event %s (%s)"):format(e.id, tostring(e.type)))
    end
  end)
  local port = tonumber(arg[1]) or 8080
  local srv = serve(port, secret, events)
  print(("receiving webhooks on http://127.0.0.1:%d/hook (Ctrl-C stops)"):format(port))
  srv:wait_closed()
end
