/*
** future.c -- Futures, and the half of every Task that is a future:
** results, errors, waiters and done callbacks.
**
** Results live in the UV_RES uservalue: one value inline, several in a
** table, so a future (or task) that returns several values keeps them all.
** A pending future lists the tasks suspended in await() in an intrusive
** FIFO; completing it moves copies of the results onto each waiter's
** coroutine and queues it.  Done callbacks run as call_soon callbacks.
*/
#include "internal.h"


corio_fut *corio__to_fut(corio_rt *rt, lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  const void *mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  if (mt == rt->mt_task) return &((corio_task *)p)->fut;
  if (mt == rt->mt_future) return p;
  return NULL;
}


corio_fut *corio__check_fut(corio_rt *rt, lua_State *L, int idx) {
  corio_fut *f = corio__to_fut(rt, L, idx);
  if (f == NULL) luaL_typeerror(L, idx, "Future or Task");
  return f;
}


/* The Future or Task at fidx, known to be one: a Task is the larger. */
static corio_fut *fut_at(lua_State *L, int fidx) {
  void *p = lua_touserdata(L, fidx);
  return lua_rawlen(L, fidx) == sizeof(corio_task) ? &((corio_task *)p)->fut
                                                    : p;
}


int corio__get_extra(lua_State *L, int fidx) {
  if (!fut_at(L, fidx)->has_extra) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getiuservalue(L, fidx, UV_AUX);
}


void corio__fut_extra(lua_State *L, int fidx) {
  fidx = lua_absindex(L, fidx);
  corio_fut *f = fut_at(L, fidx);
  if (f->has_extra) {
    lua_getiuservalue(L, fidx, UV_AUX);
    return;
  }
  lua_createtable(L, 0, 2);
  if (f->type == TYPE_TASK) {                 /* keep the function */
    lua_getiuservalue(L, fidx, UV_AUX);
    lua_setfield(L, -2, "fn");
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, fidx, UV_AUX);
  f->has_extra = 1;
}


void corio__fut_unlink(corio_fut *f, corio_task *t) {
  if (t->wprev) t->wprev->wnext = t->wnext;
  else f->whead = t->wnext;
  if (t->wnext) t->wnext->wprev = t->wprev;
  else f->wtail = t->wprev;
  t->wnext = t->wprev = NULL;
}


/* Pushes the n stored results of the future at fidx. [-0,+n] */
static int push_values(lua_State *L, int fidx, corio_fut *f) {
  int n = f->nres;
  if (n == 1) {
    lua_getiuservalue(L, fidx, UV_RES);
  } else if (n > 1) {
    if (!lua_checkstack(L, n + 2)) luaL_error(L, "too many results");
    lua_getiuservalue(L, fidx, UV_RES);
    int tbl = lua_gettop(L);
    for (int i = 1; i <= n; i++) lua_rawgeti(L, tbl, i);
    lua_remove(L, tbl);
  }
  return n;
}


int corio__fut_push_results(lua_State *L, int fidx, corio_fut *f) {
  fidx = lua_absindex(L, fidx);
  switch (f->state) {
    case FUT_OK:
      return push_values(L, fidx, f);
    case FUT_PENDING:
      return corio__error(L, "INVALID_STATE", "result",
                          "result is not ready yet");
    default:
      lua_getiuservalue(L, fidx, UV_RES);
      return lua_error(L);
  }
}


void corio__fut_store(lua_State *L, int fidx, corio_fut *f, int n) {
  fidx = lua_absindex(L, fidx);
  if (n == 1) {
    lua_setiuservalue(L, fidx, UV_RES);
  } else if (n > 1) {
    lua_createtable(L, n, 0);
    lua_insert(L, -n - 1);
    int tbl = lua_gettop(L) - n;
    for (int i = n; i >= 1; i--) lua_rawseti(L, tbl, i);
    lua_setiuservalue(L, fidx, UV_RES);
  }
  f->nres = n;
}


