/*
** runtime.c -- the runtime's life: creation, the loop turn, anchors,
** running until done, shutdown and teardown.
**
** One loop turn, as libuv runs it: timers fire (waking sleepers) -> poll
** for I/O (timeout 0 while anything is ready) -> check: run the ready
** queue.  Work queued while the queue runs (a wake, a spawn, call_soon)
** joins it in the same turn, up to CORIO_TURN_BUDGET entries; yield() and
** sleep(0) go to a deferred queue that joins at the next turn, so I/O is
** polled between yields.
*/
#include <stdlib.h>   /* calloc, free, realloc */
#include <string.h>   /* memset */
#include <signal.h>   /* signal, SIGPIPE, SIGXFSZ */

#include <lualib.h>   /* luaL_openlibs */

#include "internal.h"

const char corio__key_rt = 0;


corio_rt *corio__rt_or_null(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &corio__key_rt);
  corio_rt *rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}


corio_rt *corio__rt(lua_State *L) {
  corio_rt *rt = corio__rt_or_null(L);
  if (rt == NULL) luaL_error(L, "corio runtime is not initialised");
  return rt;
}


void corio__check_callable(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TFUNCTION) {
    if (!luaL_getmetafield(L, idx, "__call")) luaL_typeerror(L, idx,
                                                             "function");
    lua_pop(L, 1);
  }
}


/* Stores the call at fi (function, nargs arguments) in the userdata at ui:
** the function in user value 1, the arguments in user value 2 (one inline,
** several in a table). */
void corio__store_call(lua_State *L, int ui, int fi, int nargs) {
  lua_pushvalue(L, fi);
  lua_setiuservalue(L, ui, 1);
  if (nargs == 1) {
    lua_pushvalue(L, fi + 1);
    lua_setiuservalue(L, ui, 2);
  } else if (nargs > 1) {
    lua_createtable(L, nargs, 0);
    for (int i = 1; i <= nargs; i++) {
      lua_pushvalue(L, fi + i);
      lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, ui, 2);
  }
}


/* {====================================================================
** Anchors
**
** Everything the loop must keep alive while only C points at it (a
** pending task, a callback handle, an open server...) sits in a numbered
** slot.  Slots are stack slots of "chunk" threads that never run, not
** table entries: holding, reading and dropping a value is a copy between
** stacks (no hashing, no write barrier, no registry lookup), which made
** anchoring a third as costly per task.  Slot s (from 1) lives at index
** ((s - 1) & CHUNK_MASK) + 2 of chunk (s - 1) >> CHUNK_BITS; index 1 of
** every chunk is a nil that unanchor copies over the slot.  New slots are
** numbered in order, so a new slot is always its chunk's next stack
** index.  A chunk holds 65,536 slots, well under Lua's limit on a stack
** (LUAI_MAXSTACK).
** ===================================================================== */

#define CHUNK_BITS 16
#define CHUNK_MASK ((1 << CHUNK_BITS) - 1)
#define chunk_of(rt, s) ((rt)->chunks[((s) - 1) >> CHUNK_BITS])
#define index_of(s) ((((s) - 1) & CHUNK_MASK) + 2)


void corio__push_live(corio_rt *rt, lua_State *L, int slot) {
  lua_State *A = chunk_of(rt, slot);
  lua_pushvalue(A, index_of(slot));
  lua_xmove(A, L, 1);
}


void corio__push_task(corio_rt *rt, lua_State *L, corio_task *t) {
  corio__push_live(rt, L, t->anchor);
}


