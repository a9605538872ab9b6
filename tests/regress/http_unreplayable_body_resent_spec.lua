-- Regression (issue 12, client audit point 2): a request body that cannot
-- be replayed -- a Stream, or a function returning chunks -- was sent again
-- (a Stream on a retry, both on a followed 307/308), by then empty or cut:
-- the server got another body than the caller's.  Such a request is never
-- retried, and a redirect that would resend its body (a 307/308, or a
-- 301/302 after a method other than POST) is returned to the caller, as
-- Go's net/http does when a body has no GetBody.
local corio = require "corio"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local O = dofile(here .. "../helpers/http_origin.lua")

local OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

-- a Stream-like body: read(n) gives its chunks, then nil
local function stream_of(...)
  local chunks, i = { ... }, 0
  return { read = function() i = i + 1 return chunks[i] end }
end

-- a chunk generator
local function gen_of(...)
  local chunks, i = { ... }, 0
  return function() i = i + 1 return chunks[i] end
end

-- the request's body (chunked or with a Content-Length), read to its end
local function read_body(s, head)
  local body = ""
  local len = tonumber(head:lower():match("content%-length: (%d+)") or "")
  if len then return len > 0 and s:readexactly(len) or "" end
  if head:lower():find("transfer%-encoding: chunked") then
    while true do
      local n = tonumber(s:readuntil("\r\n"):match("^(%x+)"), 16)
      if n == 0 then s:readuntil("\r\n") break end
      body = body .. s:readexactly(n)
      s:readuntil("\r\n")
    end
  end
  return body
end

-- the origin's answer for /target: 200 with the request's body
local function echo_target(s, head)
  local body = read_body(s, head)
  s:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body))
end

describe("regress: a body that cannot be replayed is sent once", function()
  it("a PUT with a Stream body is not retried on a reused connection", function()
    O.with_raw_origin({
      ["/ok"] = OK,
      ["/drop"] = function(s) s:close() end,
    }, function(base, cl, stats)
      assert.equal("ok", cl:get(base .. "/ok"):body())
      local ok, err = pcall(cl.put, cl, base .. "/drop", stream_of("data"))
      assert.is_false(ok)
      assert.is_true(corio.Error.is(err), tostring(err))
      assert.equal(1, O.count(stats, "/drop"))
    end)
  end)

  for _, status in ipairs({ 307, 308 }) do
    for kind, make in pairs({ Stream = stream_of, ["chunk function"] = gen_of }) do
      it(("a %d after a %s body is returned, not followed"):format(status, kind), function()
        O.with_raw_origin({
          -- (reads the body it answers, as a server that keeps the
          -- connection must: the client reuses it for the next request)
          ["/redirect"] = function(s, head)
            read_body(s, head)
            s:write(("HTTP/1.1 %d Moved\r\nLocation: /target\r\nContent-Length: 0\r\n\r\n"):format(status))
          end,
          ["/target"] = echo_target,
        }, function(base, cl, stats)
          local r = cl:post(base .. "/redirect", make("a", "b"), { follow_redirects = true })
          assert.equal(status, r.status)
          assert.equal("/target", r.headers.location)
          r:close()
          assert.equal(0, O.count(stats, "/target"))
          -- a string body is replayed: followed
          r = cl:post(base .. "/redirect", "ab", { follow_redirects = true })
          assert.equal(200, r.status)
          r:close()
        end)
      end)
    end
  end

  -- 301/302 turn only a POST into a GET: after a PUT they resend the body
  for _, status in ipairs({ 301, 302 }) do
    it(("a %d after a PUT with a Stream body is returned, not followed"):format(status), function()
      O.with_raw_origin({
        ["/redirect"] = function(s, head)
          read_body(s, head)
          s:write(("HTTP/1.1 %d Moved\r\nLocation: /target\r\nContent-Length: 0\r\n\r\n"):format(status))
        end,
        ["/target"] = echo_target,
      }, function(base, cl, stats)
        local r = cl:put(base .. "/redirect", stream_of("a", "b"), { follow_redirects = true })
        assert.equal(status, r.status)
        r:close()
        assert.equal(0, O.count(stats, "/target"))
        r = cl:put(base .. "/redirect", "ab", { follow_redirects = true })
        assert.equal(200, r.status)
        assert.equal("ab", r:body())
      end)
    end)
  end

  it("a 303 after a Stream body is followed as a GET without body", function()
    O.with_raw_origin({
      ["/redirect"] = "HTTP/1.1 303 See Other\r\nLocation: /target\r\nContent-Length: 0\r\n\r\n",
      ["/target"] = echo_target,
    }, function(base, cl)
      local r = cl:post(base .. "/redirect", stream_of("a", "b"), { follow_redirects = true })
      assert.equal(200, r.status)
      assert.equal("", r:body())
    end)
  end)
end)
