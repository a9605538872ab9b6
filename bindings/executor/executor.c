/*
** executor.c -- corio.executor: run Lua functions on worker threads
** (threadpool.c) or worker processes (procpool.c) without blocking the
** loop.
**
**   corio.to_thread(fn, ...)        the default thread pool
**   executor.thread_pool(n)         -> Executor
**   executor.process_pool(n, opts)  -> Executor
**   ex:run(fn, ...), ex:map(fn, list), ex:close()
**
** A call (run or map) encodes its function and arguments in the caller
** (marshal.c), so a bad argument is raised before anything runs, turns
** them into jobs, hands them to the pool and suspends the task.  Finished
** jobs come back here on the loop thread (xcall_job_done), which decodes
** the reply and wakes the task.
**
** Cancellation: the task's undo hook finds its call (a registry table
** maps task -> call) and has the pool drop queued jobs and interrupt
** running ones.  A call is freed once no task waits on it and none of its
** jobs is outstanding; an interrupted job still comes back, and is then
** just freed.
**
** Lifetime: an Executor is reachable while a task awaits it (the
** suspended run() keeps it on the task's stack).  close() refuses new
** jobs and lets submitted ones finish; __gc (the executor collected, or
** the state closing) drops queued jobs, interrupts running ones and joins
** the workers.  The default pool lives in the registry until the state
** closes, which is how the runtime's teardown reaches it: no hook in the
** core is needed.
*/
#include <stdlib.h>   /* calloc, free */
#include <string.h>   /* memset */

#include "executor.h"

#define EXECUTOR_MT "corio.Executor"
#define CALLS_KEY   "corio.executor.calls"    /* task -> call (undo) */
#define DEFAULT_KEY "corio.executor.default"  /* the to_thread pool */

enum { X_THREAD = 1, X_PROCESS = 2 };


/* {====================================================================
** Calls: one run() or map() waiting for its jobs
** ===================================================================== */

/* Every executor's pool is also on the runtime's live list, owned by a
** registry sentinel whose __gc tears down what is left when the state
** closes: Lua skips a finalizer that finds no memory for its call, and
** the pool's threads would then never be joined. */
#define LIVE_KEY "corio.executor.live"

typedef struct xlive {
  struct xlive *next, *prev;
  struct xlist *list;
  xtpool *tp;
  xproc *pp;
} xlive;

typedef struct xlist { xlive *head; } xlist;

typedef struct xexec {
  int kind;                    /* X_THREAD or X_PROCESS */
  int closed;                  /* close() was called */
  xtpool *tp;
  xproc *pp;
  xlive *live;                 /* its entry on the live list */
} xexec;


static void live_unlink(xlive *n) {
  if (n->prev) n->prev->next = n->next;
  else n->list->head = n->next;
  if (n->next) n->next->prev = n->prev;
  free(n);
}


/* __gc of the live list: the pools whose executor's __gc never ran. */
static int live_gc(lua_State *L) {
  xlist *l = lua_touserdata(L, 1);
  while (l->head) {
    xlive *n = l->head;
    if (n->tp) xtpool_teardown(n->tp);
    if (n->pp) xproc_teardown(n->pp);
    n->tp = NULL;
    n->pp = NULL;
    live_unlink(n);
  }
  return 0;
}

struct xcall {
  corio_task *task;            /* the waiting task, NULL once it is not */
  xhold *hold;
  int kind;                    /* X_THREAD or X_PROCESS */
  void *impl;                  /* xtpool or xproc */
  int map;                     /* a map(): results go in a table */
  int results;                 /* map: anchor slot of the result list */
  int njobs, pending;          /* jobs, and those not yet freed */
  int left;                    /* map: results still to come */
  xjob **jobs;                 /* njobs entries; NULL once freed */
};


void xjob_free(xjob *j) {
  xbuf_free(&j->msg);
  xbuf_free(&j->sent);
  free(j);
}


static void call_free(xcall *c) {
  free(c->jobs);
  free(c);
}


