-- W4 peer: TCP echo server in Lua 5.4 + luv (callbacks, no coroutines).
-- Prints "port=N"; serves until stdin closes.
local uv = require "luv"

local server = uv.new_tcp()
server:bind("127.0.0.1", tonumber(arg[1]) or 0)
server:listen(511, function(err)
  if err then return end
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
      return
    end
    client:write(data)
  end)
end)
io.stdout:write("port=", server:getsockname().port, "\n")
io.stdout:flush()

local stdin = uv.new_pipe(false)
stdin:open(0)
stdin:read_start(function(err, data)
  if err or not data then
    stdin:close()
    server:close()
    uv.walk(function(h) if not h:is_closing() then h:close() end end)
  end
end)
uv.run()
