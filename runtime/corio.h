/*
** corio.h -- the public C API of corio: asyncio for Lua 5.4 on libuv.
**
** A host creates a runtime (one libuv loop, one Lua state), loads code,
** spawns tasks and runs the loop -- to the end, until one task is done,
** or one turn at a time from a main loop of its own.  Rules:
**   - every call is made from the thread that runs the loop, unless its
**     comment says "any thread";
**   - calls return CORIO_OK (0) or a negative CORIO_E* code; none raises
**     into the host or aborts, also when memory runs out;
**   - on a borrowed loop, teardown closes only corio's own handles;
**   - process-wide changes (SIGPIPE and SIGXFSZ ignored, the executor's
**     interrupt signal) are made only without CORIO_NO_SIGNALS.
** docs/EMBEDDING.md has the three host shapes and the rules of each call.
** C99 builds need _POSIX_C_SOURCE=200809L (or _GNU_SOURCE), as uv.h does.
*/
#ifndef CORIO_H
#define CORIO_H

#include <stddef.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#include <lua.h>      /* inside: Lua's own header has no extern "C" */

#if defined(__GNUC__)
#define CORIO_API __attribute__((visibility("default")))
#else
#define CORIO_API
#endif

/* Status codes. */
#define CORIO_OK        0
#define CORIO_EBUSY    (-1)   /* called from inside a run, task or post */
#define CORIO_ECLOSED  (-2)   /* the runtime is gone (corio_free ran) */
#define CORIO_EFULL    (-3)   /* the port's queue holds port_queue_max items */
#define CORIO_ESTATE   (-4)   /* already settled or cancelled; stopped */
#define CORIO_ENOMEM   (-5)   /* out of memory */
#define CORIO_EINVAL   (-6)   /* a bad argument (NULL, wrong type) */
#define CORIO_ERROR    (-7)   /* the awaited task or future failed */

typedef struct corio_rt corio_runtime;          /* opaque */
typedef struct corio_port corio_port;           /* opaque, refcounted */
typedef struct corio_future corio_future;       /* opaque, refcounted */

typedef enum {
  CORIO_RUN_DEFAULT,          /* until nothing is left to do, or stopped */
  CORIO_RUN_ONCE,             /* one turn; waits for I/O if need be */
  CORIO_RUN_NOWAIT            /* one turn; never blocks */
} corio_run_mode;

typedef enum {
  CORIO_REPORT_UNHANDLED,     /* a failed task nobody awaited */
  CORIO_REPORT_CALLBACK,      /* a raising callback, posted fn or done
                                 callback */
  CORIO_REPORT_WARNING        /* Lua's warn(), on by default with a hook */
} corio_report_kind;

/* Gets every error nobody else will see, on the loop thread; msg is one
** line, traceback may be NULL.  Neither string outlives the call. */
typedef void (*corio_report_fn)(void *ud, corio_runtime *rt,
                                corio_report_kind kind, const char *msg,
                                const char *traceback);
/* Runs on the loop thread, protected (an error is reported as
** CORIO_REPORT_CALLBACK); it may use the Lua state. */
typedef void (*corio_post_fn)(corio_runtime *rt, void *ud);
/* Frees the data of a post that will never run (any thread). */
typedef void (*corio_drop_fn)(void *ud);
/* Pushes a future's results onto L; returns their count (loop thread,
** protected). */
typedef int (*corio_push_fn)(lua_State *L, void *ud);

#define CORIO_NO_SIGNALS 1u   /* leave every signal disposition alone */

typedef struct corio_config {
  size_t size;                /* set by corio_config_init; fields may be
                                 appended in later versions */
  lua_Alloc alloc;            /* the Lua heap; NULL: corio's slab allocator */
  void *alloc_ud;
  uv_loop_t *loop;            /* NULL: a loop of its own; else borrowed:
                                 never walked, never closed */
  unsigned flags;             /* CORIO_NO_SIGNALS */
  corio_report_fn report;     /* NULL: print to stderr as the binary does */
  void *report_ud;
  size_t port_queue_max;      /* items queued per port; 0: unbounded */
} corio_config;

/* "MAJOR.MINOR.PATCH".  Any thread. */
CORIO_API const char *corio_version(void);
/* A short description of a CORIO_* code.  Any thread. */
CORIO_API const char *corio_strerror(int code);

/* Fills cfg with the defaults. */
CORIO_API void corio_config_init(corio_config *cfg);
/* Creates a runtime: a Lua state with the standard libraries and every
** corio module preloaded (require "corio" works), on its own or the
** borrowed loop.  The thread that calls it is the loop thread.  NULL on
** failure, with the code in *err if err is not NULL. */
CORIO_API corio_runtime *corio_create(const corio_config *cfg, int *err);
/* corio_create with the defaults. */
CORIO_API corio_runtime *corio_new(void);
/* Installs a runtime into an existing Lua state (its allocator is kept),
** driving loop (NULL: a loop of its own); it lives until lua_close.  This
** is what require "corio" does in a stock lua5.4.  NULL when out of
** memory.  Returns the state's runtime if it has one. */
CORIO_API corio_runtime *corio_attach(lua_State *L, uv_loop_t *loop);
/* Cancels every task and lets it unwind, drops queued posts (their drop
** hooks run), settles pending C futures with ABANDONED, closes corio's
** handles, the Lua state (if corio_create made it) and its own loop.  No
** corio callback runs after it returns.  CORIO_EBUSY from inside a run,
** task or posted function (nothing is freed then).  On a runtime made by
** corio_attach it only returns CORIO_EINVAL: lua_close frees that one. */
CORIO_API int corio_free(corio_runtime *rt);

