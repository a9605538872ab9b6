/*
** internal.h -- the private table of contents of the corio core.
**
** Everything here is shared between files of runtime/ and bindings/ and is
** not part of the public embedding API (corio.h).  Each helper carries a
** one-line contract; stack effects are noted as [-pop, +push].
*/
#ifndef CORIO_INTERNAL_H
#define CORIO_INTERNAL_H

#include <stdatomic.h> /* atomic_int: borrows */
#include <stdint.h>   /* uint32_t, uint64_t */
#include <stddef.h>   /* offsetof */

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#include "corio.h"

/* The version comes from the VERSION file, through the Makefile. */
#ifndef CORIO_VERSION
#error "CORIO_VERSION is not defined: build with make (it reads VERSION)"
#endif

/* How many ready entries one loop turn may run before polling I/O again. */
#define CORIO_TURN_BUDGET 4096

/* Once memory has run out, shutdown waits this long without a task
** finishing before it drops the tasks left (runtime.c). */
#define CORIO_STALL_MS 250

/* --debug reports a step that holds the loop longer than this. */
#define CORIO_SLOW_NS (100 * 1000000ull)

/* Finished coroutines kept for reuse by new tasks. */
#define CORIO_THREAD_POOL 256

#define container_of(p, type, field) \
  ((type *)((char *)(p) - offsetof(type, field)))

/* Registry-index keys (light userdata addresses are unique). */
extern const char corio__key_rt;         /* runtime pointer */

/* Metatable names. */
#define CORIO_TASK_MT    "corio.Task"
#define CORIO_FUTURE_MT  "corio.Future"
#define CORIO_HANDLE_MT  "corio.Handle"
#define CORIO_ERROR_MT   "corio.Error"
#define CORIO_CTXVAR_MT  "corio.ContextVar"


/* {====================================================================
** Ready queue entries
** ===================================================================== */

enum { NODE_TASK = 1, NODE_HANDLE = 2 };

/* Intrusive link embedded first in every runnable object. */
typedef struct corio_node {
  struct corio_node *next;
  unsigned char kind;          /* NODE_TASK or NODE_HANDLE */
  unsigned char queued;        /* 1 while linked in a queue */
} corio_node;

typedef struct corio_queue {
  corio_node *head, *tail;
} corio_queue;

/* }==================================================================== */


/* {====================================================================
** Timer heap: one uv_timer drives every sleep and call_later.
** ===================================================================== */

struct corio_rt;

/* Embedded right after the ready-queue node of its owner (a task or a
** handle), which is how corio__timer_fired finds the owner's kind: no
** callback pointer per entry. */
typedef struct corio_tentry {
  uint64_t due;                /* loop time in ms */
  uint32_t seq;                /* FIFO among equal deadlines; compared
                                  modulo 2^32 (seq_before) */
  int hidx;                    /* index in the heap, -1 when not armed */
} corio_tentry;

/* }==================================================================== */


/* {====================================================================
** Futures and tasks
** ===================================================================== */

enum { FUT_PENDING = 0, FUT_OK, FUT_FAILED, FUT_CANCELLED };
enum { TYPE_FUTURE = 1, TYPE_TASK = 2,
       TYPE_CFUTURE = 3 };             /* a C future's Lua side (cfuture.c) */

/* Uservalue slots of a Future or Task.  Two, not three: a task's
** function and the extras table share the first slot (the extras, when
** made, keep the function as `fn`), which saves 16 bytes on every task. */
#define UV_AUX   1             /* a future's extras; a task's function, or
                                  its extras if fut.has_extra.  Extras:
                                  name, callbacks, traceback, cancel
                                  message, context */
#define UV_RES   2             /* results (one value inline, else a table);
                                  a task's spawn arguments before it starts */
#define FUT_NUV  2

struct corio_task;

/* The part a Task shares with a Future. */
typedef struct corio_fut {
  unsigned char type;          /* TYPE_FUTURE or TYPE_TASK */
  unsigned char state;         /* FUT_* */
  unsigned char observed;      /* someone awaited it or read its outcome */
  unsigned char has_extra;     /* UV_AUX holds the extras table */
  int nres;                    /* number of results stored in UV_RES */
  struct corio_task *whead, *wtail;  /* tasks suspended in await() */
} corio_fut;

enum {                          /* task->state */
  T_NEW = 0,                    /* spawned, waiting for its first run */
  T_RUNNING,                    /* inside lua_resume */
  T_WAITING,                    /* suspended in an await */
  T_READY,                      /* woken, queued to resume */
  T_DONE                        /* finished; see fut.state */
};

