/*
** task.c -- corio.spawn, corio.current and the Task methods beyond those
** it shares with Future (cancel, name, set_name, traceback).
**
** A new task is only a small userdata holding its function and arguments;
** its coroutine is taken (from a pool) when it first runs and given back
** when it finishes, so a million spawned-but-not-started tasks cost little.
*/
#include <string.h>   /* memset */

#include "internal.h"


static corio_task *check_task(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CORIO_TASK_MT);
}


/* Copies the parent's context reference into the child's extras; the
** table itself is shared and copied on the first write (context.c). */
static void inherit_context(corio_rt *rt, lua_State *L, int ti) {
  corio_task *parent = rt->current;
  if (parent == NULL) {
    if (rt->ctx_ref == LUA_NOREF) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->ctx_ref);
  } else {
    corio__push_task(rt, L, parent);
    if (corio__get_extra(L, -1) != LUA_TTABLE) {
      lua_pop(L, 2);
      return;
    }
    lua_getfield(L, -1, "ctx");
    lua_replace(L, -3);
    lua_pushboolean(L, 1);                    /* parent must copy too */
    lua_setfield(L, -2, "ctx_shared");
    lua_pop(L, 1);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  corio__fut_extra(L, ti);
  lua_insert(L, -2);
  lua_setfield(L, -2, "ctx");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "ctx_shared");
  lua_pop(L, 1);
  ((corio_task *)lua_touserdata(L, ti))->flags |= TF_HAS_CTX;
}


/* Pops fn and nargs arguments, pushes a new queued Task. */
static void task_new(corio_rt *rt, lua_State *L, int nargs) {
  int fi = lua_gettop(L) - nargs;
  corio_task *t = lua_newuserdatauv(L, sizeof *t, FUT_NUV);
  memset(t, 0, sizeof *t);
  t->node.kind = NODE_TASK;
  t->fut.type = TYPE_TASK;
  t->timer.hidx = -1;
  t->id = rt->next_id++;
  t->nargs = nargs;
  if (nargs > 0) t->flags |= TF_ARGS;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt_task_ref);
  lua_setmetatable(L, -2);
  int ti = lua_gettop(L);
  corio__store_call(L, ti, fi, nargs);        /* UV_AUX, UV_RES */
  if (rt->current ? (rt->current->flags & TF_HAS_CTX)
                  : rt->ctx_ref != LUA_NOREF)
    inherit_context(rt, L, ti);
  t->anchor = corio__anchor(rt, L, ti);
  rt->ntasks++;
  corio__enqueue(rt, &t->node);
  lua_replace(L, fi);
  lua_settop(L, fi);
}


static int l_spawn(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio__check_callable(L, 1);
  task_new(rt, L, lua_gettop(L) - 1);
  if (rt->debug) corio__debug_watch(rt, L, 1);  /* the one test when off */
  return 1;
}


void corio__spawn(corio_rt *rt, lua_State *L, int nargs) {
  corio__check_callable(L, -nargs - 1);
  corio__open_core(L);         /* the Task metatable must exist */
  task_new(rt, L, nargs);
}


static int l_current(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  if (rt->current && rt->current->co == L) corio__push_task(rt, L,
                                                            rt->current);
  else lua_pushnil(L);
  return 1;
}


/* {====================================================================
** Task methods
** ===================================================================== */

/* cancel([msg]) -> true if the request was taken, false if done. */
static int task_cancel(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = check_task(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  lua_pushboolean(L, corio__task_cancel(rt, t, L, msg));
  return 1;
}


/* cancelling() -> how many cancel requests are outstanding (asyncio's
** Task.cancelling): every cancel() that returned true adds one, every
** uncancel() removes one.  Timeout scopes and task groups use the pair to
** tell their own cancellation from someone else's. */
static int task_cancelling(lua_State *L) {
  lua_pushinteger(L, check_task(L, 1)->ncancel);
  return 1;
}


/* uncancel() -> the count left.  When it reaches 0, a cancellation that
** was requested but not delivered yet is withdrawn. */
static int task_uncancel(lua_State *L) {
  corio_task *t = check_task(L, 1);
  if (t->ncancel > 0 && --t->ncancel == 0)
    t->flags &= ~(TF_CANCEL_REQ | TF_CANCEL_WAKE);
  lua_pushinteger(L, t->ncancel);
  return 1;
}


/* core._cancel_pending(task) -> true while a cancel request waits for the
** task's next await (it came after the task's last await had already been
** woken, or while it ran).  Timeout scopes use it to tell whether their
** request was delivered (compose.lua); tests/diff to make the rule "a
** cancel racing a completion" visible (docs/API-composition.md). */
int corio__l_cancel_pending(lua_State *L) {
  corio_task *t = check_task(L, 1);
  lua_pushboolean(L, t->state != T_DONE &&
                     ((t->flags & (TF_CANCEL_REQ | TF_CANCEL_WAKE)) ||
                      (t->state == T_READY && t->wake == WAKE_CANCEL)));
  return 1;
}


static int task_name(lua_State *L) {
  corio_task *t = check_task(L, 1);
  if (corio__get_extra(L, 1) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") == LUA_TSTRING)
    return 1;
  lua_pushfstring(L, "Task-%d", (int)t->id);
  return 1;
}


static int task_set_name(lua_State *L) {
  check_task(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  corio__fut_extra(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "name");
  return 0;
}


/* traceback() -> the traceback captured where the task failed, the
** current stack of a suspended task, or nil. */
static int task_traceback(lua_State *L) {
  corio_task *t = check_task(L, 1);
  if (corio__get_extra(L, 1) == LUA_TTABLE &&
      lua_getfield(L, -1, "traceback") == LUA_TSTRING)
    return 1;
  if (t->co && t->state != T_RUNNING) {
    luaL_traceback(L, t->co, NULL, 0);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}


static int task_tostring(lua_State *L) {
  corio_task *t = check_task(L, 1);
  static const char *const states[] = {"pending", "running", "waiting",
                                       "ready", "done"};
  static const char *const outcomes[] = {"pending", "done", "failed",
                                         "cancelled"};
  task_name(L);
  lua_pushfstring(L, "corio.Task %s (%s)", lua_tostring(L, -1),
                  t->state == T_DONE ? outcomes[t->fut.state]
                                     : states[t->state]);
  return 1;
}


static const luaL_Reg task_methods[] = {
  {"cancel", task_cancel},
  {"cancelling", task_cancelling},
  {"uncancel", task_uncancel},
  {"name", task_name},
  {"set_name", task_set_name},
  {"traceback", task_traceback},
  {NULL, NULL}
};


void corio__open_task(lua_State *L, corio_rt *rt) {
  corio__fut_metatable(L, rt, CORIO_TASK_MT, task_methods, task_tostring);
  rt->mt_task = lua_topointer(L, -1);
  rt->mt_task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  static const luaL_Reg funcs[] = {
    {"spawn", l_spawn},
    {"current", l_current},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}

/* }==================================================================== */
