-- Regression (issue 12, client audit point 5): a Response dropped without
-- close() and without reading its body to the end kept its connection's
-- pool slot forever: with max_per_host (or max_connections) reached, every
-- later request to that origin waited until its timeout.  A collected
-- Response gives the slot back and wakes a request waiting for one.
local corio = require "corio"
local http = require "corio.http"

local function with_origin(fn)
  local srv = http.serve("127.0.0.1", 0, function() return 200, {}, "body" end)
  local _, port = srv:address()
  local cl = http.client({ max_per_host = 2 })
  local ok, err = pcall(fn, "http://127.0.0.1:" .. port .. "/", cl)
  cl:close()
  srv:shutdown(5)
  if not ok then error(err, 0) end
end

-- n requests whose responses are dropped unread and unclosed
local function drop(cl, url, n)
  for _ = 1, n do assert.equal(200, cl:get(url).status) end
end

local function collect()
  collectgarbage()
  collectgarbage()
end

describe("regress: a dropped Response gives its pool slot back", function()
  it("max_per_host responses dropped, collected: a new request proceeds", function()
    with_origin(function(url, cl)
      drop(cl, url, 2)
      collect()
      local r = cl:get(url, { timeout = 20 })
      assert.equal("body", r:body())
      assert.equal(1, cl.open)
    end)
  end)

  it("a request already waiting for a slot is woken when they are collected", function()
    with_origin(function(url, cl)
      drop(cl, url, 2)
      local waiting = corio.spawn(function() return cl:get(url, { timeout = 20 }):body() end)
      corio.sleep(0)
      assert.is_false(waiting:done())
      collect()
      assert.equal("body", corio.timeout(20, waiting.await, waiting))
    end)
  end)
end)
