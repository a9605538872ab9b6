/*
** cfuture.c -- C futures: a corio.Future whose outcome C code supplies,
** from any thread.
**
** The Lua side is an ordinary Future (same metatable, same methods) in a
** slightly larger userdata (corio_cfut) whose type is TYPE_CFUTURE, so
** future.c can tell it apart and call back here when Lua settles or
** cancels it.  The C side (corio_future) is malloc'ed and refcounted by
** the host; while the host holds it, the Lua future is anchored and, if
** pending, keeps the loop alive (it is a wake source, never a deadlock).
**
** State, under the hub's mutex: PENDING -> SETTLING (resolve or reject
** queued its item) -> DONE, or PENDING/SETTLING -> CANCELLED (its awaiter
** was cancelled, or Lua cancelled it).  A resolve or reject that finds it
** not PENDING returns CORIO_ESTATE and drops.  Each future embeds its two
** queue items (the settle and the final release), so neither can fail
** for memory once the future exists.
*/
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* strlen, memcpy */

#include "internal.h"

enum { CF_PENDING, CF_SETTLING, CF_DONE, CF_CANCELLED };

struct corio_future {
  corio_hub *hub;
  int refs;                    /* host references (hub->mu) */
  int state;                   /* CF_* (hub->mu) */
  corio_item settle;           /* ud/drop: the resolve's; fn unused */
  corio_push_fn push;          /* NULL: a reject */
  char *code, *msg;            /* a reject's copies */
  corio_item release;
  /* Loop thread only: */
  corio_cfut *lua;             /* the Lua side, NULL once let go */
  int slot;                    /* its anchor */
  int counted;                 /* counted in hub->alive */
  corio_post_fn on_cancel;
  void *on_cancel_ud;
};


static void uncount(corio_future *c) {
  if (!c->counted) return;
  c->counted = 0;
  corio__hub_alive(c->hub, -1);
}


static void free_future(corio_future *c) {
  free(c->code);
  free(c->msg);
  corio_hub *hub = c->hub;
  free(c);
  corio__hub_release(hub);
}


/* {====================================================================
** Loop thread
** ===================================================================== */

/* [-0,+1] the Lua future; its index. */
static int push_lua(corio_rt *rt, corio_future *c) {
  corio__push_live(rt, rt->L, c->slot);
  return lua_gettop(rt->L);
}


static int call_push(lua_State *L) {
  corio_future *c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  int n = c->push(L, c->settle.ud);
  if (n < 0 || n > lua_gettop(L)) n = 0;
  return n;
}


/* Settles the pending Lua future at fi with the n values on top, or with
** the error on top when state is FUT_FAILED/FUT_CANCELLED. */
static void settle_lua(corio_rt *rt, int fi, corio_fut *f, int n, int state) {
  corio__fut_store(rt->L, fi, f, n);
  f->state = (unsigned char)state;
  corio__fut_complete(rt, rt->L, fi, f);
}


static void deliver(corio_rt *rt, corio_future *c) {
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  corio_fut *f = c->lua ? &c->lua->fut : NULL;
  if (f == NULL || f->state != FUT_PENDING) {  /* cancelled meanwhile */
    if (c->push && c->settle.drop) c->settle.drop(c->settle.ud);
    return;
  }
  int fi = push_lua(rt, c);
  if (c->push) {
    lua_checkstack(L, 4);
    lua_pushcfunction(L, corio__msgh);
    lua_pushcfunction(L, call_push);
    lua_pushlightuserdata(L, c);
    rt->in_post++;
    int st = lua_pcall(L, 1, LUA_MULTRET, fi + 1);
    rt->in_post--;
    if (st == LUA_OK) {
      int n = lua_gettop(L) - (fi + 1);
      settle_lua(rt, fi, f, n, FUT_OK);
    } else {
      settle_lua(rt, fi, f, 1, FUT_FAILED);
    }
  } else {
    corio__push_error(L, c->code ? c->code : "ENOMEM", "future",
                      c->msg ? c->msg : "not enough memory");
    settle_lua(rt, fi, f, 1, corio__is_error(L, -1, "CANCELLED")
                             ? FUT_CANCELLED : FUT_FAILED);
  }
  lua_settop(L, top);
}


