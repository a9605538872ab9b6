/*
** context.c -- corio.context(default): task-local values (ContextVar).
**
** Each task's extras may hold `ctx`, a table {[var] = value}.  A spawned
** task starts with its parent's table, shared: whichever of the two writes
** first copies it (copy-on-write), so spawning stays cheap and a child never
** sees its parent's later writes (asyncio's contextvars semantics).  Code
** outside tasks (callbacks, the main thread) uses a root table.
*/
#include "internal.h"


/* Pushes the running context's extras holder: the task (its extras table)
** or nil for the root. [-0,+1] */
static int push_holder(corio_rt *rt, lua_State *L) {
  corio_task *t = rt->current;
  if (t && t->co == L) {
    corio__push_task(rt, L, t);
    corio__fut_extra(L, lua_gettop(L));
    lua_remove(L, -2);
    return 1;
  }
  return 0;
}


/* Pushes the current ctx table, or nil. [-0,+1] */
static void push_ctx(corio_rt *rt, lua_State *L) {
  if (push_holder(rt, L)) {
    lua_getfield(L, -1, "ctx");
    lua_remove(L, -2);
  } else if (rt->ctx_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->ctx_ref);
  } else {
    lua_pushnil(L);
  }
}


static int var_get(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  luaL_checkudata(L, 1, CORIO_CTXVAR_MT);
  push_ctx(rt, L);
  if (lua_istable(L, -1)) {
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  }
  lua_getiuservalue(L, 1, 1);                 /* the default */
  return 1;
}


/* Copies the table at -1 and replaces it. */
static void copy_table(lua_State *L) {
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}


/* set(value) -> the previous value (or the default). */
static int var_set(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  luaL_checkudata(L, 1, CORIO_CTXVAR_MT);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  var_get(L);
  lua_replace(L, 3);                          /* 3: previous value */
  lua_settop(L, 3);
  if (push_holder(rt, L)) {                   /* 4: extras */
    rt->current->flags |= TF_HAS_CTX;
    int shared = lua_getfield(L, 4, "ctx_shared") != LUA_TNIL;
    lua_pop(L, 1);
    if (lua_getfield(L, 4, "ctx") != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
    } else if (shared) {
      copy_table(L);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 4, "ctx");
    lua_pushnil(L);
    lua_setfield(L, 4, "ctx_shared");
  } else {
    if (rt->ctx_ref == LUA_NOREF) {
      lua_newtable(L);
    } else {
      lua_rawgeti(L, LUA_REGISTRYINDEX, rt->ctx_ref);
      copy_table(L);                          /* children may hold it */
      luaL_unref(L, LUA_REGISTRYINDEX, rt->ctx_ref);
    }
    lua_pushvalue(L, -1);
    rt->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  lua_pushvalue(L, 3);
  return 1;
}


static int l_context(lua_State *L) {
  lua_settop(L, 1);
  lua_newuserdatauv(L, 1, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, CORIO_CTXVAR_MT);
  return 1;
}


void corio__open_context(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"get", var_get},
    {"set", var_set},
    {NULL, NULL}
  };
  corio__newclass(L, rt, CORIO_CTXVAR_MT, methods, NULL, NULL);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_context);
  lua_setfield(L, -2, "context");
}
