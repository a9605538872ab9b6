/*
** engine.c -- the job engine: runs one encoded job in a worker lua_State.
**
** Shared by worker threads (threadpool.c) and worker processes
** (procpool.c).  xeng_run decodes the request into the worker's state,
** loads the function from its bytecode (cached per state: the same
** function sent again is not loaded again), calls it under a message
** handler that keeps the traceback, and encodes the reply.  Everything
** runs under one protected call, so even running out of memory in the
** worker gives a reply instead of a panic.
**
** Interrupts: the signal handler (threadpool.c) calls xeng_on_signal on
** the worker's own thread; it arms a count hook that raises at every
** instruction until the job has unwound, even if the job catches the
** error.  Hooks are per lua_State, so the worker's coroutine.resume is
** wrapped to keep the coroutines being resumed where the handler finds
** them.  After an interrupt the state is closed and the next job gets a
** fresh one, so no job sees what a killed one left behind.
*/
#include <stdatomic.h>  /* flags shared with the loop thread */
#include <string.h>     /* memcmp */

#include <lualib.h>     /* luaL_openlibs */

#include "executor.h"

#define NOMEM "not enough memory"

/* Registry keys of a worker state. */
#define JOBCACHE_KEY "corio.executor.jobs"      /* bytecode -> fn */
#define TB_KEY       "corio.executor.traceback" /* the last traceback */
#define JOBCACHE_MAX 64


/* {====================================================================
** The job engine
** ===================================================================== */

_Thread_local xengine *xeng_current
  __attribute__((tls_model("initial-exec")));


/* Raises at every hook call until the job has unwound: a job that catches
** the error with pcall in a loop is stopped again at once. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  luaL_error(L, "job interrupted");
}


static void arm(lua_State *L) {
  lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT,
              1);
}


/* Hooks are per lua_State: the job's main thread and every coroutine it
** is resuming.  (A coroutine made after this inherits the hook.) */
void xeng_on_signal(xengine *e) {
  if (e->L && atomic_load(&e->running) && atomic_load(&e->interrupt)) {
    e->hooked = 1;
    arm(e->L);
    for (int i = 0; i < e->ncos; i++) arm(e->cos[i]);
  }
}


/* coroutine.resume in a worker state: keeps the coroutine on the engine's
** list while it runs, so an interrupt reaches it. */
static int co_resume(lua_State *L) {
  xengine *e = xeng_current;
  lua_State *co = lua_tothread(L, 1);
  int listed = 0;
  if (e && co && e->ncos < XMAX_COS) {
    e->cos[e->ncos] = co;
    atomic_signal_fence(memory_order_seq_cst);  /* entry before count */
    e->ncos++;
    listed = 1;
    if (e->hooked) arm(co);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (listed) e->ncos--;
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}


/* coroutine.wrap on top of it, raising errors as the original does. */
static const char wrap_src[] =
  "local create, resume, close = ...\n"
  "local function ret(co, ok, ...)\n"
  "  if ok then return ... end\n"
  "  close(co)\n"
  "  local err = ...\n"
  "  if type(err) == 'string' then error(err, 2) end\n"
  "  error(err, 0)\n"
  "end\n"
  "return function(f)\n"
  "  local co = create(f)\n"
  "  return function(...) return ret(co, resume(co, ...)) end\n"
  "end\n";

static void wrap_coroutines(lua_State *L) {
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, co_resume, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "resume");              /* co, resume */
  if (luaL_loadbuffer(L, wrap_src, sizeof wrap_src - 1, "=coroutine.wrap")
      != LUA_OK)
    lua_error(L);
  lua_getfield(L, -3, "create");
  lua_pushvalue(L, -3);
  lua_getfield(L, -5, "close");
  lua_call(L, 3, 1);
  lua_setfield(L, -3, "wrap");
  lua_pop(L, 2);
}


