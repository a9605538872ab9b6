-- A scripted HTTP origin over corio.net, for client specs: each request's
-- path picks the canned bytes to answer (a string, or a function(stream,
-- head) writing them); it counts the connections it accepted and the
-- paths asked, in order.
local http = require "corio.http"
local net = require "corio.net"

local O = {}

--- O.with_raw_origin(answers, fn [, client_opts]): fn(base_url, client,
--- stats) runs against the origin (client made with client_opts); the
--- client and the origin are closed afterwards, also when fn fails.
function O.with_raw_origin(answers, fn, client_opts)
  local stats = { conns = 0, paths = {} }
  local srv = net.serve("127.0.0.1", 0, function(s)
    stats.conns = stats.conns + 1
    while true do
      local ok, head = pcall(s.readuntil, s, "\r\n\r\n")
      if not ok or not head then break end
      local path = head:match("^%u+ (%S+)")
      stats.paths[#stats.paths + 1] = path
      local a = answers[path] or "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
      if type(a) == "function" then a(s, head) else s:write(a) end
    end
    s:close()
  end)
  local _, port = srv:address()
  local cl = http.client(client_opts)
  local ok, err = pcall(fn, "http://127.0.0.1:" .. port, cl, stats)
  cl:close()
  srv:close()
  for t in pairs(srv._tasks) do t:cancel() end
  srv:wait_closed()
  if not ok then error(err, 0) end
end

--- O.count(stats, path) -> how many times the origin was asked for path
function O.count(stats, p)
  local n = 0
  for _, q in ipairs(stats.paths) do if q == p then n = n + 1 end end
  return n
end

return O
