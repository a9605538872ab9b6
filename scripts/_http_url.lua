--[[
corio._http_url -- URLs for the HTTP client (private): parse an absolute
http(s) URL into what a request needs, and resolve a Location reference
against the URL it came from (RFC 3986 section 5.2).
]]
local M = {}

--- parse(url) -> { scheme, host, port, target } or nil
function M.parse(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  authority = authority:gsub("^.*@", "")   -- userinfo is dropped
  local host, port = authority:match("^%[(.-)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]*):?(%d*)$") end
  if not host or host == "" or host:find("[%z\1-\32\127]") then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or scheme == "http" and 80 or nil)
  if not port or port > 65535 then return nil end
  path = path:gsub("#.*$", "")
  if path == "" or path:sub(1, 1) == "?" then path = "/" .. path end
  -- a target with spaces or CR/LF would inject into the request line
  if path:find("[%z\1-\32\127]") then return nil end
  return { scheme = scheme, host = host:lower(), port = port, target = path }
end

-- split(ref) -> scheme, authority, path, query (nil when absent; the
-- fragment is dropped: it is never sent).  RFC 3986 appendix B's regular
-- expression, as Lua patterns.
local function split(ref)
  ref = ref:gsub("#.*$", "")
  local scheme, rest = ref:match("^(%a[%w+.-]*):(.*)$")
  if not scheme then rest = ref end
  local query
  local q = rest:find("?", 1, true)
  if q then rest, query = rest:sub(1, q - 1), rest:sub(q + 1) end
  local authority, path = rest:match("^//([^/]*)(.*)$")
  if not authority then path = rest end
  return scheme, authority, path, query
end

-- RFC 3986 5.2.4: "." and ".." segments removed from a path, moving
-- one segment at a time from the input to the output ("/.." drops the
-- last output segment)
local function remove_dots(input)
  local out = {}
  while input ~= "" do
    if input:sub(1, 3) == "../" then input = input:sub(4)
    elseif input:sub(1, 2) == "./" then input = input:sub(3)
    elseif input:sub(1, 3) == "/./" then input = input:sub(3)
    elseif input == "/." then input = "/"
    elseif input:sub(1, 4) == "/../" then input, out[#out] = input:sub(4), nil
    elseif input == "/.." then input, out[#out] = "/", nil
    elseif input == "." or input == ".." then input = ""
    else
      local seg = input:match("^/?[^/]*")
      out[#out + 1] = seg
      input = input:sub(#seg + 1)
    end
  end
  return table.concat(out)
end

local function compose(scheme, authority, path, query)
  local t = { scheme, ":" }
  if authority then t[#t + 1] = "//" .. authority end
  t[#t + 1] = path
  if query then t[#t + 1] = "?" .. query end
  return table.concat(t)
end

--- resolve(base, ref) -> the absolute URL `ref` stands for (RFC 3986
--- 5.2.2, strict: a reference with a scheme is absolute)
function M.resolve(base, ref)
  local rs, ra, rp, rq = split(ref)
  local bs, ba, bp, bq = split(base)
  if rs then return compose(rs, ra, remove_dots(rp), rq) end
  if ra then return compose(bs, ra, remove_dots(rp), rq) end
  if rp == "" then return compose(bs, ba, bp, rq or bq) end
  if rp:sub(1, 1) == "/" then return compose(bs, ba, remove_dots(rp), rq) end
  -- 5.2.3 merge: the base's path up to its last "/", or "/" when the
  -- base has an authority and an empty path
  local merged
  if ba and bp == "" then merged = "/" .. rp
  else merged = bp:gsub("[^/]*$", "") .. rp end
  return compose(bs, ba, remove_dots(merged), rq)
end

return M