enum {                          /* what the resumed await does */
  WAKE_VALUES = 0,              /* return the pushed values */
  WAKE_RAISE,                   /* raise the pushed value */
  WAKE_CANCEL,                  /* raise CANCELLED */
  WAKE_NOMEM                    /* raise the ENOMEM error made at start-up
                                   (protect.c: the waker ran out of memory) */
};

#define TF_CANCEL_REQ   0x01    /* raise CANCELLED at the next await */
#define TF_CANCEL_WAKE  0x02    /* raise CANCELLED when woken */
#define TF_DUE          0x04    /* its wait has a deadline (corio__wait_due:
                                   the timer entry is armed for it) */
#define TF_CORE_WAIT    0x08    /* suspended in core.wait (wakeable) */
#define TF_HAS_CTX      0x10    /* its extras hold a context table */
#define TF_CO_KEPT      0x20    /* UV_RES anchors its coroutine (it has
                                   suspended since it started) */
#define TF_ARGS         0x40    /* it was spawned with arguments (UV_RES
                                   held them) */
#define TF_HOLDS        0x80    /* --debug: it acquired a Lock or a
                                   BoundedSemaphore (corio.sync); finish()
                                   reports one still held */

typedef void (*corio_undo_fn)(struct corio_rt *rt, struct corio_task *t);

typedef struct corio_task {
  corio_node node;             /* ready-queue link; must be first */
  corio_tentry timer;          /* sleep deadline; right after node */
  corio_fut fut;
  lua_State *co;               /* the coroutine while started */
  struct corio_task *wnext, *wprev;  /* link in awaited future's list */
  corio_fut *awaiting;         /* what it is suspended on, or NULL */
  corio_undo_fn undo;          /* undoes the pending wait on cancel */
  const char *due_op;          /* TF_DUE: the op its TIMEOUT names */
  uint32_t token;              /* bumped at every suspension */
  uint32_t id;                 /* for the default name */
  int anchor;                  /* anchor slot, 0 when none */
  union {                      /* never needed at the same time: */
    int nargs;                 /* T_NEW: spawn arguments kept in UV_RES */
    int nwake;                 /* T_READY: values pushed for the resume */
  };
  int ncancel;                 /* cancel requests taken, minus uncancel()s
                                  (asyncio's cancelling()) */
  unsigned char state;         /* T_* */
  unsigned char wake;          /* WAKE_* */
  unsigned char flags;         /* TF_* */
} corio_task;

/* The Lua side of a C future: a Future (same metatable) with a pointer
** to its C side, NULL once the host let go. */
typedef struct corio_cfut {
  corio_fut fut;
  struct corio_future *c;
} corio_cfut;

/* }==================================================================== */


/* {====================================================================
** The hub: posts from other threads (port.c, cfuture.c)
** ===================================================================== */

enum { ITEM_POST = 0, ITEM_SETTLE, ITEM_RELEASE };

typedef struct corio_item {
  struct corio_item *next;
  int kind;                    /* ITEM_* */
  corio_post_fn fn;            /* ITEM_POST */
  void *ud;
  corio_drop_fn drop;
  struct corio_port *port;     /* ITEM_POST: its port, NULL once freed */
} corio_item;

typedef struct corio_hub {
  uv_mutex_t mu;               /* guards every field */
  int refs;                    /* the runtime, ports, C futures */
  int alive;                   /* open ports + pending held C futures */
  int stop;                    /* corio_stop was called */
  struct corio_rt *rt;         /* NULL once the runtime is freed */
  corio_item *head, *tail;
  size_t queue_max;            /* per port; 0: unbounded */
} corio_hub;

/* }==================================================================== */


/* {====================================================================
** Plain callbacks: call_soon / call_later / call_at
** ===================================================================== */

enum { H_PENDING = 0, H_DONE, H_CANCELLED };

typedef struct corio_handle {
  corio_node node;             /* must be first */
  corio_tentry timer;          /* right after node, as in a task */
  int anchor;                  /* anchor slot while pending */
  int nargs;
  unsigned char state;
} corio_handle;

/* corio__timer_fired finds an entry's owner through the node before it. */
_Static_assert(offsetof(corio_task, timer) == sizeof(corio_node) &&
               offsetof(corio_handle, timer) == sizeof(corio_node),
               "a timer entry must follow its owner's node");

