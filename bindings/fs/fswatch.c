/*
** fswatch.c -- corio._fswatch: fs.watch(path, fn [, {recursive=}]) ->
** Watcher, on uv_fs_event_t.
**
** fn(filename, event) runs as a plain loop callback (like call_soon: it
** may not await; spawn a task for that), once per event kind, with event
** "change" or "rename"; an error of the watcher gives fn(nil, "error",
** err).  A watcher is a subscription: it stays alive, anchored, until
** close() -- dropping the last reference does not silently stop it (as
** with Node's fs.watch).  It keeps the loop alive while open.
**
** Lifecycle: open (anchored) -> close(): stop, unanchor, uv_close ->
** close_cb frees the uv handle.  The userdata only points at it.  After
** close, path() raises CLOSED (as a File's methods do).
*/
#include <stdlib.h>   /* malloc, free */

#include "shared.h"    /* the core, and what modules offer each other */

#define WATCHER_MT "corio.Watcher"

typedef struct watcher {
  uv_fs_event_t h;
  corio_rt *rt;
  int anchor;                  /* live slot of the userdata while open */
} watcher;

typedef struct wbox {
  watcher *w;                  /* NULL once closed */
} wbox;


static void free_cb(uv_handle_t *h) {
  corio__untrack(((watcher *)h->data)->rt, h);
  free(h->data);
}


/* Pushes the watcher's callback. [-0,+1] */
static void push_fn(corio_rt *rt, lua_State *L, watcher *w) {
  corio__push_live(rt, L, w->anchor);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
}


static void on_event(uv_fs_event_t *h, const char *name, int events,
                     int status) {
  watcher *w = h->data;
  corio_rt *rt = w->rt;
  lua_State *L = rt->L;
  static const int kinds[] = {UV_CHANGE, UV_RENAME};
  static const char *const knames[] = {"change", "rename"};
  if (rt->closing || w->anchor == 0) return;
  lua_checkstack(L, 6);
  if (status < 0) {
    push_fn(rt, L, w);
    lua_pushnil(L);
    lua_pushliteral(L, "error");
    corio__push_uverror(L, status, "watch", NULL);
    corio__soon(rt, L, 3);
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (!(events & kinds[i])) continue;
    push_fn(rt, L, w);
    if (name) lua_pushstring(L, name);
    else lua_pushnil(L);
    lua_pushstring(L, knames[i]);
    corio__soon(rt, L, 2);
  }
}


static wbox *check_box(lua_State *L) {
  return luaL_checkudata(L, 1, WATCHER_MT);
}


/* Stops and closes; idempotent.  From __gc during teardown the loop may
** already be gone (then libuv is done with the memory). */
static void wclose(lua_State *L, wbox *b) {
  watcher *w = b->w;
  if (w == NULL) return;
  b->w = NULL;
  corio_rt *rt = corio__rt_or_null(L);
  if (rt == NULL) {
    free(w);
    return;
  }
  if (w->anchor) {
    corio__unanchor(rt, L, w->anchor);
    w->anchor = 0;
  }
  if (!uv_is_closing((uv_handle_t *)&w->h))
    uv_close((uv_handle_t *)&w->h, free_cb);
}


static int l_watch(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  unsigned flags = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "recursive");
    if (lua_toboolean(L, -1)) flags |= UV_FS_EVENT_RECURSIVE;
    lua_pop(L, 1);
  }
  wbox *b = lua_newuserdatauv(L, sizeof *b, 2);
  b->w = NULL;                                /* born closed */
  luaL_setmetatable(L, WATCHER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 2);
  watcher *w = malloc(sizeof *w);
  if (w == NULL) return luaL_error(L, "not enough memory");
  uv_fs_event_init(rt->loop, &w->h);
  w->h.data = w;
  w->rt = rt;
  w->anchor = 0;
  corio__track(rt, (uv_handle_t *)&w->h);
  corio__track_site(rt, L, (uv_handle_t *)&w->h, "Watcher", NULL);
  int st = uv_fs_event_start(&w->h, on_event, path, flags);
  if (st < 0) {
    uv_close((uv_handle_t *)&w->h, free_cb);
    return corio__uverror(L, st, "watch", path);
  }
  b->w = w;
  w->anchor = corio__anchor(rt, L, -1);
  return 1;
}


static int w_close(lua_State *L) {
  wclose(L, check_box(L));
  return 0;
}


/* Like a File's methods, path() raises CLOSED after close (with the path,
** so the error still says which watcher it was); __tostring works. */
static int w_path(lua_State *L) {
  wbox *b = check_box(L);
  lua_getiuservalue(L, 1, 2);
  if (b->w == NULL) {
    corio__push_error(L, "CLOSED", "path", "attempt to use a closed watcher");
    lua_insert(L, -2);
    lua_setfield(L, -2, "path");
    return lua_error(L);
  }
  return 1;
}


static int w_gc(lua_State *L) {
  wclose(L, lua_touserdata(L, 1));
  return 0;
}


static int w_tostring(lua_State *L) {
  wbox *b = check_box(L);
  lua_getiuservalue(L, 1, 2);
  lua_pushfstring(L, "corio.Watcher (%s%s)", lua_tostring(L, -1),
                  b->w ? "" : ", closed");
  return 1;
}


int luaopen_corio__fswatch(lua_State *L);

int luaopen_corio__fswatch(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", w_close},
    {"path", w_path},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"watch", l_watch},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg meta[] = {
    {"__gc", w_gc},
    {"__close", w_close},
    {"__tostring", w_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, WATCHER_MT, methods, meta, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
