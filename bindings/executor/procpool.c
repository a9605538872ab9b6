/*
** procpool.c -- the process pool: every worker is a child corio process.
**
** A child runs `corio -e "require('corio.executor')._worker(3)"` (or the
** same through lua5.4 when corio is a module of a stock interpreter): a
** blocking loop over fd 3, one end of a socketpair made by uv_spawn.  The
** parent sends one job at a time to a worker, framed as
**   [u32 length][i32 job number][request]      parent -> child
**   [u32 length][reply]                        child -> parent
** (marshal.c's messages), so a crash, a leak or os.exit in a job cannot
** harm the parent.  The child's stdout and stderr are the parent's, so a
** job's print() shows; its stdin is /dev/null.
**
** A worker's first message is a hello ([u32 0]) sent once its interrupt
** handler is installed: XINTERRUPT_SIG (SIGURG) is ignored by default, so
** one sent to a child still starting was lost and a job cancelled then ran
** on for ever (seen under TSan, where a child takes 0.2 s to start; a
** cancel right after the spawn did it natively).  Until the hello, an
** interrupt is kept (kill_pending) and sent when it comes.
**
** A worker that dies (its pipe reaches EOF and its exit is reaped) fails
** the job it was running with a WORKER_DIED error that says how it died;
** the next queued job starts a new worker.  Cancelling a running job sends
** XINTERRUPT_SIG with sigqueue(), carrying the job number, so a late
** signal can never interrupt the next job of that worker.
**
** Lifecycle of a worker: spawned -> busy/idle -> (closed pool, or death)
** pipe and process handles closed -> freed in the last close callback.
** Teardown (state close): queued jobs are dropped, running ones
** interrupted, every pipe closed, and each child is reaped here (waitpid,
** SIGKILL after a grace period), so no zombie outlives the runtime.
*/
#include <errno.h>    /* EINTR */
#include <fcntl.h>    /* fcntl, FD_CLOEXEC */
#include <signal.h>   /* sigqueue */
#include <stdatomic.h>
#include <stdint.h>   /* uint32_t */
#include <stdio.h>    /* snprintf */
#include <stdlib.h>   /* calloc, free */
#include <string.h>   /* memcpy, strncmp */
#include <sys/wait.h> /* waitpid */
#include <time.h>     /* nanosleep */
#include <unistd.h>   /* read, write */
#ifdef __linux__
#include <sys/prctl.h>  /* PR_SET_PDEATHSIG */
#endif

#include "executor.h"

#define REAP_GRACE_MS 2000     /* teardown: then SIGKILL */

typedef struct xpw {
  struct xproc *pp;
  struct xpw *next;            /* the pool's list, until freed */
  uv_process_t proc;
  uv_pipe_t pipe;              /* the child's fd 3 */
  xjob *job;                   /* the job it runs */
  xbuf in;                     /* reply bytes read so far */
  char hdr[8];                 /* length and number of the job sent */
  int seq;                     /* number of the last job sent */
  int pid;
  int exited, eof;             /* exit reaped; pipe at EOF */
  int retiring;                /* no more jobs: its pipe is closed and
                                  its exit awaited */
  int ready;                   /* its hello came: it takes interrupts */
  int kill_pending;            /* interrupt its job once ready */
  int dead;                    /* out of the pool (retired or died) */
  int pipe_closed, proc_closed, nclose;
  int64_t exit_status;
  int term_signal;
} xpw;

struct xproc {
  xhold hold;                  /* must be first (executor.c casts) */
  xpw *workers;                /* every worker not yet freed */
  int max, nactive;            /* size; workers that take jobs */
  xjob *qhead, *qtail;         /* jobs waiting for a worker */
  char *argv[4];               /* the worker command */
  int closed;                  /* close(): no new jobs */
  int torn;                    /* torn down: no Lua any more */
  int nclose;                  /* workers + async not yet freed, + 1 for
                                  the executor until teardown */
};


static void pump(xproc *pp);


/* {====================================================================
** Worker processes
**
** A worker's two handles close separately: the pipe when the worker
** retires (the child sees EOF and exits) or dies, the process handle once
** its exit was reaped (closing it earlier would leave a zombie) or at
** teardown (which reaps by itself).  It is freed after both callbacks.
** ===================================================================== */

