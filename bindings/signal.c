/*
** signal.c -- corio._signal: signal.on(name, fn) -> SignalHandler, and
** the signal names.  signal.wait is built on `on` in scripts/signal.lua.
**
** fn(name) runs as a plain loop callback (like call_soon: it may not
** await) each time the signal arrives; libuv turns the signal into a
** loop event, so fn never runs inside a real signal handler.  A handler
** is a subscription: anchored until close(), not collected when
** forgotten.  It does not keep the loop alive (as in Node), unless made
** with keep_alive (signal.wait uses that: a task waiting for a signal is
** not a deadlock).
**
** When the last handler of SIGPIPE or SIGXFSZ closes, libuv restores
** SIG_DFL; we put back SIG_IGN, so a write to a closed pipe or past
** `ulimit -f` gives EPIPE / EFBIG and never kills corio -- unless the
** runtime was made with CORIO_NO_SIGNALS (its host keeps that choice).
**
** Runtimes on several threads share the process's signals: the count of
** open handlers per signal and the creation order are atomics.
*/
#include <signal.h>   /* SIG*, signal */
#include <stdatomic.h>
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* strcmp, strncmp */

#include "shared.h"    /* the core, and what modules offer each other */
#include "signame.h"

#define SIGNAL_MT "corio.SignalHandler"


/* {====================================================================
** Names
** ===================================================================== */

static const struct { const char *name; int num; } signames[] = {
  {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT},
  {"SIGILL", SIGILL}, {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},
  {"SIGBUS", SIGBUS}, {"SIGFPE", SIGFPE}, {"SIGKILL", SIGKILL},
  {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
  {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},
  {"SIGCHLD", SIGCHLD}, {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},
  {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},
  {"SIGURG", SIGURG}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
  {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
  {"SIGIO", SIGIO}, {"SIGSYS", SIGSYS},
#ifdef SIGPWR
  {"SIGPWR", SIGPWR},
#endif
  {NULL, 0}
};


const char *corio__signame(int signum) {
  for (int i = 0; signames[i].name; i++)
    if (signames[i].num == signum) return signames[i].name;
  return NULL;
}


int corio__to_signum(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, idx);
    return (n > 0 && n < 65) ? (int)n : 0;
  }
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  const char *s = lua_tostring(L, idx);
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (int i = 0; signames[i].name; i++)
    if (strcmp(signames[i].name + 3, s) == 0) return signames[i].num;
  return 0;
}


int corio__check_signum(lua_State *L, int idx) {
  int n = corio__to_signum(L, idx);
  if (n == 0) {
    if (lua_type(L, idx) != LUA_TNUMBER && lua_type(L, idx) != LUA_TSTRING)
      return luaL_typeerror(L, idx, "signal name or number");
    return corio__argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'",
                                                 lua_tostring(L, idx)));
  }
  return n;
}

/* }==================================================================== */


/* {====================================================================
** Handlers
** ===================================================================== */

typedef struct handler {
  uv_signal_t h;
  corio_rt *rt;
  int anchor;                  /* live slot of the box while open */
  int signum;
  int no_signals;              /* its runtime has CORIO_NO_SIGNALS */
  uint32_t seq;                /* creation order */
} handler;

static atomic_uint next_seq;     /* process-wide: runtimes may share it */

typedef struct hbox {
  handler *p;                  /* NULL once closed */
} hbox;

static atomic_int nhandlers[65];  /* open handlers per signal, process-wide */


static void free_cb(uv_handle_t *h) {
  corio__untrack(((handler *)h->data)->rt, h);
  free(h->data);
}


/* libuv calls the watchers of one signal in the order of their addresses,
** so on_signal only collects {seq, fn, name}; flush, queued by the first
** of them, runs after all have been collected and queues the handlers in
** the order they were made. */
static int flush(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "corio.sigpending");
  int t = lua_gettop(L), n = (int)lua_rawlen(L, t);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "corio.sigpending");
  for (int i = 2; i <= n; i++) {              /* insertion sort by seq */
    lua_rawgeti(L, t, i);
    lua_rawgeti(L, -1, 1);
    lua_Integer seq = lua_tointeger(L, -1);
    lua_pop(L, 1);
    int j = i - 1;
    for (; j >= 1; j--) {
      lua_rawgeti(L, t, j);
      lua_rawgeti(L, -1, 1);
      lua_Integer sj = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (sj <= seq) {
        lua_pop(L, 1);
        break;
      }
      lua_rawseti(L, t, j + 1);
    }
    lua_rawseti(L, t, j + 1);
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    lua_rawgeti(L, -1, 2);
    lua_rawgeti(L, -2, 3);
    corio__soon(rt, L, 1);
    lua_pop(L, 1);
  }
  return 0;
}


typedef struct signal_ctx { handler *p; int signum; } signal_ctx;