/* A job leaves its call; frees the call when nothing needs it. */
void xjob_forget(xjob *j) {
  xcall *c = j->call;
  c->jobs[j->index] = NULL;
  c->pending--;
  xjob_free(j);
  if (c->pending == 0 && c->task == NULL) call_free(c);
}


static void calls_set(lua_State *L, corio_task *t, xcall *c) {
  lua_getfield(L, LUA_REGISTRYINDEX, CALLS_KEY);
  if (c) lua_pushlightuserdata(L, c);
  else lua_pushnil(L);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
}


/* The task no longer waits: forget it and stop its jobs.  The caller
** frees the call if call->pending is 0. */
static void call_release(corio_rt *rt, xcall *c) {
  lua_State *L = rt->L;
  calls_set(L, c->task, NULL);
  c->task = NULL;
  xhold_add(c->hold, -1);
  if (c->results) {
    corio__unanchor(rt, L, c->results);
    c->results = 0;
  }
  for (int i = 0; i < c->njobs; i++) {
    xjob *j = c->jobs[i];
    if (j == NULL) continue;
    if (c->kind == X_THREAD) {
      if (xtpool_cancel(c->impl, j)) {
        c->jobs[i] = NULL;
        c->pending--;
        xjob_free(j);
      }
    } else {
      xproc_cancel(c->impl, j);               /* may deliver it now */
    }
  }
}


/* Undo hook: the waiting task was cancelled. */
static void call_undo(corio_rt *rt, corio_task *t) {
  lua_State *L = rt->L;
  lua_getfield(L, LUA_REGISTRYINDEX, CALLS_KEY);
  xcall *c = lua_rawgetp(L, -1, t) == LUA_TLIGHTUSERDATA
               ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 2);
  if (c == NULL) return;
  c->pending++;                               /* no free inside release */
  call_release(rt, c);
  if (--c->pending == 0) call_free(c);
}


/* Pushes the outcome of a finished job: its values, or raises its error.
** Runs under lua_pcall: arg 1 is the job, arg 2 true for "first value
** only" (map). */
static int push_reply(lua_State *L) {
  xjob *j = lua_touserdata(L, 1);
  int first_only = lua_toboolean(L, 2);
  int kind, flags, n;
  lua_settop(L, 0);
  if (j->status == J_DIED) {
    corio__push_error(L, XDIED_CODE, "run", j->died);
    return lua_error(L);
  }
  const char *p = xdec_header(j->msg.p, j->msg.len, &kind, &flags, &n);
  if (p == NULL) {
    corio__push_error(L, "ENOMEM", "run",
                      "the worker could not build a reply (out of memory)");
    return lua_error(L);
  }
  if (kind == REP_INTERRUPTED) {
    corio__push_error(L, "CANCELLED", "run", "the job was interrupted");
    return lua_error(L);
  }
  xdec_values(L, p, j->msg.p + j->msg.len, flags, n);
  if (kind == REP_ERROR) {                    /* err, traceback */
    lua_settop(L, 2);
    size_t tl = 0;
    const char *tb = lua_tolstring(L, 2, &tl);
    if (lua_type(L, 1) == LUA_TSTRING && tl > 0) {
      lua_pushfstring(L, "%s\nworker %s", lua_tostring(L, 1), tb);
      lua_replace(L, 1);
    } else if (lua_type(L, 1) == LUA_TTABLE && tl > 0) {
      lua_pushliteral(L, "traceback");
      if (lua_rawget(L, 1) == LUA_TNIL) {
        lua_pushvalue(L, 2);
        lua_setfield(L, 1, "traceback");
      }
    }
    lua_settop(L, 1);
    return lua_error(L);
  }
  if (first_only) lua_settop(L, 1);
  return lua_gettop(L);
}