/* The host let go: an unsettled future is abandoned; the anchor goes. */
static void let_go(corio_rt *rt, corio_future *c) {
  if (c->lua) {
    corio_fut *f = &c->lua->fut;
    if (f->state == FUT_PENDING) {
      int top = lua_gettop(rt->L);
      int fi = push_lua(rt, c);
      if (f->whead == NULL) f->observed = 1;  /* nobody to tell */
      corio__push_error(rt->L, "ABANDONED", "await",
                        "the C future was released unsettled");
      settle_lua(rt, fi, f, 1, FUT_FAILED);
      lua_settop(rt->L, top);
    }
    c->lua->c = NULL;
    corio__unanchor(rt, rt->L, c->slot);
    c->lua = NULL;
  }
  uncount(c);
  free_future(c);
}


/* Runs (rt set) or drops (rt NULL: the runtime is gone) an item of a C
** future. */
void corio__cfuture_item(corio_rt *rt, corio_item *it) {
  if (it->kind == ITEM_SETTLE) {
    corio_future *c = container_of(it, corio_future, settle);
    if (rt == NULL) {
      if (c->push && c->settle.drop) c->settle.drop(c->settle.ud);
      return;
    }
    deliver(rt, c);
    uv_mutex_lock(&c->hub->mu);
    if (c->state == CF_SETTLING) c->state = CF_DONE;
    uv_mutex_unlock(&c->hub->mu);
    uncount(c);
  } else {
    corio_future *c = container_of(it, corio_future, release);
    if (rt == NULL) free_future(c);
    else let_go(rt, c);
  }
}


/* future.c: Lua settled or cancelled the C future f (cancelled: run the
** host's on_cancel). */
void corio__cfut_settled(corio_rt *rt, corio_fut *f) {
  corio_future *c = ((corio_cfut *)f)->c;
  if (c == NULL || rt->closing) return;       /* the host may free it now */
  int cancelled = f->state == FUT_CANCELLED, was;
  uv_mutex_lock(&c->hub->mu);
  was = c->state;
  if (was == CF_PENDING || was == CF_SETTLING)
    c->state = cancelled ? CF_CANCELLED : CF_DONE;
  uv_mutex_unlock(&c->hub->mu);
  if (was == CF_SETTLING) return;             /* its item will uncount */
  uncount(c);
  if (cancelled && c->on_cancel) {
    corio_post_fn fn = c->on_cancel;
    c->on_cancel = NULL;
    corio__call_protected(rt, fn, c->on_cancel_ud);
  }
}


/* future.c: the task awaiting the pending C future f was cancelled; as in
** asyncio, that cancels the future. */
void corio__cfut_cancel(corio_rt *rt, corio_fut *f) {
  corio_future *c = ((corio_cfut *)f)->c;
  if (c == NULL || rt->closing || f->state != FUT_PENDING) return;
  int top = lua_gettop(rt->L);
  int fi = push_lua(rt, c);
  corio__push_error(rt->L, "CANCELLED", NULL, "the awaiting task was "
                    "cancelled");
  settle_lua(rt, fi, f, 1, FUT_CANCELLED);
  lua_settop(rt->L, top);
  corio__cfut_settled(rt, f);
}


/* [-1,+1] the light userdata c -> the new Lua future, anchored. */
static int make_lua(lua_State *L) {
  corio_future *c = lua_touserdata(L, 1);
  corio_rt *rt = c->hub->rt;
  corio__open_core(L);                        /* the Future metatable */
  corio_cfut *u = lua_newuserdatauv(L, sizeof *u, FUT_NUV);
  memset(u, 0, sizeof *u);
  u->fut.type = TYPE_CFUTURE;
  u->fut.state = FUT_PENDING;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt_future_ref);
  lua_setmetatable(L, -2);
  c->slot = corio__anchor(rt, L, -1);
  u->c = c;
  c->lua = u;
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** The public calls
** ===================================================================== */