/* Makes room for one more slot: a free slot to give back later, and the
** chunk the next new slot falls in.  Raises before anything changed. */
static void anchor_room(corio_rt *rt, lua_State *L) {
  if (rt->max_slot == rt->free_cap) {
    int cap = rt->free_cap ? rt->free_cap * 2 : 256;
    int *p = realloc(rt->free_slots, (size_t)cap * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    rt->free_slots = p;
    rt->free_cap = cap;
  }
  int c = rt->max_slot >> CHUNK_BITS;         /* chunk of the next slot */
  if (c == rt->nchunks) {
    lua_State **p = realloc(rt->chunks, (size_t)(c + 1) * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    rt->chunks = p;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->chunks_ref);
    lua_State *A = lua_newthread(L);
    lua_rawseti(L, -2, c + 1);
    lua_pop(L, 1);
    lua_pushnil(A);                           /* index 1: the nil */
    rt->chunks[c] = A;
    rt->nchunks = c + 1;
  }
}


/* Holds the value at idx; returns its slot.  Raises only before anything
** changed. */
int corio__anchor(corio_rt *rt, lua_State *L, int idx) {
  int slot;
  idx = lua_absindex(L, idx);
  if (rt->free_n > 0) {
    slot = rt->free_slots[--rt->free_n];
    lua_State *A = chunk_of(rt, slot);
    lua_pushvalue(L, idx);
    lua_xmove(L, A, 1);
    lua_replace(A, index_of(slot));
    return slot;
  }
  anchor_room(rt, L);
  lua_State *A = chunk_of(rt, rt->max_slot + 1);
  if (!lua_checkstack(A, 1)) luaL_error(L, "not enough memory");
  slot = ++rt->max_slot;                      /* the chunk's next index */
  lua_pushvalue(L, idx);
  lua_xmove(L, A, 1);
  return slot;
}


void corio__unanchor(corio_rt *rt, lua_State *L, int slot) {
  (void)L;
  if (slot <= 0) return;
  lua_copy(chunk_of(rt, slot), 1, index_of(slot));
  rt->free_slots[rt->free_n++] = slot;
}


/* Once nothing is anchored, chunks grown by a burst of tasks are cut
** back; the collector shrinks their stacks. */
static void shrink_live(corio_rt *rt) {
  if (rt->free_n != rt->max_slot || rt->max_slot < 4096) return;
  for (int c = 0; c < rt->nchunks; c++) lua_settop(rt->chunks[c], 1);
  if (rt->max_slot > rt->slot_peak) rt->slot_peak = rt->max_slot;
  rt->max_slot = 0;
  rt->free_n = 0;
}


/* settop alone gives a chunk's memory back only in part: lua_checkstack
** raised the limit of the chunk's base frame (ci->top) to the highest
** slot it ever held, and the collector never shrinks a stack below that
** limit, so a million tasks left 16 MiB of chunk stacks behind for good
** (tests/regress/anchor_chunks_kept_after_burst_spec.lua).  Hence the
** chunks past the one holding the top slot are dropped (the collector
** frees them), and that one, if it once held 4,096 slots more than it
** keeps, is moved to a fresh thread sized for what it keeps.
** [t(chunks) -> ]: pcall'd by refit_chunks (lua_newthread may raise). */
static int refit_body(lua_State *L) {
  corio_rt *rt = lua_touserdata(L, 1);
  int need = rt->max_slot > 0 ? ((rt->max_slot - 1) >> CHUNK_BITS) + 1 : 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->chunks_ref);
  for (int c = need; c < rt->nchunks; c++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, c + 1);
  }
  if (need < rt->nchunks) rt->nchunks = need;
  int c = rt->nchunks - 1;
  int first = c << CHUNK_BITS;               /* slots first+1 .. */
  int held = rt->slot_peak - first;          /* slots it once held */
  lua_State *old = rt->chunks[c];
  int keep = lua_gettop(old);                /* the nil and its slots */
  if (held > CHUNK_MASK + 1) held = CHUNK_MASK + 1;
  if (held + 1 - keep >= 4096) {
    lua_State *A = lua_newthread(L);         /* t, A */
    if (!lua_checkstack(A, keep)) return 0;
    lua_xmove(old, A, keep);                 /* the same slots, in order */
    rt->chunks[c] = A;
    lua_rawseti(L, -2, c + 1);               /* t */
  }
  return 0;
}


static void refit_chunks(corio_rt *rt) {
  if (rt->nchunks == 0 || rt->slot_peak <= rt->max_slot) return;
  lua_State *L = rt->mainL;
  if (lua_checkstack(L, 4)) {
    lua_pushcfunction(L, refit_body);
    lua_pushlightuserdata(L, rt);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);  /* kept as is */
  }
  rt->slot_peak = rt->max_slot;
}


/* While tasks live (the binary's main task always does), the slots above
** the highest one in use are cut off: a free slot holds nil, an anchored
** value never is.  Called after a burst (trim.c); the work is a scan of
** the free slots. */
static void cut_free_top(corio_rt *rt) {
  if (rt->max_slot < 4096 || rt->free_n < rt->max_slot / 2) return;
  int top = rt->max_slot;
  while (top > 0 && lua_isnil(chunk_of(rt, top), index_of(top))) top--;
  if (top == rt->max_slot) return;
  int k = 0;
  for (int i = 0; i < rt->free_n; i++)
    if (rt->free_slots[i] <= top) rt->free_slots[k++] = rt->free_slots[i];
  rt->free_n = k;
  for (int c = 0; c < rt->nchunks; c++) {
    int first = c << CHUNK_BITS;              /* slots first+1 .. */
    int keep = top <= first ? 1 : top >= first + CHUNK_MASK + 1
                                      ? CHUNK_MASK + 2 : index_of(top);
    lua_settop(rt->chunks[c], keep);
  }
  rt->max_slot = top;
  if (rt->free_cap > 256 && rt->free_cap / 2 > top) {
    int cap = top > 256 ? top : 256;          /* max_slot - free_n fits */
    int *p = realloc(rt->free_slots, (size_t)cap * sizeof *p);
    if (p) {
      rt->free_slots = p;
      rt->free_cap = cap;
    }
  }
}


void corio__shrink_anchors(corio_rt *rt) {
  if (rt->max_slot > rt->slot_peak) rt->slot_peak = rt->max_slot;
  cut_free_top(rt);
  refit_chunks(rt);
}

/* }==================================================================== */


/* {====================================================================
** The loop turn
** ===================================================================== */

static void on_idle(uv_idle_t *h) { (void)h; }