/* }==================================================================== */


/* {====================================================================
** The runtime
** ===================================================================== */

enum {                          /* rt->loop_running */
  LOOP_TARGET = 1,              /* until one task is done (corio.run) */
  LOOP_ALL                      /* until nothing is left (the binary) */
};

typedef struct corio_rt {
  uv_loop_t *loop;
  int own_loop;                /* loop was created by us */
  lua_State *L;                /* thread driving the loop (callbacks use it) */
  lua_State *mainL;            /* the state's main thread */
  corio_task *current;         /* running task or NULL */
  corio_task *main_task;       /* task that corio.run waits for */

  corio_queue ready;           /* runs this turn */
  corio_queue deferred;        /* yield()/sleep(0): runs next turn */
  uv_check_t check;            /* runs the ready queue after poll */
  uv_idle_t idle;              /* keeps poll from blocking while ready */
  int idle_on;
  int in_turn;                 /* inside run_ready: no nested resume */
  int in_callback;             /* a call_soon/later callback runs on L */
  int stop_all;                /* corio__stop_all: leave the loop */
  int turn_budget;             /* steps left in this turn */
  struct corio_task *stepping; /* the task corio__step is working on */
  int step_phase;              /* how far that step got (sched.c STEP_*) */
  int fault_phase;             /* tests: raise when a step reaches it */
  int loop_running;            /* LOOP_*: 0 when the loop is not run */

  /* Timer heap (timerheap.c): a 4-ary heap kept as two parallel arrays,
  ** the entries and their keys. */
  corio_tentry **heap;
  uint32_t *heap_key;
  uint64_t timer_base;         /* ms that key 0 stands for */
  int heap_n, heap_cap;
  uint32_t timer_seq;
  uv_timer_t timer;
  uint64_t timer_due;          /* deadline the uv timer is armed for */
  int timer_on;

  /* Anchors (runtime.c): live tasks, pending handles and open bindings
  ** sit in numbered slots on the stacks of never-run chunk threads. */
  lua_State **chunks;
  int nchunks;
  int chunks_ref;              /* registry ref: table of the chunk threads */
  int *free_slots;             /* recycled slots */
  int free_n, free_cap, max_slot;  /* in use: max_slot - free_n */
  int slot_peak;               /* highest max_slot since the last refit */

  /* Finished coroutines kept for reuse (up to CORIO_THREAD_POOL) sit on
  ** the stack of this thread: taking or giving one back is a move
  ** between stacks, no table involved. */
  lua_State *poolL;
  int pool_ref;                /* registry ref of poolL */

  /* Metatables, compared by identity on hot paths (no name lookups). */
  const void *mt_task, *mt_future;
  int mt_task_ref, mt_future_ref;

  /* Bookkeeping. */
  uint32_t next_id;
  long ntasks;                 /* live (unfinished) tasks */
  long nhandles;               /* pending call_soon/later handles */
  int unobserved_ref;          /* weak table of failed, unobserved tasks */
  int reports_ref;             /* queue of errors to report at a safe point */
  int nreports;
  int errh_ref;                /* custom error handler or LUA_NOREF */
  int exit_code;               /* 1 once an unhandled error was reported */
  unsigned long nomem;         /* callbacks that ran out of memory */
  int enomem_ref;              /* the ENOMEM error of a task that could not
                                  start (made in advance: no memory then) */
  int nomem_reported;          /* that failure was reported once */
  int nomem_ref;               /* corio.Error ENOMEM "not enough memory":
                                  raised in a task whose waker (a libuv
                                  callback) ran out of memory */
  int closing;                 /* runtime is being torn down */
  int orphans;                 /* requests still running on libuv's pool
                                  for tasks that gave up on them */
  uv_prepare_t orphan_check;   /* while orphans > 0 (see corio__orphan) */
  int debug;                   /* --debug: report slow steps */
  int stdout_epipe_exit;       /* the binary: EPIPE on stdout ends it
                                  quietly (exit 0) */
  int sigint_quiet;            /* the binary cancelled the main task on
                                  SIGINT: report it in one line */

  /* Giving memory back after a burst (trim.c). */
  uv_timer_t trim_timer;
  int trim_armed;
  long trim_peak;              /* most live tasks since the last trim */
  size_t trim_floor;           /* free slab bytes after it */
  long trim_at_tasks;          /* live tasks when the timer was armed */
  size_t trim_at_slack;        /* free slab bytes then */
  int ctx_ref;                 /* context table outside tasks */

  /* Embedding (embed.c, port.c, track.c). */
  unsigned flags;              /* CORIO_NO_SIGNALS */
  int created;                 /* made by corio_create: corio_free closes
                                  the state */
  int host_run;                /* inside a corio_run* or corio_loop_run */
  int in_post;                 /* inside a posted function or hook */
  int stopped;                 /* corio_stop took effect in this run */
  int freeing;                 /* corio_free is running */
  int lua_closed;              /* corio_free closed the Lua state: every
                                  userdata is gone, also those whose __gc
                                  could not run (out of memory), so close
                                  callbacks must not write to them */
  corio_report_fn report;      /* the host's report hook, or NULL */
  void *report_ud;
  int warn_state;              /* Lua warn(): 0 off, 1 on, 2 continuing */
  size_t warn_len;
  char warn_buf[256];          /* the pieces of one warning, for a hook */
  corio_hub *hub;
  uv_async_t async;            /* wakes the loop for the hub */
  void **hset;                 /* corio's open handles (track.c) */
  struct corio_site **hsite;   /* --debug: what and where each one was
                                  created (parallel to hset), or NULL */
  size_t hset_cap, hset_n;
  int track_lost;              /* the set could not grow */
  long nreqs;                  /* thread-pool requests in flight */
  atomic_int borrows;          /* Lua strings pool threads still read
                                  (borrow.c) */
  struct corio_owned *owned;   /* the backstop list (owned.c) */
  int *reap;                   /* children to reap at teardown (reap.c) */
  int nreap, reap_cap;
} corio_rt;

