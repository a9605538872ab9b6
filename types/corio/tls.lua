---@meta corio.tls
-- LuaLS definitions of `require "corio.tls"` (docs/API-tls.md).

---Options of `tls.context` (and of `tls.connect`, `tls.serve`, `tls.upgrade`).
---@class corio.TlsOptions
---@field server? boolean a server context (default false)
---@field verify? boolean verify the peer (default true for clients)
---@field require_cert? boolean servers: ask for and verify a client certificate
---@field ca? string trusted CA certificates, PEM
---@field cafile? string
---@field capath? string
---@field cert? string certificate chain, PEM
---@field key? string private key, PEM
---@field certfile? string
---@field keyfile? string
---@field password? string the key's pass phrase
---@field alpn? string[] protocols, in order of preference
---@field min_version? "1.2"|"1.3"
---@field max_version? "1.2"|"1.3"
---@field ciphers? string TLS 1.2 cipher list
---@field ciphersuites? string TLS 1.3 suites
---@field tickets? integer servers: session tickets per handshake (2; 0 disables)
---@field sni? table<string, corio.TlsContext>|fun(name: string): corio.TlsContext?
---@field keylog? string NSS key log file (default $SSLKEYLOGFILE)
---@field context? corio.TlsContext use this context instead of building one
---@field servername? string SNI and the name verified (default: host)
---@field handshake_timeout? number seconds (60)
---@field shutdown_timeout? number seconds (30)

---One shared OpenSSL SSL_CTX.
---@class corio.TlsContext
local TlsContext = {}

---What `stream:tls_info()` returns.
---@class corio.TlsInfo
---@field state "open"|"closed"|"failed"
---@field version string "TLSv1.3"
---@field cipher string
---@field alpn string?
---@field servername string?
---@field session_reused boolean
---@field server boolean
---@field verified boolean
---@field clean_close boolean? after EOF: the peer sent close_notify
---@field peer_cert { subject: string, issuer: string, san: string[], not_before: string, not_after: string, sha256: string }?

---@class corio.tls
---@field openssl_version string the OpenSSL library in use
local tls = {}

---@param opts? corio.TlsOptions
---@return corio.TlsContext
function tls.context(opts) end

---@param v any
---@return boolean
function tls.is_context(v) end

---@async
---TCP connect and handshake; verification is on by default.
---@param host string
---@param port integer
---@param opts? corio.TlsOptions
---@return corio.Stream
function tls.connect(host, port, opts) end

---`net.serve` over TLS: `handler(stream)` runs after a successful handshake.
---@param host string
---@param port integer
---@param handler async fun(stream: corio.Stream)
---@param opts? corio.TlsOptions
---@return corio.Server
function tls.serve(host, port, handler, opts) end

---@async
---STARTTLS: the old Stream raises CLOSED from now on.
---@param stream corio.Stream
---@param opts? corio.TlsOptions
---@return corio.Stream
function tls.upgrade(stream, opts) end

return tls