void corio__kick(corio_rt *rt) {
  if (!rt->idle_on) {
    uv_idle_start(&rt->idle, on_idle);
    rt->idle_on = 1;
  }
}


static void run_handle(corio_rt *rt, corio_handle *h);

/* The body of a turn, run under lua_pcall by corio__run_ready. */
static int turn_body(lua_State *L) {
  corio_rt *rt = lua_touserdata(L, 1);
  lua_settop(L, 0);
  while (rt->turn_budget > 0) {
    corio_node *n = rt->ready.head;
    if (n == NULL) break;
    rt->turn_budget--;
    rt->ready.head = n->next;
    if (rt->ready.head == NULL) rt->ready.tail = NULL;
    n->next = NULL;
    n->queued = 0;
    if (n->kind == NODE_TASK) corio__step(rt, (corio_task *)n);
    else run_handle(rt, (corio_handle *)n);
    rt->stepping = NULL;
    rt->step_phase = 0;                       /* STEP_NONE */
  }
  corio__flush_reports(rt);
  shrink_live(rt);
  corio__trim_check(rt);
  return 0;
}


/* [error, rt] -> (); see corio__step_recover. */
static int recover_body(lua_State *L) {
  corio_rt *rt = lua_touserdata(L, 2);
  lua_settop(L, 1);
  corio__step_recover(rt);
  return 0;
}


/* Task bodies and callbacks run protected, but the scheduler's own work
** can still run out of memory (a new coroutine, a traceback).  Each turn
** runs under lua_pcall; when an error escapes, the task being stepped is
** failed with it (corio__step_recover) after a full collection, and the
** turn goes on.  Without this, Lua would call the panic handler and abort
** the process. */
static void run_protected(corio_rt *rt) {
  lua_State *L = rt->L;
  for (int escapes = 0; escapes < 16; escapes++) {  /* then next turn */
    lua_pushcfunction(L, turn_body);
    lua_pushlightuserdata(L, rt);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
    for (int tries = 0; rt->stepping; tries++) {
      lua_gc(L, LUA_GCCOLLECT, 0);
      if (tries == 3) {                       /* give the task up */
        rt->stepping = NULL;
        break;
      }
      /* Nothing here may allocate (memory may still be short): a light
      ** C function and a light userdata. */
      lua_pushcfunction(L, recover_body);
      lua_rotate(L, -2, 1);                   /* recover_body, error */
      lua_pushlightuserdata(L, rt);
      if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
        lua_pushnil(L);                       /* popped below */
        break;
      }
    }
    lua_pop(L, 1);                            /* the error */
  }
}


void corio__run_ready(corio_rt *rt) {
  if (rt->in_turn) return;
  rt->in_turn = 1;
  if (rt->deferred.head) {                    /* yields of the last turn */
    if (rt->ready.tail) rt->ready.tail->next = rt->deferred.head;
    else rt->ready.head = rt->deferred.head;
    rt->ready.tail = rt->deferred.tail;
    rt->deferred.head = rt->deferred.tail = NULL;
  }
  rt->turn_budget = CORIO_TURN_BUDGET;
  run_protected(rt);
  rt->in_turn = 0;
  if (rt->ready.head == NULL && rt->deferred.head == NULL && rt->idle_on &&
      rt->nreports == 0) {
    uv_idle_stop(&rt->idle);
    rt->idle_on = 0;
  }
}


static void on_check(uv_check_t *h) {
  corio_rt *rt = h->data;
  corio__run_ready(rt);
  /* corio__stop_all: the cancelled tasks have unwound (their cleanup
  ** may await); handles such as a child process no longer count. */
  if (rt->stop_all && rt->ntasks == 0) uv_stop(rt->loop);
}


/* Runs a call_soon/call_later callback on the loop thread.  It is not a
** task, so an await inside raises; an error is reported and the loop goes
** on. */
static void run_handle(corio_rt *rt, corio_handle *h) {
  lua_State *L = rt->L;
  if (h->state != H_PENDING) {                /* cancelled while queued */
    corio__unanchor(rt, L, h->anchor);
    h->anchor = 0;
    return;
  }
  lua_checkstack(L, h->nargs + 4);
  int base = lua_gettop(L);
  lua_pushcfunction(L, corio__msgh);
  corio__push_live(rt, L, h->anchor);         /* msgh, handle */
  h->state = H_DONE;
  corio__unanchor(rt, L, h->anchor);
  h->anchor = 0;
  rt->nhandles--;
  lua_getiuservalue(L, base + 2, 1);          /* fn */
  if (h->nargs == 1) {
    lua_getiuservalue(L, base + 2, 2);
  } else if (h->nargs > 1) {
    lua_getiuservalue(L, base + 2, 2);
    for (int i = 1; i <= h->nargs; i++) lua_rawgeti(L, base + 4, i);
    lua_remove(L, base + 4);
  }
  lua_remove(L, base + 2);                    /* msgh, fn, args */
  uint64_t t0 = rt->debug ? uv_hrtime() : 0;
  if (t0) corio__watch_step(t0);
  rt->in_callback = 1;                        /* SIGINT may raise in it */
  int st = lua_pcall(L, h->nargs, 0, base + 1);
  rt->in_callback = 0;
  if (t0) {
    corio__watch_step(0);
    if (uv_hrtime() - t0 > CORIO_SLOW_NS)
      corio__debug_slow(rt, L, NULL, uv_hrtime() - t0);
  }
  /* Out of memory, the callback may have been the only wake of a task (a
  ** process's exit wakes wait()): rather than leave it waiting for good,
  ** the run stops, as after corio_stop (corio_run_main then cancels the
  ** tasks left).  Before the report, which may run out of memory too (the
  ** turn's protection catches that). */
  if (st == LUA_ERRMEM || st == LUA_ERRERR) {
    rt->nomem++;
    corio__stop_now(rt);
  }
  if (st != LUA_OK) {
    lua_getfield(L, LUA_REGISTRYINDEX, "corio.traceback");
    corio__report(rt, L, -2, "callback", lua_gettop(L));
  }
  lua_settop(L, base);
}

