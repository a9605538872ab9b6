/*
** sched.c -- the scheduler: ready queues, the suspend/wake protocol and
** the life of a task's coroutine.
**
** A task suspends only by calling corio__suspend() from a C function on
** its own coroutine, which yields with a continuation (await_k; a C
** function with more to do after the wait gives its own continuation to
** corio__suspend_k, which starts with corio__resumed).  Whoever
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
#include <stdio.h>    /* fputs */
#include <stdlib.h>   /* realloc */
#include <stdint.h>   /* uintptr_t */
#include <string.h>   /* strcmp */

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
  if (corio__get_extra(L, -1) == LUA_TTABLE)
    lua_getfield(L, -1, "cancel_msg");        /* task, extra, msg */
  else
    lua_pushnil(L);
  const char *msg = lua_tostring(L, -1);
  corio__push_error(L, "CANCELLED", NULL,
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


int corio__take_cancel(lua_State *L, corio_rt *rt) {
  corio_task *t = rt->current;
  if (t == NULL || t->co != L || !(t->flags & TF_CANCEL_REQ)) return 0;
  t->flags &= ~TF_CANCEL_REQ;
  push_cancel_error(L, rt, t);
  return 1;
}


/* The body of corio__resumed, inlined into await_k: every await and
** yield comes back through it (W2 pays one call more per yield without:
** +2 % instructions, bench/README.md). */
static inline int resumed(lua_State *L, corio_rt *rt, int base, int raise) {
  corio_task *t = rt->current;
  int kind = t->wake;
  if (t->flags & TF_CANCEL_WAKE) {
    t->flags &= ~(TF_CANCEL_WAKE | TF_CANCEL_REQ);
    kind = WAKE_CANCEL;
  }
  if (kind == WAKE_CANCEL) {
    lua_settop(L, base);
    push_cancel_error(L, rt, t);
    return raise ? lua_error(L) : -1;
  }
  if (kind == WAKE_RAISE) return raise ? lua_error(L) : -1;
  if (kind == WAKE_NOMEM) {             /* the waker ran out of memory */
    lua_settop(L, base);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->nomem_ref);
    return raise ? lua_error(L) : -1;
  }
  return lua_gettop(L) - base;
}


int corio__resumed(lua_State *L, corio_rt *rt, int base, int raise) {
  return resumed(L, rt, base, raise);
}


/* Continuation of every await: delivers what the waker left. */
static int await_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return resumed(L, RT_UPVALUE(L), (int)ctx, 1);
}




/* corio__suspend for a C function with more to do once woken: the resume
** goes on in k (with ctx), which must call corio__resumed first. */
static inline int suspend_k(lua_State *L, corio_task *t, corio_undo_fn undo,
                            lua_KContext ctx, lua_KFunction k) {
  t->state = T_WAITING;
  t->undo = undo;
  t->token++;
  t->wake = WAKE_VALUES;
  t->nwake = 0;
  return lua_yieldk(L, 0, ctx, k);
}


int corio__suspend_k(lua_State *L, corio_rt *rt, corio_task *t,
                     corio_undo_fn undo, lua_KContext ctx, lua_KFunction k) {
  (void)rt;
  return suspend_k(L, t, undo, ctx, k);
}


int corio__suspend(lua_State *L, corio_rt *rt, corio_task *t,
                   corio_undo_fn undo) {
  (void)rt;
  return suspend_k(L, t, undo, (lua_KContext)lua_gettop(L), await_k);
}


/* [] -> (error): the LIMIT error of corio__wake, made under protection. */
static int push_limit(lua_State *L) {
  corio__push_error(L, "LIMIT", "await", "too many values to resume");
  return 1;
}