corio_future *corio_future_new(lua_State *L) {
  corio_rt *rt = L ? corio_from_state(L) : NULL;
  if (rt == NULL || rt->hub == NULL || rt->closing) return NULL;
  corio_future *c = calloc(1, sizeof *c);
  if (c == NULL || !lua_checkstack(L, 3)) {
    free(c);
    return NULL;
  }
  c->hub = rt->hub;
  c->refs = 1;
  c->settle.kind = ITEM_SETTLE;
  c->release.kind = ITEM_RELEASE;
  lua_pushcfunction(L, make_lua);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    free(c);
    return NULL;
  }
  corio__hub_retain(rt->hub);
  c->counted = 1;
  corio__hub_alive(rt->hub, 1);
  corio__hub_sync(rt);
  return c;
}


int corio_future_resolve(corio_future *c, corio_push_fn push, void *ud,
                         corio_drop_fn drop) {
  int rc = CORIO_OK;
  if (c == NULL || push == NULL) {
    rc = CORIO_EINVAL;
  } else {
    uv_mutex_lock(&c->hub->mu);
    if (c->hub->rt == NULL) rc = CORIO_ECLOSED;
    else if (c->state != CF_PENDING) rc = CORIO_ESTATE;
    else {
      c->push = push;
      c->settle.ud = ud;
      c->settle.drop = drop;
      c->state = CF_SETTLING;
      corio__hub_push_locked(c->hub, &c->settle);
    }
    uv_mutex_unlock(&c->hub->mu);
  }
  if (rc != CORIO_OK && drop) drop(ud);
  return rc;
}


static char *dup_str(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}


int corio_future_reject(corio_future *c, const char *code, const char *msg) {
  if (c == NULL) return CORIO_EINVAL;
  char *cc = dup_str(code ? code : "ERROR"), *mm = dup_str(msg ? msg : "");
  int rc;
  uv_mutex_lock(&c->hub->mu);
  if (c->hub->rt == NULL) rc = CORIO_ECLOSED;
  else if (c->state != CF_PENDING) rc = CORIO_ESTATE;
  else {
    rc = CORIO_OK;
    c->push = NULL;
    c->code = cc;                             /* NULL: reported as ENOMEM */
    c->msg = mm;
    c->state = CF_SETTLING;
    corio__hub_push_locked(c->hub, &c->settle);
  }
  uv_mutex_unlock(&c->hub->mu);
  if (rc != CORIO_OK) {
    free(cc);
    free(mm);
  }
  return rc;
}


int corio_future_cancelled(corio_future *c) {
  if (c == NULL) return 0;
  uv_mutex_lock(&c->hub->mu);
  int r = c->state == CF_CANCELLED;
  uv_mutex_unlock(&c->hub->mu);
  return r;
}


void corio_future_on_cancel(corio_future *c, corio_post_fn fn, void *ud) {
  if (c == NULL) return;
  corio_rt *rt = NULL;
  uv_mutex_lock(&c->hub->mu);
  int cancelled = c->state == CF_CANCELLED;
  rt = c->hub->rt;
  uv_mutex_unlock(&c->hub->mu);
  if (cancelled) {
    if (fn && rt) corio__call_protected(rt, fn, ud);
    return;
  }
  c->on_cancel = fn;
  c->on_cancel_ud = ud;
}


void corio_future_release(corio_future *c) {
  if (c == NULL) return;
  int free_now = 0;
  uv_mutex_lock(&c->hub->mu);
  if (--c->refs == 0) {
    if (c->hub->rt) corio__hub_push_locked(c->hub, &c->release);
    else free_now = 1;
  }
  uv_mutex_unlock(&c->hub->mu);
  if (free_now) free_future(c);
}

/* }==================================================================== */