static void pool_unref(xproc *pp) {
  if (--pp->nclose > 0) return;
  for (int i = 0; i < 4; i++) free(pp->argv[i]);
  free(pp);
}


static void worker_close_cb(uv_handle_t *h) {
  xpw *w = h->data;
  corio__untrack(w->pp->hold.rt, h);
  if (--w->nclose > 0) return;
  xproc *pp = w->pp;
  for (xpw **p = &pp->workers; *p; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      break;
    }
  }
  xbuf_free(&w->in);
  free(w);
  pool_unref(pp);
}


static void close_pipe(xpw *w) {
  if (w->pipe_closed) return;
  w->pipe_closed = 1;
  uv_close((uv_handle_t *)&w->pipe, worker_close_cb);
}


static void close_proc(xpw *w) {
  if (w->proc_closed) return;
  w->proc_closed = 1;
  uv_close((uv_handle_t *)&w->proc, worker_close_cb);
}


/* Takes the worker out of the pool (it gets no more jobs). */
static void worker_out(xpw *w) {
  if (w->dead) return;
  w->dead = 1;
  w->pp->nactive--;
}


/* No more jobs for it: EOF to the child, which exits; reaped later. */
static void worker_retire(xpw *w) {
  w->retiring = 1;
  worker_out(w);
  close_pipe(w);
  if (w->exited) close_proc(w);
}


/* A job reached its end in this pool; hands it to its call. */
static void job_finish(xproc *pp, xjob *j) {
  if (j->writing) {                           /* the write cb finishes it */
    j->state = J_DONE;
    return;
  }
  if (pp->torn) xjob_forget(j);               /* nothing may touch Lua */
  else xcall_job_done(pp->hold.rt, j);
}


/* The worker is gone (EOF and exit both seen): fail its job, replace it. */
static void worker_dead(xpw *w) {
  xproc *pp = w->pp;
  xjob *j = w->job;
  w->job = NULL;
  worker_out(w);
  close_pipe(w);
  close_proc(w);
  if (j) {
    j->status = J_DIED;
    j->worker = NULL;
    if (w->term_signal)
      snprintf(j->died, sizeof j->died, "the worker process (pid %d) died "
               "while running the job: killed by signal SIG%s", w->pid,
               sigabbrev_np(w->term_signal) ? sigabbrev_np(w->term_signal)
                                            : "?");
    else
      snprintf(j->died, sizeof j->died, "the worker process (pid %d) died "
               "while running the job: exit code %d", w->pid,
               (int)w->exit_status);
    job_finish(pp, j);
  }
  pump(pp);
}


static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  xpw *w = p->data;
  w->exited = 1;
  w->exit_status = status;
  w->term_signal = sig;
  if (w->retiring) close_proc(w);
  else if (w->eof) worker_dead(w);
}


static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  xpw *w = h->data;
  (void)hint;
  if (xbuf_reserve(&w->in, 64 * 1024)) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = w->in.p + w->in.len;
  buf->len = w->in.cap - w->in.len;
}


/* Interrupts the worker's running job (now, or once it is ready). */
static void interrupt_job(xpw *w) {
  if (!w->ready) {
    w->kill_pending = 1;
    return;
  }
  w->kill_pending = 0;
  union sigval v;
  v.sival_int = w->seq;
  sigqueue(w->pid, XINTERRUPT_SIG, v);
}


/* Takes every complete reply out of w->in. */
static void take_replies(xpw *w) {
  for (;;) {
    uint32_t len;
    if (w->in.len < 4) return;
    memcpy(&len, w->in.p, 4);
    if (w->in.len < 4 + (size_t)len) {
      xbuf_reserve(&w->in, 4 + (size_t)len - w->in.len);
      return;
    }
    xjob *j = w->job;
    if (!w->ready) {                          /* the hello */
      w->ready = 1;
      if (w->kill_pending && j) interrupt_job(w);
      j = NULL;
    }
    if (j) {
      xbuf msg = {NULL, 0, 0};
      if (xbuf_reserve(&msg, len ? len : 1) == 0) {
        memcpy(msg.p, w->in.p + 4, len);
        msg.len = len;
      }
      xbuf_free(&j->msg);
      j->msg = msg;                           /* empty: out of memory */
      j->status = 0;
      j->worker = NULL;
      w->job = NULL;
    }
    memmove(w->in.p, w->in.p + 4 + len, w->in.len - 4 - len);
    w->in.len -= 4 + (size_t)len;
    if (j) {
      job_finish(w->pp, j);
      pump(w->pp);
    }
  }
}


