-- A small static file server: GET and HEAD of files under one directory,
-- a content type from the extension, index.html for a directory, 404 for
-- what is not there (or lies outside the root: no ../ escapes), 405 for
-- other methods.  Files are streamed, not read whole.
--
-- Run: corio examples/http_file_server.lua [DIR [PORT]]
--   serves DIR (default: the current directory) until Ctrl-C.
-- With --check it serves a temp directory of its own, requests it with
-- corio.http, checks every answer and exits 0 (how CI runs it).
-- ci: --check
local corio = require "corio"
local fs = require "corio.fs"
local http = require "corio.http"

local TYPES = {
  html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
  txt = "text/plain; charset=utf-8", md = "text/markdown; charset=utf-8",
  css = "text/css; charset=utf-8", js = "text/javascript; charset=utf-8",
  json = "application/json", xml = "application/xml", svg = "image/svg+xml",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  webp = "image/webp", ico = "image/x-icon", wasm = "application/wasm",
  pdf = "application/pdf", lua = "text/x-lua; charset=utf-8",
}

-- The file a request path names under root, or nil.  req.path is already
-- percent-decoded, so "/%2e%2e/x" arrives as "/../x": every segment is
-- checked after decoding.  Dot files are not served either.
local function resolve(root, path)
  if path:find("[%z\\]") then return nil end
  local parts = {}
  for seg in path:gmatch("[^/]+") do
    if seg == ".." or seg:sub(1, 1) == "." then return nil end
    parts[#parts + 1] = seg
  end
  return root .. "/" .. table.concat(parts, "/")
end

local function not_found() return 404, { ["Content-Type"] = "text/plain" }, "not found\n" end

local function handler(root)
  return function(req, res)
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return 405, { ["Allow"] = "GET, HEAD", ["Content-Type"] = "text/plain" }, "method not allowed\n"
    end
    local file = resolve(root, req.path)
    if not file then return not_found() end
    local ok, st = pcall(fs.stat, file)
    if ok and st.type == "directory" then
      file = file .. "/index.html"
      ok, st = pcall(fs.stat, file)
    end
    if not ok or st.type ~= "file" then return not_found() end
    local f <close> = fs.open(file, "r")   -- closed however the handler ends
    res:write_head(200, {
      ["Content-Type"] = TYPES[(file:match("%.([%w]+)$") or ""):lower()] or "application/octet-stream",
      ["Content-Length"] = tostring(st.size),
    })
    if req.method == "GET" then
      -- streamed in 64 KiB pieces; a client that goes away cancels this
      while true do
        local d = f:read(65536)
        if not d or d == "" then break end
        res:write(d)
      end
    end
    res:finish()
  end
end

local function check()
  local root = fs.mkdtemp("/tmp/corio-files-XXXXXX")
  fs.mkdir(root .. "/docs")
  fs.write_file(root .. "/index.html", "<h1>hello</h1>\n")
  fs.write_file(root .. "/docs/notes.txt", "some notes\n")
  fs.write_file(root .. "/big.bin", ("0123456789abcdef"):rep(16384))   -- 256 KiB
  fs.write_file(root .. "/.secret", "hidden\n")
  local outside = root .. ".outside"
  fs.write_file(outside, "outside the root\n")

  local srv = http.serve("127.0.0.1", 0, handler(root))
  local _, port = srv:address()
  local base = "http://127.0.0.1:" .. port
  local cl <close> = http.client()

  local r = cl:get(base .. "/")
  assert(r.status == 200 and r.headers["content-type"]:find("text/html", 1, true))
  assert(r:body() == "<h1>hello</h1>\n")
  r = cl:get(base .. "/docs/notes.txt")
  assert(r.status == 200 and r.headers["content-type"] == "text/plain; charset=utf-8")
  assert(r:body() == "some notes\n")
  r = cl:get(base .. "/big.bin")
  assert(r.headers["content-type"] == "application/octet-stream")
  assert(r.headers["content-length"] == tostring(262144))
  assert(r:body(1048576) == ("0123456789abcdef"):rep(16384))
  r = cl:head(base .. "/docs/notes.txt")
  assert(r.status == 200 and r.headers["content-length"] == "11" and r:body() == "")
  print("GET and HEAD: ok")

  -- escapes, encoded or not, and what does not exist
  local name = outside:match("[^/]+$")
  for _, path in ipairs({ "/../" .. name, "/%2e%2e/" .. name, "/docs/..%2f..%2f" .. name,
      "/docs/%2E%2E/%2E%2E/" .. name, "/.secret", "/nope.txt", "/docs/nope/" }) do
    r = cl:get(base .. path)
    assert(r.status == 404, path .. " gave " .. r.status)
    assert(not r:body():find("outside", 1, true))
  end
  print("traversal and missing files: 404")

  r = cl:post(base .. "/index.html", "x")
  assert(r.status == 405 and r.headers["allow"] == "GET, HEAD")
  r:body()
  print("POST: 405")

  srv:shutdown(5)
  for _, p in ipairs({ root .. "/docs/notes.txt", root .. "/docs", root .. "/index.html",
      root .. "/big.bin", root .. "/.secret", root, outside }) do
    fs.remove(p)
  end
  print("file server: all checks passed")
end

if arg[1] == "--check" then
  check()
else
  local root = arg[1] or "."
  local port = tonumber(arg[2]) or 8080
  local srv = http.serve("127.0.0.1", port, handler(root))
  print(("serving %s on http://127.0.0.1:%d/ (Ctrl-C stops)"):format(root, port))
  srv:wait_closed()
end