void corio__fut_complete(corio_rt *rt, lua_State *L, int fidx, corio_fut *f) {
  fidx = lua_absindex(L, fidx);
  if (f->whead) {
    f->observed = 1;
    if (f->nres > 8) lua_checkstack(L, f->nres + 4);
  }
  while (f->whead) {
    corio_task *t = f->whead;
    corio__fut_unlink(f, t);
    if (f->state == FUT_OK) {
      int n = push_values(L, fidx, f);
      corio__wake(rt, t, L, n, WAKE_VALUES);
    } else {
      lua_getiuservalue(L, fidx, UV_RES);
      corio__wake(rt, t, L, 1, WAKE_RAISE);
    }
  }
  if (f->has_extra) {                         /* only extras hold callbacks */
    lua_getiuservalue(L, fidx, UV_AUX);
    if (lua_getfield(L, -1, "callbacks") == LUA_TTABLE) {
      int cbs = lua_gettop(L);
      f->observed = 1;
      lua_pushnil(L);
      lua_setfield(L, cbs - 1, "callbacks");
      for (lua_Integer i = 1; lua_rawgeti(L, cbs, i) != LUA_TNIL; i++) {
        lua_pushvalue(L, fidx);
        corio__soon(rt, L, 1);
      }
      lua_pop(L, 1);                          /* the nil */
    }
    lua_pop(L, 2);                            /* extras, callbacks */
  }
  if (f->state == FUT_FAILED && !f->observed)
    corio__watch_failure(rt, L, fidx, f);
}


/* {====================================================================
** Methods shared by Future and Task
** ===================================================================== */

static void await_undo(corio_rt *rt, corio_task *t) {
  corio_fut *f = t->awaiting;
  if (f) corio__fut_unlink(f, t);
  t->awaiting = NULL;
  /* As in asyncio, cancelling the task that awaits a C future cancels the
  ** future: the host learns it (on_cancel) and stops working for it. */
  if (f && f->type == TYPE_CFUTURE) corio__cfut_cancel(rt, f);
}


/* The error message if t awaiting f would wait for itself, directly or
** through a chain of tasks awaiting each other (that could never finish);
** NULL if not. */
static const char *awaits_itself(corio_task *t, corio_fut *f) {
  for (corio_fut *g = f; g && g->type == TYPE_TASK;) {
    corio_task *u = container_of(g, corio_task, fut);
    if (u == t)
      return g == f ? "a task cannot await itself"
                    : "await would deadlock: the task awaits itself "
                      "through a chain of tasks";
    g = u->state == T_WAITING ? u->awaiting : NULL;
  }
  return NULL;
}


static int fut_await(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_fut *f = corio__check_fut(RT_UPVALUE(L), L, 1);
  corio_task *cur = rt->current;
  /* A cancel request pending when a task starts to await a running task
  ** is passed on to that task, as one arriving during the wait is
  ** (corio__task_cancel): the awaiter raises CANCELLED once it has
  ** unwound, as in asyncio.  Raising at once left the awaited task
  ** running, an orphan when wait_for had spawned it
  ** (tests/regress/await_with_pending_cancel_spec.lua).  Otherwise
  ** corio__check_await raises as before (outside a task, not yieldable,
  ** or the request, also when the await is refused below). */
  int pass_on = f->state == FUT_PENDING && f->type == TYPE_TASK &&
                cur != NULL && cur->co == L && lua_isyieldable(L) &&
                (cur->flags & TF_CANCEL_REQ) && !awaits_itself(cur, f);
  if (pass_on) cur->flags &= ~TF_CANCEL_REQ;
  corio_task *t = corio__check_await(L, rt, "await");
  if (f->state != FUT_PENDING) {
    corio__observe(L, 1, f);
    return corio__fut_push_results(L, 1, f);
  }
  const char *self = awaits_itself(t, f);
  if (self) return corio__error(L, "INVALID_STATE", "await", "%s", self);
  if (pass_on) {
    t->flags |= TF_CANCEL_WAKE;
    corio__task_cancel(rt, container_of(f, corio_task, fut), L, NULL);
  }
  t->wnext = NULL;
  t->wprev = f->wtail;
  if (f->wtail) f->wtail->wnext = t;
  else f->whead = t;
  f->wtail = t;
  t->awaiting = f;
  f->observed = 1;
  lua_settop(L, 1);                           /* keeps f alive meanwhile */
  return corio__suspend(L, rt, t, await_undo);
}