/* Access. */
CORIO_API lua_State *corio_state(corio_runtime *rt);
CORIO_API uv_loop_t *corio_loop(corio_runtime *rt);
/* The runtime of the state L belongs to (any coroutine of it); NULL if
** it has none. */
CORIO_API corio_runtime *corio_from_state(lua_State *L);
/* Makes require(name) call open (package.preload). */
CORIO_API int corio_register_module(corio_runtime *rt, const char *name,
                                    lua_CFunction open);
/* Replaces the report hook (NULL: print to stderr). */
CORIO_API void corio_set_report(corio_runtime *rt, corio_report_fn fn,
                                void *ud);

/* Pops a function and its nargs arguments and pushes a new Task that
** runs it on a later turn.  CORIO_OK, or a code with an error message
** pushed instead of the Task. */
CORIO_API int corio_spawn(corio_runtime *rt, int nargs);

/* Runs the loop until every task has finished and nothing keeps it alive,
** as the corio binary does.  Returns the binary's exit code: 0, 1 after an
** unhandled error, 130 after SIGINT; or CORIO_EBUSY. */
CORIO_API int corio_run(corio_runtime *rt);
/* Pops a function and its nargs arguments and runs it as the main task,
** as the binary runs a script.  Returns an exit code, as corio_run. */
CORIO_API int corio_run_main(corio_runtime *rt, int nargs);
/* Runs the loop until the Task or Future at idx is done.  >= 0: that many
** results pushed.  < 0: a code with an error value pushed (CORIO_ERROR:
** the task failed or was cancelled; CORIO_ESTATE: corio_stop was called,
** or nothing is left that could finish it).  The other tasks go on. */
CORIO_API int corio_run_until(corio_runtime *rt, int idx);
/* Runs the loop in one of libuv's modes.  > 0: more to do (or stopped),
** 0: idle, < 0: a code. */
CORIO_API int corio_loop_run(corio_runtime *rt, corio_run_mode mode);
/* The fd to poll for readability before corio_loop_run(NOWAIT); -1
** where there is none. */
CORIO_API int corio_backend_fd(corio_runtime *rt);
/* How long the host may wait before the next corio_loop_run, in ms; -1
** for no limit, 0 while tasks are ready. */
CORIO_API int corio_backend_timeout(corio_runtime *rt);
/* Any thread: the current run returns after this turn (the next run, if
** none is running). */
CORIO_API void corio_stop(corio_runtime *rt);

/* Ports: a way in from other threads.  An open port keeps the loop alive
** (it is a wake source: its awaiters are never a "deadlock").  A port
** outlives its runtime: after corio_free, posts return CORIO_ECLOSED. */
CORIO_API corio_port *corio_port_open(corio_runtime *rt);  /* NULL: ENOMEM */
/* Any thread: one more reference to p (returns p). */
CORIO_API corio_port *corio_port_dup(corio_port *p);
/* Any thread: queues fn(rt, ud) to run on the loop thread.  Every post
** consumes ud: fn or drop (if not NULL) runs exactly once, also when the
** result is CORIO_EFULL, CORIO_ECLOSED or CORIO_ENOMEM.  Posts run FIFO per
** producer thread, at most 1,000 per loop turn. */
CORIO_API int corio_port_post(corio_port *p, corio_post_fn fn, void *ud,
                              corio_drop_fn drop);
/* Any thread: drops a reference; the last one frees the port (items
** already posted still run). */
CORIO_API void corio_port_close(corio_port *p);

/* C futures: a Future that C code settles.  corio_future_new pushes a
** corio.Future onto L (loop thread) and returns the C side, holding one
** reference; NULL (nothing pushed) when out of memory.  Cancelling the
** task that awaits it cancels it (on_cancel runs on the loop thread);
** a resolve or reject after that returns CORIO_ESTATE and drops. */
CORIO_API corio_future *corio_future_new(lua_State *L);
/* Any thread: settles it with the values push(L, ud) pushes on the loop
** thread; drop(ud) runs instead if they will never be pushed. */
CORIO_API int corio_future_resolve(corio_future *f, corio_push_fn push,
                                   void *ud, corio_drop_fn drop);
/* Any thread: fails it with a corio.Error {code=, message=} (both
** strings are copied). */
CORIO_API int corio_future_reject(corio_future *f, const char *code,
                                  const char *msg);
/* Any thread: 1 once it was cancelled, else 0. */
CORIO_API int corio_future_cancelled(corio_future *f);
/* Loop thread: fn(rt, ud) runs once when it is cancelled (at once if it
** already was); a later call replaces an earlier one. */
CORIO_API void corio_future_on_cancel(corio_future *f, corio_post_fn fn,
                                      void *ud);
/* Any thread: drops the reference.  Released unsettled, its awaiters get
** an ABANDONED error. */
CORIO_API void corio_future_release(corio_future *f);

/* The `corio` module for stock lua5.4 (require "corio"). */
CORIO_API int luaopen_corio(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
