/*
** sched.c -- the scheduler: ready queues, the suspend/wake protocol and
** the life of a task's coroutine.
**
** A task suspends only by calling corio__suspend() from a C function on
** its own coroutine, which yields with a continuation (await_k).  Whoever
** completes the wait moves the resume values onto the coroutine's stack and
** queues the task (corio__wake); the queue is run from the loop's check
** phase, never from inside another task, so no resume is ever nested.
**
** Every suspension bumps task->token.  Wake sources that may outlive the
** suspension (a Lua-side waiter list, core.wake) compare tokens and drop a
** stale wake; C sources (timers, future waiter lists) are simply unlinked
** by the undo hook when the task is cancelled, so they cannot fire late.
**
** A task body runs under lua_pcallk inside its coroutine (task_main), so
** errors and cancellation unwind through `pcall` and `<close>` handlers
** that may themselves await.  When the body returns, the coroutine is
** clean (status LUA_OK, empty stack) and goes back to a pool for reuse.
*/
#include <string.h>   /* memset */

#include "internal.h"


/* {====================================================================
** Queues
** ===================================================================== */

static void push_back(corio_queue *q, corio_node *n) {
  n->next = NULL;
  n->queued = 1;
  if (q->tail) q->tail->next = n;
  else q->head = n;
  q->tail = n;
}


void corio__enqueue(corio_rt *rt, corio_node *n) {
  push_back(&rt->ready, n);
  corio__kick(rt);
}


void corio__enqueue_next(corio_rt *rt, corio_node *n) {
  push_back(&rt->deferred, n);
  corio__kick(rt);
}

/* }==================================================================== */


/* {====================================================================
** Suspend and wake
** ===================================================================== */

/* Pushes the CANCELLED error for t, with the message given to cancel(). */
static void push_cancel_error(lua_State *L, corio_rt *rt, corio_task *t) {
  corio__push_task(rt, L, t);                 /* task */
  if (lua_getiuservalue(L, -1, UV_EXTRA) == LUA_TTABLE)
    lua_getfield(L, -1, "cancel_msg");        /* task, extra, msg */
  else
    lua_pushnil(L);
  const char *msg = lua_tostring(L, -1);
  corio__push_error(L, "CANCELLED", "cancel",
                    msg ? msg : "task was cancelled");
  lua_replace(L, -4);
  lua_pop(L, 2);                              /* err */
}


corio_task *corio__check_await(lua_State *L, corio_rt *rt, const char *op) {
  corio_task *t = rt->current;
  if (t == NULL || t->co != L) {
    if (t == NULL)
      corio__error(L, "INVALID_STATE", op,
                   "%s: not inside a task (start one with corio.run or "
                   "corio.spawn)", op);
    corio__error(L, "INVALID_STATE", op,
                 "%s: cannot await inside a coroutine nested in a task", op);
  }
  /* Checked before the caller arms anything: if lua_yieldk failed later,
  ** a timer or queue entry would be left pointing at a task that goes on
  ** running (and may finish), and its wake would resume a dead task. */
  if (!lua_isyieldable(L))
    corio__error(L, "INVALID_STATE", op,
                 "%s: cannot await across a C-call boundary (in a function "
                 "called from C, e.g. by table.sort or string.gsub)", op);
  if (t->flags & TF_CANCEL_REQ) {
    t->flags &= ~TF_CANCEL_REQ;
    push_cancel_error(L, rt, t);
    lua_error(L);
  }
  return t;
}


/* Continuation of every await: delivers what the waker left. */
static int await_k(lua_State *L, int status, lua_KContext ctx) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = rt->current;
  (void)status;
  int kind = t->wake;
  if (t->flags & TF_CANCEL_WAKE) {
    t->flags &= ~(TF_CANCEL_WAKE | TF_CANCEL_REQ);
    kind = WAKE_CANCEL;
  }
  if (kind == WAKE_CANCEL) {
    lua_settop(L, (int)ctx);
    push_cancel_error(L, rt, t);
    return lua_error(L);
  }
  if (kind == WAKE_RAISE) return lua_error(L);
  return lua_gettop(L) - (int)ctx;
}


int corio__suspend(lua_State *L, corio_rt *rt, corio_task *t,
                   corio_undo_fn undo) {
  (void)rt;
  t->state = T_WAITING;
  t->undo = undo;
  t->token++;
  t->wake = WAKE_VALUES;
  t->nwake = 0;
  return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), await_k);
}