/* }==================================================================== */


/* {====================================================================
** Running and shutting down
** ===================================================================== */

static int loop_alive(corio_rt *rt) {
  return uv_loop_alive(rt->loop) || rt->ready.head || rt->deferred.head;
}


static void count_active(uv_handle_t *h, void *arg) {
  if (uv_is_active(h) && uv_has_ref(h)) ++*(int *)arg;
}


/* Are the requests in flight all ones nobody waits for?  A task that gave
** up on a file-system call cannot take it back from the thread that runs
** it (an open() of a FIFO with no writer can block for good). */
static int reqs_all_orphans(corio_rt *rt) {
  return rt->orphans > 0 &&
         rt->loop->active_reqs.count == (unsigned)rt->orphans;
}


/* Is the loop alive only for such requests?  By the exit rule -- no task,
** no callback, no handle left -- the process is then done and must not
** wait for them. */
static int only_orphans(corio_rt *rt) {
  int active = 0;
  if (!reqs_all_orphans(rt) || rt->ntasks > 0 || rt->nhandles > 0 ||
      rt->ready.head || rt->deferred.head)
    return 0;
  uv_walk(rt->loop, count_active, &active);
  return active == 0;
}


/* Runs before the loop would block in poll while orphans > 0: when they
** are all that is left, the binary's loop stops (corio__loop). */
static void on_orphan_check(uv_prepare_t *h) {
  corio_rt *rt = h->data;
  if (rt->loop_running == LOOP_ALL && only_orphans(rt)) uv_stop(rt->loop);
}


void corio__orphan(corio_rt *rt, int delta) {
  rt->orphans += delta;
  if (rt->closing || rt->loop == NULL) return;
  if (rt->orphans > 0 && !uv_is_active((uv_handle_t *)&rt->orphan_check))
    uv_prepare_start(&rt->orphan_check, on_orphan_check);
  else if (rt->orphans == 0)
    uv_prepare_stop(&rt->orphan_check);
}


/* Cancels every live task but the running one, drops pending callbacks,
** and returns how many tasks were asked. */
int corio__cancel_all(corio_rt *rt, const char *msg) {
  lua_State *L = rt->L;
  int n = 0;
  long tasks = rt->ntasks, handles = rt->nhandles;
  /* Free slots hold nil; stop once every task and handle has been seen
  ** (slots also anchor requests of bindings). */
  for (int s = 1; s <= rt->max_slot && (tasks > 0 || handles > 0); s++) {
    corio__push_live(rt, L, s);
    corio_fut *f = corio__to_fut(rt, L, -1);
    if (f && f->type == TYPE_TASK) {
      corio_task *t = container_of(f, corio_task, fut);
      tasks--;
      if (t != rt->current) n += corio__task_cancel(rt, t, L, msg);
    } else if (lua_type(L, -1) == LUA_TUSERDATA) {
      /* a pending call_soon/call_later handle: drop it */
      corio_handle *h = luaL_testudata(L, -1, CORIO_HANDLE_MT);
      if (h) {
        handles--;
        corio__handle_cancel(rt, L, h);
      }
    }
    lua_pop(L, 1);
  }
  return n;
}


/* Calls obj:close() for the object at 1, if it has such a method. */
static int close_one(lua_State *L) {
  if (lua_getfield(L, 1, "close") == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
  }
  return 0;
}


void corio__close_anchored(corio_rt *rt, lua_State *L) {
  int top = lua_gettop(L);
  for (int s = 1; s <= rt->max_slot; s++) {
    corio__push_live(rt, L, s);
    if (lua_type(L, -1) == LUA_TUSERDATA && !corio__to_fut(rt, L, -1) &&
        !luaL_testudata(L, -1, CORIO_HANDLE_MT)) {
      /* a server, watcher, signal handler, process...: its own close */
      lua_pushcfunction(L, close_one);
      lua_insert(L, -2);
      lua_pcall(L, 1, 0, 0);      /* an error is no reason to stay alive */
    }
    lua_settop(L, top);
  }
}