static int fut_done(lua_State *L) {
  lua_pushboolean(L, corio__check_fut(RT_UPVALUE(L), L, 1)->state != FUT_PENDING);
  return 1;
}


static int fut_cancelled(lua_State *L) {
  lua_pushboolean(L, corio__check_fut(RT_UPVALUE(L), L, 1)->state == FUT_CANCELLED);
  return 1;
}


static int fut_result(lua_State *L) {
  corio_fut *f = corio__check_fut(RT_UPVALUE(L), L, 1);
  if (f->state != FUT_PENDING) corio__observe(L, 1, f);
  return corio__fut_push_results(L, 1, f);
}


/* error() -> the error value, or nil if it succeeded; raises if pending */
static int fut_error(lua_State *L) {
  corio_fut *f = corio__check_fut(RT_UPVALUE(L), L, 1);
  if (f->state == FUT_PENDING)
    return corio__error(L, "INVALID_STATE", "error",
                        "result is not ready yet");
  corio__observe(L, 1, f);
  if (f->state == FUT_OK) lua_pushnil(L);
  else lua_getiuservalue(L, 1, UV_RES);
  return 1;
}


/* add_done_callback(fn): fn(fut) runs as a callback once it is done
** (at once, on a later turn, if it already is). */
static int fut_add_done_callback(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_fut *f = corio__check_fut(RT_UPVALUE(L), L, 1);
  luaL_checkany(L, 2);
  if (!lua_isfunction(L, 2) && !luaL_getmetafield(L, 2, "__call"))
    luaL_typeerror(L, 2, "function");
  lua_settop(L, 2);
  if (f->state != FUT_PENDING) {
    corio__observe(L, 1, f);
    lua_pushvalue(L, 1);
    corio__soon(rt, L, 1);
    return 0;
  }
  f->observed = 1;
  corio__fut_extra(L, 1);
  if (lua_getfield(L, -1, "callbacks") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "callbacks");
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}


/* {--------------------------------------------------------------------
** Unhandled failures.  A future or task that fails while nobody waits
** for it gets a small sentinel userdata in its extras, holding the error
** and traceback.  If the failure is seen later (await, result, error,
** add_done_callback), the sentinel is disarmed; if the future is collected
** first, the sentinel's __gc queues the report.  Only failed futures carry
** a finalizer, so the million that succeed cost the collector nothing.
** --------------------------------------------------------------------- */

typedef struct sentinel { int armed; } sentinel;

static int sentinel_gc(lua_State *L) {
  sentinel *s = lua_touserdata(L, 1);
  corio_rt *rt = corio__rt_or_null(L);
  if (!s->armed || rt == NULL || rt->closing) return 0;
  s->armed = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->reports_ref);
  lua_createtable(L, 3, 0);
  for (int i = 1; i <= 3; i++) {
    lua_getiuservalue(L, 1, i);
    lua_rawseti(L, -2, i);
  }
  lua_rawseti(L, -2, ++rt->nreports);
  lua_pop(L, 1);
  corio__kick(rt);
  return 0;
}


