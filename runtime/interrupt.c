/*
** interrupt.c -- reaching a step that never yields (the binary only).
**
** A task that spins (`while true do end`) never gives the loop back, so
** nothing that waits for the loop -- the SIGINT watcher, the SIGQUIT dump,
** the --debug slow-step report -- can run.  We do what lua.c does: a raw
** signal handler touches the Lua state only through lua_sethook (the one
** call Lua documents as safe there), and the hook then runs on the loop
** thread at the running step's next instruction (SIGINT: after a grace,
** see SIGINT_GRACE), where it may raise or look around:
**
**   SIGINT    the hook raises CANCELLED "interrupted" in the running step
**             (its <close> handlers and pcalls run); the loop side, once
**             it has control again, applies the policy (main.c: cancel
**             the main task, or the handler set by core.on_interrupt).  A
**             second SIGINT that arrives before the loop has handled the
**             first -- always, unless core.on_interrupt took over --
**             exits 130 from the handler.
**   SIGQUIT   (--debug) the hook dumps every task, the running one with
**             its traceback; the loop side dumps if no step was running.
**   watchdog  (--debug) a thread that sees one step run longer than
**             CORIO_SLOW_NS sends WATCH_SIG to the loop thread; the hook
**             reports the task and where it is, while it still runs.
**
** libuv's own handlers (the uv_signal watchers of main.c and of scripts)
** stay installed underneath: ours is chained in front and calls them.
** Not in debug mode the cost on the hot path is nil: the handlers are
** installed once, and the scheduler already records the running task.
**
** Limits: a step that spins inside a coroutine it resumed itself
** (coroutine.wrap) is reached when that coroutine yields or returns, and
** a step blocked in a C call (os.execute) when the call returns.
*/
#include <errno.h>      /* errno (saved by the handlers) */
#include <pthread.h>    /* pthread_kill, the watchdog thread */
#include <signal.h>     /* sigaction */
#include <stdatomic.h>  /* the requests shared with the handlers */
#include <stdio.h>      /* fprintf */
#include <string.h>     /* memset */
#include <unistd.h>     /* _exit */

#include "internal.h"

/* Requests for the hook, set by the handlers. */
enum { H_INT = 1, H_DUMP = 2, H_SLOW = 4 };

#define WATCH_SIG (SIGRTMIN + 4)
#define HOOK_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

static corio_rt *irt;                   /* the binary's one runtime */
static pthread_t loop_thread;
static atomic_int hook_req;             /* H_* not yet taken */
static atomic_int nsigint;              /* SIGINTs the loop has not seen */
static atomic_int custom;               /* core.on_interrupt took over */
static int delivered;                   /* the hook raised "interrupted" */
static struct sigaction old_int, old_quit, old_watch;
static int installed;

/* The hook a script had on the coroutine we hooked, given back when
** ours has run (a coverage tool's line hook must not be lost). */
static lua_Hook saved_hook;
static int saved_mask, saved_count;

static atomic_uint_fast64_t step_t0;    /* start of the running step, 0 */
static atomic_int watch_stop;
static pthread_t watch_thread;
static int watching;
static uv_mutex_t watch_mu;
static uv_cond_t watch_cv;


/* {====================================================================
** The hook
** ===================================================================== */

/* The Lua thread running now: the running task's coroutine, or the loop
** thread inside a callback.  NULL between steps. */
static lua_State *running(void) {
  corio_task *t = irt->current;
  if (t && t->co) return t->co;
  return irt->in_callback ? irt->L : NULL;
}


static void report_slow(lua_State *L) {
  uint64_t t0 = atomic_load(&step_t0);
  double ms = t0 ? (double)(uv_hrtime() - t0) / 1e6 : 0;
  luaL_checkstack(L, 8, NULL);
  if (irt->current) corio__push_label(irt, L, irt->current);
  else lua_pushliteral(L, "(a callback)");
  luaL_traceback(L, L, NULL, 0);
  fprintf(stderr, "corio: [debug] task %s has run for %.0f ms without "
          "awaiting, still running at:\n%s\n", lua_tostring(L, -2), ms,
          lua_tostring(L, -1));
  fflush(stderr);
  lua_pop(L, 2);
}


static void hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, saved_hook, saved_mask, saved_count);
  saved_hook = NULL;
  if (L != running()) return;           /* stale: that step has ended */
  int req = atomic_fetch_and(&hook_req, H_INT);   /* takes DUMP, SLOW */
  if (req & H_SLOW) report_slow(L);
  if (req & H_DUMP) corio__dump_tasks(irt, L);
  if ((req & H_INT) && (atomic_fetch_and(&hook_req, ~H_INT) & H_INT)) {
    delivered = 1;
    corio__push_error(L, "CANCELLED", NULL, "interrupted");
    lua_error(L);
  }
}


