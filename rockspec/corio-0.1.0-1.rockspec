-- The luarocks rock of corio: corio.so for lua5.4 and the corio binary.
-- Generated from tools/corio.rockspec.in by `make rockspec` (the version
-- comes from VERSION); check-rock fails when it is stale.
rockspec_format = "3.0"
package = "corio"
version = "0.1.0-1"
source = {
  -- Not fetched by `luarocks make`, which builds the checkout it runs in.
  url = "git+file://./corio",
  tag = "v0.1.0",
}
description = {
  summary = "asyncio for Lua 5.4 on libuv",
  license = "MIT",
  detailed = [[
corio runs asynchronous Lua 5.4: one libuv event loop, one Lua state, and
every task a coroutine. Tasks, futures, cancellation, timeouts, streams,
servers, UDP, DNS, files, processes, signals and thread/process executors.
`require "corio"` in lua5.4, or the corio binary.]],
}
dependencies = { "lua >= 5.4, < 5.5" }
-- Every library corio.so links (tools/check-rock.sh compares this list
-- with the NEEDED entries of build/corio.so); lua-cjson is linked in from
-- its static archive, which the build still needs.
external_dependencies = {
  LIBUV = { header = "uv.h", library = "uv" },
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
  LIBCRYPTO = { header = "openssl/sha.h", library = "crypto" },
  HTTP_PARSER = { header = "http_parser.h", library = "http_parser" },
  WSLAY = { header = "wslay/wslay.h", library = "wslay" },
  ZLIB = { header = "zlib.h", library = "z" },
  LUA_CJSON = { header = "lua5.4/lua-cjson.h", library = "lua5.4-cjson" },
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = { CFLAGS = "$(CFLAGS)" },
  install_target = "install-rock",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
