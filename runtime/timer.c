/*
** timer.c -- time: corio.sleep, corio.yield, corio.now, and plain
** callbacks (call_soon / call_later / call_at -> Handle).
**
** A sleeping task arms the timer entry embedded in it, so a sleep never
** allocates; cancelling the task disarms it (the undo hook), so a
** cancelled sleeper can never be resumed by its old deadline.
*/
#include <math.h>     /* isnan */

#include "internal.h"


/* {====================================================================
** sleep, yield, now
** ===================================================================== */

/* [t] -> (error): the TIMEOUT of a wait past its deadline. */
static int push_due(lua_State *L) {
  corio_task *t = lua_touserdata(L, 1);
  corio__push_error(L, "TIMEOUT", t->due_op, "deadline passed");
  return 1;
}


/* The wait of t passed its deadline: undone, as a cancel undoes it, and
** raising TIMEOUT (made protected: out of memory, ENOMEM). */
static void due_expired(corio_rt *rt, corio_task *t) {
  t->flags &= ~TF_DUE;
  if (t->state != T_WAITING) return;
  t->token++;
  if (t->undo) t->undo(rt, t);
  corio__wake_with(rt, t, push_due, t, WAKE_RAISE);
}


void corio__timer_fired(corio_rt *rt, corio_tentry *e) {
  corio_node *n = (corio_node *)((char *)e - sizeof(corio_node));
  if (n->kind != NODE_TASK)                   /* call_later / call_at */
    corio__enqueue(rt, n);
  else if (((corio_task *)n)->flags & TF_DUE)  /* a wait with a deadline */
    due_expired(rt, (corio_task *)n);
  else                                        /* a sleeper */
    corio__wake(rt, (corio_task *)n, rt->L, 0, WAKE_VALUES);
}


int corio__wait_due(corio_rt *rt, corio_task *t, uint64_t due,
                    const char *op) {
  if (corio__timer_arm(rt, &t->timer, due) != 0) return -1;
  t->flags |= TF_DUE;
  t->due_op = op;
  return 0;
}


static void sleep_undo(corio_rt *rt, corio_task *t) {
  corio__timer_disarm(rt, &t->timer);
}


static int l_yield(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "yield");
  corio__enqueue_next(rt, &t->node);
  return corio__suspend(L, rt, t, NULL);
}


static int l_sleep(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, !isnan(s), 1, "not a number");
  corio_task *t = corio__check_await(L, rt, "sleep");
  if (s <= 0) {
    corio__enqueue_next(rt, &t->node);
    return corio__suspend(L, rt, t, NULL);
  }
  if (corio__timer_arm(rt, &t->timer, corio__due_after(rt, s)) != 0)
    return luaL_error(L, "not enough memory");
  return corio__suspend(L, rt, t, sleep_undo);
}


static int l_now(lua_State *L) {
  lua_pushnumber(L, corio__now());
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Handles: call_soon, call_later, call_at
** ===================================================================== */

static corio_handle *check_handle(lua_State *L) {
  return luaL_checkudata(L, 1, CORIO_HANDLE_MT);
}


/* Pops fn and nargs arguments and pushes a pending Handle. */
static corio_handle *handle_new(corio_rt *rt, lua_State *L, int nargs,
                                int nuv) {
  int fi = lua_gettop(L) - nargs;
  corio_handle *h = lua_newuserdatauv(L, sizeof *h, nuv);
  h->node.next = NULL;
  h->node.kind = NODE_HANDLE;
  h->node.queued = 0;
  h->timer.hidx = -1;
  h->nargs = nargs;
  h->state = H_PENDING;
  h->anchor = 0;
  luaL_setmetatable(L, CORIO_HANDLE_MT);
  int hi = lua_gettop(L);
  corio__store_call(L, hi, fi, nargs);
  h->anchor = corio__anchor(rt, L, hi);
  rt->nhandles++;
  lua_replace(L, fi);
  lua_settop(L, fi);
  return h;
}


int corio__soon(corio_rt *rt, lua_State *L, int nargs) {
  corio_handle *h = handle_new(rt, L, nargs, 2);
  lua_pop(L, 1);
  corio__enqueue(rt, &h->node);
  return 0;
}


static int l_call_soon(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio__check_callable(L, 1);
  corio_handle *h = handle_new(rt, L, lua_gettop(L) - 1, 2);
  corio__enqueue(rt, &h->node);
  return 1;
}


/* Arms a handle for a deadline computed before anything was created. */
static int call_due(lua_State *L, uint64_t due) {
  corio_rt *rt = RT_UPVALUE(L);
  corio__check_callable(L, 2);
  lua_remove(L, 1);
  corio_handle *h = handle_new(rt, L, lua_gettop(L) - 1, rt->debug ? 3 : 2);
  if (rt->debug) {             /* user value 3: where (for the summaries) */
    char where[256];
    lua_pushstring(L, corio__where(L, 0, where, sizeof where) ? where : "?");
    lua_setiuservalue(L, -2, 3);
  }
  if (corio__timer_arm(rt, &h->timer, due) != 0) {
    corio__handle_cancel(rt, L, h);
    return luaL_error(L, "not enough memory");
  }
  return 1;
}


static int l_call_later(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, !isnan(s), 1, "not a number");
  return call_due(L, corio__due_after(rt, s));
}


static int l_call_at(lua_State *L) {
  double t = luaL_checknumber(L, 1);
  luaL_argcheck(L, !isnan(t), 1, "not a number");
  return call_due(L, corio__due_at(t));
}


int corio__handle_cancel(corio_rt *rt, lua_State *L, corio_handle *h) {
  if (h->state != H_PENDING) return 0;
  h->state = H_CANCELLED;
  corio__timer_disarm(rt, &h->timer);
  if (!h->node.queued) {        /* a queued one stays anchored until the */
    corio__unanchor(rt, L, h->anchor);       /* queue reaches and skips it */
    h->anchor = 0;
  }
  rt->nhandles--;
  return 1;
}


/* cancel() -> true if the callback had not run yet. */
static int handle_cancel(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  lua_pushboolean(L, corio__handle_cancel(rt, L, check_handle(L)));
  return 1;
}


static int handle_cancelled(lua_State *L) {
  lua_pushboolean(L, check_handle(L)->state == H_CANCELLED);
  return 1;
}


static int handle_tostring(lua_State *L) {
  static const char *const names[] = {"pending", "done", "cancelled"};
  corio_handle *h = check_handle(L);
  lua_pushfstring(L, "corio.Handle (%s): %p", names[h->state], (void *)h);
  return 1;
}

/* }==================================================================== */


void corio__open_timer(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"cancel", handle_cancel},
    {"cancelled", handle_cancelled},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"sleep", l_sleep},
    {"yield", l_yield},
    {"now", l_now},
    {"call_soon", l_call_soon},
    {"call_later", l_call_later},
    {"call_at", l_call_at},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", handle_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, CORIO_HANDLE_MT, methods, meta, NULL);
  lua_pop(L, 1);
  corio__setfuncs(L, rt, funcs);
}