static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  xpw *w = s->data;
  (void)buf;
  if (nread > 0) {
    w->in.len += (size_t)nread;
    take_replies(w);
  } else if (nread < 0) {                     /* EOF or error: dying */
    uv_read_stop(s);
    w->eof = 1;
    if (w->exited && !w->retiring) worker_dead(w);
  }
}


/* Starts a worker process; NULL with *err set when it cannot. */
static xpw *worker_spawn(xproc *pp, int *err) {
  uv_loop_t *loop = pp->hold.rt->loop;
  xpw *w = calloc(1, sizeof *w);
  if (w == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  w->pp = pp;
  uv_pipe_init(loop, &w->pipe, 0);
  w->pipe.data = w;
  w->proc.data = w;
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
  stdio[3].data.stream = (uv_stream_t *)&w->pipe;
  uv_process_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.file = pp->argv[0];
  opts.args = pp->argv;
  opts.exit_cb = on_exit_cb;
  opts.stdio = stdio;
  opts.stdio_count = 4;
  int rc = uv_spawn(loop, &w->proc, &opts);
  corio__track(pp->hold.rt, (uv_handle_t *)&w->pipe);
  corio__track(pp->hold.rt, (uv_handle_t *)&w->proc);
  w->nclose = 2;                              /* both handles initialised */
  pp->nclose++;
  w->next = pp->workers;
  pp->workers = w;
  pp->nactive++;
  if (rc == 0) {
    w->pid = w->proc.pid;
    rc = uv_read_start((uv_stream_t *)&w->pipe, on_alloc, on_read);
    if (rc != 0) {
      uv_process_kill(&w->proc, SIGKILL);
      worker_retire(w);                       /* reaped when it exits */
    }
  } else {
    w->exited = w->eof = 1;
    worker_dead(w);
  }
  if (rc != 0) {
    *err = rc;
    return NULL;
  }
  uv_unref((uv_handle_t *)&w->proc);
  uv_unref((uv_handle_t *)&w->pipe);
  return w;
}


static void on_write(uv_write_t *req, int status) {
  xjob *j = req->data;
  (void)status;                               /* a death shows as EOF */
  j->writing = 0;
  xbuf_free(&j->sent);
  if (j->state == J_DONE) job_finish(j->pool, j);
}


static void send_job(xpw *w, xjob *j) {
  j->sent = j->msg;                           /* until on_write */
  j->msg.p = NULL;
  j->msg.len = j->msg.cap = 0;
  uint32_t len = (uint32_t)j->sent.len;
  int32_t seq = ++w->seq;
  memcpy(w->hdr, &len, 4);
  memcpy(w->hdr + 4, &seq, 4);
  w->job = j;
  j->worker = w;
  j->state = J_RUNNING;
  uv_buf_t bufs[2];
  bufs[0] = uv_buf_init(w->hdr, 8);
  bufs[1] = uv_buf_init(j->sent.p, (unsigned)j->sent.len);
  j->wreq.data = j;
  j->writing = 1;
  if (uv_write(&j->wreq, (uv_stream_t *)&w->pipe, bufs, 2, on_write) != 0) {
    j->writing = 0;                           /* the death shows as EOF */
    xbuf_free(&j->sent);
  }
}

/* }==================================================================== */


/* {====================================================================
** The pool
** ===================================================================== */

static xpw *idle_worker(xproc *pp) {
  for (xpw *w = pp->workers; w; w = w->next)
    if (!w->dead && !w->eof && !w->exited && w->job == NULL) return w;
  return NULL;
}


/* Gives queued jobs to idle (or new) workers; shuts idle workers of a
** closed pool. */
static void pump(xproc *pp) {
  while (pp->qhead) {
    xpw *w = idle_worker(pp);
    int err = 0;
    if (w == NULL) {
      if (pp->nactive >= pp->max) break;
      w = worker_spawn(pp, &err);
    }
    xjob *j = pp->qhead;
    pp->qhead = j->next;
    if (pp->qhead) pp->qhead->prev = NULL;
    else pp->qtail = NULL;
    j->next = j->prev = NULL;
    if (w) {
      send_job(w, j);
    } else {
      j->status = J_DIED;
      snprintf(j->died, sizeof j->died, "cannot start a worker process "
               "(%s): %s", pp->argv[0], uv_strerror(err));
      job_finish(pp, j);
    }
  }
  if (pp->closed && pp->qhead == NULL) {
    xpw *w;
    while ((w = idle_worker(pp)) != NULL) worker_retire(w);
  }
}


void xproc_submit(xproc *pp, xjob *j) {
  j->pool = pp;
  j->state = J_QUEUED;
  j->next = NULL;
  j->prev = pp->qtail;
  if (pp->qtail) pp->qtail->next = j;
  else pp->qhead = j;
  pp->qtail = j;
  pump(pp);
}


void xproc_cancel(xproc *pp, xjob *j) {
  if (j->state == J_NEW) {                    /* never submitted */
    j->state = J_DONE;
    job_finish(pp, j);
  } else if (j->state == J_QUEUED) {
    if (j->prev) j->prev->next = j->next;
    else pp->qhead = j->next;
    if (j->next) j->next->prev = j->prev;
    else pp->qtail = j->prev;
    j->next = j->prev = NULL;
    j->state = J_DONE;
    j->status = REP_INTERRUPTED;
    job_finish(pp, j);                        /* nobody waits: forgotten */
  } else if (j->state == J_RUNNING && j->worker) {
    interrupt_job(j->worker);
  }
}


void xproc_close(xproc *pp) {
  pp->closed = 1;
  pump(pp);
}


static void hold_close_cb(uv_handle_t *h) {
  corio__untrack(((xproc *)h)->hold.rt, h);
  pool_unref((xproc *)h);
}


static void sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}


