/*
** embed.c -- the embedding API of corio.h: configuration, creation and
** teardown of a runtime made for a host, the run modes, the report hook
** and module registration.  Ports and C futures are in port.c and
** cfuture.c; the runtime's own life (attach, the loop, teardown of the
** loop) is in runtime.c.
**
** Nothing here raises into the host: every step that may raise runs
** under lua_pcall, and a failure comes back as a CORIO_E* code.
*/
#include <stdio.h>    /* fputs */
#include <string.h>   /* memset, strcmp */

#include <lualib.h>   /* luaL_openlibs */

#include "internal.h"


const char *corio_version(void) { return CORIO_VERSION; }


const char *corio_strerror(int code) {
  switch (code) {
    case CORIO_OK: return "success";
    case CORIO_EBUSY: return "called from inside a run, task or post";
    case CORIO_ECLOSED: return "the runtime is closed";
    case CORIO_EFULL: return "the port's queue is full";
    case CORIO_ESTATE: return "invalid state (settled, cancelled or "
                              "stopped)";
    case CORIO_ENOMEM: return "not enough memory";
    case CORIO_EINVAL: return "invalid argument";
    case CORIO_ERROR: return "the task or future failed";
    default: return "unknown error";
  }
}


void corio_config_init(corio_config *cfg) {
  if (cfg == NULL) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
}


/* Is the host calling from inside corio (a run, a task, a callback, a
** posted function), where running or freeing the loop would re-enter it?
** corio.run asks too: a callback run by the host's corio_loop_run has no
** current task and loop_running 0, yet the loop is inside uv_run. */
int corio__busy(corio_rt *rt) {
  return rt->host_run || rt->in_post || rt->in_turn || rt->current ||
         rt->loop_running || rt->freeing;
}


/* {====================================================================
** Reports and warnings
** ===================================================================== */

void corio_set_report(corio_runtime *rt, corio_report_fn fn, void *ud) {
  if (rt == NULL) return;
  rt->report = fn;
  rt->report_ud = ud;
}


/* Lua's warn(): "@on"/"@off" switch it; pieces are joined into one
** message.  With a report hook the message goes there, else to stderr as
** lua.c prints it. */
void corio__warnf(void *ud, const char *msg, int tocont) {
  corio_rt *rt = ud;
  if (rt->warn_state != 2 && !tocont && msg[0] == '@') {
    if (strcmp(msg, "@off") == 0) rt->warn_state = 0;
    else if (strcmp(msg, "@on") == 0) rt->warn_state = 1;
    return;
  }
  if (rt->warn_state == 0) return;
  if (rt->report) {
    size_t n = strlen(msg), room = sizeof rt->warn_buf - 1 - rt->warn_len;
    if (n > room) n = room;
    memcpy(rt->warn_buf + rt->warn_len, msg, n);
    rt->warn_len += n;
    rt->warn_buf[rt->warn_len] = '\0';
  } else {
    if (rt->warn_state == 1) fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont) fputs("\n", stderr);
  }
  if (tocont) {
    rt->warn_state = 2;
    return;
  }
  rt->warn_state = 1;
  if (rt->report) {
    rt->warn_len = 0;
    rt->report(rt->report_ud, rt, CORIO_REPORT_WARNING, rt->warn_buf, NULL);
  }
}

/* }==================================================================== */


/* {====================================================================
** Creation and teardown
** ===================================================================== */

/* [cfg] -> rt: the protected part of corio_create. */
static int create_body(lua_State *L) {
  const corio_config *cfg = lua_touserdata(L, 1);
  luaL_openlibs(L);
  corio_rt *rt = corio__attach(L, cfg->loop, cfg->flags);
  corio__preload(L);            /* require "corio" and its submodules */
  lua_pushlightuserdata(L, rt);
  return 1;
}