void corio__stop_all(corio_rt *rt, const char *msg) {
  corio__close_anchored(rt, rt->L);
  corio__cancel_all(rt, msg);
  rt->stop_all = 1;
  if (rt->ntasks == 0) uv_stop(rt->loop);
  else corio__kick(rt);                       /* on_check stops it */
}


/* [] -> (error): the deadlock error, made under protection. */
static int push_deadlock(lua_State *L) {
  corio__push_error(L, "INVALID_STATE", "run",
                    "deadlock: the main task waits for something that "
                    "can never happen (no timer, I/O or task left to "
                    "wake it)");
  return 1;
}


/* Raises the deadlock error in t, waiting with nothing left to wake it;
** 0 if t was not waiting.  Called from the host's run, outside any
** pcall: the error is made protected (out of memory, t raises ENOMEM). */
int corio__deadlock(corio_rt *rt, corio_task *t, lua_State *L) {
  (void)L;
  if (t->state != T_WAITING) return 0;
  t->token++;
  if (t->undo) t->undo(rt, t);
  corio__wake_with(rt, t, push_deadlock, NULL, WAKE_RAISE);
  return 1;
}


/* Runs the loop.  With a target task: until it is done (corio.run).  With
** `all`: until every task has finished and nothing keeps the loop alive
** (the binary).  A task that waits on something that can never happen is
** woken with an error instead of hanging the process. */
void corio__loop(corio_rt *rt, corio_task *target, int all) {
  int stuck_rounds = 0;
  rt->loop_running = all ? LOOP_ALL : LOOP_TARGET;
  for (;;) {
    uv_run(rt->loop, UV_RUN_DEFAULT);
    if (rt->stopped) break;                   /* corio_stop */
    if (!all && target && target->state == T_DONE) break;
    if (all && rt->stop_all && rt->ntasks == 0) break;  /* stop_all */
    if (all && only_orphans(rt)) break;       /* on_orphan_check stopped */
    if (loop_alive(rt)) continue;             /* uv_stop from elsewhere */
    if (rt->ntasks == 0) break;
    /* Nothing can wake the tasks that are left. */
    if (++stuck_rounds > 3) break;
    if (target && target->state != T_DONE) {
      /* Woken: the task goes on (it may catch the error), so a later
      ** deadlock is a new one, not another round of this one.  Without the
      ** reset, a long run (the test runner) that met three deadlocks had
      ** its main task cancelled at the fourth. */
      if (corio__deadlock(rt, target, rt->L)) stuck_rounds = 0;
    } else {
      corio__cancel_all(rt, "deadlock: nothing left to wake this task");
    }
  }
  rt->loop_running = 0;
}


static void on_guard(uv_timer_t *h) { (void)h; }
static void on_guard_closed(uv_handle_t *h) { *(int *)h->data = 1; }


/* Has memory ever run out in this runtime?  Its allocator counts the
** refusals; callbacks that failed count too (a state corio did not make,
** corio_attach, has an allocator it cannot see). */
static int ran_out(corio_rt *rt) {
  return rt->nomem > 0 || corio__alloc_refused(rt->mainL) > 0;
}


/* Cancels every task left and runs the loop until they have unwound.
** Once memory has run out, a task may never unwind: its cleanup cannot
** run, or it waits for a wake whose callback failed (a process's exit
** that was never delivered) while a server keeps the loop alive.  So
** after a refusal the loop is run with a guard timer (it cannot block for
** good), and CORIO_STALL_MS without a task finishing ends the wait: the
** objects that keep the loop alive (servers, watchers, processes) are
** closed, the tasks left are dropped where they wait (lua_close frees
** them; their cleanup never runs), the failure is reported and the exit
** code becomes 1.  Returns 0, or -1 when it gave up. */
int corio__shutdown_tasks(corio_rt *rt) {
  uv_timer_t guard;
  int guarded = 0, gave_up = 0;
  int seen = rt->ntasks;
  uint64_t last = uv_hrtime();
  for (int round = 0; round < 4 && !gave_up; round++) {
    if (corio__cancel_all(rt, "runtime is shutting down") == 0 &&
        rt->ready.head == NULL && rt->deferred.head == NULL)
      break;
    rt->main_task = NULL;
    rt->loop_running = LOOP_TARGET;
    while (rt->ntasks > 0 && loop_alive(rt)) {
      if (rt->ntasks < seen) {                 /* progress */
        seen = rt->ntasks;
        last = uv_hrtime();
      } else if (ran_out(rt)) {
        if (!guarded) {                        /* wakes the poll: no hang */
          uv_timer_init(rt->loop, &guard);
          uv_timer_start(&guard, on_guard, 20, 20);
          uv_unref((uv_handle_t *)&guard);
          guarded = 1;
        }
        if (uv_hrtime() - last > CORIO_STALL_MS * 1000000ull) {
          gave_up = 1;
          break;
        }
      }
      uv_run(rt->loop, UV_RUN_ONCE);
    }
    rt->loop_running = 0;
  }
  if (guarded) {                               /* on the stack: wait */
    int closed = 0;
    guard.data = &closed;
    uv_close((uv_handle_t *)&guard, on_guard_closed);
    while (!closed) uv_run(rt->loop, UV_RUN_NOWAIT);
  }
  if (!gave_up) return 0;
  corio__close_anchored(rt, rt->L);           /* protected per object */
  corio__report_nomem(rt, "shutdown: tasks that could not unwind were "
                      "dropped");
  return -1;
}