/* }==================================================================== */


/* {====================================================================
** Cross-file helpers
** ===================================================================== */

/* runtime.c */
corio_rt *corio__attach(lua_State *L, uv_loop_t *loop, unsigned flags);
  /* the state's runtime, made if need be; raises when out of memory (the
     state's closing then frees what was made) */
void corio__free(corio_rt *rt);               /* corio_free's work */
void corio__orphan(corio_rt *rt, int delta);  /* a request whose task gave
                                                 up starts (+1) or ends (-1)
                                                 running alone */
extern int corio__teardown_stuck;             /* a runtime could not close
                                                 its loop (a request runs
                                                 on forever): exit without
                                                 joining libuv's threads */
corio_rt *corio__rt(lua_State *L);            /* runtime of a state; raises
                                                 if none */
corio_rt *corio__rt_or_null(lua_State *L);    /* never raises (for __gc) */
void corio__run_ready(corio_rt *rt);          /* one pass of the queue */
/* alloc.c: room for a new coroutine without a refused allocation?  The
** sizes are Lua 5.4's: a lua_State with its extra space, and a stack of
** 2 * LUA_MINSTACK + 5 slots. */
#define CORIO_THREAD_BYTES 208
#define CORIO_STACK_BYTES  ((2 * LUA_MINSTACK + 5) * 16)
int corio__can_alloc_thread(lua_State *L);
void corio__step_recover(corio_rt *rt);       /* after an error escaped a
                                                 step (sched.c) */
void corio__inject_fault(lua_State *L, corio_rt *rt, const char *phase);
void corio__kick(corio_rt *rt);               /* make the loop turn soon */
void corio__push_live(corio_rt *rt, lua_State *L, int slot); /* [-0,+1] */
int corio__anchor(corio_rt *rt, lua_State *L, int idx);  /* slot > 0 */
void corio__unanchor(corio_rt *rt, lua_State *L, int slot);
void corio__shrink_anchors(corio_rt *rt);     /* cut back to the top live slot */

/* trim.c and alloc.c: memory back to the system after a burst */
void corio__trim_init(corio_rt *rt);
void corio__trim_check(corio_rt *rt);         /* each turn: arm if a burst ended */
size_t corio__alloc_slack(lua_State *L);      /* mapped slab bytes not in use */
size_t corio__alloc_trim(lua_State *L);       /* unmaps free arenas */
void corio__loop(corio_rt *rt, corio_task *target, int all);
int corio__deadlock(corio_rt *rt, corio_task *t, lua_State *L);
  /* the binary's deadlock error raised in waiting t (0: not waiting) */
int corio__shutdown_tasks(corio_rt *rt);      /* cancel all, unwind; -1:
                                                 out of memory, gave up on
                                                 tasks that could not */
