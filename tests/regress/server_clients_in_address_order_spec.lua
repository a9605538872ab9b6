-- Regression (issue 15, point 3): server:close_clients() and
-- server:abort_clients() went over the clients in the iteration order of
-- a table keyed by their handler tasks, which follows the tasks'
-- addresses: which handler saw its EOF or CLOSED first changed from run to
-- run.  They go over the clients in the order they were accepted.
local corio = require "corio"
local net = corio.net

describe("regress: a server ends its clients in accept order", function()
  local N = 24

  -- Serves N clients, each handler waiting for a line; end_them(srv)
  -- ends them; returns the accept numbers in the order the handlers woke.
  local function run(end_them)
    local woke, accepted = {}, 0
    local srv <close> = net.serve("127.0.0.1", 0, function(s)
      accepted = accepted + 1
      local me = accepted
      pcall(s.read, s, "l")                 -- EOF or CLOSED
      woke[#woke + 1] = me
    end)
    local _, port = srv:address()
    local clients, garbage = {}, {}
    for i = 1, N do
      for k = 1, 7 * i do garbage[#garbage + 1] = corio.future() end
      clients[i] = net.connect("127.0.0.1", port)
      while accepted < i do corio.sleep(0.002) end
    end
    srv:close()
    end_them(srv)
    srv:wait_closed()
    for i = 1, N do clients[i]:close() end
    return woke
  end

  local want = {}
  for i = 1, N do want[i] = i end

  it("close_clients", function()
    assert.are.same(want, run(function(srv) srv:close_clients() end))
  end)

  it("abort_clients", function()
    assert.are.same(want, run(function(srv) srv:abort_clients() end))
  end)
end)
