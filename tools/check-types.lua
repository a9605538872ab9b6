-- check-types.lua FILE... -- run by the corio binary (make check-types):
-- every public module the binary embeds, every field it exports and every
-- method of every class reachable from it must have a LuaLS definition in
-- the given ---@meta files (types/).  A module, function or class added
-- later fails here until it is typed; and a function defined in types/
-- that the runtime does not export (renamed, removed) fails too.
--
-- Modules: every corio.* name in package.preload, less the private ones
-- (a path component starting with "_") and INTERNAL below.  Classes: every
-- table whose __name starts with "corio.", found by walking the modules'
-- exports, their functions' upvalues and the registry, so a class built in
-- Lua (sync.Event, the TaskGroup) is found as well as one built in C.
--
-- Definitions are read from the files as LuaLS writes them:
--   ---@class corio.Stream : corio.Base     opens class corio.Stream
--   ---@field name type                     corio.Stream.name
--   local Stream = {}                       binds Stream to the class
--   function Stream:read(...) end           corio.Stream.read
--   Stream.limit = 0                        corio.Stream.limit

-- Modules and classes users never reach, each with the reason.
local INTERNAL = {
  ["corio.core"] = "the C half of corio; its public part is corio's",
  ["corio.compose"] = "the implementation behind corio.gather, wait, ...",
  ["corio.cli"] = "the binary's command line and REPL",
  ["corio.repl"] = "the REPL behind `corio -i` (a function, not an API)",
  ["corio.bundle"] = "`corio bundle` and the start of a bundled binary",
  ["corio.edit"] = "the REPL's line editor (libedit), binary only",
  ["corio.test"] = "the busted runner behind `corio test`",
  ["corio.WaitList"] = "corio.sync's private wait queue",
  ["corio.Listener"] = "corio.net's private listening socket",
  ["corio.WebSocketConn"] = "the wslay state behind a corio.WebSocket",
  ["corio.http.Parser"] = "the http_parser state behind an HTTP connection (corio._http)",
  ["corio._http.armed"] = "the HTTP server's list of connections for its disconnect watcher",
  ["corio.ProcessHandle"] = "corio.process's private child handle",
}

local defs, classes, parent = {}, {}, {}
local funcs = {}   -- "class.name" of every `function V.name`/`V:name`