int corio__cancel_all(corio_rt *rt, const char *msg);  /* # asked */
void corio__close_anchored(corio_rt *rt, lua_State *L);  /* closes every
                                 server, watcher, signal handler, process
                                 handle kept alive by the loop, working on
                                 L (core.close_others, stop_all) */
void corio__stop_all(corio_rt *rt, const char *msg);  /* the binary's
                                                 first SIGINT after the main
                                                 task: close servers,
                                                 watchers, handlers; cancel
                                                 every task; stop the loop */

/* track.c: corio's own handles and requests on a possibly shared loop */
void corio__track(corio_rt *rt, uv_handle_t *h);    /* after its init */
void corio__untrack(corio_rt *rt, uv_handle_t *h);  /* in its close cb */
void corio__close_tracked(corio_rt *rt);      /* teardown: close the rest */
void corio__track_free(corio_rt *rt);
/* --debug: what a tracked handle is and the line that created it, kept
** until it is untracked (for the summaries of what is still open). */
typedef struct corio_site {
  const char *kind;            /* static: "Stream", "Server", ... */
  char where[];                /* "file:line" or "?" */
} corio_site;
void corio__track_site(corio_rt *rt, lua_State *L, uv_handle_t *h,
                       const char *kind, const char *where);
  /* no-op unless rt->debug: records kind and where (NULL: the first
     script frame of L, or of the running task if L is NULL) for h, which
     must be tracked already */
const char *corio__track_where(corio_rt *rt, uv_handle_t *h);
  /* the recorded "file:line" of h, or NULL */
int corio__l_open_handles(lua_State *L);
  /* core.open_handles() -> list of {kind=, created=, active=} for every
     tracked handle with a recorded site that is not closing, and every
     pending call_later/call_at timer made under --debug */
#define corio__req_start(rt) ((rt)->nreqs++)  /* a pool request submitted */
#define corio__req_end(rt)   ((rt)->nreqs--)  /* its callback ran */

/* borrow.c: a Lua string read by a thread-pool job (the bytes of
** fs.write_file) is anchored, but an anchor does not outlive the state:
** lua_close frees the string whatever holds it.  So each such job counts
** as a borrow, ended once its thread is done with the bytes (or the job
** was cancelled before it ran), and the state is not closed while one is
** out.  *flag is the job's own: ending twice is ending once. */
void corio__borrow(corio_rt *rt, atomic_int *flag);
void corio__borrow_end(corio_rt *rt, atomic_int *flag);  /* any thread */
int corio__await_borrows(corio_rt *rt);
  /* waits (without running the loop) up to CORIO_BORROW_MS for every
     borrow to end; 1 when none is left */
#define CORIO_BORROW_MS 2000
#define CORIO_ORPHAN_GRACE_MS 100   /* rt_close_loop: orphans about to end */

/* owned.c: binding objects closed at teardown even if their __gc did
** not run.  A binding embeds a corio_owned in each object that owns more
** than a bare handle, links it while open and unlinks it when freed. */
typedef struct corio_owned corio_owned;
typedef void (*corio_owned_fn)(corio_rt *rt, corio_owned *o);
  /* closes o's object through its own close path; o may be unlinked */
struct corio_owned {
  corio_owned *next, *prev;
  corio_owned_fn close;        /* NULL while not linked */
};
void corio__own(corio_rt *rt, corio_owned *o, corio_owned_fn close);
void corio__disown(corio_rt *rt, corio_owned *o);  /* no-op if not linked */
void corio__close_owned(corio_rt *rt);        /* teardown, after lua_close
                                                 (or in the runtime's own
                                                 __gc): every one left */

/* reap.c: children still running at teardown */
void corio__reap(corio_rt *rt, int pid, int detached);
  /* teardown closes pid's handle (libuv forgets it): SIGTERM it now and
     reap it in corio__reap_all; a detached child is only reaped if it
     has exited.  Never fails (out of memory it waits for pid now) */
void corio__reap_all(corio_rt *rt);           /* waits for them, SIGKILL
                                                 after a grace period */

/* port.c */
int corio__hub_init(corio_rt *rt);            /* 0 or a UV_ error */
void corio__hub_detach(corio_rt *rt);         /* drop what is queued */
void corio__hub_retain(corio_hub *hub);
void corio__hub_release(corio_hub *hub);      /* the last one frees */
void corio__hub_sync(corio_rt *rt);           /* loop kept alive or not */
void corio__hub_alive(corio_hub *hub, int delta);   /* any thread */
void corio__hub_push_locked(corio_hub *hub, corio_item *it);
void corio__call_protected(corio_rt *rt, corio_post_fn fn, void *ud);

