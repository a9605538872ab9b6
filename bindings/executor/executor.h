/*
** executor.h -- what the files of corio.executor share.
**
**   marshal.c     the value encoding (caller -> job -> caller)
**   engine.c      runs one encoded job in a worker lua_State; used by
**                 worker threads and worker processes alike
**   executor.c    calls (run, map), cancellation, the Lua API
**   threadpool.c  the thread pool and the interrupt signal
**   procpool.c    the process pool: child corio processes over a pipe
**
** A job travels as one message (an xbuf):
**   request  [u8 MSG_JOB][u8 flags][varint n] fn-bytecode arg1 ... argn-1
**   reply    [u8 status ][u8 flags][varint n] values...
** with status REP_OK (values = results), REP_ERROR (values = error value,
** traceback string) or REP_INTERRUPTED (no values).  flags bit 0 says the
** message holds table back-references (see marshal.c).  Over a pipe each
** message is preceded by its length as a native u32.
*/
#ifndef CORIO_EXECUTOR_H
#define CORIO_EXECUTOR_H

#include <signal.h>   /* sig_atomic_t */

#include "shared.h"    /* the core, and what modules offer each other */

enum { MSG_JOB = 0x4a };                      /* 'J' */
enum { REP_OK = 0, REP_ERROR = 1, REP_INTERRUPTED = 2 };

/* Deepest table nesting a message may hold. */
#define XMAX_DEPTH 10000

/* Nesting of coroutines in a job that an interrupt can reach (Lua's own
** C-stack limit, LUAI_MAXCCALLS, is 200). */
#define XMAX_COS 200

/* The signal that interrupts a running job: pthread_kill to a worker
** thread, kill(2) to a worker process.  SIGURG is ignored by default and
** practically unused (the Go runtime uses it for the same purpose); an
** earlier handler still gets the signals that are not ours. */
#define XINTERRUPT_SIG SIGURG

/* Error code of a job whose worker process died. */
#define XDIED_CODE "WORKER_DIED"


/* {====================================================================
** Byte buffers: malloc'ed, so they can cross threads and pipes
** ===================================================================== */

typedef struct xbuf {
  char *p;
  size_t len, cap;
} xbuf;

int xbuf_reserve(xbuf *b, size_t extra);      /* 0, or -1 out of memory */
void xbuf_free(xbuf *b);

/* }==================================================================== */


/* {====================================================================
** marshal.c: encoding
** ===================================================================== */

/* An encoder writes values of one state into a message.  Errors are
** returned, never raised (the caller frees, then raises): encode functions
** return NULL or a static message such as "cannot copy a function". */
typedef struct xenc {
  lua_State *L;
  xbuf *b;
  int visited;                 /* stack index of the visited table, or 0 */
  int ntables;
  int refs;                    /* a back-reference was written */
  int depth;
} xenc;

void xenc_init(xenc *e, lua_State *L, xbuf *b);  /* b may hold a prefix */
int xenc_header(xenc *e, int kind, int n);    /* 0, or -1 out of memory */
const char *xenc_value(xenc *e, int idx);     /* stack balanced */
void xenc_finish(xenc *e);                    /* patches flags; pops the
                                                 visited table */

/* Pushes the bytecode of the Lua function at idx (cached per function);
** returns NULL, or a message when it cannot travel (a C function, an
** upvalue other than _ENV) and then pushes nothing. */
const char *xenc_function(lua_State *L, int idx);

/* Decodes a message's header: kind/status and the number of values;
** returns a pointer to the first value, or NULL if malformed. */
const char *xdec_header(const char *p, size_t len, int *kind, int *flags,
                        int *n);

/* Pushes the n values that start at p (end at lim) onto L; raises on a
** malformed message or out of memory, so call it under a protected call.
** Returns the position after the last value. */
const char *xdec_values(lua_State *L, const char *p, const char *lim,
                        int flags, int n);

/* }==================================================================== */


/* {====================================================================
** engine.c: the job engine (runs in a worker thread or process)
** ===================================================================== */

typedef struct xengine {
  lua_State *L;                /* worker state, NULL until first job */
  _Atomic int running;         /* inside the job's protected call */
  _Atomic int interrupt;       /* the job must stop */
  int hooked;                  /* the interrupt hook was armed */
  int ncache;                  /* functions in the state's job cache */
  int child;                   /* in a worker process, a signal carries */
  int seq;                     /*   the number of the job to interrupt: */
  volatile sig_atomic_t kill_seq;  /* the last one asked for */
  lua_State *cos[XMAX_COS];    /* coroutines being resumed, outermost */
  volatile sig_atomic_t ncos;  /*   first: the interrupt hooks them too */
} xengine;