void corio__watch_failure(corio_rt *rt, lua_State *L, int fidx,
                          corio_fut *f) {
  fidx = lua_absindex(L, fidx);
  corio__fut_extra(L, fidx);                  /* extras */
  sentinel *s = lua_newuserdatauv(L, sizeof *s, 3);
  s->armed = 1;
  lua_getiuservalue(L, fidx, UV_RES);
  lua_setiuservalue(L, -2, 1);
  lua_getfield(L, -2, "traceback");
  lua_setiuservalue(L, -2, 2);
  lua_pushstring(L, f->type == TYPE_TASK ? "task" : "future");
  lua_setiuservalue(L, -2, 3);
  if (luaL_newmetatable(L, "corio.sentinel")) {
    lua_pushcfunction(L, sentinel_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "sentinel");
  lua_pop(L, 1);
  /* Also listed (weakly) for the report at exit. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
  lua_pushvalue(L, fidx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}


void corio__observe(lua_State *L, int fidx, corio_fut *f) {
  if (f->observed) return;
  f->observed = 1;
  if (f->state != FUT_FAILED) return;
  if (corio__get_extra(L, fidx) == LUA_TTABLE &&
      lua_getfield(L, -1, "sentinel") == LUA_TUSERDATA) {
    sentinel *s = lua_touserdata(L, -1);
    s->armed = 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* }-------------------------------------------------------------------- */

/* }==================================================================== */


/* {====================================================================
** Future-only methods
** ===================================================================== */

static corio_fut *check_future(lua_State *L) {
  return luaL_checkudata(L, 1, CORIO_FUTURE_MT);
}


static void fut_settle(lua_State *L, corio_fut *f, int state, int first) {
  corio_rt *rt = RT_UPVALUE(L);
  int n = lua_gettop(L) - first + 1;
  if (f->state != FUT_PENDING)
    corio__error(L, "INVALID_STATE", "set_result",
                 "future is already done");
  corio__fut_store(L, 1, f, n);
  f->state = (unsigned char)state;
  corio__fut_complete(rt, L, 1, f);
  if (f->type == TYPE_CFUTURE) corio__cfut_settled(rt, f);
}


static int future_set_result(lua_State *L) {
  fut_settle(L, check_future(L), FUT_OK, 2);
  return 0;
}


static int future_set_error(lua_State *L) {
  corio_fut *f = check_future(L);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  fut_settle(L, f, corio__is_error(L, 2, "CANCELLED") ? FUT_CANCELLED
                                                      : FUT_FAILED, 2);
  return 0;
}


static int future_cancel(lua_State *L) {
  corio_fut *f = check_future(L);
  const char *msg = luaL_optstring(L, 2, "future was cancelled");
  if (f->state != FUT_PENDING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 1);
  corio__push_error(L, "CANCELLED", NULL, msg);
  fut_settle(L, f, FUT_CANCELLED, 2);
  lua_pushboolean(L, 1);
  return 1;
}


static int future_tostring(lua_State *L) {
  corio_fut *f = check_future(L);
  static const char *const names[] = {"pending", "done", "failed",
                                      "cancelled"};
  lua_pushfstring(L, "corio.Future (%s): %p", names[f->state], (void *)f);
  return 1;
}


static int l_future(lua_State *L) {
  corio_fut *f = lua_newuserdatauv(L, sizeof *f, FUT_NUV);
  f->type = TYPE_FUTURE;
  f->state = FUT_PENDING;
  f->observed = 0;
  f->has_extra = 0;
  f->nres = 0;
  f->whead = f->wtail = NULL;
  corio_rt *rt = RT_UPVALUE(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt_future_ref);
  lua_setmetatable(L, -2);
  if (rt->debug) corio__debug_watch(rt, L, -1);  /* the one test when off */
  return 1;
}

/* }==================================================================== */


const luaL_Reg corio__fut_methods[] = {
  {"await", fut_await},
  {"done", fut_done},
  {"cancelled", fut_cancelled},
  {"result", fut_result},
  {"error", fut_error},
  {"add_done_callback", fut_add_done_callback},
  {NULL, NULL}
};

static const luaL_Reg future_methods[] = {
  {"set_result", future_set_result},
  {"set_error", future_set_error},
  {"cancel", future_cancel},
  {NULL, NULL}
};


/* Pushes class `name`: __index with the shared and own methods. */
void corio__fut_metatable(lua_State *L, corio_rt *rt, const char *name,
                          const luaL_Reg *own, lua_CFunction tostring) {
  const luaL_Reg meta[] = {{"__tostring", tostring}, {NULL, NULL}};
  corio__newclass(L, rt, name, corio__fut_methods, meta, NULL);
  corio__addmethods(L, rt, own, NULL);
}


void corio__open_future(lua_State *L, corio_rt *rt) {
  corio__fut_metatable(L, rt, CORIO_FUTURE_MT, future_methods,
                       future_tostring);
  rt->mt_future = lua_topointer(L, -1);
  rt->mt_future_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, l_future, 1);
  lua_setfield(L, -2, "future");
}
