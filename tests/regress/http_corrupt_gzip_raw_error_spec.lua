-- Regression (issue 12, client audit point 3): a gzip or deflate response
-- body that does not decode raised zlib's plain string ("corrupt gzip
-- body") instead of a corio.Error: scripts that sort errors by `code`
-- could not tell it from a bug.  It is HTTP_PROTOCOL, like any other
-- invalid message from the peer.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local O = dofile(here .. "../helpers/http_origin.lua")

local function answer(enc, body)
  return ("HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s")
    :format(enc, #body, body)
end

-- "hello" gzipped (python3 -c 'import gzip; gzip.compress(b"hello", mtime=0)')
local GZIP = "\31\139\8\0\0\0\0\0\2\3\203\72\205\201\201\7\0\134\166\16\54\5\0\0\0"

describe("regress: a corrupt compressed body", function()
  it("is HTTP_PROTOCOL for gzip, deflate (zlib and raw) and a cut stream", function()
    O.with_raw_origin({
      ["/ok"] = answer("gzip", GZIP),
      ["/gzip"] = answer("gzip", "this is not gzip at all"),
      ["/crc"] = answer("gzip", GZIP:sub(1, -9) .. "\0\0\0\0" .. GZIP:sub(-4)),
      ["/zlib"] = answer("deflate", "\120\156garbage garbage garbage"),
      ["/raw"] = answer("deflate", "\255\255\255\255 not deflate"),
      ["/cut"] = answer("gzip", GZIP:sub(1, 12)),
    }, function(base, cl)
      assert.equal("hello", cl:get(base .. "/ok"):body())
      for _, p in ipairs({ "/gzip", "/crc", "/zlib", "/raw", "/cut" }) do
        local r = cl:get(base .. p)
        local ok, err = pcall(r.body, r)
        assert.is_false(ok, p)
        assert.is_true(corio.Error.is(err), p .. ": " .. tostring(err))
        assert.equal("HTTP_PROTOCOL", err.code, p)
        r:close()
      end
      -- the client goes on
      assert.equal("hello", cl:get(base .. "/ok"):body())
    end)
  end)
end)