corio_runtime *corio_create(const corio_config *cfg, int *err) {
  corio_config def;
  if (err) *err = CORIO_OK;
  if (cfg == NULL) {
    corio_config_init(&def);
    cfg = &def;
  } else if (cfg->size < offsetof(corio_config, port_queue_max) +
                         sizeof cfg->port_queue_max) {
    if (err) *err = CORIO_EINVAL;
    return NULL;
  }
  lua_State *L = cfg->alloc ? corio__newstate_host(cfg->alloc, cfg->alloc_ud)
                            : corio__newstate();
  if (L == NULL) {
    if (err) *err = CORIO_ENOMEM;
    return NULL;
  }
  corio__setup_state(L);
  lua_pushcfunction(L, create_body);
  lua_pushlightuserdata(L, (void *)(uintptr_t)cfg);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    void *ud;
    lua_Alloc af = lua_getallocf(L, &ud);
    corio__alloc_closing(L);
    lua_close(L);               /* the runtime sentinel tears down */
    corio__freestate_alloc(af, ud);
    if (err) *err = CORIO_ENOMEM;
    return NULL;
  }
  corio_rt *rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  rt->created = 1;
  rt->report = cfg->report;
  rt->report_ud = cfg->report_ud;
  rt->hub->queue_max = cfg->port_queue_max;
  rt->warn_state = cfg->report ? 1 : 0;   /* with a hook: on by default */
  lua_setwarnf(L, corio__warnf, rt);
  return rt;
}


corio_runtime *corio_new(void) {
  return corio_create(NULL, NULL);
}


int corio_free(corio_runtime *rt) {
  if (rt == NULL) return CORIO_EINVAL;
  if (corio__busy(rt)) return CORIO_EBUSY;
  if (!rt->created) return CORIO_EINVAL;      /* lua_close frees it */
  rt->freeing = 1;
  corio__free(rt);
  return CORIO_OK;
}

/* }==================================================================== */


/* {====================================================================
** Access
** ===================================================================== */

corio_runtime *corio_from_state(lua_State *L) {
  return L ? corio__rt_or_null(L) : NULL;
}


lua_State *corio_state(corio_runtime *rt) { return rt ? rt->mainL : NULL; }
uv_loop_t *corio_loop(corio_runtime *rt) { return rt ? rt->loop : NULL; }


/* [name, open] -> (): package.preload[name] = open. */
static int register_body(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, lua_tostring(L, 1));
  return 0;
}


int corio_register_module(corio_runtime *rt, const char *name,
                          lua_CFunction open) {
  if (rt == NULL || name == NULL || open == NULL) return CORIO_EINVAL;
  lua_State *L = rt->mainL;
  if (!lua_checkstack(L, 4)) return CORIO_ENOMEM;
  lua_pushcfunction(L, register_body);
  lua_pushstring(L, name);      /* may raise: below, protected instead */
  lua_pushcfunction(L, open);
  return lua_pcall(L, 2, 0, 0) == LUA_OK ? CORIO_OK
                                         : (lua_pop(L, 1), CORIO_ENOMEM);
}

/* }==================================================================== */


/* {====================================================================
** Spawning and running
** ===================================================================== */

/* [fn, args...] -> task */
static int spawn_body(lua_State *L) {
  corio__spawn(corio__rt(L), L, lua_gettop(L) - 1);
  return 1;
}


int corio_spawn(corio_runtime *rt, int nargs) {
  if (rt == NULL) return CORIO_EINVAL;
  lua_State *L = rt->mainL;
  if (nargs < 0 || lua_gettop(L) < nargs + 1) return CORIO_EINVAL;
  if (!lua_checkstack(L, 2)) {                /* pops them, pushes ENOMEM */
    lua_pop(L, nargs + 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->nomem_ref);
    return CORIO_ENOMEM;
  }
  lua_pushcfunction(L, spawn_body);
  lua_insert(L, -nargs - 2);
  if (lua_pcall(L, nargs + 1, 1, 0) == LUA_OK) return CORIO_OK;
  return corio__is_error(L, -1, "ENOMEM") ? CORIO_ENOMEM : CORIO_EINVAL;
}