void xproc_teardown(xproc *pp) {
  pp->torn = 1;
  pp->closed = 1;
  while (pp->qhead) {                         /* queued: dropped */
    xjob *j = pp->qhead;
    pp->qhead = j->next;
    xjob_forget(j);
  }
  pp->qtail = NULL;
  /* Interrupt running jobs and close every pipe: the children see EOF
  ** once their job has stopped, and leave. */
  int pids[1024], n = 0;
  for (xpw *w = pp->workers; w; w = w->next) {
    if (w->job) {
      if (w->ready) {
        union sigval v;
        v.sival_int = w->seq;
        sigqueue(w->pid, XINTERRUPT_SIG, v);
      } else if (w->pid > 0 && !w->exited) {
        kill(w->pid, SIGKILL);                /* still starting: no state */
      }
      xjob *j = w->job;
      w->job = NULL;
      j->worker = NULL;
      job_finish(pp, j);                      /* forgotten, or by on_write */
    }
    if (w->pid > 0 && !w->exited && n < 1024) pids[n++] = w->pid;
    worker_out(w);
    close_pipe(w);
    close_proc(w);                            /* libuv forgets the pid */
  }
  /* Reap them here: the loop may never run again. */
  int waited = 0;
  for (int i = 0; i < n; i++) {
    int st;
    while (waitpid(pids[i], &st, WNOHANG) == 0) {
      if (waited >= REAP_GRACE_MS) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], &st, 0);
        break;
      }
      sleep_ms(1);
      waited++;
    }
  }
  pp->nclose++;
  uv_close((uv_handle_t *)&pp->hold.async, hold_close_cb);
  pool_unref(pp);                             /* the executor's share */
}


