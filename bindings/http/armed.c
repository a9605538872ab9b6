/*
** armed.c -- corio._http: the list of server connections whose handler
** may be suspended, for the disconnect watcher (see "The disconnect
** watcher" in scripts/_http_server.lua).
**
** A request whose body was read is armed before its handler runs; one
** callback per loop turn starts a watcher for each connection still armed
** then (its handler suspended).  Most handlers answer without suspending,
** and their request is unarmed at once, so arming must cost next to
** nothing: the list is linked through the connections' Parsers, in C.  A
** Lua table per server would cost a table write per request and per turn
** (and re-traversals by the collector, the list being written all the
** time): about 1,200 instructions per request in W11, a tenth of all.
**
** The callback needs the connection's Lua table, which C cannot reach
** from a Parser's address: each Parser, when first armed, gets a number
** under which a weak table of the server's list keeps its connection
** (one table write per connection, not per request).  The Parser keeps
** the list's userdata (its user value), so the list outlives every Parser
** linked to it; a Parser that is collected while linked unlinks itself.
**
**   armed(call_soon, start) -> list: start(conn) is called, once per loop
**       turn that armed any, for each connection still armed at the end
**       of the turn (the connection is unarmed first)
**   list:add(p, conn)   arms conn, whose Parser is p
**   list:drop(p)        unarms it (its request is over)
*/
#include <lauxlib.h>
#include "http.h"

#define ARMED_MT CORIO_HTTP_ARMED_MT

/* the list's user values */
enum { UV_CONNS = 1, UV_CALL_SOON, UV_START, UV_RUN, UV_COUNT = UV_RUN };

struct http_armed {
  http_arm head;            /* the list's sentinel: circular */
  lua_Integer nslots;       /* numbers given to Parsers so far */
  int scheduled;            /* the turn's callback is pending */
};

static void unlink_arm(http_arm *a) {
  a->prev->next = a->next;
  a->next->prev = a->prev;
  a->prev = a->next = NULL;
}

void corio__http_unarm(http_arm *a) {
  if (a->next) unlink_arm(a);
}

/* The turn's callback: each connection still armed is unarmed and given
** to start().  A start() that raises leaves the rest armed, and the next
** arming schedules the callback again. */
static int run_armed(lua_State *L) {
  http_armed *A = lua_touserdata(L, lua_upvalueindex(1));
  A->scheduled = 0;
  lua_settop(L, 0);
  lua_getiuservalue(L, lua_upvalueindex(1), UV_CONNS);    /* 1 */
  lua_getiuservalue(L, lua_upvalueindex(1), UV_START);    /* 2 */
  while (A->head.next != &A->head) {
    http_arm *a = A->head.next;
    lua_Integer slot = a->slot;
    unlink_arm(a);
    lua_pushvalue(L, 2);
    if (lua_rawgeti(L, 1, slot) != LUA_TTABLE) {   /* collected meanwhile */
      lua_settop(L, 2);
      continue;
    }
    lua_call(L, 1, 0);
  }
  return 0;
}

int corio__http_arm(lua_State *L, int listidx, http_arm *a, int pidx, int connidx) {
  http_armed *A = lua_touserdata(L, listidx);
  if (a->list != A) {                       /* first arming: a number */
    corio__http_unarm(a);
    a->list = A;
    a->slot = ++A->nslots;
    lua_getiuservalue(L, listidx, UV_CONNS);
    lua_pushvalue(L, connidx);
    lua_rawseti(L, -2, a->slot);
    lua_pop(L, 1);
    lua_pushvalue(L, listidx);              /* the list outlives p */
    lua_setiuservalue(L, pidx, 1);
  }
  if (a->next == NULL) {                    /* not armed yet: at the end */
    a->prev = A->head.prev;
    a->next = &A->head;
    A->head.prev->next = a;
    A->head.prev = a;
  }
  if (A->scheduled) return 0;
  lua_getiuservalue(L, listidx, UV_CALL_SOON);
  lua_getiuservalue(L, listidx, UV_RUN);
  lua_call(L, 1, 0);                        /* raises: not scheduled */
  A->scheduled = 1;
  return 0;
}

static http_armed *check_armed(lua_State *L) {
  return luaL_checkudata(L, 1, ARMED_MT);
}

static http_arm *check_arm(lua_State *L) {
  return corio__http_parser_arm(luaL_checkudata(L, 2, CORIO_HTTP_PARSER_MT));
}

static int l_add(lua_State *L) {
  check_armed(L);
  http_arm *a = check_arm(L);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  return corio__http_arm(L, 1, a, 2, 3);
}

static int l_drop(lua_State *L) {
  check_armed(L);
  corio__http_unarm(check_arm(L));
  return 0;
}

/* Parsers linked when the list goes (lua_close finalizes the Parsers
** first, but not necessarily): left unlinked, so that none points here. */
static int l_gc(lua_State *L) {
  http_armed *A = check_armed(L);
  while (A->head.next != &A->head) unlink_arm(A->head.next);
  return 0;
}

int corio__http_armed(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);      /* call_soon */
  luaL_checktype(L, 2, LUA_TFUNCTION);      /* start */
  http_armed *A = lua_newuserdatauv(L, sizeof *A, UV_COUNT);
  A->head.prev = A->head.next = &A->head;
  A->head.slot = 0;
  A->head.list = A;
  A->nslots = 0;
  A->scheduled = 0;
  if (luaL_newmetatable(L, ARMED_MT)) {
    static const luaL_Reg meths[] = {
      { "add", l_add }, { "drop", l_drop }, { "__gc", l_gc }, { NULL, NULL }
    };
    luaL_setfuncs(L, meths, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  lua_createtable(L, 0, 0);                 /* number -> connection, weak */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, -2, UV_CONNS);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_CALL_SOON);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, UV_START);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, run_armed, 1);
  lua_setiuservalue(L, -2, UV_RUN);
  return 1;
}
