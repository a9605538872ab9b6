-- W9 spawn on luv: 1,000 `true` processes, 16 at a time (stdio inherited),
-- each handle closed in its exit callback.
local uv = require "luv"
local N, FLIGHT = 1000, 16

local started, done = 0, 0
local function start()
  if started >= N then return end
  started = started + 1
  local h
  h = assert(uv.spawn("true", { args = {}, stdio = { 0, 1, 2 } },
    function(code)
      if code == 0 then done = done + 1 end
      h:close()
      start()
    end))
end

local t0 = uv.hrtime()
for _ = 1, FLIGHT do start() end
uv.run()
print(string.format("time=%.4f check=%d", (uv.hrtime() - t0) / 1e9, done))
