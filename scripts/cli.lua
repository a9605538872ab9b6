--[[
corio.cli -- the body of the binary's main task.

main.c parses the command line and spawns the function returned here as
the main task, with a list of actions and the script's arguments; running
them in Lua, inside the task's coroutine, lets a script's top level await.
]]
local core = require "corio.core"

-- A chunk that does not load (missing file, syntax error) is reported as
-- lua.c does: the message alone, no traceback through this file.
local function check(chunk, err)
  if not chunk then
    io.stderr:write("corio: ", err, "\n")
    core.exit_code(1)
  end
  return chunk
end

return function(actions, args)
  -- `corio` is a global in the binary (scripts, -e code, the REPL), as
  -- `process` is in Node; `require "corio"` gives the same table.
  rawset(_G, "corio", require "corio")
  for _, a in ipairs(actions) do
    if a.kind == "e" then
      local chunk = check(load(a.code, "=(command line)"))
      if not chunk then return end
      chunk()
    elseif a.kind == "l" then
      local name, mod = a.module:match("^([^=]+)=(.+)$")
      name, mod = name or a.module, mod or a.module
      _G[name] = require(mod)
    elseif a.kind == "script" then
      local chunk = check(loadfile(a.path))
      if not chunk then return end
      if not core.debugging() then
        return chunk(table.unpack(args, 1, args.n))
      end
      -- --debug: once the main chunk is done, say what keeps the
      -- program alive (tasks with where they wait and were spawned,
      -- open handles by kind).
      local res = table.pack(chunk(table.unpack(args, 1, args.n)))
      local open = require("corio.debug").summary(true)
      if open ~= "" then
        io.stderr:write("corio: [debug] the main chunk is done; still ",
                        "running:\n", open, "\n")
      end
      return table.unpack(res, 1, res.n)
    elseif a.kind == "bundle" then
      return require("corio.bundle").main(args)
    elseif a.kind == "bundled" then
      return require("corio.bundle").run(a.payload, args)
    elseif a.kind == "test" then
      return require("corio.test").main(args)
    elseif a.kind == "i" then
      require("corio.repl")()
    end
  end
end