/* [signal_ctx] -> (): the Lua part of on_signal, run protected (out of
** memory, the delivery is lost and reported: corio__protect). */
static int signal_lua(lua_State *L) {
  signal_ctx *c = lua_touserdata(L, 1);
  handler *p = c->p;
  corio_rt *rt = p->rt;
  const char *name = corio__signame(c->signum);
  luaL_checkstack(L, 6, NULL);
  if (lua_getfield(L, LUA_REGISTRYINDEX, "corio.sigpending") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, flush, 1);
    corio__soon(rt, L, 0);                    /* then the table: a flush */
    lua_pushvalue(L, -1);                     /* is queued for any entry */
    lua_setfield(L, LUA_REGISTRYINDEX, "corio.sigpending");
  }
  lua_createtable(L, 3, 0);                   /* pending, entry */
  lua_pushinteger(L, p->seq);
  lua_rawseti(L, -2, 1);
  corio__push_live(rt, L, p->anchor);         /* box */
  lua_getiuservalue(L, -1, 1);                /* box, fn */
  lua_remove(L, -2);
  lua_rawseti(L, -2, 2);
  if (name) lua_pushstring(L, name);
  else lua_pushinteger(L, c->signum);
  lua_rawseti(L, -2, 3);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}


static void on_signal(uv_signal_t *h, int signum) {
  handler *p = h->data;
  corio_rt *rt = p->rt;
  signal_ctx c = {p, signum};
  if (rt->closing || p->anchor == 0) return;
  /* A lost delivery may have been the only wake of a task (signal.wait):
  ** the run stops, as after corio_stop (and as a process's lost exit). */
  if (corio__protect(rt, signal_lua, &c, NULL, "a signal handler")
      != LUA_OK)
    corio__stop_now(rt);
}


static void hclose(lua_State *L, hbox *b) {
  handler *p = b->p;
  if (p == NULL) return;
  b->p = NULL;
  if (atomic_fetch_sub(&nhandlers[p->signum], 1) == 1 &&
      (p->signum == SIGPIPE || p->signum == SIGXFSZ) &&
      !p->no_signals) {
    uv_signal_stop(&p->h);                    /* libuv sets SIG_DFL */
    signal(p->signum, SIG_IGN);
  }
  corio_rt *rt = corio__rt_or_null(L);
  if (rt == NULL) {                           /* the loop is gone */
    free(p);
    return;
  }
  if (p->anchor) {
    corio__unanchor(rt, L, p->anchor);
    p->anchor = 0;
  }
  if (!uv_is_closing((uv_handle_t *)&p->h))
    uv_close((uv_handle_t *)&p->h, free_cb);
}


/* on(sig, fn [, keep_alive]) -> SignalHandler */
static int l_on(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int signum = corio__check_signum(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int keep = lua_toboolean(L, 3);
  luaL_argcheck(L, signum != SIGKILL && signum != SIGSTOP, 1,
                "SIGKILL and SIGSTOP cannot be caught");
  hbox *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->p = NULL;                                /* born closed */
  luaL_setmetatable(L, SIGNAL_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  handler *p = malloc(sizeof *p);
  if (p == NULL) return luaL_error(L, "not enough memory");
  uv_signal_init(rt->loop, &p->h);
  p->h.data = p;
  p->rt = rt;
  p->no_signals = (rt->flags & CORIO_NO_SIGNALS) != 0;
  corio__track(rt, (uv_handle_t *)&p->h);
  corio__track_site(rt, L, (uv_handle_t *)&p->h, "Signal handler", NULL);
  p->anchor = 0;
  p->signum = signum;
  p->seq = (uint32_t)atomic_fetch_add(&next_seq, 1);
  int st = uv_signal_start(&p->h, on_signal, signum);
  if (st < 0) {
    uv_close((uv_handle_t *)&p->h, free_cb);
    return corio__uverror(L, st, "signal", NULL);
  }
  if (!keep) uv_unref((uv_handle_t *)&p->h);
  atomic_fetch_add(&nhandlers[signum], 1);
  b->p = p;
  p->anchor = corio__anchor(rt, L, -1);
  return 1;
}


static hbox *check_box(lua_State *L) {
  return luaL_checkudata(L, 1, SIGNAL_MT);
}


static int h_close(lua_State *L) {
  hclose(L, check_box(L));
  return 0;
}


static int h_gc(lua_State *L) {
  hclose(L, lua_touserdata(L, 1));
  return 0;
}


static int h_tostring(lua_State *L) {
  hbox *b = check_box(L);
  if (b->p) lua_pushfstring(L, "corio.SignalHandler (%s)",
                            corio__signame(b->p->signum));
  else lua_pushliteral(L, "corio.SignalHandler (closed)");
  return 1;
}


/* signum(name) -> number or nil */
static int l_signum(lua_State *L) {
  int n = corio__to_signum(L, 1);
  if (n) lua_pushinteger(L, n);
  else lua_pushnil(L);
  return 1;
}


/* name(signum) -> "SIGTERM" or nil */
static int l_name(lua_State *L) {
  const char *s = corio__signame((int)luaL_checkinteger(L, 1));
  if (s) lua_pushstring(L, s);
  else lua_pushnil(L);
  return 1;
}

/* }==================================================================== */


int luaopen_corio__signal(lua_State *L);

int luaopen_corio__signal(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", h_close},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"on", l_on},
    {"signum", l_signum},
    {"name", l_name},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg meta[] = {
    {"__gc", h_gc},
    {"__close", h_close},
    {"__tostring", h_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, SIGNAL_MT, methods, meta, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
