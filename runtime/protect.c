/*
** protect.c -- the Lua work of libuv callbacks, run protected.
**
** A libuv callback that pushes a result, makes an error or wakes a task
** touches the Lua state outside any lua_pcall: if an allocation fails
** there, Lua has no error handler to jump to and calls the panic handler,
** which aborts the host.  Every such callback puts its Lua work in a
** lua_CFunction and runs it through corio__protect.  Pushing a light C
** function and a light userdata never allocates (only the two stack slots
** are checked), and lua_pcall grows the stack and the CallInfo list inside
** its own protection, so nothing before the protected call can raise.
**
** What a failure does:
**   - the task the callback was to wake, if it still waits, is woken with
**     a corio.Error ENOMEM (made at start-up: none is made now).  Its wait
**     is undone first (the undo hook), as for a cancel, so nothing can
**     wake it a second time.  Nothing is left waiting forever;
**   - a callback with no such task reports "not enough memory" through
**     the report hook (or on stderr), built without Lua, and the run's
**     exit code becomes 1;
**   - the callback's C resources are its own business: each callback
**     frees its request or buffer outside the protected part.
*/
#include <stdio.h>    /* fprintf */

#include "internal.h"


/* [ud] -> (): runs the callback's Lua part. */
typedef struct pcall_ctx { lua_CFunction fn; void *ud; } pcall_ctx;

static int protected_body(lua_State *L) {
  pcall_ctx *c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushlightuserdata(L, c->ud);
  return c->fn(L);
}


void corio__wake_nomem(corio_rt *rt, corio_task *t) {
  rt->nomem++;
  if (t->state != T_WAITING) return;           /* woken already, or done */
  t->token++;
  if (t->undo) t->undo(rt, t);
  corio__wake(rt, t, rt->L, 0, WAKE_NOMEM);    /* no values: no stack */
}


void corio__report_nomem(corio_rt *rt, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "not enough memory (in %s)", what);
  rt->nomem++;
  rt->exit_code = 1;
  if (rt->report) {
    rt->report(rt->report_ud, rt, CORIO_REPORT_CALLBACK, msg, NULL);
  } else {
    fprintf(stderr, "corio: %s\n", msg);
    fflush(stderr);
  }
}


int corio__wake_with(corio_rt *rt, corio_task *t, lua_CFunction push,
                     void *ud, int kind) {
  lua_State *L = rt->L;
  int top = lua_gettop(L), st = LUA_ERRMEM;
  pcall_ctx c = {push, ud};
  if (t->state != T_WAITING) return LUA_OK;
  if (lua_checkstack(L, 2)) {
    lua_pushcfunction(L, protected_body);
    lua_pushlightuserdata(L, &c);
    st = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (st == LUA_OK) {
      corio__wake(rt, t, L, lua_gettop(L) - top, kind);
      return LUA_OK;
    }
    lua_settop(L, top);
  }
  /* The waker has completed the wait (its request is done): no undo. */
  rt->nomem++;
  t->token++;
  corio__wake(rt, t, L, 0, WAKE_NOMEM);
  return st;
}


int corio__protect(corio_rt *rt, lua_CFunction fn, void *ud, corio_task *t,
                   const char *what) {
  lua_State *L = rt->L;
  int top = lua_gettop(L), st = LUA_ERRMEM;
  pcall_ctx c = {fn, ud};
  if (lua_checkstack(L, 2)) {                  /* never raises */
    lua_pushcfunction(L, protected_body);
    lua_pushlightuserdata(L, &c);
    st = lua_pcall(L, 1, 0, 0);
    lua_settop(L, top);
  }
  if (st == LUA_OK) return LUA_OK;
  if (t && t->state == T_WAITING) corio__wake_nomem(rt, t);
  else corio__report_nomem(rt, what);
  return st;
}
