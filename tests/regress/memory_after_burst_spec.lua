-- Issue 15, point 5: memory stayed at its peak after a burst (slab arenas
-- were never unmapped while the state lived, glibc kept the freed heap,
-- the anchor table shrank only when no task was alive).  Each burst runs
-- in a child corio, which prints its RSS at the start, at the peak and
-- once it is back (or after 10 s).
local S = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
                 .. "../support.lua")

local PRELUDE = [[
  local corio = require "corio"
  local function rss()
    local f = io.open("/proc/self/statm")
    local _, r = f:read("n", "n")
    f:close()
    return r * 4096
  end
  local function settle(limit)
    local t0 = corio.now()
    while rss() > limit and corio.now() - t0 < 10 do corio.sleep(0.1) end
    return corio.now() - t0
  end
]]

describe("regress: memory comes back after a burst", function()
  after_each(S.cleanup)
  if S.sanitized() then
    it("(skipped under ASan: RSS says nothing there)", function() end)
    return
  end

  it("200,000 tasks: back to <= 10% of the peak within 5 s", function()
    local r = S.run(PRELUDE .. [[
      local start = rss()
      local go = corio.future()
      for _ = 1, 200000 do corio.spawn(function() go:await() end) end
      corio.sleep(0)
      local peak = rss()
      go:set_result()
      corio.sleep(0)
      local took = settle(peak // 10)
      print(start, peak, rss(), took)
    ]])
    assert.equal(0, r.code, r.err)
    local start, peak, after, took = r.out:match("(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
    start, peak, after, took = tonumber(start), tonumber(peak), tonumber(after), tonumber(took)
    assert.is_true(peak > start + 100 * 2^20, "the burst did not grow: " .. r.out)
    assert.is_true(after <= peak / 10, ("peak %d, after %d"):format(peak, after))
    assert.is_true(took <= 5, "took " .. took .. " s")
  end)

  -- 9,000: both ends live in the child, and 20,000 fds is the hard limit
  -- of the machines we run on.
  it("9,000 connections opened and closed: back to <= start + 8 MiB within 5 s", function()
    local r = S.run(PRELUDE .. [[
      local net = require "corio.net"
      local srv = net.serve("127.0.0.1", 0, function(s) s:read(1) end)
      local _, port = srv:address()
      corio.sleep(0)
      local start = rss()
      local clients = {}
      for i = 1, 9000 do clients[i] = net.connect("127.0.0.1", port) end
      while srv:connections() < 9000 do corio.sleep(0.01) end
      local peak = rss()
      for i = 1, 9000 do clients[i]:close() end
      clients = nil
      while srv:connections() > 0 do corio.sleep(0.01) end
      local took = settle(start + 8 * 2^20)
      print(start, peak, rss(), took)
      srv:close()
    ]])
    assert.equal(0, r.code, r.err)
    local start, peak, after, took = r.out:match("(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
    start, peak, after, took = tonumber(start), tonumber(peak), tonumber(after), tonumber(took)
    assert.is_true(peak > start + 16 * 2^20, "the burst did not grow: " .. r.out)
    assert.is_true(after <= start + 8 * 2^20,
      ("start %d, peak %d, after %d"):format(start, peak, after))
    assert.is_true(took <= 5, "took " .. took .. " s")
  end)
end)