/* [value, results slot, index] -> (): results[index] = value, protected
** (the table may have to grow). */
static int store_result(lua_State *L) {
  corio_rt *rt = lua_touserdata(L, 2);
  xcall *c = lua_touserdata(L, 3);
  lua_Integer idx = lua_tointeger(L, 4);
  corio__push_live(rt, L, c->results);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, idx);
  return 0;
}


/* A job's completion, on the loop thread outside any pcall: the reply is
** decoded under lua_pcall (its error is the job's outcome) and a map's
** result stored under another; out of memory before either, the waiting
** task raises ENOMEM. */
void xcall_job_done(corio_rt *rt, xjob *j) {
  xcall *c = j->call;
  lua_State *L = rt->L;
  if (c->task == NULL) {                      /* nobody waits any more */
    xjob_forget(j);
    return;
  }
  c->pending++;                               /* keep c while we work */
  int base = lua_gettop(L);
  int ok = 0, nomem = !lua_checkstack(L, 6);
  if (!nomem) {
    lua_pushcfunction(L, push_reply);
    lua_pushlightuserdata(L, j);
    lua_pushboolean(L, c->map);
    ok = lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK;
  }
  int idx = j->index;
  xjob_forget(j);
  corio_task *t = c->task;
  if (!nomem && c->map && ok) {               /* value */
    lua_pushcfunction(L, store_result);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, rt);
    lua_pushlightuserdata(L, c);
    lua_pushinteger(L, idx + 1);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) nomem = 1;
    lua_settop(L, base);
    if (!nomem && --c->left == 0) {           /* all in: wake with them */
      corio__push_live(rt, L, c->results);   /* before the release */
      call_release(rt, c);
      corio__wake(rt, t, L, 1, WAKE_VALUES);
    }
  } else if (!nomem) {                        /* values or the error */
    int n = lua_gettop(L) - base;
    call_release(rt, c);                      /* stops the other jobs */
    corio__wake(rt, t, L, n, ok ? WAKE_VALUES : WAKE_RAISE);
  }
  if (nomem) {
    lua_settop(L, base);
    call_release(rt, c);
    corio__wake_nomem(rt, t);
  }
  lua_settop(L, base);
  if (--c->pending == 0 && c->task == NULL) call_free(c);
}

/* }==================================================================== */


/* {====================================================================
** Submitting a call
** ===================================================================== */

/* Builds a request for the function whose bytecode is at bc, with n
** arguments starting at a, into b.  On a value that cannot be copied it
** frees b and raises bad argument #(argn + i), or #argn with `what` (map
** items). */
static void build_request(lua_State *L, xbuf *b, int bc, int a, int n,
                          int argn, lua_Integer item) {
  xenc e;
  int top = lua_gettop(L);
  const char *err = NULL;
  int bad = 0;
  xenc_init(&e, L, b);
  if (xenc_header(&e, MSG_JOB, n + 1) || xenc_value(&e, bc)) {
    err = "not enough memory";
  } else {
    for (int i = 0; i < n && !err; i++) {
      err = xenc_value(&e, a + i);
      bad = i;
    }
  }
  if (err == NULL) {
    xenc_finish(&e);
    return;
  }
  lua_settop(L, top);
  xbuf_free(b);
  if (item > 0) {
    lua_pushfstring(L, "item %I: %s", (LUAI_UACINT)item, err);
    corio__argerror(L, argn, lua_tostring(L, -1));
  }
  corio__argerror(L, argn + bad, err);
}


static xexec *check_exec(lua_State *L) {
  xexec *x = luaL_checkudata(L, 1, EXECUTOR_MT);
  if (x->closed)
    corio__error(L, "CLOSED", "run", "the executor is closed");
  return x;
}


/* Pushes the bytecode of the function at fidx, or raises bad argument. */
static void push_bytecode(lua_State *L, int fidx) {
  luaL_checktype(L, fidx, LUA_TFUNCTION);
  const char *err = xenc_function(L, fidx);
  if (err) corio__argerror(L, fidx, err);
}