/* Reports the failure stored in the future or task at fi: its error and
** the traceback kept beside it. */
static void report_failure(corio_rt *rt, lua_State *L, int fi,
                           const char *kind) {
  lua_getiuservalue(L, fi, UV_RES);
  if (corio__get_extra(L, fi) == LUA_TTABLE)
    lua_getfield(L, -1, "traceback");
  else
    lua_pushnil(L);
  corio__report(rt, L, fi + 1, kind, lua_gettop(L));
  lua_settop(L, fi);
}


/* Reports failed tasks that nobody awaited and that are still alive. */
static void report_unobserved(corio_rt *rt) {
  lua_State *L = rt->L;
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT);
  corio__flush_reports(rt);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->unobserved_ref);
  int tbl = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    lua_pop(L, 1);
    corio_fut *f = corio__to_fut(rt, L, -1);
    if (f && f->state == FUT_FAILED && !f->observed) {
      corio__observe(L, lua_gettop(L), f);    /* disarms the sentinel */
      report_failure(rt, L, lua_gettop(L), "task");
    }
  }
  lua_pop(L, 1);
}

/* }==================================================================== */


/* {====================================================================
** Creation and teardown
** ===================================================================== */

static int new_ref_table(lua_State *L, const char *mode) {
  lua_newtable(L);
  if (mode) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}


int corio__teardown_stuck = 0;


static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}


