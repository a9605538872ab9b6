/*
** net.c -- the C module `corio._net`: the mechanism under corio.net
** (scripts/net.lua builds the public API on it).
*/
#include "net.h"


int luaopen_corio__net(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  net__stream_metatable(L, rt);
  lua_pop(L, 1);
  net__open_listen(L, rt);
  lua_newtable(L);
  net__open_tcp(L, rt);
  net__open_pipe(L, rt);
  net__open_stdio(L, rt);
  net__open_dns(L, rt);
  net__open_udp(L, rt);
  /* a read with its own deadline, for the HTTP client's Reader */
  lua_pushcfunction(L, net__read_within);
  lua_setfield(L, -2, "read_within");
  /* The method tables, for the Lua half (and future modules: TLS). */
  luaL_getmetatable(L, STREAM_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "stream_methods");
  lua_pop(L, 1);
  luaL_getmetatable(L, UDP_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "udp_methods");
  lua_pop(L, 1);
  return 1;
}
