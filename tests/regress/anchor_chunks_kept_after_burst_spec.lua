-- Found by the soak suite (issue 15, point 10): after a burst of a
-- million tasks, 19 MiB of Lua heap stayed allocated for good, so the
-- collector let garbage grow by as much before its next cycle (the 50 MB
-- line item grew RSS by 20 MiB after the burst, 0.6 MiB without it).  The
-- anchor chunks (runtime.c) were cut back with lua_settop, but a thread's
-- stack never shrinks below the highest top lua_checkstack granted it,
-- so each chunk a burst had filled kept its 1 MiB stack.  Each burst runs
-- in a child corio, which prints its Lua heap once it is back (or after
-- 10 s).
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "../support.lua")

local PRELUDE = [[
  local corio = require "corio"
  local function heap() return collectgarbage("count") * 1024 end
  local function settle(limit)
    local t0 = corio.now()
    while heap() > limit and corio.now() - t0 < 10 do corio.sleep(0.1) end
    return corio.now() - t0
  end
]]

describe("regress: anchor chunks are given back after a burst", function()
  after_each(S.cleanup)

  it("200,000 tasks end: the Lua heap comes back under 1.5 MiB", function()
    local r = S.run(PRELUDE .. [[
      local start = heap()
      do
        local go = corio.future()
        for _ = 1, 200000 do corio.spawn(function() go:await() end) end
        corio.sleep(0)
        go:set_result()
      end
      corio.sleep(0)
      local took = settle(1.5 * 2^20)
      collectgarbage()
      print(start, heap(), took)
    ]])
    assert.equal(0, r.code, r.err)
    local start, after = r.out:match("(%S+)%s+(%S+)")
    start, after = tonumber(start), tonumber(after)
    -- Before the fix: 3.9 MiB (four 1 MiB chunk stacks).
    assert.is_true(after <= 1.5 * 2^20, ("start %d, after %d"):format(start, after))
  end)

  it("tasks anchored before the burst keep their slots through the refit", function()
    local r = S.run(PRELUDE .. [[
      local hold = corio.future()
      local keep = {}
      for i = 1, 10 do
        keep[i] = corio.spawn(function() return hold:await() * i end)
      end
      do
        local go = corio.future()
        for _ = 1, 200000 do corio.spawn(function() go:await() end) end
        corio.sleep(0)
        go:set_result()
      end
      corio.sleep(0)
      settle(1.5 * 2^20)
      collectgarbage()
      local after = heap()
      hold:set_result(7)
      local sum = 0
      for i = 1, 10 do sum = sum + keep[i]:await() end
      -- and anchoring goes on: a second burst, past the first chunk
      local go = corio.future()
      local ts = {}
      for i = 1, 100000 do ts[i] = corio.spawn(function() return go:await() + i end) end
      corio.sleep(0)
      go:set_result(1)
      local sum2 = 0
      for i = 1, 100000 do sum2 = sum2 + ts[i]:await() end
      print(after, sum, sum2)
    ]])
    assert.equal(0, r.code, r.err)
    local after, sum, sum2 = r.out:match("(%S+)%s+(%S+)%s+(%S+)")
    assert.is_true(tonumber(after) <= 1.5 * 2^20, "heap " .. after)
    assert.equal(7 * 55, tonumber(sum))
    assert.equal(100000 + 100000 * 100001 // 2, tonumber(sum2))
  end)
end)
