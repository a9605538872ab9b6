/*
** json.c -- corio._cjson: Debian's lua-cjson, linked statically into the
** binary (liblua5.4-cjson.a), opened under corio's own module name so no
** extra file has to be installed.  scripts/json.lua builds corio.json on
** it (json.null, json.array, integers, corio.Error with code JSON).
*/
#include <lua.h>

int luaopen_cjson(lua_State *L);   /* from liblua5.4-cjson */
int luaopen_corio__cjson(lua_State *L);

int luaopen_corio__cjson(lua_State *L) {
  return luaopen_cjson(L);
}