void corio__wake(corio_rt *rt, corio_task *t, lua_State *from, int n,
                 int kind) {
  if (n > 0) {
    if (!lua_checkstack(t->co, n + LUA_MINSTACK)) {
      /* Too many values, or no memory for the stack: callbacks wake
      ** outside any pcall, so the error is made protected. */
      lua_pop(from, n);
      lua_pushcfunction(from, push_limit);    /* the n slots are free */
      if (lua_pcall(from, 0, 1, 0) == LUA_OK) {
        n = 1;
        kind = WAKE_RAISE;
      } else {
        lua_pop(from, 1);
        n = 0;
        kind = WAKE_NOMEM;
        rt->nomem++;
      }
    }
    if (n > 0) lua_xmove(from, t->co, n);
  }
  if (t->flags & TF_DUE) {              /* woken before its deadline */
    t->flags &= ~TF_DUE;
    corio__timer_disarm(rt, &t->timer);
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


/* [rt, t, msg] -> (): t's extras get cancel_msg. */
static int set_cancel_msg(lua_State *L) {
  corio_rt *rt = lua_touserdata(L, 1);
  corio_task *t = lua_touserdata(L, 2);
  const char *msg = lua_touserdata(L, 3);
  corio__push_task(rt, L, t);
  corio__fut_extra(L, lua_gettop(L));
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "cancel_msg");
  return 0;
}


int corio__task_cancel(corio_rt *rt, corio_task *t, lua_State *L,
                       const char *msg) {
  /* A loop, not recursion: the chain of tasks awaiting tasks may be as
  ** long as the script likes (200,000 overflowed the C stack).  Only the
  ** first task's outcome is returned. */
  for (int first = 1;; first = 0) {
    if (t->state == T_DONE) return !first;
    t->ncancel++;                             /* every taken request */
    if (t->flags & TF_CANCEL_WAKE) {          /* already on its way */
      /* As in asyncio, every request reaches the awaited task: it may
      ** have swallowed the earlier one, and a deadline must still
      ** interrupt it (tests/regress/second_cancel_reaches_awaited_task_
      ** spec.lua). */
      if (t->state == T_WAITING && t->awaiting &&
          t->awaiting->type == TYPE_TASK) {
        t = container_of(t->awaiting, corio_task, fut);
        continue;
      }
      return 1;
    }
    if (t->state == T_READY && t->wake == WAKE_CANCEL) return 1;
    if (msg && lua_checkstack(L, 4)) {
      /* Protected: the host's teardown cancels outside any pcall.  Out
      ** of memory, the task is cancelled with the default message. */
      lua_pushcfunction(L, set_cancel_msg);
      lua_pushlightuserdata(L, rt);
      lua_pushlightuserdata(L, t);
      lua_pushlightuserdata(L, (void *)(uintptr_t)msg);
      if (lua_pcall(L, 3, 0, 0) != LUA_OK) lua_pop(L, 1);
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

/* Pushes a clean coroutine for t onto L and returns it: an idle one from
** the pool, or a new one.  Returns NULL (nothing pushed, nothing changed)
** when out of memory.  While the task runs, L's stack anchors the
** coroutine; only a task that suspends anchors it for longer, in its
** UV_RES slot (see anchor_co), so a task that finishes in its first step
** never touches a table for its coroutine. */
static lua_State *thread_get(corio_rt *rt, lua_State *L, corio_task *t) {
  lua_State *co;
  if (lua_gettop(rt->poolL) > 0) {
    co = lua_tothread(rt->poolL, -1);
    lua_xmove(rt->poolL, L, 1);
  } else {
    if (!corio__can_alloc_thread(L)) return NULL;
    co = lua_newthread(L);                    /* may raise: nothing taken */
  }
  t->co = co;
  return co;
}


/* Anchors the coroutine (on L's top, popped) of a task whose first step
** did not return: UV_RES held the spawn arguments, which are now on the
** coroutine's stack, and holds the results once the task is done.  Never
** allocates. */
static void anchor_co(lua_State *L, int ti, corio_task *t) {
  lua_setiuservalue(L, ti, UV_RES);
  t->flags |= TF_CO_KEPT;
}


/* Lets go of t's coroutine: kept idle for reuse if it is clean and the
** pool is not full, else left to the collector.  A coroutine with a
** debug hook (debug.sethook in the task) is not reused: the hook would
** run in the next task given that coroutine.  Never allocates (the pool
** thread's stack was sized when it was made). */
static void thread_put(corio_rt *rt, corio_task *t, int clean) {
  lua_State *co = t->co;
  t->co = NULL;
  if (clean && lua_gettop(rt->poolL) < CORIO_THREAD_POOL &&
      lua_gethook(co) == NULL) {
    lua_pushthread(co);
    lua_xmove(co, rt->poolL, 1);
  }
}


static int task_main_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
  lua_replace(L, 1);                          /* over the handler */
  return lua_gettop(L);                       /* ok, results... */
}


/* Body of every task coroutine: [msgh, fn, args...] -> ok, results...
** (start() pushes the message handler too, which spares an insert.) */
static int task_main(lua_State *L) {
  return task_main_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0,
                                   task_main_k), 0);
}


/* How far corio__step got with rt->stepping, for corio__step_recover.
** Task bodies run protected; the scheduler's own calls can still raise a
** memory error (making a coroutine, storing several results, building an
** error's traceback).  The loop runs each turn under lua_pcall, and the
** phase says what the task needs when such an error escapes. */
enum {
  STEP_NONE = 0,     /* nothing to repair */
  STEP_BEFORE,       /* not resumed: maybe no coroutine yet */
  STEP_RETURNED,     /* the body returned; results on its coroutine */
  STEP_DIED,         /* the coroutine died outside the body's pcall */
  STEP_FINISH,       /* coroutine released; finish() under way */
  STEP_SETTLED,      /* suspended again: leave it alone */
  STEP_COMPLETE      /* (tests only) finish() marked it done */
};


/* Raises the fault injected for phase ph (core._inject_fault), as the
** memory error it stands for would be. */
static void fault(corio_rt *rt, lua_State *L, int ph) {
  if (rt->fault_phase == ph) {
    rt->fault_phase = STEP_NONE;
    luaL_error(L, "fault injected in the scheduler");
  }
}


/* Records how far the step got. */
static void phase(corio_rt *rt, lua_State *L, int ph) {
  rt->step_phase = ph;
  fault(rt, L, ph);
}


/* Marks the task done with the outcome left on L's top and wakes its
** waiters.  The coroutine (if any) has already been released. */
static void finish(corio_rt *rt, lua_State *L, int ti, corio_task *t,
                   int ok, int n) {
  corio_fut *f = &t->fut;
  if (t->flags & TF_HOLDS) corio__debug_task_end(rt, L, ti, t);
  if (ok) {
    corio__fut_store(L, ti, f, n);
    f->state = FUT_OK;
    if (n == 0 && (t->flags & (TF_ARGS | TF_CO_KEPT))) {
      /* drop the spawn arguments or the coroutine */
      lua_pushnil(L);
      lua_setiuservalue(L, ti, UV_RES);
    }
  } else {
    f->state = corio__is_error(L, -1, "CANCELLED") ? FUT_CANCELLED
                                                   : FUT_FAILED;
    corio__fut_store(L, ti, f, 1);
  }
  t->co = NULL;
  t->state = T_DONE;
  t->undo = NULL;
  rt->ntasks--;
  if (t == rt->main_task) uv_stop(rt->loop);
  fault(rt, L, STEP_COMPLETE);
  corio__fut_complete(rt, L, ti, f);
  corio__unanchor(rt, L, t->anchor);          /* last: recovery needs it */
  t->anchor = 0;
}


/* Copies the spawn function and arguments onto a clean coroutine, which
** it leaves on L's top.  The function stays in UV_AUX (or in the extras)
** and the arguments in UV_RES until the coroutine (anchor_co) or the
** results (finish) replace them. */
static lua_State *start(corio_rt *rt, lua_State *L, int ti, corio_task *t) {
  lua_State *co = thread_get(rt, L, t);
  if (co == NULL) return NULL;
  if (t->nargs > 8 && (!lua_checkstack(co, t->nargs + 3) ||
                       !lua_checkstack(L, t->nargs + 3))) {
    thread_put(rt, t, 1);
    lua_pop(L, 1);
    return NULL;
  }
  lua_pushcfunction(co, task_main);
  lua_pushcfunction(co, corio__msgh);
  lua_getiuservalue(L, ti, UV_AUX);          /* the function... */
  if (t->fut.has_extra) {                     /* ...or the extras */
    lua_getfield(L, -1, "fn");
    lua_remove(L, -2);
  }
  lua_xmove(L, co, 1);
  if (t->nargs == 1) {
    lua_getiuservalue(L, ti, UV_RES);
    lua_xmove(L, co, 1);
  } else if (t->nargs > 1) {
    lua_getiuservalue(L, ti, UV_RES);
    int tbl = lua_gettop(L);
    for (int i = 1; i <= t->nargs; i++) lua_rawgeti(L, tbl, i);
    lua_xmove(L, co, t->nargs);
    lua_pop(L, 1);
  }
  return co;
}


/* core._inject_fault(phase): the next step of a task to reach `phase`
** raises there (tests of corio__step_recover).  STEP_COMPLETE is inside
** finish(), once the task is marked done. */
void corio__inject_fault(lua_State *L, corio_rt *rt, const char *name) {
  static const char *const names[] = {"before", "returned", "finish",
                                      "settled", "complete", NULL};
  static const int phases[] = {STEP_BEFORE, STEP_RETURNED, STEP_FINISH,
                               STEP_SETTLED, STEP_COMPLETE};
  for (int i = 0; names[i]; i++)
    if (strcmp(name, names[i]) == 0) {
      rt->fault_phase = phases[i];
      return;
    }
  corio__argerror(L, 1, "unknown phase");
}


/* Called with the escaped error on rt->L's top (popped): the task being
** stepped fails with it, or, if finish() already marked it done, its
** waiters are woken and its anchor dropped.  May raise again (out of
** memory still); the caller retries after a full collection, and every
** retry starts from the phase the last attempt reached. */
void corio__step_recover(corio_rt *rt) {
  lua_State *L = rt->L;
  corio_task *t = rt->stepping;
  int err = lua_gettop(L);
  if (t == NULL || rt->step_phase == STEP_NONE ||
      rt->step_phase == STEP_SETTLED || t->anchor == 0) {
    rt->stepping = NULL;
    lua_settop(L, err - 1);
    return;
  }
  corio__push_task(rt, L, t);
  int ti = lua_gettop(L);
  if (t->state == T_DONE) {                   /* failed in fut_complete */
    corio__fut_complete(rt, L, ti, &t->fut);
    corio__unanchor(rt, L, t->anchor);
    t->anchor = 0;
  } else {
    /* A coroutine that only L's stack anchored may be gone already (the
    ** caller collected garbage): it is dropped without a look. */
    if (t->co && !(t->flags & TF_CO_KEPT)) {
      t->co = NULL;
    } else if (t->co && rt->step_phase == STEP_RETURNED) {
      lua_settop(t->co, 0);
      thread_put(rt, t, 1);
    } else if (t->co && rt->step_phase == STEP_DIED) {
      lua_resetthread(t->co);
      thread_put(rt, t, 0);
    }
    rt->step_phase = STEP_FINISH;
    lua_pushvalue(L, err);
    finish(rt, L, ti, t, 0, 1);
  }
  rt->stepping = NULL;
  rt->step_phase = STEP_NONE;
  lua_settop(L, err - 1);
}


void corio__step(corio_rt *rt, corio_task *t) {
  lua_State *L = rt->L;
  int nargs, nres, st, ti = 0, base = lua_gettop(L);
  rt->stepping = t;
  rt->step_phase = STEP_BEFORE;
  switch (t->state) {
    case T_NEW:
      /* The task stays on L until it suspends: most finish at once. */
      corio__push_task(rt, L, t);
      ti = lua_gettop(L);
      if (t->flags & TF_CANCEL_REQ) {         /* cancelled before start */
        push_cancel_error(L, rt, t);
        finish(rt, L, ti, t, 0, 1);
        lua_settop(L, base);
        return;
      }
      fault(rt, L, STEP_BEFORE);
      if (start(rt, L, ti, t) == NULL) {
        /* Out of memory: the error was made in advance, and is reported
        ** here once rather than watched per task (that would allocate). */
        lua_rawgeti(L, LUA_REGISTRYINDEX, rt->enomem_ref);
        if (!rt->nomem_reported) {
          rt->nomem_reported = 1;
          rt->exit_code = 1;
          fputs("corio: out of memory: tasks that cannot get a coroutine "
                "fail with ENOMEM\n", stderr);
        }
        t->fut.observed = 1;                  /* reported: not watched */
        finish(rt, L, ti, t, 0, 1);
        lua_settop(L, base);
        return;
      }
      nargs = t->nargs + 2;                   /* msgh, fn, args */
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
  uint64_t t0 = rt->debug ? uv_hrtime() : 0;
  if (t0) corio__watch_step(t0);              /* for the watchdog */
  st = lua_resume(t->co, L, nargs, &nres);
  rt->current = NULL;
  if (st != LUA_OK && !(t->flags & TF_CO_KEPT)) anchor_co(L, ti, t);
  phase(rt, L, st == LUA_OK ? STEP_RETURNED
               : st == LUA_YIELD ? STEP_SETTLED : STEP_DIED);
  if (t0) {
    corio__watch_step(0);
    if (uv_hrtime() - t0 > CORIO_SLOW_NS && (st == LUA_OK || st == LUA_YIELD))
      corio__debug_slow(rt, L, t, uv_hrtime() - t0);
  }
  if (st == LUA_YIELD) {
    if (t->state == T_RUNNING) {
      /* A bare coroutine.yield() in a task body: treat it as yield(). */
      lua_pop(t->co, nres);
      t->state = T_WAITING;
      t->token++;
      corio__enqueue_next(rt, &t->node);
    }
    lua_settop(L, base);
    return;
  }
  lua_State *co = t->co;
  if (ti == 0) {
    corio__push_task(rt, L, t);
    ti = lua_gettop(L);
  }
  if (nres > 8) luaL_checkstack(L, nres + 4, "too many results");
  if (st == LUA_OK) {
    int ok = lua_toboolean(co, -nres);
    lua_xmove(co, L, nres - 1);
    lua_settop(co, 0);
    thread_put(rt, t, 1);
    phase(rt, L, STEP_FINISH);
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
    thread_put(rt, t, 0);
    phase(rt, L, STEP_FINISH);
    finish(rt, L, ti, t, 0, 1);
  }
  lua_settop(L, base);
}

/* }==================================================================== */