/* protect.c: the Lua work of libuv callbacks */
int corio__protect(corio_rt *rt, lua_CFunction fn, void *ud, corio_task *t,
                   const char *what);
  /* runs fn on rt->L under lua_pcall, with ud as a light userdata at
     index 1; returns its status.  Never raises and allocates nothing
     before the call.  On an error: t, if it still waits, is woken with
     the ENOMEM error (corio__wake_nomem), else the failure is reported
     (corio__report_nomem, `what` names the callback) */
int corio__wake_with(corio_rt *rt, corio_task *t, lua_CFunction push,
                     void *ud, int kind);
  /* wakes t (if waiting) with what push(L) pushes (ud as a light
     userdata at index 1), made under lua_pcall; out of memory, with
     ENOMEM instead (its undo hook is not called: the waker completed the
     wait).  Never raises; returns LUA_OK or the push's error status */
void corio__wake_nomem(corio_rt *rt, corio_task *t);
  /* t, if waiting, has its wait undone and raises ENOMEM; never allocates */
void corio__report_nomem(corio_rt *rt, const char *what);
  /* "not enough memory (in what)" to the report hook or stderr, made
     without Lua; the exit code becomes 1 */

/* cfuture.c */
void corio__cfuture_item(corio_rt *rt, corio_item *it);  /* rt NULL: drop */
void corio__cfut_settled(corio_rt *rt, corio_fut *f);    /* Lua settled it */
void corio__cfut_cancel(corio_rt *rt, corio_fut *f);     /* awaiter gone */

/* embed.c */
void corio__stop_now(corio_rt *rt);           /* loop thread: corio_stop */
int corio__busy(corio_rt *rt);                /* inside a run, a task, a
                                                 callback, a post or free:
                                                 running the loop would
                                                 re-enter uv_run */
void corio__warnf(void *ud, const char *msg, int tocont);  /* ud: rt */

/* alloc.c */
lua_State *corio__newstate(void);             /* slab-allocated state */
lua_State *corio__setup_state(lua_State *L);  /* panic handler (L may be
                                                 NULL) */
void corio__freestate_alloc(lua_Alloc f, void *ud);  /* after lua_close */
lua_State *corio__newstate_host(lua_Alloc f, void *ud);  /* the host's
                                                 allocator, counted */
void corio__alloc_closing(lua_State *L);     /* lua_close comes: serve
                                                 refusals from the reserve */
unsigned long corio__alloc_refused(lua_State *L);  /* allocations refused
                                                 so far (0 if not known) */
extern int corio__test_refuse_sys;           /* tests only: while set, the
                                                 system refuses the default
                                                 allocators (as malloc
                                                 failing at teardown) */

/* debug.c */
void corio__debug_slow(corio_rt *rt, lua_State *L, corio_task *t,
                       uint64_t ns);          /* t (or a callback if NULL)
                                                 held the loop for ns */
void corio__dump_tasks(corio_rt *rt, lua_State *L);  /* every task's
                                                 stack, working on L */
void corio__push_label(corio_rt *rt, lua_State *L, corio_task *t);
                                              /* "name" or Task-<id> [-0,+1] */

/* interrupt.c (the binary): signals that reach a step that never yields */
void corio__interrupt_install(corio_rt *rt);  /* SIGINT; with rt->debug
                                                 SIGQUIT and the watchdog;
                                                 after main.c's watchers */
void corio__interrupt_remove(void);           /* before closing them */
int corio__interrupt_seen(void);              /* loop side of a SIGINT:
                                                 1 if the hook raised it in
                                                 a running step */
int corio__interrupt_pending(void);          /* a SIGINT came (and no
                                                 core.on_interrupt): exit
                                                 130 */
int corio__dump_pending(void);                /* loop side of SIGQUIT: 1 if
                                                 no hook dumped yet */
void corio__interrupt_custom(int on);         /* core.on_interrupt: a
                                                 second SIGINT no longer
                                                 exits once the first was
                                                 handled */
void corio__watch_step(uint64_t t0);          /* --debug: a step started at
                                                 t0 (0: ended) */
void corio__debug_watch(corio_rt *rt, lua_State *L, int fi);
  /* --debug: note where the Future or Task at fi was made, and report it
     if it is collected without ever being awaited */
