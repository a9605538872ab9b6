--[[
tests/helpers/tls_helpers.lua -- what the TLS specs share: certificates
made at test time with the openssl CLI (a CA, EC and RSA leaves signed by
it, a self-signed one, an expired one, a leaf for another name, a key with
a password), and real TLS peers (openssl s_server / s_client, gnutls-cli,
socat, curl) started as children.  A peer that is missing makes its test
fail, never skip.
]]
local corio = require "corio"
local process = require "corio.process"

local H = {}

local function sh(script, timeout, arg0)
  local r = process.exec({ "sh", "-ec", script, arg0 or "sh" },
    { timeout = timeout or 60 })
  if r.code ~= 0 then
    error("shell step failed (" .. tostring(r.code) .. "): " .. script ..
      "\n" .. (r.stderr or ""), 2)
  end
  return r.stdout
end
H.sh = sh

-- Makes the certificates once per process into a fresh temp dir.
local dir
function H.certs()
  if dir then return dir end
  dir = sh("mktemp -d /tmp/corio-tls.XXXXXX"):gsub("%s+$", "")
  sh([[
cd "$0"
ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
# the CA
ec ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj /CN=corio-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() { # name key subj san [days]
  openssl req -new -key "$2" -out "$1.csr" -subj "$3" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$1.pem" -days "${5:-30}" -extfile "$1.ext" 2>/dev/null
}
ec leaf.key
leaf leaf leaf.key /CN=localhost 'DNS:localhost,IP:127.0.0.1,IP:::1'
openssl genrsa -out rsa.key 2048 2>/dev/null
leaf rsa rsa.key /CN=localhost 'DNS:localhost,IP:127.0.0.1'
ec other.key
leaf other other.key /CN=other.example 'DNS:other.example'
ec client.key
leaf client client.key /CN=corio-client 'DNS:client.example'
# self-signed
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout self.key -out self.pem -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
# expired: signed by the CA with dates in the past (openssl ca)
ec old.key
openssl req -new -key old.key -out old.csr -subj /CN=localhost 2>/dev/null
mkdir -p db && : > db/index && echo 01 > db/serial
cat > ca.cnf <<EOC
[ca]
default_ca = c
[c]
database = db/index
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = p
copy_extensions = none
x509_extensions = x
[p]
commonName = supplied
[x]
subjectAltName = DNS:localhost,IP:127.0.0.1
EOC
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in old.csr \
  -out old.pem -startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null
# a key under a password
openssl pkey -in leaf.key -aes256 -passout pass:s3cret -out leaf-enc.key
cat leaf.pem leaf.key > combined.pem
]], 120, dir)
  return dir
end

function H.path(name) return H.certs() .. "/" .. name end

function H.read(name)
  local f = assert(io.open(H.path(name), "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function H.server_opts(extra)
  local o = { certfile = H.path("leaf.pem"), keyfile = H.path("leaf.key") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

function H.client_opts(extra)
  local o = { cafile = H.path("ca.pem") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The peer's path: on PATH, else in the sbin folders (Debian installs
-- nginx in /usr/sbin, which a user's PATH often leaves out).  A missing
-- peer must fail the test loudly.
function H.need(prog)
  local r = process.exec({ "sh", "-c",
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$0"', prog },
    { stdout = "pipe" })
  assert(r.code == 0, prog .. " is not installed (tools/deps.sh installs " ..
    "it in CI): this interop test cannot run")
  return (r.stdout:gsub("%s+$", ""))
end

-- Starts `openssl s_server` with extra args on a free port; returns the
-- process and the port once it listens.
function H.s_server(args)
  H.need("openssl")
  local argv = { "openssl", "s_server", "-accept", "127.0.0.1:0",
    "-cert", H.path("leaf.pem"), "-key", H.path("leaf.key") }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local p = process.spawn(argv, { stdout = "pipe", stderr = "null",
    stdin = "pipe" })
  local port
  corio.timeout(30, function()
    for line in p.stdout:lines() do
      port = line:match("^ACCEPT .-:(%d+)$")
      if port then break end
    end
  end)
  assert(port, "s_server did not start")
  return p, tonumber(port)
end

function H.stop(p)
  pcall(p.kill, p)
  pcall(p.wait, p)
end

-- Runs a command line peer to completion; returns its result table.
function H.run(argv, opts)
  argv = table.move(argv, 1, #argv, 1, {})
  argv[1] = H.need(argv[1])
  opts = opts or {}
  opts.timeout = opts.timeout or 60
  return process.exec(argv, opts)
end

return H