/* Pushes the worker command: the program and the code it runs with -e.
** It is this executable (corio, or lua5.4 with corio as a module) unless
** opts.command names another one. [-0,+2] */
static void push_command(lua_State *L, int optidx) {
  char exe[4096];
  size_t sz = sizeof exe;
  if (optidx && lua_getfield(L, optidx, "command") != LUA_TNIL) {
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, optidx,
                  "command must be a string");
  } else {
    if (optidx) lua_pop(L, 1);
    if (uv_exepath(exe, &sz) != 0)
      luaL_error(L, "process_pool: cannot find this program's path");
    lua_pushstring(L, exe);
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    if (strncmp(base, "corio", 5) != 0 && strncmp(base, "lua", 3) != 0)
      luaL_error(L, "process_pool: this program (%s) is neither corio nor "
                 "lua; pass {command = '/path/to/corio'}", exe);
  }
  const char *path = lua_tostring(L, -1);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, "lua", 3) == 0) {         /* a stock interpreter */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "cpath");
    lua_pushfstring(L, "package.path=[==[%s]==] package.cpath=[==[%s]==] "
                    "require('corio') "
                    "require('corio.executor')._worker(3)",
                    lua_tostring(L, -2), lua_tostring(L, -1));
    lua_replace(L, -4);
    lua_pop(L, 2);
  } else {
    lua_pushliteral(L, "require('corio.executor')._worker(3)");
  }
}


xproc *xproc_new(corio_rt *rt, int n, lua_State *L, int optidx) {
  int top = lua_gettop(L);
  push_command(L, optidx);                    /* path, code */
  xproc *pp = calloc(1, sizeof *pp);
  if (pp) {
    pp->argv[0] = strdup(lua_tostring(L, -2));
    pp->argv[1] = strdup("-e");
    pp->argv[2] = strdup(lua_tostring(L, -1));
  }
  if (!pp || !pp->argv[0] || !pp->argv[1] || !pp->argv[2]) {
    if (pp) for (int i = 0; i < 3; i++) free(pp->argv[i]);
    free(pp);
    luaL_error(L, "not enough memory");
  }
  lua_settop(L, top);
  pp->max = n;
  pp->hold.rt = rt;
  pp->nclose = 1;                             /* the executor's share */
  uv_async_init(rt->loop, &pp->hold.async, NULL);
  uv_unref((uv_handle_t *)&pp->hold.async);
  corio__track(rt, (uv_handle_t *)&pp->hold.async);
  return pp;
}

/* }==================================================================== */


/* {====================================================================
** The child: _worker(fd)
** ===================================================================== */

/* Reads exactly n bytes; 0, or -1 at EOF or on error. */
static int read_full(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}


static int write_full(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}


int xproc_worker_main(lua_State *L) {
  static xengine eng;
  int fd = (int)luaL_optinteger(L, 1, 3);
  xbuf in = {NULL, 0, 0}, out = {NULL, 0, 0};
  fcntl(fd, F_SETFD, FD_CLOEXEC);             /* not for grandchildren */
  signal(SIGINT, SIG_IGN);                    /* the parent decides */
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);           /* never outlive it */
#endif
  eng.child = 1;
  xeng_current = &eng;
  xeng_install_signal();
  static const char hello[4] = {0, 0, 0, 0};  /* interrupts reach us now */
  if (write_full(fd, hello, 4)) {
    xeng_current = NULL;
    return 0;
  }
  for (;;) {
    char hdr[8];
    uint32_t len;
    int32_t seq;
    if (read_full(fd, hdr, 8)) break;
    memcpy(&len, hdr, 4);
    memcpy(&seq, hdr + 4, 4);
    eng.seq = seq;
    atomic_store(&eng.interrupt, eng.kill_seq == seq);
    in.len = 0;
    if (xbuf_reserve(&in, len ? len : 1) || read_full(fd, in.p, len)) break;
    in.len = len;
    if (xeng_run(&eng, in.p, in.len, &out) != 0) out.len = 0;
    uint32_t olen = (uint32_t)out.len;
    if (write_full(fd, (char *)&olen, 4) || write_full(fd, out.p, out.len))
      break;
    if (in.cap > (1 << 20)) xbuf_free(&in);   /* give back big buffers */
    if (out.cap > (1 << 20)) xbuf_free(&out);
  }
  xbuf_free(&in);
  xbuf_free(&out);
  xeng_close(&eng);
  xeng_current = NULL;
  return 0;
}

/* }==================================================================== */