/* A SIGINT is raised in the running step only once that step has run
** this many more VM instructions (a few ms): a step that suspends before
** then leaves it to the loop side, which cancels the main task at its
** await as a script expects (its pcall around the await sees it); only a
** step that really does not yield is interrupted where it is.  (Raised at
** once, a Ctrl-C landing just after print("ready") and before the pcall
** that guards the next await skipped the script's cleanup.) */
#define SIGINT_GRACE 1000000

/* Hooks the running Lua thread (in a handler, on the loop thread): at its
** next instruction (count 1, every event) or after `count` of them. */
static void arm(int mask, int count) {
  lua_State *L = running();
  if (L == NULL) return;
  lua_Hook h = lua_gethook(L);
  if (h != hook) {
    saved_hook = h;
    saved_mask = lua_gethookmask(L);
    saved_count = lua_gethookcount(L);
  } else if (lua_gethookcount(L) == 1) {
    return;                             /* already armed to run at once */
  }
  lua_sethook(L, hook, mask, count);
}

/* }==================================================================== */


/* {====================================================================
** The handlers
** ===================================================================== */

static void chain(const struct sigaction *old, int sig, siginfo_t *si,
                  void *uc) {
  if (old->sa_flags & SA_SIGINFO) {
    if (old->sa_sigaction) old->sa_sigaction(sig, si, uc);
  } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
    old->sa_handler(sig);
  }
}


static void on_signal(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  if (!pthread_equal(pthread_self(), loop_thread)) {
    pthread_kill(loop_thread, sig);     /* the hook is for the loop's */
  } else if (sig == SIGINT) {
    if (atomic_fetch_add(&nsigint, 1) > 0) _exit(130);
    atomic_fetch_or(&hook_req, H_INT);
    arm(LUA_MASKCOUNT, SIGINT_GRACE);
    chain(&old_int, sig, si, uc);       /* libuv: wakes the loop side */
  } else if (sig == SIGQUIT) {
    atomic_fetch_or(&hook_req, H_DUMP);
    arm(HOOK_MASK, 1);
    chain(&old_quit, sig, si, uc);
  } else {                              /* WATCH_SIG */
    atomic_fetch_or(&hook_req, H_SLOW);
    arm(HOOK_MASK, 1);
  }
  errno = saved;
}


static void install(int sig, struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, old);
}

/* }==================================================================== */


/* {====================================================================
** The watchdog (--debug)
** ===================================================================== */

static void *watchdog(void *arg) {
  (void)arg;
  uint64_t reported = 0;
  uv_mutex_lock(&watch_mu);
  while (!atomic_load(&watch_stop)) {
    uv_cond_timedwait(&watch_cv, &watch_mu, CORIO_SLOW_NS / 4);
    uint64_t t0 = atomic_load(&step_t0);
    if (t0 && t0 != reported && uv_hrtime() - t0 > CORIO_SLOW_NS) {
      reported = t0;                    /* once per step */
      pthread_kill(loop_thread, WATCH_SIG);
    }
  }
  uv_mutex_unlock(&watch_mu);
  return NULL;
}


void corio__watch_step(uint64_t t0) {
  atomic_store_explicit(&step_t0, t0, memory_order_relaxed);
}

/* }==================================================================== */


void corio__interrupt_install(corio_rt *rt) {
  irt = rt;
  loop_thread = pthread_self();
  install(SIGINT, &old_int);
  if (rt->debug) {
    install(SIGQUIT, &old_quit);
    install(WATCH_SIG, &old_watch);
    uv_mutex_init(&watch_mu);
    uv_cond_init(&watch_cv);
    watching = pthread_create(&watch_thread, NULL, watchdog, NULL) == 0;
  }
  installed = 1;
}


void corio__interrupt_remove(void) {
  if (!installed) return;
  installed = 0;
  if (irt->debug) {
    if (watching) {
      uv_mutex_lock(&watch_mu);
      atomic_store(&watch_stop, 1);
      uv_cond_signal(&watch_cv);
      uv_mutex_unlock(&watch_mu);
      pthread_join(watch_thread, NULL);
    }
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(WATCH_SIG, &old_watch, NULL);
  }
  sigaction(SIGINT, &old_int, NULL);
  irt = NULL;
}


int corio__interrupt_seen(void) {
  atomic_fetch_and(&hook_req, ~H_INT);  /* a late hook must not raise */
  int d = delivered;
  delivered = 0;
  if (atomic_load(&custom)) atomic_store(&nsigint, 0);
  return d;
}


int corio__interrupt_pending(void) {
  return !atomic_load(&custom) && atomic_load(&nsigint) > 0;
}


int corio__dump_pending(void) {
  return (atomic_fetch_and(&hook_req, ~H_DUMP) & H_DUMP) != 0;
}


void corio__interrupt_custom(int on) {
  atomic_store(&custom, on);
}
