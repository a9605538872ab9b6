--[[
corio.bundle -- `corio bundle script.lua [-o name]`: one standalone
executable (Node's SEA, `deno compile`, Lune's `build`).

The bundle is a copy of the running binary with a payload appended:

  [binary][payload][payload size: 8 bytes, little endian][MAGIC: 16 bytes]

The payload is a list of string.pack("<s4s4", name, bytecode) entries,
the script first (name "=main"), then every Lua module it requires from
its own folder or package.path, found by reading `require "name"` calls in
the source (recursively; a name computed at run time is not seen).  The
bytecode keeps its debug information and the chunk names are the files'
paths relative to the script's folder, so tracebacks name the original
files.  A module found only on package.cpath (a C module) is refused: a
bundle cannot carry a shared library.

At start-up main.c looks for MAGIC at the end of its own executable
(/proc/self/exe: one open and two reads) and, when it is there, runs the
payload through run() with every command-line argument given to the
script.
]]
local M = {}

M.MAGIC = "corio-bundle-v1\0"
local TRAILER = 8 + #M.MAGIC

local function die(msg)
  io.stderr:write("corio bundle: ", msg, "\n")
  require("corio.core").exit_code(1)
  return nil
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

-- Names passed to require with a literal string in src.
local function required_names(src)
  local names, seen = {}, {}
  for _, pat in ipairs {
    "require%s*%(?%s*\"([^\"\n]+)\"", "require%s*%(?%s*'([^'\n]+)'",
    "require%s*%(?%s*%[%[([^%]\n]+)%]%]",
  } do
    for name in src:gmatch(pat) do
      if not seen[name] then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  table.sort(names)
  return names
end

-- Whether require(name) is served without a file (corio's own modules,
-- Lua's libraries, anything preloaded in the binary).
local function builtin(name)
  return name == "corio" or name:match("^corio%.") ~= nil or
    package.loaded[name] ~= nil or package.preload[name] ~= nil
end

local function relative(path, dir)
  if dir ~= "" and path:sub(1, #dir) == dir then
    return path:sub(#dir + 1)
  end
  return (path:gsub("^%./", ""))
end

-- Collects the script and its modules as {name=, chunkname=, code=}.
local function collect(script)
  local dir = script:match("^(.*/)") or ""
  local lpath = (dir ~= "" and dir or "./") .. "?.lua;" ..
    (dir ~= "" and dir or "./") .. "?/init.lua;" .. package.path
  local entries, done = {}, {}
  local function add(name, path)
    local src, err = read_file(path)
    if not src then return nil, err end
    local chunkname = "@" .. relative(path, dir)
    local fn, lerr = load(src, chunkname, "t")
    if not fn then return nil, lerr end
    entries[#entries + 1] = { name = name, code = string.dump(fn, false) }
    for _, dep in ipairs(required_names(src)) do
      if not done[dep] and not builtin(dep) then
        done[dep] = true
        local file = package.searchpath(dep, lpath)
        if file then
          local ok, e = add(dep, file)
          if not ok then return nil, e end
        else
          local so = package.searchpath(dep, (dir ~= "" and dir or "./") ..
                                         "?.so;" .. package.cpath)
          if so then
            return nil, string.format("module '%s' is a C module (%s): a " ..
              "bundle carries only Lua modules", dep, so)
          end
          io.stderr:write("corio bundle: warning: module '", dep,
                          "' not found; it must be present where the " ..
                          "bundle runs\n")
        end
      end
    end
    return true
  end
  local ok, err = add("=main", script)
  if not ok then return nil, err end
  return entries
end

-- The running binary without any payload of its own.
local function plain_binary()
  local self = assert(read_file("/proc/self/exe"))
  if #self > TRAILER and self:sub(-#M.MAGIC) == M.MAGIC then
    local n = string.unpack("<I8", self, #self - TRAILER + 1)
    self = self:sub(1, #self - TRAILER - n)
  end
  return self
end

-- corio bundle script.lua [-o name]
function M.main(args)
  local script, out
  local i = 1
  while i <= (args.n or #args) do
    local a = args[i]
    if a == "-o" then
      out = args[i + 1]
      i = i + 1
    elseif a == "-h" or a == "--help" then
      io.stdout:write("usage: corio bundle script.lua [-o name]\n")
      return
    elseif not script then
      script = a
    else
      return die("unexpected argument '" .. tostring(a) .. "'")
    end
    i = i + 1
  end
  if not script then return die("usage: corio bundle script.lua [-o name]") end
  if not out or out == "" then
    out = (script:match("([^/]*)$"):gsub("%.lua$", ""))
    if out == script:match("([^/]*)$") then out = out .. ".bin" end
  end
  local entries, err = collect(script)
  if not entries then return die(err) end
  local parts = {}
  for k, e in ipairs(entries) do
    parts[k] = string.pack("<s4s4", e.name, e.code)
  end
  local payload = table.concat(parts)
  local f, oerr = io.open(out, "wb")
  if not f then return die(oerr) end
  f:write(plain_binary(), payload, string.pack("<I8", #payload), M.MAGIC)
  f:close()
  os.execute("chmod 755 '" .. out:gsub("'", "'\\''") .. "'")
  io.stderr:write(string.format("corio bundle: wrote %s (%d module(s))\n",
                                out, #entries - 1))
end

-- Runs a payload (main.c found one): the modules become package.preload
-- entries, then the script runs with the arguments.
function M.run(payload, args)
  local pos, main = 1, nil
  while pos <= #payload do
    local name, code
    name, code, pos = string.unpack("<s4s4", payload, pos)
    local fn = assert(load(code, name, "b"))
    if name == "=main" then
      main = fn
    else
      package.preload[name] = fn
    end
  end
  return main(table.unpack(args, 1, args.n))
end

return M
