/*
** tls.c -- the C module `corio._tls`: the mechanism under corio.tls
** (scripts/tls.lua builds the public API on it).
*/
#include "tls.h"


static int l_is_context(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, TLSCTX_MT) != NULL);
  return 1;
}


static int l_is_server(lua_State *L) {
  lua_pushboolean(L, tls__check_ctx(L, 1)->server);
  return 1;
}


static int l_version(lua_State *L) {
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  return 1;
}


/* Is `corio --debug` (or CORIO_DEBUG) on?  Failed server handshakes are
** shown only then. */
static int l_debug(lua_State *L) {
  lua_pushboolean(L, RT_UPVALUE(L)->debug);
  return 1;
}


int luaopen_corio__tls(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"context", tls__context_new},
    {"wrap", tls__wrap},
    {"handshake", tls__handshake},
    {"is_context", l_is_context},
    {"is_server", l_is_server},
    {"openssl_version", l_version},
    {"debug", l_debug},
    {NULL, NULL}
  };
  static const luaL_Reg stream_methods[] = {
    {"tls_info", tls__info},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  tls__ossl_load(L);                  /* first: everything below uses it */
  if (tls__conn_idx < 0)
    tls__conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  tls__open_context(L, rt);
  net__stream_metatable(L, rt);              /* tls_info on every Stream */
  corio__addmethods(L, rt, stream_methods, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
