--[[
corio._pretty -- how the REPL shows a value.

Strings are quoted (escapes visible), tables are shown one level deep
with their size, nested tables as `{…n}`; anything with a __tostring
(corio.Error, Task, Future, Stream) is shown as its own line.
]]
local M = {}

local MAX_SHOWN = 30         -- fields listed before "…"

local function quote(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function count(t)
  local n = 0
  for _ in next, t do n = n + 1 end
  return n
end

-- One value, never nested.
local function short(v)
  local ty = type(v)
  if ty == "string" then return quote(v) end
  if ty == "table" and not has_tostring(v) then
    local n = count(v)
    return n == 0 and "{}" or "{…" .. n .. "}"
  end
  local ok, s = pcall(tostring, v)
  return ok and s or ty
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  return "[" .. short(k) .. "]"
end

-- Keys in a stable order: the array part, then the rest by their text.
local function ordered_keys(t)
  local n, keys, rest = #t, {}, {}
  for i = 1, n do keys[i] = i end
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      rest[#rest + 1] = k
    end
  end
  table.sort(rest, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys, n
end

function M.show(v)
  if type(v) ~= "table" or has_tostring(v) then return short(v) end
  local keys, n = ordered_keys(v)
  if #keys == 0 then return "{}" end
  local parts = {}
  for i = 1, math.min(#keys, MAX_SHOWN) do
    local k = keys[i]
    parts[i] = (i <= n and "" or key_text(k) .. " = ") .. short(v[k])
  end
  if #keys > MAX_SHOWN then parts[#parts + 1] = "…" end
  return "{ " .. table.concat(parts, ", ") .. " }  (" .. #keys ..
    (#keys == 1 and " entry)" or " entries)")
end

return M
