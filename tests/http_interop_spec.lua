-- corio.http against real peers: curl, nginx (origin and reverse proxy),
-- python3 -m http.server (HTTP/1.0), wrk.  A missing peer fails loudly
-- (CI installs them: .ci/run).
local corio = require "corio"
local process = require "corio.process"
local http = require "corio.http"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers/tls_helpers.lua")

local function with_server(handler, fn)
  local srv = http.serve("127.0.0.1", 0, handler)
  local _, port = srv:address()
  local ok, err = pcall(fn, port)
  srv:shutdown(5)
  if not ok then error(err, 0) end
end

local function echo(req) return 200, {}, req.method .. ":" .. req:body() end

-- waits until something accepts on port (a child server starting up)
local function wait_port(port)
  for _ = 1, 200 do
    local ok, s = pcall(require("corio.net").connect, "127.0.0.1", port)
    if ok then s:close() return end
    corio.sleep(0.05)
  end
  error("nothing listens on port " .. port)
end

local function free_port()
  local s = require("corio.net").serve("127.0.0.1", 0, function() end)
  local _, p = s:address()
  s:close()
  s:wait_closed()
  return p
end

describe("http interop", function()
  it("curl: keep-alive reuse, --data-binary with 100-continue, chunked upload", function()
    with_server(echo, function(port)
      local url = "http://127.0.0.1:" .. port .. "/"
      local r = H.run({ "curl", "-sS", "-v", url, url }, { stderr = "pipe" })
      assert.equal(0, r.code, r.stderr)
      assert.equal("GET:GET:", r.stdout)
      assert.matches("Re%-using existing connection", r.stderr)
      local big = ("x"):rep(2000)
      r = H.run({ "curl", "-sS", "-v", "-H", "Expect: 100-continue", "--data-binary", big, url },
        { stderr = "pipe" })
      assert.equal("POST:" .. big, r.stdout)
      assert.matches("100 Continue", r.stderr)
      r = H.run({ "curl", "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunky", url })
      assert.equal("POST:chunky", r.stdout)
    end)
  end)

  it("curl --max-time: the client giving up cancels the handler, cleanup runs", function()
    local cleaned = corio.future()
    with_server(function()
      local _ <close> = setmetatable({}, { __close = function(_, err)
        cleaned:set_result(err ~= nil and corio.is_cancelled(err))
      end })
      corio.sleep(120)
      return 200, {}, "too late"
    end, function(port)
      local r = H.run({ "curl", "-sS", "--max-time", "1", "http://127.0.0.1:" .. port .. "/" },
        { stderr = "pipe" })
      assert.equal(28, r.code, r.stderr)   -- curl: operation timed out
      assert.is_true(corio.wait_for(cleaned, 20))
    end)
  end)

  it("python3 -m http.server (HTTP/1.0, read to close) as origin", function()
    H.need("python3")
    local port = free_port()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir .. " && printf 'from python' > " .. dir .. "/f.txt")
    local p = process.spawn({ "python3", "-m", "http.server", "--bind", "127.0.0.1", tostring(port),
      "--directory", dir }, { stdout = "null", stderr = "null" })
    local ok, err = pcall(function()
      wait_port(port)
      local cl = http.client()
      local r = cl:get("http://127.0.0.1:" .. port .. "/f.txt")
      assert.equal(200, r.status)
      assert.equal("from python", r:body())
      cl:close()
    end)
    p:kill()
    p:wait()
    os.execute("rm -rf " .. dir)
    if not ok then error(err, 0) end
  end)

  it("nginx: as origin for the client and as reverse proxy in front of corio", function()
    local nginx = H.need("nginx")
    with_server(echo, function(cport)
      local nport = free_port()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
      local conf = dir .. "/nginx.conf"
      local f = io.open(conf, "w")
      f:write(([[
daemon off; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path %s; proxy_temp_path %s;
  server {
    listen 127.0.0.1:%d;
    location = /hello { return 200 "hello from nginx"; }
    location = /small { client_max_body_size 1k; return 200 "small"; }
    location /proxy/ { proxy_pass http://127.0.0.1:%d/; proxy_http_version 1.1;
                       proxy_set_header Connection ""; }
  }
}
]]):format(dir, dir, dir, dir, nport, cport))
      f:close()
      local p = process.spawn({ nginx, "-c", conf, "-p", dir }, { stdout = "null", stderr = "null" })
      local ok, err = pcall(function()
        wait_port(nport)
        local cl = http.client()
        for _ = 1, 3 do
          assert.equal("hello from nginx", cl:get("http://127.0.0.1:" .. nport .. "/hello"):body())
        end
        local r = cl:post("http://127.0.0.1:" .. nport .. "/proxy/x", "through nginx")
        assert.equal("POST:through nginx", r:body())
        -- nginx's own early 413: a body past client_max_body_size, sent
        -- with Content-Length (watched while it goes out), and with
        -- Expect: 100-continue (a 413 instead of the 100: no body sent)
        local small = "http://127.0.0.1:" .. nport .. "/small"
        assert.equal("small", cl:post(small, "tiny"):body())
        r = cl:post(small, ("x"):rep(8 * 1048576))
        assert.equal(413, r.status)
        r:close()
        r = cl:post(small, ("x"):rep(100000),
          { headers = { expect = "100-continue" }, expect_continue = true })
        assert.equal(413, r.status)
        r:close()
        cl:close()
      end)
      p:kill()
      p:wait()
      os.execute("rm -rf " .. dir)
      if not ok then error(err, 0) end
    end)
  end)

  it("nginx as an https origin: the client verifies its self-signed certificate (given as CA) and pools", function()
    local nginx = H.need("nginx")
    H.need("openssl")
    local certs = H.certs()              -- self.pem: self-signed, made with openssl
    local nport = free_port()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local conf = dir .. "/nginx.conf"
    local f = io.open(conf, "w")
    f:write(([[
daemon off; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path %s; proxy_temp_path %s;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/self.pem; ssl_certificate_key %s/self.key;
    location = /hello { return 200 "hello over tls"; }
    location = /big { return 200 "%s"; }
  }
}
]]):format(dir, dir, dir, dir, nport, certs, certs, ("z"):rep(3000)))
    f:close()
    local p = process.spawn({ nginx, "-c", conf, "-p", dir }, { stdout = "null", stderr = "null" })
    local ok, err = pcall(function()
      wait_port(nport)
      local base = "https://127.0.0.1:" .. nport
      local cl = http.client()
      local tls = { cafile = certs .. "/self.pem" }
      for _ = 1, 3 do
        local r = cl:get(base .. "/hello", { tls = tls })
        assert.equal(200, r.status)
        assert.equal("hello over tls", r:body())
      end
      assert.equal(("z"):rep(3000), cl:get(base .. "/big", { tls = tls }):body())
      assert.equal(1, cl.open)          -- one TLS connection served every request
      -- without the CA the certificate is refused
      local vok, verr = pcall(cl.get, cl, base .. "/hello")
      assert.is_false(vok)
      assert.equal("TLS_VERIFY", verr.code)
      cl:close()
    end)
    p:kill()
    p:wait()
    os.execute("rm -rf " .. dir)
    if not ok then error(err, 0) end
  end)

  it("python3 http.server, HTTP/1.0 without Content-Length: the whole body to the close, never pooled", function()
    H.need("python3")
    local port = free_port()
    -- http.server's own handler always sends a Content-Length: this one
    -- (on the same module) ends its body by closing, as HTTP/1.0 allows
    local script = [[
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for i in range(100):
            self.wfile.write(b"%04d" % i + b"x" * 996)
            self.wfile.flush()
        self.wfile.write(b"end")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
]]
    local p = process.spawn({ "python3", "-c", script, tostring(port) }, { stdout = "null", stderr = "null" })
    local ok, err = pcall(function()
      wait_port(port)
      local cl = http.client()
      for _ = 1, 2 do
        local r = cl:get("http://127.0.0.1:" .. port .. "/x")
        assert.equal(200, r.status)
        assert.equal("1.0", r.version)
        assert.is_nil(r.headers["content-length"])
        local b = r:body()
        assert.equal(100 * 1000 + 3, #b)
        assert.equal("0000", b:sub(1, 4))
        assert.equal("0099", b:sub(99 * 1000 + 1, 99 * 1000 + 4))
        assert.equal("end", b:sub(-3))
        assert.equal(0, cl.open)        -- read to the close: nothing to pool
      end
      -- streamed with read() too
      local r = cl:get("http://127.0.0.1:" .. port .. "/x")
      local n = 0
      while true do
        local d = r:read(4096)
        if not d then break end
        n = n + #d
      end
      assert.equal(100003, n)
      assert.equal(0, cl.open)
      cl:close()
    end)
    p:kill()
    p:wait()
    if not ok then error(err, 0) end
  end)

  it("wrk: no errors under load", function()
    H.need("wrk")
    with_server(function() return 200, {}, "hi" end, function(port)
      local r = H.run({ "wrk", "-t1", "-c20", "-d1", "http://127.0.0.1:" .. port .. "/" },
        { timeout = 60 })
      assert.equal(0, r.code)
      assert.matches("Requests/sec", r.stdout)
      assert.is_nil(r.stdout:find("Non%-2xx"), r.stdout)
      assert.is_nil(r.stdout:find("Socket errors"), r.stdout)
    end)
  end)
end)