void corio__wake(corio_rt *rt, corio_task *t, lua_State *from, int n,
                 int kind) {
  if (n > 0) {
    if (!lua_checkstack(t->co, n + LUA_MINSTACK)) {
      lua_pop(from, n);
      corio__push_error(from, "LIMIT", "await", "too many values to resume");
      n = 1;
      kind = WAKE_RAISE;
    }
    lua_xmove(from, t->co, n);
  }
  t->nwake = n;
  t->wake = (unsigned char)kind;
  t->state = T_READY;
  t->undo = NULL;
  t->awaiting = NULL;
  t->flags &= ~TF_CORE_WAIT;
  if (!t->node.queued) corio__enqueue(rt, &t->node);
}


int corio__throw(corio_rt *rt, corio_task *t, lua_State *from) {
  if (t->state != T_WAITING) {
    lua_pop(from, 1);
    return 0;
  }
  t->token++;
  if (t->undo) t->undo(rt, t);
  corio__wake(rt, t, from, 1, WAKE_RAISE);
  return 1;
}


int corio__task_cancel(corio_rt *rt, corio_task *t, lua_State *L,
                       const char *msg) {
  /* A loop, not recursion: the chain of tasks awaiting tasks may be as
  ** long as the script likes (200,000 overflowed the C stack).  Only the
  ** first task's outcome is returned. */
  for (int first = 1;; first = 0) {
    if (t->state == T_DONE) return !first;
    if (t->flags & TF_CANCEL_WAKE) return 1;  /* already on its way */
    if (t->state == T_READY && t->wake == WAKE_CANCEL) return 1;
    if (msg) {
      corio__push_task(rt, L, t);
      corio__fut_extra(L, lua_gettop(L));
      lua_pushstring(L, msg);
      lua_setfield(L, -2, "cancel_msg");
      lua_pop(L, 2);
    }
    switch (t->state) {
      case T_WAITING:
        if (t->awaiting && t->awaiting->type == TYPE_TASK) {
          /* As in asyncio: cancel the awaited task and raise in this one
          ** only once that one has unwound. */
          t->flags |= TF_CANCEL_WAKE;
          t = container_of(t->awaiting, corio_task, fut);
          continue;
        }
        t->token++;
        if (t->undo) t->undo(rt, t);
        corio__wake(rt, t, L, 0, WAKE_CANCEL);
        return 1;
      default:                     /* new, running or already woken */
        t->flags |= TF_CANCEL_REQ;
        return 1;
    }
  }
}

/* }==================================================================== */


/* {====================================================================
** Coroutines: start, resume, finish
** ===================================================================== */

/* Pushes a clean coroutine: from the pool, or a new one. [-0,+1] */
static lua_State *thread_get(corio_rt *rt, lua_State *L) {
  if (rt->pool_n > 0) {
    lua_State *co = rt->pool[--rt->pool_n];
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->pool_ref);
    lua_rawgeti(L, -1, rt->pool_n + 1);
    lua_pushnil(L);
    lua_rawseti(L, -3, rt->pool_n + 1);
    lua_remove(L, -2);
    return co;
  }
  return lua_newthread(L);
}


/* Returns the coroutine at the top of L to the pool. [-1,+0] */
static void thread_put(corio_rt *rt, lua_State *L, lua_State *co) {
  /* A coroutine with a debug hook (debug.sethook in the task) is not
  ** reused: the hook would run in the next task given that coroutine. */
  if (rt->pool_n < CORIO_THREAD_POOL && lua_status(co) == LUA_OK &&
      lua_gettop(co) == 0 && lua_gethook(co) == NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->pool_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, rt->pool_n + 1);
    rt->pool[rt->pool_n++] = co;
  }
  lua_pop(L, 1);
}


static int task_main_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
  lua_replace(L, 1);                          /* over the handler */
  return lua_gettop(L);                       /* ok, results... */
}


/* Body of every task coroutine: [fn, args...] -> ok, results... */
static int task_main(lua_State *L) {
  lua_pushcfunction(L, corio__msgh);
  lua_insert(L, 1);
  return task_main_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0,
                                   task_main_k), 0);
}


/* Stores n values from the top of L as the results of the task at ti. */
static void store_results(lua_State *L, int ti, corio_task *t, int n) {
  if (n == 1) {
    lua_setiuservalue(L, ti, UV_RES);
  } else if (n > 1) {
    lua_createtable(L, n, 0);
    lua_insert(L, -n - 1);
    int tbl = lua_gettop(L) - n;
    for (int i = n; i >= 1; i--) lua_rawseti(L, tbl, i);
    lua_setiuservalue(L, ti, UV_RES);
  }
  t->fut.nres = n;
}


