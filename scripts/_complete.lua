--[[
corio._complete -- Tab completion for the REPL.

complete(before, word) returns the words that may replace `word`, the
partial name under the cursor; `before` is the line up to it.  After
`a.b.` it lists the fields of a.b; after `x:` the methods of x (its
metatable's __index); otherwise globals and keywords.  Looking a name up
may load a corio submodule (corio.net), nothing else runs.
]]
local M = {}

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for",
  "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
  "return", "then", "true", "until", "while",
}

-- Submodules `corio` loads on first use: listed although not yet loaded.
local CORIO_LAZY = {
  "sync", "net", "fs", "process", "signal", "executor", "debug",
  "stdin", "stdout", "stderr", "to_thread",
}

-- Evaluates a dotted name (`corio.net`); nil if any part is missing.
local function resolve(expr)
  local v = _G
  for name in expr:gmatch("[^%.]+") do
    if not name:match("^[%a_][%w_]*$") then return nil end
    local ok, nv = pcall(function() return v[name] end)
    if not ok or nv == nil then return nil end
    v = nv
  end
  return v
end

-- Adds t's string keys (and those of its __index tables) to out.
local function add_keys(out, t, methods_only, depth)
  if type(t) == "table" then
    for k, val in next, t do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and
         not k:match("^__") and
         (not methods_only or type(val) == "function" or
          (type(val) == "table" and getmetatable(val) and
           getmetatable(val).__call)) then
        out[k] = true
      end
    end
  end
  if depth > 0 then
    local mt = getmetatable(t)
    if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
      add_keys(out, rawget(mt, "__index"), methods_only, depth - 1)
    end
  end
end

function M.complete(before, word)
  local path = before:match("([%w_%.:]*)$") or ""
  local names = {}
  local expr, sep = path:match("^(.-)([%.:])$")
  if not expr then                         -- a global or keyword
    add_keys(names, _G, false, 0)
    for _, k in ipairs(KEYWORDS) do names[k] = true end
  elseif expr == "" or expr:find(":", 1, true) then
    return {}
  else
    local v = resolve(expr)
    if v == nil then return {} end
    if type(v) == "string" then v = string end   -- ("x"):upper()
    add_keys(names, v, sep == ":", 3)
    if v == rawget(_G, "corio") or v == package.loaded.corio then
      for _, k in ipairs(CORIO_LAZY) do names[k] = true end
    end
  end
  local out = {}
  for k in pairs(names) do
    if k:sub(1, #word) == word then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

return M
