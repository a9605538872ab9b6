---@meta corio.json
-- LuaLS definitions of `require "corio.json"` (docs/API-http.md, "corio.json").

---A table marked to encode as a JSON array, even when empty.
---@class corio.json.array

---@class corio.json
---@field null lightuserdata stands for JSON null, both ways
---@field array_mt table the metatable `json.array` sets
local json = {}

---Integers are written with their exact digits, floats with the shortest
---text that reads back (whole floats as `3.0`).
---@param value any
---@return string
function json.encode(value) end

---A number token without '.', 'e', 'E' that fits int64 is that exact
---integer; any other number is a float.
---@param text string
---@return any
function json.decode(text) end

---Marks `t` (default: a new table) as an array: `{}` encodes as `[]`.
---@param t? table
---@return corio.json.array
function json.array(t) end

return json
