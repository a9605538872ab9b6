/*
** debug.c -- `corio --debug` (or CORIO_DEBUG=1): warnings about steps that
** block the loop, and a dump of every task's stack (on SIGQUIT).
*/
#include <stdio.h>    /* fprintf */
#include <string.h>   /* strncmp */

#include "internal.h"


void corio__push_label(corio_rt *rt, lua_State *L, corio_task *t) {
  if (t->state != T_DONE && t->fut.type == TYPE_TASK && t->anchor > 0) {
    corio__push_task(rt, L, t);
    int top = lua_gettop(L);
    if (corio__get_extra(L, top) == LUA_TTABLE &&
        lua_getfield(L, -1, "name") == LUA_TSTRING) {
      lua_replace(L, top);
      lua_settop(L, top);
      return;
    }
    lua_settop(L, top - 1);
  }
  lua_pushfstring(L, "Task-%d", (int)t->id);
}


void corio__debug_slow(corio_rt *rt, lua_State *L, corio_task *t,
                       uint64_t ns) {
  if (t == NULL) {
    fprintf(stderr, "corio: [debug] a callback blocked the loop for "
            "%.0f ms\n", (double)ns / 1e6);
    return;
  }
  corio__push_label(rt, L, t);
  fprintf(stderr, "corio: [debug] task %s blocked the loop for %.0f ms "
          "without awaiting\n", lua_tostring(L, -1), (double)ns / 1e6);
  lua_pop(L, 1);
}


/* L is the stack to work on: rt->L from the loop, or the running task's
** coroutine from the interrupt hook (interrupt.c), which also gives the
** running task's traceback. */
void corio__dump_tasks(corio_rt *rt, lua_State *L) {
  static const char *const states[] = {"new", "running", "waiting",
                                       "ready", "done"};
  int n = 0;
  luaL_checkstack(L, 8, NULL);
  fprintf(stderr, "corio: [debug] %ld task(s):\n", rt->ntasks);
  for (int s = 1; s <= rt->max_slot; s++) {
    corio__push_live(rt, L, s);
    corio_fut *f = corio__to_fut(rt, L, -1);
    if (f && f->type == TYPE_TASK) {
      corio_task *t = container_of(f, corio_task, fut);
      corio__push_label(rt, L, t);
      fprintf(stderr, "--- %s (%s)\n", lua_tostring(L, -1),
              states[t->state]);
      lua_pop(L, 1);
      if (t->co && (t->state != T_RUNNING || t->co == L)) {
        luaL_traceback(L, t->co, NULL, 0);
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
      }
      n++;
    }
    lua_pop(L, 1);
  }
  if (n == 0) fprintf(stderr, "(none)\n");
  fflush(stderr);
}


/* {====================================================================
** corio.debug.tasks() and creation sites (recorded only under --debug)
** ===================================================================== */

/* Fills ar with the first frame at or above level that is a script's,
** not corio's own Lua code (compose.lua spawns for gather): 1; or, if
** only corio's code runs (a server's handler task spawned from the
** loop), the first frame with a line: 2; 0 if none. */
static int user_frame(lua_State *co, int level, lua_Debug *ar) {
  int found = 0;
  for (; lua_getstack(co, level, ar); level++) {
    lua_getinfo(co, "Sl", ar);
    if (ar->currentline <= 0) continue;
    found = 1;
    if (strncmp(ar->short_src, "corio/", 6) != 0 &&
        strcmp(ar->short_src, "corio.lua") != 0)
      return 1;
  }
  if (found) {                 /* only corio frames: take the first */
    for (level = 0; lua_getstack(co, level, ar); level++) {
      lua_getinfo(co, "Sl", ar);
      if (ar->currentline > 0) return 2;
    }
  }
  return 0;
}


int corio__where(lua_State *L, int level, char *buf, size_t n) {
  lua_Debug ar;
  if (!user_frame(L, level, &ar)) return 0;
  snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
  return 1;
}


