--[[
corio.json -- JSON on Debian's lua-cjson (linked into the binary).

decode gives integers back as Lua integers (cjson reads every number as
a float), JSON null as json.null, and errors as corio.Error with code
JSON.  encode writes empty tables as {} unless marked with json.array.
]]
local cjson = require("corio._cjson").new()  -- own instance: own settings
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

-- Encoding: empty arrays marked with json.array become []; cjson knows
-- nothing of our mark, so marked empty tables are replaced by a sentinel.
local EMPTY_ARRAY = "\0corio-empty-array\0"
local function prep(v, depth, seen)
  if type(v) ~= "table" then return v end
  if depth > 1000 then fail("encode", "nesting too deep") end
  if seen[v] then fail("encode", "cannot encode a table that contains itself") end
  if getmetatable(v) == array_mt and next(v) == nil then return EMPTY_ARRAY end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do out[k] = prep(x, depth + 1, seen) end
  seen[v] = nil
  return out
end

--- encode(value) -> string
function json.encode(v)
  local ok, s = pcall(cjson.encode, prep(v, 0, {}))
  if not ok then fail("encode", s) end
  return (s:gsub('"\\u0000corio%-empty%-array\\u0000"', "[]"))
end

-- cjson reads every number as a float; whole numbers that a double
-- holds exactly (|x| <= 2^53) come back as integers, so ids and counts
-- print as 42, not 42.0.
local EXACT = 2 ^ 53
local function ints(v)
  if type(v) == "number" then
    if v == math.floor(v) and v >= -EXACT and v <= EXACT then
      return math.tointeger(v)
    end
    return v
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      local t = type(x)
      if t == "number" or t == "table" then v[k] = ints(x) end
    end
  end
  return v
end

--- decode(string) -> value
function json.decode(s)
  if type(s) ~= "string" then
    raise(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(s)))
  end
  local ok, v = pcall(cjson.decode, s)
  if not ok then fail("decode", v) end
  return ints(v)
end

return json