/* Closes corio's handles -- only those: a borrowed loop keeps the host's
** -- and runs the loop until their close callbacks and corio's requests
** on libuv's thread pool have run, so no corio callback runs after this.
** Returns 0 if that could not be done: a request still runs on the pool
** (a cancelled fs.open blocked on a FIFO with no writer can run forever).
** Requests some task still waited for get a second, polled without
** spinning; requests nobody waits for (orphans) get a short grace only
** (CORIO_ORPHAN_GRACE_MS): one whose thread has just finished -- a write
** corio__free waited for -- is about to call back, one blocked on a FIFO
** may never.  The loop and the runtime are then left allocated -- the
** requests point at them -- rather than freed under them. */
static int rt_close_loop(corio_rt *rt) {
  if (rt->loop == NULL) return 1;
  corio__hub_detach(rt);
  corio__close_owned(rt);                     /* what no __gc closed */
  corio__reap_all(rt);                        /* children left running */
  if (rt->track_lost && rt->own_loop) uv_walk(rt->loop, walk_close, NULL);
  corio__close_tracked(rt);
  uv_run(rt->loop, UV_RUN_NOWAIT);            /* the close callbacks */
  if (rt->hset_n > 0 || rt->nreqs > 0) {
    uv_timer_t guard;                         /* wakes the poll: no spin */
    uv_timer_init(rt->loop, &guard);
    uv_timer_start(&guard, on_guard, 20, 20);
    uv_unref((uv_handle_t *)&guard);          /* not what keeps it alive */
    uint64_t t0 = uv_hrtime();
    for (;;) {
      uint64_t waited = uv_hrtime() - t0;
      if (rt->hset_n > 0 || rt->nreqs > rt->orphans) {
        if (waited >= 1000000000ull) break;
      } else if (rt->nreqs == 0 ||
                 waited >= CORIO_ORPHAN_GRACE_MS * 1000000ull) {
        break;
      }
      uv_run(rt->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(rt->loop, UV_RUN_NOWAIT);
  }
  if (rt->hset_n > 0 || rt->nreqs > 0) {      /* they may never end */
    corio__teardown_stuck = 1;
    return 0;
  }
  if (rt->own_loop) {
    if (uv_loop_close(rt->loop) != 0) {       /* a host handle on our loop */
      uv_walk(rt->loop, walk_close, NULL);
      uv_run(rt->loop, UV_RUN_NOWAIT);
      if (uv_loop_close(rt->loop) != 0) {
        corio__teardown_stuck = 1;
        return 0;
      }
    }
    free(rt->loop);
  }
  rt->loop = NULL;
  return 1;
}


static void rt_release(corio_rt *rt) {
  if (rt->hub) corio__hub_release(rt->hub);
  corio__track_free(rt);
  free(rt->heap);
  free(rt->heap_key);
  free(rt->free_slots);
  free(rt->chunks);
  free(rt);
}


/* __gc of the runtime sentinel: the state is closing (stock lua5.4, or a
** corio_create that failed half-way). */
static int rt_gc(lua_State *L) {
  corio_rt **p = lua_touserdata(L, 1);
  corio_rt *rt = *p;
  if (rt == NULL) return 0;
  *p = NULL;
  /* Failed tasks never awaited were finalized just before us (newer
  ** objects go first) and queued their reports: print them now, with the
  ** default report (closing), since no loop turn will flush them. */
  rt->closing = 1;
  rt->L = L;
  if (rt->reports_ref) corio__flush_reports(rt);
  /* Objects are freed only after every __gc ran: a string lent to a
  ** pool thread is still there while this waits.  This state closes
  ** whatever the wait gives (stock lua5.4 closes it, not corio). */
  if (!corio__await_borrows(rt)) corio__teardown_stuck = 1;
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &corio__key_rt);
  if (rt_close_loop(rt)) rt_release(rt);
  return 0;
}


/* The C half of a new runtime: no Lua call, so nothing raises; NULL when
** out of memory (nothing left behind). */
static corio_rt *rt_new(uv_loop_t *loop, unsigned flags) {
  corio_rt *rt = calloc(1, sizeof *rt);
  if (rt == NULL) return NULL;
  if (loop == NULL) {
    loop = malloc(sizeof *loop);
    if (loop == NULL || uv_loop_init(loop) != 0) {
      free(loop);
      free(rt);
      return NULL;
    }
    rt->own_loop = 1;
  }
  rt->loop = loop;
  rt->flags = flags;
  if (corio__hub_init(rt) != 0) {
    if (rt->own_loop) {
      uv_loop_close(loop);
      free(loop);
    }
    free(rt);
    return NULL;
  }
  uv_check_init(loop, &rt->check);
  rt->check.data = rt;
  uv_check_start(&rt->check, on_check);
  uv_unref((uv_handle_t *)&rt->check);
  uv_idle_init(loop, &rt->idle);
  rt->idle.data = rt;
  uv_prepare_init(loop, &rt->orphan_check);
  rt->orphan_check.data = rt;
  uv_unref((uv_handle_t *)&rt->orphan_check);
  corio__timer_init(rt);
  corio__trim_init(rt);
  corio__track(rt, (uv_handle_t *)&rt->check);
  corio__track(rt, (uv_handle_t *)&rt->trim_timer);
  corio__track(rt, (uv_handle_t *)&rt->idle);
  corio__track(rt, (uv_handle_t *)&rt->orphan_check);
  corio__track(rt, (uv_handle_t *)&rt->timer);
  rt->errh_ref = LUA_NOREF;
  rt->ctx_ref = LUA_NOREF;
  rt->next_id = 1;
  return rt;
}


corio_rt *corio__attach(lua_State *L, uv_loop_t *loop, unsigned flags) {
  corio_rt *old = corio__rt_or_null(L);
  if (old) return old;
  /* The sentinel first: once it holds the runtime, closing the state
  ** tears it down, whatever step below raises. */
  corio_rt **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, rt_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "corio.runtime");
  corio_rt *rt = rt_new(loop, flags);
  if (rt == NULL) luaL_error(L, "not enough memory");
  *p = rt;
  lua_pop(L, 1);
  lua_pushlightuserdata(L, rt);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &corio__key_rt);
  if (!(flags & CORIO_NO_SIGNALS)) {
    /* A write to a closed pipe must give EPIPE, not kill the process; a
    ** write past `ulimit -f` must give EFBIG. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  rt->mainL = lua_tothread(L, -1);
  lua_pop(L, 1);
  rt->L = rt->mainL;
  rt->chunks_ref = new_ref_table(L, NULL);
  rt->poolL = lua_newthread(L);
  if (!lua_checkstack(rt->poolL, CORIO_THREAD_POOL + LUA_MINSTACK))
    luaL_error(L, "not enough memory");
  rt->pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->unobserved_ref = new_ref_table(L, "k");
  rt->reports_ref = new_ref_table(L, NULL);
  corio__push_error(L, "ENOMEM", "spawn", "not enough memory to start the "
                    "task");
  rt->enomem_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  corio__push_error(L, "ENOMEM", NULL, "not enough memory");
  rt->nomem_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return rt;
}


/* [loop] -> rt */
static int attach_body(lua_State *L) {
  corio_rt *rt = corio__attach(L, lua_touserdata(L, 1), 0);
  lua_pushlightuserdata(L, rt);
  return 1;
}


corio_runtime *corio_attach(lua_State *L, uv_loop_t *loop) {
  if (L == NULL) return NULL;
  corio_rt *old = corio__rt_or_null(L);
  if (old) return old;
  if (!lua_checkstack(L, 2)) return NULL;
  lua_pushcfunction(L, attach_body);
  lua_pushlightuserdata(L, loop);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return NULL;
  }
  corio_rt *rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}


/* Reports the main task's failure like lua.c: "corio: msg" and its
** traceback.  A cancelled main task counts as a failure unless SIGINT
** cancelled it (the binary then exits 130). */
static void report_main(corio_rt *rt, lua_State *L, int ti) {
  /* The binary after Ctrl-C: a main task ended by that CANCELLED says so
  ** in one line, as Node does; --debug keeps the traceback.  Any other
  ** error (one raised by its cleanup) is reported in full. */
  if (rt->sigint_quiet && !rt->debug) {
    lua_getiuservalue(L, ti, UV_RES);
    int cancelled = corio__is_error(L, -1, "CANCELLED");
    lua_pop(L, 1);
    if (cancelled) {
      fputs("corio: interrupted\n", stderr);
      fflush(stderr);
      rt->exit_code = 1;
      return;
    }
  }
  report_failure(rt, L, ti, "main");
  rt->exit_code = 1;
}