/* Runs the request in `in` and writes the reply into `out` (emptied
** first).  Returns 0, or -1 if no reply could be built (out of memory).
** After an interrupted job the worker state is closed (the next job gets
** a fresh one), so a job can never see what a killed one left behind. */
int xeng_run(xengine *e, const char *in, size_t len, xbuf *out);
void xeng_close(xengine *e);

/* The engine running on this thread, for the interrupt signal handler.
** initial-exec: reading it in a signal handler must not allocate (the
** general-dynamic model of a dlopen'ed corio.so may, on first use). */
extern _Thread_local xengine *xeng_current
  __attribute__((tls_model("initial-exec")));

/* Called from the interrupt signal handler on the engine's own thread:
** arms the instruction-count hook if a job is running and must stop. */
void xeng_on_signal(xengine *e);

/* Installs the interrupt signal handler (once per process). */
void xeng_install_signal(void);

/* }==================================================================== */


/* {====================================================================
** executor.c <-> procpool.c
** ===================================================================== */

typedef struct xcall xcall;
typedef struct xjob xjob;

/* A job: one function call to run in a worker. */
struct xjob {
  xjob *next, *prev;           /* queue links */
  xcall *call;                 /* what waits for it */
  int index;                   /* position in a map() */
  unsigned char state;         /* J_* */
  unsigned char status;        /* REP_* once done; J_DIED for dead worker */
  xbuf msg;                    /* request, then reply */
  void *worker;                /* running on (thread or process worker) */
  void *pool;                  /* process pool: where it was submitted */
  uv_write_t wreq;             /* process pool: sending the request */
  xbuf sent;                   /* process pool: the request being sent */
  int writing;                 /* wreq in flight: keep msg alive */
  uint64_t submitted;          /* thread pool: uv_hrtime() at submit */
  char died[160];              /* process pool: why the worker died */
};

enum { J_NEW = 0, J_QUEUED, J_RUNNING, J_DONE };   /* state */
#define J_DIED 0x10            /* status: the worker process died */

/* What keeps the loop alive while someone waits for a job: a never-sent
** async handle, referenced only while `awaited` > 0 (the thread pool also
** uses it to hear from its workers). */
typedef struct xhold {
  uv_async_t async;
  corio_rt *rt;
  int awaited;
} xhold;

void xhold_add(xhold *h, int delta);

/* Thread pool (threadpool.c). */
typedef struct xtpool xtpool;
xtpool *xtpool_new(corio_rt *rt, int n);     /* NULL: out of memory */
int xtpool_submit(xtpool *p, xjob *j);        /* 0 or a libuv error */
int xtpool_cancel(xtpool *p, xjob *j);        /* 1: dropped, free it;
                                                 0: interrupted, it comes
                                                 back through the done list */
void xtpool_close(xtpool *p);                 /* no more jobs; workers
                                                 leave once idle */
void xtpool_teardown(xtpool *p);              /* cancel, interrupt, join;
                                                 never touches Lua */

/* Delivers a finished job to its call (loop thread); frees the job. */
void xcall_job_done(corio_rt *rt, xjob *j);

/* Frees a job (its call must not need it any more). */
void xjob_free(xjob *j);

/* Frees a job and lets its call go if nothing needs it (no Lua). */
void xjob_forget(xjob *j);

/* Process pool (procpool.c). */
typedef struct xproc xproc;
xproc *xproc_new(corio_rt *rt, int n, lua_State *L, int optidx);
                                              /* raises on a bad command */
void xproc_submit(xproc *pp, xjob *j);
void xproc_cancel(xproc *pp, xjob *j);        /* drop queued / interrupt */
void xproc_close(xproc *pp);                  /* no more jobs; exits when
                                                 idle */
void xproc_teardown(xproc *pp);               /* at state close: cancel,
                                                 interrupt, reap; the
                                                 memory goes with the
                                                 close callbacks */
int xproc_worker_main(lua_State *L);          /* _worker(fd) in a child */

int luaopen_corio_executor(lua_State *L);

/* }==================================================================== */

#endif