/* Marks the task done with the outcome left on L's top and wakes its
** waiters.  The coroutine (if any) has already been released. */
static void finish(corio_rt *rt, lua_State *L, int ti, corio_task *t,
                   int ok, int n) {
  corio_fut *f = &t->fut;
  if (ok) {
    store_results(L, ti, t, n);
    f->state = FUT_OK;
  } else {
    f->state = corio__is_error(L, -1, "CANCELLED") ? FUT_CANCELLED
                                                   : FUT_FAILED;
    store_results(L, ti, t, 1);
  }
  lua_pushnil(L);
  lua_setiuservalue(L, ti, UV_FN);
  t->co = NULL;
  t->state = T_DONE;
  t->undo = NULL;
  rt->ntasks--;
  corio__unanchor(rt, L, t->anchor);
  t->anchor = 0;
  corio__fut_complete(rt, L, ti, f);
  if (f->state == FUT_FAILED && !f->observed) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
    lua_pushvalue(L, ti);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  if (t == rt->main_task) uv_stop(rt->loop);
}


/* Moves the spawn function and arguments onto a fresh coroutine. */
static lua_State *start(corio_rt *rt, lua_State *L, int ti, corio_task *t) {
  lua_State *co = thread_get(rt, L);          /* [task, co] */
  lua_checkstack(co, t->nargs + 3);
  lua_checkstack(L, t->nargs + 3);
  lua_pushcfunction(co, task_main);
  lua_getiuservalue(L, ti, UV_FN);
  lua_xmove(L, co, 1);
  if (t->nargs == 1) {
    lua_getiuservalue(L, ti, UV_RES);
    lua_xmove(L, co, 1);
  } else if (t->nargs > 1) {
    lua_getiuservalue(L, ti, UV_RES);
    for (int i = 1; i <= t->nargs; i++) lua_rawgeti(L, ti + 2, i);
    lua_xmove(L, co, t->nargs);
    lua_pop(L, 1);
  }
  lua_setiuservalue(L, ti, UV_FN);            /* anchors co; [task] */
  lua_pushnil(L);
  lua_setiuservalue(L, ti, UV_RES);
  t->co = co;
  return co;
}


void corio__step(corio_rt *rt, corio_task *t) {
  lua_State *L = rt->L;
  int nargs, nres, st;
  switch (t->state) {
    case T_NEW:
      corio__push_task(rt, L, t);
      if (t->flags & TF_CANCEL_REQ) {         /* cancelled before start */
        push_cancel_error(L, rt, t);
        finish(rt, L, lua_gettop(L) - 1, t, 0, 1);
        lua_pop(L, 1);
        return;
      }
      start(rt, L, lua_gettop(L), t);
      lua_pop(L, 1);
      nargs = t->nargs + 1;
      break;
    case T_WAITING:                           /* yield() from deferred */
      t->wake = WAKE_VALUES;
      t->undo = NULL;
      nargs = 0;
      break;
    case T_READY:
      nargs = t->nwake;
      break;
    default:
      return;
  }
  t->state = T_RUNNING;
  t->nwake = 0;
  rt->current = t;
  st = lua_resume(t->co, L, nargs, &nres);
  rt->current = NULL;
  if (st == LUA_YIELD) {
    if (t->state == T_RUNNING) {
      /* A bare coroutine.yield() in a task body: treat it as yield(). */
      lua_pop(t->co, nres);
      t->state = T_WAITING;
      t->token++;
      corio__enqueue_next(rt, &t->node);
    }
    return;
  }
  lua_State *co = t->co;
  corio__push_task(rt, L, t);
  int ti = lua_gettop(L);
  lua_checkstack(L, nres + 4);
  if (st == LUA_OK) {
    int ok = lua_toboolean(co, -nres);
    lua_xmove(co, L, nres - 1);
    lua_settop(co, 0);
    lua_getiuservalue(L, ti, UV_FN);          /* the coroutine */
    thread_put(rt, L, co);
    finish(rt, L, ti, t, ok, ok ? nres - 1 : 1);
  } else {
    /* An error outside the body's pcall (out of memory, C stack
    ** overflow): the coroutine is dead and is not reused. */
    lua_xmove(co, L, 1);
    corio__fut_extra(L, ti);
    corio__tostring(L, -2);
    luaL_traceback(L, co, lua_tostring(L, -1), 0);
    lua_setfield(L, -3, "traceback");
    lua_pop(L, 2);
    lua_resetthread(co);
    finish(rt, L, ti, t, 0, 1);
  }
  lua_settop(L, ti - 1);
}

/* }==================================================================== */