/* The host's run reports outside any pcall: each report runs protected
** (out of memory, "not enough memory" goes to the report hook and the
** exit code becomes 1).  [v, rt] -> (): fn(rt, L, 1). */
typedef void (*host_fn)(corio_rt *rt, lua_State *L, int vi);

static int host_body(lua_State *L) {
  host_fn fn = *(host_fn *)lua_touserdata(L, 3);
  corio_rt *rt = lua_touserdata(L, 2);
  lua_settop(L, 1);                           /* v at the top, as before */
  fn(rt, L, 1);
  return 0;
}

static void host_call(corio_rt *rt, host_fn fn, int vi, const char *what) {
  lua_State *L = rt->mainL;
  int top = lua_gettop(L);
  vi = lua_absindex(L, vi);
  if (lua_checkstack(L, 4)) {
    lua_pushcfunction(L, host_body);
    lua_pushvalue(L, vi);
    lua_pushlightuserdata(L, rt);
    lua_pushlightuserdata(L, &fn);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK) return;
  }
  lua_settop(L, top);
  corio__report_nomem(rt, what);
}

static void do_report_main(corio_rt *rt, lua_State *L, int vi) {
  report_main(rt, L, vi);
}

static void do_report_unobserved(corio_rt *rt, lua_State *L, int vi) {
  (void)L;
  (void)vi;
  report_unobserved(rt);
}

/* The message corio_spawn pushed: the main task could not start. */
static void do_report_spawn(corio_rt *rt, lua_State *L, int vi) {
  lua_pushnil(L);
  corio__report(rt, L, vi, "main", 0);
}


int corio_run(corio_runtime *rt) {
  if (rt == NULL) return CORIO_EINVAL;
  if (corio__busy(rt)) return CORIO_EBUSY;
  rt->host_run = 1;
  corio__loop(rt, NULL, 1);
  if (!rt->stopped) {           /* stopped: the host may run on later */
    corio__shutdown_tasks(rt);
    host_call(rt, do_report_unobserved, 0, "a failed task's report");
  }
  rt->stopped = 0;
  rt->host_run = 0;
  return rt->exit_code;
}


int corio_run_main(corio_runtime *rt, int nargs) {
  if (rt == NULL) return CORIO_EINVAL;
  if (corio__busy(rt)) return CORIO_EBUSY;
  lua_State *L = rt->mainL;
  if (corio_spawn(rt, nargs) != CORIO_OK) {   /* error message pushed */
    host_call(rt, do_report_spawn, -1, "the main task's start");
    lua_pop(L, 1);
    rt->exit_code = 1;
    return 1;
  }
  rt->host_run = 1;
  corio_task *t = lua_touserdata(L, -1);
  t->fut.observed = 1;                        /* reported here instead */
  rt->main_task = t;
  corio__loop(rt, t, 0);
  rt->main_task = NULL;
  if (t->state == T_DONE && t->fut.state == FUT_OK)
    corio__loop(rt, NULL, 1);                 /* wait for the others */
  else if (t->state == T_DONE)
    host_call(rt, do_report_main, -1, "the main task's report");
  lua_pop(L, 1);
  corio__shutdown_tasks(rt);
  host_call(rt, do_report_unobserved, 0, "a failed task's report");
  /* A corio_stop ended this run (the tasks left were cancelled above):
  ** the next run starts afresh, as after corio_run. */
  rt->stopped = 0;
  rt->host_run = 0;
  return rt->exit_code;
}


/* corio_free, once it is known to be allowed. */
void corio__free(corio_rt *rt) {
  lua_State *L = rt->mainL;
  corio__hub_sync(rt);
  corio__shutdown_tasks(rt);
  rt->closing = 1;
  corio__hub_detach(rt);        /* no post runs now; queued ones drop */
  if (!corio__await_borrows(rt)) {
    /* A pool thread still reads a string of this state (a write blocked
    ** for good): the state, the loop and the runtime stay allocated, as
    ** when a request never ends (rt_close_loop). */
    corio__teardown_stuck = 1;
    return;
  }
  /* Closing the state runs every __gc (closing handles), then the loop
  ** runs their close callbacks; the runtime memory goes last. */
  lua_getfield(L, LUA_REGISTRYINDEX, "corio.runtime");
  corio_rt **p = lua_touserdata(L, -1);
  if (p) *p = NULL;                           /* the sentinel lets go */
  lua_pop(L, 1);
  void *ud;
  lua_Alloc af = lua_getallocf(L, &ud);
  corio__alloc_closing(L);                    /* every __gc must run */
  lua_close(L);
  rt->lua_closed = 1;
  corio__freestate_alloc(af, ud);
  if (rt_close_loop(rt)) rt_release(rt);
}

/* }==================================================================== */
