-- Regression: the C udp(family) binding looked at family[4] to tell
-- "inet6" from "inet", so a shorter string was read past its end (under
-- ASan a heap overflow) and any other name quietly made an IPv4 socket.
-- The public net.udp checks its options first; this calls the binding
-- the way any script can reach it.
local C = require "corio._net"

describe("corio._net.udp(family)", function()
  it("refuses a family name it does not know, however short", function()
    for _, fam in ipairs({ "x", "", "inet4", "inex6" }) do
      local ok, err = pcall(C.udp, fam)
      assert.is_false(ok, fam)
      assert.matches("bad argument #1", err)
    end
  end)

  it("still makes inet and inet6 sockets, inet by default", function()
    for _, fam in ipairs({ "inet", "inet6" }) do
      local s = C.udp(fam)
      assert.is_not_nil(s)
      s:close()
    end
    C.udp():close()
  end)
end)