/* Message handler: keeps the traceback aside, the error value unchanged. */
static int job_msgh(lua_State *L) {
  static const char tail[] = "\n\t[C]: in ?";   /* the engine's own frame */
  size_t n, k = sizeof tail - 1;
  luaL_traceback(L, L, NULL, 1);
  const char *tb = lua_tolstring(L, -1, &n);
  if (n > k && memcmp(tb + n - k, tail, k) == 0) {
    lua_pushlstring(L, tb, n - k);
    lua_replace(L, -2);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
  lua_settop(L, 1);
  return 1;
}


typedef struct runctx {
  xengine *e;
  const char *in;
  size_t len;
  xbuf *out;
} runctx;


/* Encodes the values at [first, top] as the reply; a value that cannot be
** copied turns the reply into an error. */
static void reply_values(lua_State *L, xbuf *out, int status, int first) {
  int n = lua_gettop(L) - first + 1;
  xenc e;
  out->len = 0;
  xenc_init(&e, L, out);
  if (xenc_header(&e, status, n)) luaL_error(L, NOMEM);
  for (int i = 0; i < n; i++) {
    const char *err = xenc_value(&e, first + i);
    if (err) {
      xenc_finish(&e);
      if (status == REP_ERROR && i == 0) {    /* an uncopyable error value */
        luaL_tolstring(L, first, NULL);
        lua_replace(L, first);
        reply_values(L, out, status, first);
        return;
      }
      lua_settop(L, 0);
      lua_pushfstring(L, "bad result #%d from job (%s)", i + 1, err);
      lua_pushliteral(L, "");
      reply_values(L, out, REP_ERROR, 1);
      return;
    }
  }
  xenc_finish(&e);
}


/* Pushes the job's function from its bytecode at idx, loading it only
** the first time (the cache is emptied when it holds JOBCACHE_MAX). */
static void load_job(lua_State *L, xengine *e, int idx) {
  lua_getfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TFUNCTION) {   /* cache, fn */
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  size_t n;
  const char *bc = lua_tolstring(L, idx, &n);
  if (bc == NULL || luaL_loadbufferx(L, bc, n, "=job", "b") != LUA_OK)
    luaL_error(L, "cannot load the job's function: %s",
               bc ? lua_tostring(L, -1) : "no bytecode");
  if (++e->ncache > JOBCACHE_MAX) {           /* cache, fn */
    lua_newtable(L);
    lua_replace(L, -3);
    lua_pushvalue(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
    e->ncache = 1;
  }
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);                          /* cache[bytecode] = fn */
  lua_remove(L, -2);
}


static int run_protected(lua_State *L) {
  runctx *c = lua_touserdata(L, 1);
  xengine *e = c->e;
  int kind, flags, n;
  lua_settop(L, 0);
  const char *p = xdec_header(c->in, c->len, &kind, &flags, &n);
  if (p == NULL || kind != MSG_JOB || n < 1)
    return luaL_error(L, "corrupt executor message");
  lua_pushcfunction(L, job_msgh);             /* 1: msgh */
  xdec_values(L, p, c->in + c->len, flags, n);  /* 2: bytecode, args */
  load_job(L, e, 2);
  lua_replace(L, 2);                          /* msgh, fn, args */
  int st = LUA_OK;
  /* running first, then the flag: an interrupt whose signal lands between
  ** the two still finds running set and arms the hook (the pcall then
  ** raises at once).  The other order lost it: the flag read clear, the
  ** handler saw running clear, and a job that never ends ran on. */
  atomic_store(&e->running, 1);
  if (!atomic_load(&e->interrupt)) st = lua_pcall(L, n - 1, LUA_MULTRET, 1);
  atomic_store(&e->running, 0);
  if (atomic_load(&e->interrupt) || e->hooked) {
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, 0);
    c->out->len = 0;
    xenc enc;
    xenc_init(&enc, L, c->out);
    if (xenc_header(&enc, REP_INTERRUPTED, 0)) return luaL_error(L, NOMEM);
    return 0;
  }
  if (st == LUA_OK) {
    reply_values(L, c->out, REP_OK, 2);
  } else {                                    /* msgh, err */
    lua_getfield(L, LUA_REGISTRYINDEX, TB_KEY);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    }
    reply_values(L, c->out, REP_ERROR, 2);
  }
  return 0;
}


static int open_state(lua_State *L) {
  luaL_openlibs(L);
  wrap_coroutines(L);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
  return 0;
}


static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  lua_pushcfunction(L, open_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return NULL;
  }
  return L;
}


void xeng_close(xengine *e) {
  if (e->L) {
    lua_sethook(e->L, NULL, 0, 0);
    lua_close(e->L);
    e->L = NULL;
  }
}


int xeng_run(xengine *e, const char *in, size_t len, xbuf *out) {
  runctx c;
  int ok = 0;
  if (e->L == NULL) {
    if ((e->L = new_state()) == NULL) return -1;
    e->ncache = 0;
  }
  lua_State *L = e->L;
  c.e = e;
  c.in = in;
  c.len = len;
  c.out = out;
  e->hooked = 0;
  e->ncos = 0;
  lua_settop(L, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {      /* out of memory, corrupt */
    lua_sethook(L, NULL, 0, 0);
    lua_pushliteral(L, "executor worker: ");
    luaL_tolstring(L, -2, NULL);              /* err, prefix, msg */
    lua_concat(L, 2);
    lua_pushliteral(L, "");                   /* err, msg, traceback */
    out->len = 0;
    xenc enc;
    xenc_init(&enc, L, out);
    if (xenc_header(&enc, REP_ERROR, 2) || xenc_value(&enc, -2) ||
        xenc_value(&enc, -1))
      ok = -1;
    xenc_finish(&enc);
  }
  if (e->hooked) {                            /* recycle: a fresh state */
    xeng_close(e);
  } else {
    lua_settop(L, 0);
    /* An idle worker does not allocate, so its GC would not run: give
    ** back what a big job left (a 10 MB string) now. */
    if (lua_gc(L, LUA_GCCOUNT, 0) > 8 * 1024) lua_gc(L, LUA_GCCOLLECT, 0);
  }
  return ok;
}

/* }==================================================================== */