static xcall *call_new(xexec *x, int njobs) {
  xcall *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->jobs = calloc((size_t)(njobs ? njobs : 1), sizeof *c->jobs);
  if (c->jobs == NULL) {
    free(c);
    return NULL;
  }
  c->kind = x->kind;
  c->impl = x->kind == X_THREAD ? (void *)x->tp : (void *)x->pp;
  c->hold = x->kind == X_THREAD ? (xhold *)x->tp : (xhold *)x->pp;
  c->njobs = njobs;
  return c;
}


static xjob *job_new(xcall *c, int index, xbuf *msg) {
  xjob *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->call = c;
  j->index = index;
  j->msg = *msg;
  c->jobs[index] = j;
  c->pending++;
  return j;
}


/* [t, c] -> (): calls_set, under lua_pcall (the table may grow). */
static int calls_set_body(lua_State *L) {
  calls_set(L, lua_touserdata(L, 1), lua_touserdata(L, 2));
  return 0;
}


/* Hands every job of c to the executor and suspends the task.  Out of
** memory before anything was submitted, c and its jobs are freed. */
static int call_start(lua_State *L, corio_rt *rt, corio_task *t, xcall *c) {
  int st = LUA_ERRMEM;
  if (lua_checkstack(L, 3)) {
    lua_pushcfunction(L, calls_set_body);
    lua_pushlightuserdata(L, t);
    lua_pushlightuserdata(L, c);
    st = lua_pcall(L, 2, 0, 0);
    if (st != LUA_OK) lua_pop(L, 1);
  }
  if (st != LUA_OK) {
    for (int i = 0; i < c->njobs; i++)
      if (c->jobs[i]) xjob_free(c->jobs[i]);
    if (c->results) corio__unanchor(rt, L, c->results);
    call_free(c);
    return luaL_error(L, "not enough memory");
  }
  c->task = t;
  xhold_add(c->hold, 1);
  for (int i = 0; i < c->njobs; i++) {
    if (c->kind == X_THREAD) {
      int rc = xtpool_submit(c->impl, c->jobs[i]);
      if (rc != 0) {                          /* no thread at all */
        xjob *j = c->jobs[i];
        c->jobs[i] = NULL;
        c->pending--;
        xjob_free(j);
        c->pending++;
        call_release(rt, c);
        if (--c->pending == 0) call_free(c);
        return corio__uverror(L, rc, "run", NULL);
      }
    } else {
      xproc_submit(c->impl, c->jobs[i]);
    }
  }
  return corio__suspend(L, rt, t, call_undo);
}


/* run(fn, ...) with the function at fidx. */
static int exec_run(lua_State *L, xexec *x, int fidx) {
  corio_rt *rt = RT_UPVALUE(L);
  int nargs = lua_gettop(L) - fidx;
  push_bytecode(L, fidx);
  corio_task *t = corio__check_await(L, rt, "run");
  xbuf b = {NULL, 0, 0};
  build_request(L, &b, lua_gettop(L), fidx + 1, nargs, fidx + 1, 0);
  xcall *c = call_new(x, 1);
  if (c == NULL || job_new(c, 0, &b) == NULL) {
    if (c) call_free(c);
    xbuf_free(&b);
    return luaL_error(L, "not enough memory");
  }
  lua_settop(L, fidx - 1);                    /* keeps the executor alive */
  return call_start(L, rt, t, c);
}


static int l_run(lua_State *L) {
  return exec_run(L, check_exec(L), 2);
}