local function parse(path)
  local f = assert(io.open(path))
  local class, bind = nil, {}
  for line in f:lines() do
    local c, p = line:match("^%-%-%-@class%s+([%w_.]+)%s*:?%s*([%w_.]*)")
    if c then
      class, classes[c] = c, true
      if p ~= "" then parent[c] = p end
    end
    local field = line:match("^%-%-%-@field%s+([%w_]+)")
    if field and class then defs[class .. "." .. field] = true end
    local var = line:match("^local%s+([%w_]+)%s*=%s*{") or
                line:match("^([%w_]+)%s*=%s*{")
    if var and class then bind[var] = class end
    local v, name = line:match("^function%s+([%w_]+)[.:]([%w_]+)%s*%(")
    if not v then v, name = line:match("^([%w_]+)%.([%w_]+)%s*=") end
    if v and bind[v] then defs[bind[v] .. "." .. name] = true end
    if v and bind[v] and line:match("^function") then
      funcs[#funcs + 1] = bind[v] .. "." .. name
    end
    if not line:match("^%-%-%-") and not line:match("^%s*$") and
       not var then class = nil end
  end
  f:close()
end

for _, path in ipairs(arg) do
  -- A definition file is Lua too: a syntax error would silently hide
  -- everything after it from the editor.
  local ok, err = loadfile(path)
  if not ok then io.stderr:write("check-types: ", err, "\n") os.exit(1) end
  parse(path)
end

-- defined(c, k): k is defined on class c or one of its parents.
local function defined(c, k)
  while c do
    if defs[c .. "." .. k] then return true end
    c = parent[c]
  end
  return false
end

local missing = {}
local function need(c, k, what)
  if not defined(c, k) then
    missing[#missing + 1] = ("%s.%s (%s without a definition)"):format(c, k, what)
  end
end

-- The public modules.
local modules = {}
for name in pairs(package.preload) do
  if name:match("^corio") and not name:match("%._") and
     not INTERNAL[name] then modules[#modules + 1] = name end
end
table.sort(modules)

-- Walk the values reachable from the modules to find their classes.
local found, seen = {}, {}
local function walk(v, depth)
  -- seen[v] is the depth v was walked at: reached again nearer a module,
  -- it is walked again (else what is found would depend on pairs order).
  if depth > 6 or (seen[v] and seen[v] <= depth) or v == _G or
     v == package then return end
  local t = type(v)
  if t == "table" then
    seen[v] = depth
    local n = rawget(v, "__name")
    if type(n) == "string" and n:match("^corio%.") then found[n] = v end
    for _, x in pairs(v) do walk(x, depth + 1) end
    walk(getmetatable(v), depth + 1)
  elseif t == "function" then
    seen[v] = depth
    for i = 1, 255 do
      local name, x = debug.getupvalue(v, i)
      if not name then break end
      walk(x, depth + 1)
    end
  elseif t == "userdata" then
    walk(getmetatable(v), depth + 1)
  end
end

for _, name in ipairs(modules) do
  local m = require(name)
  if not classes[name] then
    missing[#missing + 1] = name .. " (module without ---@class " .. name .. ")"
  end
  for k in pairs(m) do
    if type(k) == "string" and not k:match("^_") then need(name, k, "field") end
  end
  walk(m, 0)
end

-- Classes a public module hands out may be made in a private one (the
-- HTTP Response in corio._http_client): walk those too (after the public ones),
-- so what is found does not depend on how deep the public path to it is.
local private = {}
for name in pairs(package.preload) do
  if name:match("^corio%._") then private[#private + 1] = name end
end
table.sort(private)
for _, name in ipairs(private) do
  local ok, m = pcall(require, name)
  if ok then walk(m, 0) end
end

seen[debug.getregistry()] = nil
for k, v in pairs(debug.getregistry()) do
  if type(k) == "string" and k:match("^corio%.") then walk(v, 0) end
end

-- Each class: its methods (the __index table's functions, or the class
-- table's own, when it is its own __index).
local names = {}
for n in pairs(found) do names[#names + 1] = n end
table.sort(names)
local nclasses = 0
for _, n in ipairs(names) do
  if not INTERNAL[n] then
    nclasses = nclasses + 1
    local mt = found[n]
    if not classes[n] then
      missing[#missing + 1] = n .. " (class without ---@class)"
    end
    local methods = type(rawget(mt, "__index")) == "table" and mt.__index or mt
    for k, v in pairs(methods) do
      if type(k) == "string" and type(v) == "function" and
         not k:match("^_") then need(n, k, "method") end
    end
  end
end

-- The other way round: a function the types define must exist, so a
-- renamed or removed function does not live on in editors.  It is looked
-- up as a class method, else by its path from a module (corio.Error.is).
local function exists(def)
  local c, k = def:match("^(.*)%.([%w_]+)$")
  local mt = found[c]
  if mt then
    local methods = type(rawget(mt, "__index")) == "table" and mt.__index or mt
    if methods[k] ~= nil then return true end
  end
  for i = #def, 1, -1 do   -- the longest module name the path starts with
    local mod = def:sub(1, i)
    if def:sub(i + 1, i + 1) == "." and package.preload[mod] then
      local v = require(mod)
      for key in def:sub(i + 2):gmatch("[%w_]+") do
        if type(v) ~= "table" then return false end
        v = v[key]
      end
      return v ~= nil
    end
  end
  return false
end
for _, def in ipairs(funcs) do
  if not exists(def) then
    missing[#missing + 1] = def .. " (defined in types/ but not exported)"
  end
end

table.sort(missing)
if #missing > 0 then
  io.stderr:write("check-types: types/ and the modules differ:\n  ",
                  table.concat(missing, "\n  "), "\n")
  os.exit(1)
end
print(("check-types: %d modules and %d classes, every export typed, every typed function exported")
      :format(#modules, nclasses))
