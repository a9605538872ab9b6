-- Regression (issue 12, client audit point 1): an idempotent request whose
-- reused connection failed before any response byte was retried on the
-- next *pooled* connection, which the server had closed too (it closes
-- idle connections together: a restart, an idle timeout), so the retry
-- failed the same way.  The retry must open a new connection.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local O = dofile(here .. "../helpers/http_origin.lua")

describe("regress: an http retry opens a new connection", function()
  it("two stale pooled connections: the retry does not take the second", function()
    local closed, both = 0, corio.future()
    O.with_raw_origin({
      -- answers once, then closes behind the client's back
      ["/ok"] = function(s)
        s:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        s:close()
        closed = closed + 1
        if closed == 2 then both:set_result() end
      end,
    }, function(base, cl, stats)
      -- two requests at once: two connections, both pooled once read
      local a = corio.spawn(function() return cl:get(base .. "/ok"):body() end)
      local b = corio.spawn(function() return cl:get(base .. "/ok"):body() end)
      assert.equal("ok", a:await())
      assert.equal("ok", b:await())
      corio.timeout(20, both.await, both)
      assert.equal(2, stats.conns)
      -- the first pooled one fails; the retry goes to a third connection
      assert.equal("ok", corio.timeout(20, function() return cl:get(base .. "/ok"):body() end))
      assert.equal(3, stats.conns)
    end)
  end)
end)
