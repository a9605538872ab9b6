-- W11: HTTP hello server on corio.http; serves on port arg[1] (0: any,
-- printed as "port=N") until killed.  Driven by bench/http.py.
local http = require "corio.http"
local srv = http.serve("127.0.0.1", tonumber(arg[1]) or 0, function()
  return 200, { ["content-type"] = "text/plain" }, "hello world\n"
end)
local _, port = srv:address()
io.stdout:write("port=", port, "\n")
io.stdout:flush()
srv:serve_forever()