int corio__l_tasks(lua_State *L);             /* core.tasks() */
int corio__l_cancel_pending(lua_State *L);    /* core._cancel_pending(t) */
int corio__l_where(lua_State *L);             /* core.where() */
int corio__where(lua_State *L, int level, char *buf, size_t n);
  /* "file:line" of the first script frame (not corio's own Lua code) at
     or above level of L into buf; 0 if L runs no Lua code */
void corio__debug_task_end(corio_rt *rt, lua_State *L, int ti,
                           corio_task *t);
  /* --debug: the task at ti (TF_HOLDS) ends; reports every Lock or
     BoundedSemaphore it still holds.  Never raises [-0,+0] */
int corio__l_debugging(lua_State *L);         /* core.debugging() */

/* module.c */
int corio__preload(lua_State *L);  /* built-in modules into package.preload */
void corio__open_core(lua_State *L);  /* loads corio.core unless loaded
                                         (its metatables) [-0,+0] */

/* queue helpers (sched.c) */
void corio__enqueue(corio_rt *rt, corio_node *n);        /* this turn */
void corio__enqueue_next(corio_rt *rt, corio_node *n);   /* next turn */

/* sched.c: suspend/wake protocol */
corio_task *corio__check_await(lua_State *L, corio_rt *rt, const char *op);
  /* the running task if L is its coroutine; raises a clear error outside
     tasks and CANCELLED when a cancel is pending */
int corio__suspend(lua_State *L, corio_rt *rt, corio_task *t,
                   corio_undo_fn undo);       /* yields; use as return */
int corio__suspend_k(lua_State *L, corio_rt *rt, corio_task *t,
                     corio_undo_fn undo, lua_KContext ctx, lua_KFunction k);
int corio__wait_due(corio_rt *rt, corio_task *t, uint64_t due,
                    const char *op);
  /* gives the wait t is about to enter (the next corio__suspend*, which
     must follow at once) a deadline: past `due` (corio__due_after) the
     wait is undone and raises TIMEOUT naming `op` (a static string);
     woken before, the deadline goes.  One timer entry per task, no
     allocation: a per-operation bound far cheaper than a corio.timeout
     scope.  Nonzero when the timer heap cannot grow (nothing armed) */
  /* corio__suspend whose resume continues in k(L, status, ctx) (a C
     function that has more to do once woken); use as return */
int corio__resumed(lua_State *L, corio_rt *rt, int base, int raise);
  /* first thing in a corio__suspend_k continuation: raises CANCELLED or
     the error the wake carried (with raise 0: leaves it on top and
     returns -1); else returns how many values the wake left above index
     base */
int corio__take_cancel(lua_State *L, corio_rt *rt);
  /* a cancel pending for the task running on L (what its next await
     would raise): taken and its CANCELLED error pushed, 1; else 0 */
void corio__wake(corio_rt *rt, corio_task *t, lua_State *from, int n,
                 int kind);                   /* moves n values [-n,+0] */
int corio__throw(corio_rt *rt, corio_task *t, lua_State *from);
  /* raise the value on top of from inside t's await [-1,+0]; 0 if t
     cannot take it now */
int corio__task_cancel(corio_rt *rt, corio_task *t, lua_State *L,
                       const char *msg);      /* 1 if the request was taken */
void corio__step(corio_rt *rt, corio_task *t);  /* resume one task */
void corio__push_task(corio_rt *rt, lua_State *L, corio_task *t); /* +1 */

/* future.c */
corio_fut *corio__to_fut(corio_rt *rt, lua_State *L, int idx);
  /* the Future or Task at idx, NULL if it is neither */
corio_fut *corio__check_fut(corio_rt *rt, lua_State *L, int idx); /* raises */
void corio__observe(lua_State *L, int fidx, corio_fut *f);
  /* someone saw its outcome: no unhandled-error report */
void corio__watch_failure(corio_rt *rt, lua_State *L, int fidx,
                          corio_fut *f);
  /* f failed and nobody saw it: report when collected or at exit */
void corio__fut_store(lua_State *L, int fidx, corio_fut *f, int n);
  /* pops n values from the top as the results [-n,+0] */
void corio__fut_complete(corio_rt *rt, lua_State *L, int fidx, corio_fut *f);
  /* results already stored; wakes waiters, schedules callbacks, watches
     a failure nobody saw */
int corio__fut_push_results(lua_State *L, int fidx, corio_fut *f);
  /* pushes the values or raises the error; returns count */
void corio__fut_extra(lua_State *L, int fidx);  /* extras, made if need be
                                                    [-0,+1] */