/* Loop thread, from uv callbacks: corio_stop's request arrived. */
void corio__stop_now(corio_rt *rt) {
  rt->stopped = 1;
  uv_stop(rt->loop);
}


int corio_loop_run(corio_runtime *rt, corio_run_mode mode) {
  if (rt == NULL || mode < CORIO_RUN_DEFAULT || mode > CORIO_RUN_NOWAIT)
    return CORIO_EINVAL;
  if (corio__busy(rt)) return CORIO_EBUSY;
  static const uv_run_mode modes[] = {UV_RUN_DEFAULT, UV_RUN_ONCE,
                                      UV_RUN_NOWAIT};
  rt->host_run = 1;
  rt->stopped = 0;
  /* Ready tasks keep the idle handle active, so the loop is alive for
  ** them; uv_run then polls without blocking. */
  int alive = uv_run(rt->loop, modes[mode]);
  corio__flush_reports(rt);
  rt->host_run = 0;
  if (rt->stopped) {
    rt->stopped = 0;
    return 1;
  }
  return alive || rt->ready.head || rt->deferred.head ? 1 : 0;
}


int corio_backend_fd(corio_runtime *rt) {
  return rt ? uv_backend_fd(rt->loop) : -1;
}


int corio_backend_timeout(corio_runtime *rt) {
  if (rt == NULL) return -1;
  if (rt->ready.head || rt->deferred.head) return 0;
  /* libuv answers 0 for a loop with nothing active; a host would spin. */
  if (!uv_loop_alive(rt->loop)) return -1;
  return uv_backend_timeout(rt->loop);
}


/* Runs turns until f is done, corio_stop was called, or nothing is left
** that could settle it (no handle, request or ready task). */
static void until_done(corio_rt *rt, corio_fut *f) {
  int stuck = 0;
  while (f->state == FUT_PENDING && !rt->stopped) {
    uv_run(rt->loop, UV_RUN_ONCE);
    if (uv_loop_alive(rt->loop) || rt->ready.head || rt->deferred.head)
      stuck = 0;
    else if (++stuck > 2)
      return;
  }
}


int corio_run_until(corio_runtime *rt, int idx) {
  if (rt == NULL) return CORIO_EINVAL;
  lua_State *L = rt->mainL;
  if (!lua_checkstack(L, LUA_MINSTACK)) return CORIO_ENOMEM;
  if (corio__busy(rt)) {
    lua_pushliteral(L, "corio_run_until: called from inside corio");
    return CORIO_EBUSY;
  }
  idx = lua_absindex(L, idx);
  corio_fut *f = corio__to_fut(rt, L, idx);
  if (f == NULL) {
    lua_pushliteral(L, "corio_run_until: not a Task or Future");
    return CORIO_EINVAL;
  }
  lua_pushvalue(L, idx);                      /* kept alive meanwhile */
  int fi = lua_gettop(L);
  rt->host_run = 1;
  rt->stopped = 0;
  rt->loop_running = LOOP_TARGET;
  until_done(rt, f);
  rt->loop_running = 0;
  corio__flush_reports(rt);
  rt->host_run = 0;
  int stopped = rt->stopped;
  rt->stopped = 0;
  if (f->state == FUT_PENDING) {
    lua_pop(L, 1);
    corio__push_error(L, "INVALID_STATE", "run_until", stopped
                      ? "stopped before the task finished"
                      : "deadlock: nothing left that could finish it");
    return CORIO_ESTATE;
  }
  f->observed = 1;
  if (f->state == FUT_OK) {
    int n = f->nres;
    lua_checkstack(L, n + 2);
    lua_getiuservalue(L, fi, UV_RES);
    if (n == 1) {
      /* the value itself */
    } else if (n == 0) {
      lua_pop(L, 1);
    } else {
      int t = lua_gettop(L);
      for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i);
      lua_remove(L, t);
    }
    lua_remove(L, fi);
    return n;
  }
  lua_getiuservalue(L, fi, UV_RES);           /* the error */
  lua_remove(L, fi);
  return CORIO_ERROR;
}

/* }==================================================================== */
