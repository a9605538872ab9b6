/*
** class.c -- module set-up: a module's functions and its classes'
** metatables, built one way by every module.
**
** A C function of a module finds its runtime in upvalue 1 (RT_UPVALUE),
** so no call looks it up in the registry.  A class's methods and
** metamethods have a second upvalue: the metatable itself, which lets a
** method check `self` by comparing metatables (no registry lookup), or a
** light userdata the module chooses (corio.sync's class descriptors).
*/
#include "internal.h"


void corio__setfuncs(lua_State *L, corio_rt *rt, const luaL_Reg *l) {
  for (; l->name; l++) {
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, l->func, 1);
    lua_setfield(L, -2, l->name);
  }
}


/* Sets l into the table at -1 as closures over (rt, up); up NULL: the
** metatable at `mt`. */
static void setmethods(lua_State *L, corio_rt *rt, const luaL_Reg *l,
                       int mt, void *up) {
  for (; l != NULL && l->name; l++) {
    lua_pushlightuserdata(L, rt);
    if (up != NULL) lua_pushlightuserdata(L, up);
    else lua_pushvalue(L, mt);
    lua_pushcclosure(L, l->func, 2);
    lua_setfield(L, -2, l->name);
  }
}


int corio__newclass(lua_State *L, corio_rt *rt, const char *name,
                    const luaL_Reg *methods, const luaL_Reg *meta,
                    void *up) {
  if (!luaL_newmetatable(L, name)) return 0;   /* mt (sets __name) */
  int mt = lua_gettop(L);
  lua_createtable(L, 0, 16);                   /* mt, index */
  setmethods(L, rt, methods, mt, up);
  lua_setfield(L, mt, "__index");              /* mt */
  setmethods(L, rt, meta, mt, up);
  return 1;
}


void corio__addmethods(lua_State *L, corio_rt *rt, const luaL_Reg *l,
                       void *up) {
  int mt = lua_gettop(L);
  lua_getfield(L, mt, "__index");              /* mt, index */
  setmethods(L, rt, l, mt, up);
  lua_pop(L, 1);                               /* mt */
}
