-- Regression (issue 12, client audit point 4): a relative Location was
-- glued to the base's directory: "?q" lost the path, "../x" went out as
-- "/a/b/../x" (dot segments unresolved), and the base's port was always
-- written into the URL.  Resolution now follows RFC 3986 section 5.2
-- (the examples are section 5.4's).
local client = require "corio._http_client"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local O = dofile(here .. "../helpers/http_origin.lua")

local BASE = "http://a/b/c/d;p?q"

-- RFC 3986 5.4.1 (normal) and 5.4.2 (abnormal) examples
local EXAMPLES = {
  { "g:h", "g:h" }, { "g", "http://a/b/c/g" }, { "./g", "http://a/b/c/g" },
  { "g/", "http://a/b/c/g/" }, { "/g", "http://a/g" }, { "//g", "http://g" },
  { "?y", "http://a/b/c/d;p?y" }, { "g?y", "http://a/b/c/g?y" },
  { "#s", "http://a/b/c/d;p?q" }, { "g#s", "http://a/b/c/g" },
  { "g?y#s", "http://a/b/c/g?y" }, { ";x", "http://a/b/c/;x" },
  { "g;x", "http://a/b/c/g;x" }, { "", "http://a/b/c/d;p?q" },
  { ".", "http://a/b/c/" }, { "./", "http://a/b/c/" }, { "..", "http://a/b/" },
  { "../", "http://a/b/" }, { "../g", "http://a/b/g" }, { "../..", "http://a/" },
  { "../../", "http://a/" }, { "../../g", "http://a/g" },
  { "../../../g", "http://a/g" }, { "../../../../g", "http://a/g" },
  { "/./g", "http://a/g" }, { "/../g", "http://a/g" }, { "g.", "http://a/b/c/g." },
  { ".g", "http://a/b/c/.g" }, { "g..", "http://a/b/c/g.." }, { "..g", "http://a/b/c/..g" },
  { "./../g", "http://a/b/g" }, { "./g/.", "http://a/b/c/g/" },
  { "g/./h", "http://a/b/c/g/h" }, { "g/../h", "http://a/b/c/h" },
  { "g;x=1/./y", "http://a/b/c/g;x=1/y" }, { "g;x=1/../y", "http://a/b/c/y" },
  { "g?y/./x", "http://a/b/c/g?y/./x" }, { "g?y/../x", "http://a/b/c/g?y/../x" },
  { "g#s/./x", "http://a/b/c/g" }, { "g#s/../x", "http://a/b/c/g" },
  { "http:g", "http:g" },
}

describe("regress: a relative Location resolves per RFC 3986", function()
  it("section 5.4's examples", function()
    for _, e in ipairs(EXAMPLES) do
      assert.equal(e[2], client.resolve_url(BASE, e[1]), "reference " .. e[1])
    end
    -- the base's port stays as written; an authority without a path
    assert.equal("http://a:8080/x", client.resolve_url("http://a:8080/b/c", "/x"))
    assert.equal("http://a/x", client.resolve_url("http://a", "x"))
    assert.equal("https://h/p", client.resolve_url("https://a/b", "//h/p"))
  end)

  it("redirects follow ../x, ?q, //host/p, /abs and x to the right targets", function()
    local function to(loc)
      return ("HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"):format(loc)
    end
    local OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    local answers = {
      ["/a/b/up"] = to("../x"), ["/a/x"] = OK,
      ["/a/b/q"] = to("?q=1"), ["/a/b/q?q=1"] = OK,
      ["/a/b/abs"] = to("/abs"), ["/abs"] = OK,
      ["/a/b/rel"] = to("y"), ["/a/b/y"] = OK,
    }
    O.with_raw_origin(answers, function(base, cl, stats)
      -- a network-path reference: the scheme stays, the authority changes
      local authority = base:match("^http:(//.*)$")
      answers["/a/b/net"] = to(authority .. "/abs")
      local cases = {
        { "/a/b/up", "/a/x" }, { "/a/b/q", "/a/b/q?q=1" },
        { "/a/b/abs", "/abs" }, { "/a/b/rel", "/a/b/y" }, { "/a/b/net", "/abs" },
      }
      for _, c in ipairs(cases) do
        local r = cl:get(base .. c[1])
        assert.equal("ok", r:body(), c[1])
        assert.equal(base .. c[2], r.url)
        assert.equal(c[2], stats.paths[#stats.paths])
      end
    end)
  end)
end)