int corio__get_extra(lua_State *L, int fidx);  /* extras or nil [-0,+1];
                                                  returns the type */
void corio__fut_unlink(corio_fut *f, corio_task *t);
void corio__fut_metatable(lua_State *L, corio_rt *rt, const char *name,
                          const luaL_Reg *own, lua_CFunction tostring);
  /* pushes class name: Future's methods and own [-0,+1] */
void corio__open_future(lua_State *L, corio_rt *rt);  /* [-0,+0] adds to
                                                          module at -1 */

/* task.c */
void corio__open_task(lua_State *L, corio_rt *rt);
void corio__spawn(corio_rt *rt, lua_State *L, int nargs);
  /* pops fn and nargs args, pushes a new Task; raises on misuse */

/* timerheap.c */
int corio__timer_arm(corio_rt *rt, corio_tentry *e, uint64_t due);
  /* 0, or -1 when out of memory (then e is not armed) */
/* timer.c: the deadline of e passed (wakes the sleeper or queues the
** callback of the task or handle that embeds it). */
void corio__timer_fired(corio_rt *rt, corio_tentry *e);
void corio__timer_disarm(corio_rt *rt, corio_tentry *e);
uint64_t corio__due_after(corio_rt *rt, double seconds);
uint64_t corio__due_at(double t);
double corio__now(void);
void corio__timer_init(corio_rt *rt);

/* error.c */
int corio__error(lua_State *L, const char *code, const char *op,
                 const char *fmt, ...);       /* raises; never returns */
int corio__uverror(lua_State *L, int status, const char *op,
                   const char *path);         /* raises; never returns */
int corio__argerror(lua_State *L, int arg, const char *msg);
  /* luaL_argerror, but at the first line up the stack outside corio's own
     scripts (a C function called by a wrapper in scripts/ would name the
     wrapper's line): every binding's misuse error goes through it */
void corio__push_error(lua_State *L, const char *code, const char *op,
                       const char *msg);      /* [-0,+1] */
void corio__push_uverror(lua_State *L, int status, const char *op,
                         const char *path);   /* [-0,+1] */
int corio__is_error(lua_State *L, int idx, const char *code);
void corio__open_error(lua_State *L);         /* adds to module at -1 */
void corio__report(corio_rt *rt, lua_State *L, int eidx, const char *kind,
                   int tbidx);                /* unhandled error [-0,+0] */
void corio__flush_reports(corio_rt *rt);
int corio__msgh(lua_State *L);                /* traceback message handler */
void corio__traceback(lua_State *L, lua_State *L1, const char *msg,
                      int level);             /* cheap luaL_traceback */
void corio__tostring(lua_State *L, int idx);  /* [-0,+1] never raises */

/* context.c */
void corio__open_context(lua_State *L, corio_rt *rt);

/* timer.c: sleep, yield, now and plain callbacks (Handles) */
void corio__open_timer(lua_State *L, corio_rt *rt);
int corio__soon(corio_rt *rt, lua_State *L, int nargs);
  /* pops fn and nargs args, queues them as a callback [-(nargs+1),+0] */
int corio__handle_cancel(corio_rt *rt, lua_State *L, corio_handle *h);
  /* 1 if it was pending (it will not run), else 0 */

void corio__check_callable(lua_State *L, int idx);  /* function or __call */
void corio__store_call(lua_State *L, int ui, int fi, int nargs);
  /* fn and args at fi into user values 1 and 2 of the userdata at ui */

/* Push the upvalue rt in a Lua C function. */
#define RT_UPVALUE(L) ((corio_rt *)lua_touserdata((L), lua_upvalueindex(1)))

/* class.c: module set-up, the same for every module */
void corio__setfuncs(lua_State *L, corio_rt *rt, const luaL_Reg *l);
  /* registers l into the table at -1, each with rt as its upvalue */
int corio__newclass(lua_State *L, corio_rt *rt, const char *name,
                    const luaL_Reg *methods, const luaL_Reg *meta,
                    void *up);
  /* pushes the metatable `name`, built on the first call only (then
     returns 1, else 0): __index holds `methods`, the metatable `meta`
     (__gc, __close, __tostring, ...); each is a closure over (rt, up),
     or (rt, the metatable) when up is NULL [-0,+1] */
void corio__addmethods(lua_State *L, corio_rt *rt, const luaL_Reg *l,
                       void *up);
  /* adds l to the __index of the class at -1, upvalues as above [-0,+0] */

/* }==================================================================== */

#endif