/* The sentinel of a watched future (in its extras as "never"): it refers
** back to the future, so when the collector finalizes it the future is
** still there to ask whether anyone ever awaited it. */
static int never_gc(lua_State *L) {
  corio_rt *rt = corio__rt_or_null(L);
  if (rt == NULL || rt->closing) return 0;
  lua_getiuservalue(L, 1, 1);
  corio_fut *f = corio__to_fut(rt, L, -1);
  /* A cancelled one is not reported: cancelling was a decision about it
  ** (and the shutdown after a failed main task cancels every task). */
  if (f && !f->observed && f->state != FUT_CANCELLED) {
    lua_getiuservalue(L, 1, 2);
    fprintf(stderr, "corio: [debug] a %s created at %s was collected "
            "without ever being awaited (no await, result() or done "
            "callback)\n", f->type == TYPE_TASK ? "Task" : "Future",
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    fflush(stderr);
  }
  return 0;
}


void corio__debug_watch(corio_rt *rt, lua_State *L, int fi) {
  lua_Debug ar;
  (void)rt;
  fi = lua_absindex(L, fi);
  corio__fut_extra(L, fi);                      /* extras */
  int found = user_frame(L, 1, &ar);
  if (found) {
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    lua_setfield(L, -2, "created");
  }
  if (found == 2) {            /* corio's own (a server's handler task): */
    lua_pop(L, 1);             /* nobody is expected to await it */
    return;
  }
  lua_newuserdatauv(L, 1, 2);                   /* extras, sentinel */
  lua_pushvalue(L, fi);
  lua_setiuservalue(L, -2, 1);
  lua_getfield(L, -2, "created");
  lua_setiuservalue(L, -2, 2);
  if (luaL_newmetatable(L, "corio.never")) {
    lua_pushcfunction(L, never_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "never");
  lua_pop(L, 1);
}


/* core.tasks() -> list of {task=, state=, where=, created=}: every live
** task, its state, the line it is suspended at (its current await point)
** and, under --debug, where it was spawned. */
int corio__l_tasks(lua_State *L) {
  static const char *const states[] = {"new", "running", "waiting",
                                       "ready", "done"};
  corio_rt *rt = corio__rt(L);
  lua_newtable(L);
  int out = lua_gettop(L), n = 0;
  for (int s = 1; s <= rt->max_slot; s++) {
    corio__push_live(rt, L, s);
    corio_fut *f = corio__to_fut(rt, L, -1);
    if (f && f->type == TYPE_TASK) {
      corio_task *t = container_of(f, corio_task, fut);
      lua_createtable(L, 0, 3);
      lua_pushvalue(L, -2);
      lua_setfield(L, -2, "task");
      lua_pushstring(L, states[t->state]);
      lua_setfield(L, -2, "state");
      if (corio__get_extra(L, -2) == LUA_TTABLE) {
        lua_getfield(L, -1, "created");
        lua_setfield(L, -3, "created");
      }
      lua_pop(L, 1);
      lua_Debug ar;
      if (t->co && user_frame(t->co, 0, &ar)) {
        lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        lua_setfield(L, -2, "where");
      }
      lua_rawseti(L, out, ++n);
    }
    lua_pop(L, 1);
  }
  return 1;
}


/* core.open_handles() -> list of {kind=, created=, active=}: the
** handles recorded under --debug that are not closing (active: it keeps
** the loop alive), then the pending call_later / call_at timers. */
int corio__l_open_handles(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  int n = 0;
  lua_newtable(L);
  int out = lua_gettop(L);
  for (size_t i = 0; rt->hsite && i < rt->hset_cap; i++) {
    uv_handle_t *h = rt->hset[i];
    corio_site *site = rt->hsite[i];
    if (h == NULL || site == NULL || uv_is_closing(h)) continue;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, site->kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, site->where);
    lua_setfield(L, -2, "created");
    lua_pushboolean(L, uv_is_active(h) && uv_has_ref(h));
    lua_setfield(L, -2, "active");
    lua_rawseti(L, out, ++n);
  }
  for (int s = 1; rt->debug && s <= rt->max_slot; s++) {
    corio__push_live(rt, L, s);
    corio_handle *h = luaL_testudata(L, -1, CORIO_HANDLE_MT);
    if (h && h->state == H_PENDING && h->timer.hidx >= 0 &&
        lua_getiuservalue(L, -1, 3) == LUA_TSTRING) {
      lua_createtable(L, 0, 3);
      lua_pushliteral(L, "Timer");
      lua_setfield(L, -2, "kind");
      lua_insert(L, -2);
      lua_setfield(L, -2, "created");
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "active");
      lua_rawseti(L, out, ++n);
    } else if (h) {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 1;
}


/* The report of a Lock or BoundedSemaphore still held when its task ends
** (under --debug).  The data, kept by bindings/sync/sync.c:
**   lock's user value 1:  {kind=, created=, held={[task]={n=, at=, seq=}}}
**   task's extras.held:   {[lock]=true}
** Runs protected (lua_pcall from corio__debug_task_end) with the task at
** index 1. */
static int task_end_body(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  corio_task *t = lua_touserdata(L, 1);
  if (corio__get_extra(L, 1) != LUA_TTABLE ||
      lua_getfield(L, -1, "held") != LUA_TTABLE)
    return 0;
  int held = lua_gettop(L);                   /* extras, held */
  corio__push_label(rt, L, t);
  const char *label = lua_tostring(L, -1);
  lua_pushnil(L);
  while (lua_next(L, held)) {                 /* lock, true */
    lua_pop(L, 1);
    if (lua_getiuservalue(L, -1, 1) != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    int d = lua_gettop(L);
    lua_getfield(L, d, "kind");
    lua_getfield(L, d, "created");
    lua_getfield(L, d, "held");
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, 1);
      if (lua_rawget(L, -2) == LUA_TTABLE) {  /* its hold */
        lua_getfield(L, -1, "at");
        lua_getfield(L, -2, "n");
        lua_Integer n = lua_tointeger(L, -1);
        if (n > 1)
          fprintf(stderr, "corio: [debug] task %s ended holding %d permits "
                  "of a %s created at %s (first acquired at %s); release "
                  "them before the task ends (`sem:with(fn)`, or `local _ "
                  "<close> = sem:acquire()`)\n", label, (int)n,
                  lua_tostring(L, d + 1), lua_tostring(L, d + 2),
                  lua_tostring(L, -2));
        else
          fprintf(stderr, "corio: [debug] task %s ended holding a %s "
                  "created at %s (acquired at %s); release it before the "
                  "task ends (`lock:with(fn)`, or `local _ <close> = "
                  "lock:acquire()`)\n", label, lua_tostring(L, d + 1),
                  lua_tostring(L, d + 2), lua_tostring(L, -2));
        fflush(stderr);
        lua_pop(L, 2);
        lua_pushvalue(L, 1);                  /* the hold goes: the lock */
        lua_pushnil(L);                       /* stays held, but by */
        lua_rawset(L, d + 3);                 /* nobody's task */
      }
      lua_pop(L, 1);
    }
    lua_settop(L, d - 1);                     /* lock */
  }
  lua_pushnil(L);
  lua_setfield(L, held - 1, "held");
  return 0;
}


void corio__debug_task_end(corio_rt *rt, lua_State *L, int ti,
                           corio_task *t) {
  int top = lua_gettop(L);
  (void)rt;
  t->flags &= (unsigned char)~TF_HOLDS;
  if (!lua_checkstack(L, 4)) return;
  lua_pushcfunction(L, task_end_body);
  lua_pushvalue(L, ti);
  (void)lua_pcall(L, 1, 0, 0);                /* out of memory: no report */
  lua_settop(L, top);
}


/* core.where() -> "file:line" of the script's code calling (through any
** of corio's own Lua code), or nil. */
int corio__l_where(lua_State *L) {
  char buf[256];
  if (corio__where(L, 0, buf, sizeof buf)) lua_pushstring(L, buf);
  else lua_pushnil(L);
  return 1;
}


/* core.debugging() -> whether --debug (or CORIO_DEBUG=1) is on. */
int corio__l_debugging(lua_State *L) {
  lua_pushboolean(L, corio__rt(L)->debug);
  return 1;
}

/* }==================================================================== */