/* map(fn, list) -> list of the first result of fn(item), in order. */
static int l_map(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  xexec *x = check_exec(L);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  push_bytecode(L, 2);                        /* 4: bytecode */
  corio_task *t = corio__check_await(L, rt, "map");
  lua_Integer n = luaL_len(L, 3);
  luaL_argcheck(L, n < 1000000000, 3, "too many items");
  lua_createtable(L, (int)n, 0);              /* 5: results */
  if (n == 0) return 1;
  int results = corio__anchor(rt, L, 5);      /* raises before c exists */
  xcall *c = call_new(x, (int)n);
  if (c == NULL) {
    corio__unanchor(rt, L, results);
    return luaL_error(L, "not enough memory");
  }
  c->results = results;
  for (lua_Integer i = 1; i <= n; i++) {
    xbuf b = {NULL, 0, 0};
    lua_geti(L, 3, i);
    int ok = lua_checkstack(L, 8);
    if (ok) {
      /* build_request raises after freeing b; free the rest first */
      xenc e;
      int top = lua_gettop(L);
      const char *err = NULL;
      xenc_init(&e, L, &b);
      if (xenc_header(&e, MSG_JOB, 2) || xenc_value(&e, 4))
        err = "not enough memory";
      else
        err = xenc_value(&e, top);
      if (err == NULL) xenc_finish(&e);
      lua_settop(L, top);
      if (err || job_new(c, (int)i - 1, &b) == NULL) {
        xbuf_free(&b);
        for (int k = 0; k < c->njobs; k++)
          if (c->jobs[k]) xjob_free(c->jobs[k]);
        corio__unanchor(rt, L, c->results);
        call_free(c);
        if (err == NULL) return luaL_error(L, "not enough memory");
        lua_pushfstring(L, "item %I: %s", (LUAI_UACINT)i, err);
        return corio__argerror(L, 3, lua_tostring(L, -1));
      }
    }
    lua_pop(L, 1);
  }
  c->map = 1;
  c->left = c->njobs;
  lua_settop(L, 1);                           /* keeps the executor alive */
  return call_start(L, rt, t, c);
}

/* }==================================================================== */


/* {====================================================================
** Executors
** ===================================================================== */

static int check_size(lua_State *L, int idx) {
  lua_Integer n = luaL_optinteger(L, idx, (lua_Integer)uv_available_parallelism());
  luaL_argcheck(L, n >= 1 && n <= 1024, idx, "size must be 1..1024");
  return (int)n;
}


static xexec *new_exec(lua_State *L, int kind) {
  xexec *x = lua_newuserdatauv(L, sizeof *x, 0);
  memset(x, 0, sizeof *x);
  x->kind = kind;
  x->closed = 1;                              /* born closed */
  luaL_setmetatable(L, EXECUTOR_MT);
  lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
  xlist *l = lua_touserdata(L, -1);
  lua_pop(L, 1);
  xlive *n = calloc(1, sizeof *n);
  if (l == NULL || n == NULL) {
    free(n);
    luaL_error(L, "not enough memory");
  }
  n->list = l;
  n->next = l->head;
  if (l->head) l->head->prev = n;
  l->head = n;
  x->live = n;
  return x;
}


static void push_thread_pool(lua_State *L, corio_rt *rt, int n) {
  xexec *x = new_exec(L, X_THREAD);
  x->tp = x->live->tp = xtpool_new(rt, n);
  if (x->tp == NULL) luaL_error(L, "not enough memory");
  x->closed = 0;
}


static int l_thread_pool(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  push_thread_pool(L, rt, check_size(L, 1));
  return 1;
}


