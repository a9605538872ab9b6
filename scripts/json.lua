--[[
corio.json -- JSON on Debian's lua-cjson (linked into the binary).

Numbers: every Lua integer is written with its exact digits and every
float with the shortest %.17g text that reads back (whole floats as
"3.0"); a number token without '.', 'e', 'E' that fits int64 is read as
that exact integer, any other as a float (past int64 too, as Python and
JavaScript do).  JSON null is json.null; errors are corio.Error with code
JSON.  encode writes empty tables as {} unless marked with json.array.
]]
local cjsonlib = require "corio._cjson"
local cjson = cjsonlib.new()   -- own instance: own settings
local core = require "corio.core"
local raise = require("corio._args").raise

local json = {}

json.null = cjson.null
cjson.encode_sparse_array(false)
cjson.decode_invalid_numbers(false)
cjson.encode_invalid_numbers(false)
cjson.encode_max_depth(1000)
cjson.decode_max_depth(1000)
cjson.encode_number_precision(14)       -- the most this cjson allows

-- json.array(t) -> t, marked as a JSON array (encoded [] even when empty).
local array_mt = { __name = "corio.json.array" }
json.array_mt = array_mt
function json.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then
    raise(("bad argument #1 to 'array' (table expected, got %s)"):format(type(t)))
  end
  return setmetatable(t, array_mt)
end

local function fail(op, msg)
  error(core.Error("JSON", (tostring(msg):gsub("^[^:]*:%d+: ", "")), { op = op }), 0)
end

-- cjson stays the writer and the reader; three things it gets wrong are
-- fixed around it with marker strings "\0<nonce><i>" that stand for a
-- piece of JSON text (encode) or a value (decode):
--   * it writes every number with 14 significant digits through a double:
--     integers past 10^14 and floats that need 15-17 digits are written by
--     cjsonlib.exact instead (%d, and the shortest %.Ng that reads back);
--     whole floats get a ".0" so they come back as floats;
--   * it reads every number as a double: cjsonlib.scan rewrites the tokens
--     it would read wrongly (integers past 15 digits, whole numbers written
--     with '.', 'e' or 'E') before cjson.decode sees them;
--   * it has no empty array: json.array marks one.
-- The nonce is random per process, and a string that looks like a marker
-- is refused by encode, so data can never turn into JSON text.
local NONCE = cjsonlib.nonce()
local MARK = "\0" .. NONCE
local MARK_LEN = #MARK
local MARK_PAT = '"\\u0000' .. NONCE .. '(%d+)"'
local exact, scan = cjsonlib.exact, cjsonlib.scan
local byte, sub = string.byte, string.sub
local mtype, tointeger, floor = math.type, math.tointeger, math.floor

local function check_str(s)
  if byte(s, 1) == 0 and sub(s, 1, MARK_LEN) == MARK then
    fail("encode", "string collides with an internal marker")
  end
  return s
end

-- prep(v) -> a copy of v that cjson writes right; texts[i] holds the JSON
-- text of marker i.
local function prep(v, depth, seen, texts)
  local t = type(v)
  if t == "number" then
    if mtype(v) == "integer" and v < 100000000000000 and v > -100000000000000 then
      return v
    end
    local text = exact(v)
    if not text then return v end
    local i = #texts + 1
    texts[i] = text
    return MARK .. i
  elseif t == "string" then
    return check_str(v)
  elseif t ~= "table" then
    return v
  end
  if depth > 1000 then fail("encode", "nesting too deep") end
  if seen[v] then fail("encode", "cannot encode a table that contains itself") end
  if getmetatable(v) == array_mt and next(v) == nil then
    local i = #texts + 1
    texts[i] = "[]"
    return MARK .. i
  end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do
    local tk = type(k)
    if tk == "string" then
      check_str(k)
    elseif tk == "number" then
      -- a key cjson would write with 14 digits: the exact digits as a
      -- string key (the table is an object then, as in Python)
      local text = exact(k)
      if text then
        if mtype(k) == "float" then text = text:gsub("%.0$", "") end
        if v[text] ~= nil or out[text] ~= nil then
          fail("encode", "number key " .. text .. " collides with a string key")
        end
        k = text
      end
    end
    out[k] = prep(x, depth + 1, seen, texts)
  end
  seen[v] = nil
  return out
end

local function unmark(texts)
  return function(i) return texts[tonumber(i)] end
end

--- encode(value) -> string
function json.encode(...)
  if select("#", ...) == 0 then raise("bad argument #1 to 'encode' (value expected)") end
  local v = ...
  local texts = {}
  local ok, s = pcall(cjson.encode, prep(v, 0, {}, texts))
  if not ok then fail("encode", s) end
  if texts[1] == nil then return s end
  return (s:gsub(MARK_PAT, unmark(texts)))
end

-- ints(v, vals): cjson read every number as a float; the ones left (tokens
-- of up to 15 digits without '.', 'e', 'E', so exact) become integers, and
-- markers the values scan read.
local EXACT = 2 ^ 53
local function ints(v, vals)
  local t = type(v)
  if t == "number" then
    if v == floor(v) and v >= -EXACT and v <= EXACT then
      return tointeger(v)
    end
    return v
  elseif t == "string" then
    if vals and byte(v, 1) == 0 and sub(v, 1, MARK_LEN) == MARK then
      local x = vals[tonumber(sub(v, MARK_LEN + 1))]
      if x ~= nil then return x end
    end
  elseif t == "table" then
    for k, x in pairs(v) do
      local tx = type(x)
      if tx == "number" or tx == "table" or (vals and tx == "string") then
        v[k] = ints(x, vals)
      end
    end
  end
  return v
end

--- decode(string) -> value
function json.decode(s)
  if type(s) ~= "string" then
    raise(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(s)))
  end
  local vals = {}
  local s2 = scan(s, NONCE, vals)
  local ok, v = pcall(cjson.decode, s2 or s)
  if not ok then
    if s2 then ok, v = pcall(cjson.decode, s) end   -- the error's position in s
    if not ok then fail("decode", v) end
  end
  return ints(v, s2 and vals)
end

return json