static int l_process_pool(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int n = check_size(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  xexec *x = new_exec(L, X_PROCESS);
  x->pp = x->live->pp = xproc_new(rt, n, L, lua_isnoneornil(L, 2) ? 0 : 2);
  x->closed = 0;
  return 1;
}


/* to_thread(fn, ...): run on the default pool, made on first use. */
static int l_to_thread(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  xexec *x;
  if (lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    int n = (int)uv_available_parallelism() + 4;   /* as Python's default: */
    push_thread_pool(L, rt, n > 32 ? 32 : n);      /* blocking work too */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  }
  x = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return exec_run(L, x, 1);
}


/* close(): no new jobs; those already submitted still run.  Idempotent. */
static int l_close(lua_State *L) {
  xexec *x = luaL_checkudata(L, 1, EXECUTOR_MT);
  if (x->closed) return 0;
  x->closed = 1;
  if (x->kind == X_THREAD) xtpool_close(x->tp);
  else if (x->pp) xproc_close(x->pp);
  return 0;
}


/* __gc: the executor is unreachable (no task waits on it) or the state is
** closing: stop everything and join. */
static int l_gc(lua_State *L) {
  xexec *x = luaL_checkudata(L, 1, EXECUTOR_MT);
  x->closed = 1;
  if (x->tp) xtpool_teardown(x->tp);
  if (x->pp) xproc_teardown(x->pp);
  x->tp = NULL;
  x->pp = NULL;
  if (x->live) live_unlink(x->live);
  x->live = NULL;
  return 0;
}


static int l_tostring(lua_State *L) {
  xexec *x = luaL_checkudata(L, 1, EXECUTOR_MT);
  lua_pushfstring(L, "corio.Executor (%s pool%s): %p",
                  x->kind == X_THREAD ? "thread" : "process",
                  x->closed ? ", closed" : "", (void *)x);
  return 1;
}


static int l_worker(lua_State *L) {
  return xproc_worker_main(L);
}


/* _fs_probe(path): a uv_fs_stat on libuv's own pool, awaited; returns
** the size.  The tests use it to show that busy executor threads do not
** hold up file I/O (corio.fs does the same, where it is built in). */
typedef struct fsprobe {
  uv_fs_t req;
  corio_rt *rt;
  corio_task *t;               /* NULL once the task stopped waiting */
} fsprobe;

static fsprobe *probe_pending;

static int push_probe_error(lua_State *L) {
  uv_fs_t *req = lua_touserdata(L, 1);
  corio__push_uverror(L, (int)req->result, "stat", NULL);
  return 1;
}

static int push_probe_size(lua_State *L) {
  uv_fs_t *req = lua_touserdata(L, 1);
  lua_pushinteger(L, (lua_Integer)req->statbuf.st_size);
  return 1;
}

static void probe_cb(uv_fs_t *req) {
  fsprobe *p = req->data;
  corio__req_end(p->rt);
  if (p->t) {
    if (probe_pending == p) probe_pending = NULL;
    if (req->result < 0)
      corio__wake_with(p->rt, p->t, push_probe_error, req, WAKE_RAISE);
    else
      corio__wake_with(p->rt, p->t, push_probe_size, req, WAKE_VALUES);
  }
  uv_fs_req_cleanup(req);
  free(p);
}

static void probe_undo(corio_rt *rt, corio_task *t) {
  (void)rt;
  if (probe_pending && probe_pending->t == t) {
    probe_pending->t = NULL;
    probe_pending = NULL;
  }
}

static int l_fs_probe(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = luaL_checkstring(L, 1);
  corio_task *t = corio__check_await(L, rt, "stat");
  luaL_argcheck(L, probe_pending == NULL, 1, "one probe at a time");
  fsprobe *p = calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "not enough memory");
  p->rt = rt;
  p->t = t;
  p->req.data = p;
  int rc = uv_fs_stat(rt->loop, &p->req, path, probe_cb);
  if (rc < 0) {
    free(p);
    return corio__uverror(L, rc, "stat", path);
  }
  probe_pending = p;
  corio__req_start(rt);
  return corio__suspend(L, rt, t, probe_undo);
}

/* }==================================================================== */


int luaopen_corio_executor(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg methods[] = {
    {"run", l_run},
    {"map", l_map},
    {"close", l_close},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"thread_pool", l_thread_pool},
    {"process_pool", l_process_pool},
    {"to_thread", l_to_thread},
    {"_worker", l_worker},
    {"_fs_probe", l_fs_probe},
    {NULL, NULL}
  };
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, CALLS_KEY);
  xlist *live = lua_newuserdatauv(L, sizeof *live, 0);
  live->head = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, live_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
  static const luaL_Reg meta[] = {
    {"__gc", l_gc},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, EXECUTOR_MT, methods, meta, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
