/*
** threadpool.c -- the executor's thread pool, and the interrupt signal.
**
** Our own threads, not libuv's uv_queue_work pool, so CPU-bound jobs never
** starve file I/O.  Worker threads start on demand up to n; they take
** jobs from a queue under a mutex/condition and put finished jobs on a
** done list; a uv_async_t tells the loop (executor.c delivers them).
** Each worker keeps one lua_State (opened with the standard libraries)
** for all its jobs, and gets a fresh one after an interrupt.
**
** Interrupting a running job: the loop thread sets the worker's interrupt
** flag and sends XINTERRUPT_SIG to the worker thread, whose handler arms
** an instruction-count hook with lua_sethook -- on the worker's own
** thread, the use Lua documents as safe inside a signal handler (lua.c's
** ^C).  Calling lua_sethook from the loop thread instead would race with
** the worker freeing CallInfo frames while the hook walks them.
**
** Short jobs sent one at a time: a wake-up across threads costs more than
** an empty job (a sleeping vCPU of a VM takes 20-50 µs to wake), so both
** sides wait briefly before they sleep.  A worker that ran out of jobs
** waits up to 50 µs for the next one; the loop, when it has nothing else
** to run and the pool's recent round trips were under 100 µs, waits up to
** 50 µs for the result in a prepare callback (just before it would block
** in poll) and delivers it from there.  Longer jobs never make anyone
** spin: the loop's estimate is a moving average of round-trip times.
**
** Ownership: a job belongs to the queue, then to its worker, then to the
** done list; only the loop thread frees it.  The pool's memory goes with
** the close callback of its async handle, after teardown has joined every
** worker thread.
*/
#include <errno.h>    /* errno */
#include <pthread.h>  /* pthread_kill, pthread_sigmask */
#include <signal.h>   /* sigaction */
#include <stdatomic.h>
#include <stdlib.h>   /* calloc, free */
#include <string.h>   /* memset */

#include "executor.h"

#define SPIN_NS 50000          /* 50 µs */
#define SHORT_JOB_NS 100000    /* the loop waits for jobs shorter than this */


/* {====================================================================
** The interrupt signal
** ===================================================================== */

static struct sigaction old_action;
static uv_once_t signal_once = UV_ONCE_INIT;


static void on_interrupt(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  xengine *e = xeng_current;
  if (e && si && si->si_code == SI_QUEUE && e->child) {
    e->kill_seq = si->si_value.sival_int;
    if (e->kill_seq == e->seq) {              /* not a late one */
      atomic_store(&e->interrupt, 1);
      xeng_on_signal(e);
    }
  } else if (e && si && si->si_code == SI_TKILL && !e->child) {
    xeng_on_signal(e);
  } else if (old_action.sa_flags & SA_SIGINFO) {
    if (old_action.sa_sigaction) old_action.sa_sigaction(sig, si, uc);
  } else if (old_action.sa_handler != SIG_DFL &&
             old_action.sa_handler != SIG_IGN) {
    old_action.sa_handler(sig);
  }
  errno = saved;
}


static void install_signal(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_interrupt;
  sa.sa_flags = SA_SIGINFO;      /* no SA_RESTART: a job blocked in a
                                    system call gets EINTR and goes on to
                                    its next hook */
  sigemptyset(&sa.sa_mask);
  sigaction(XINTERRUPT_SIG, &sa, &old_action);
}


void xeng_install_signal(void) {
  uv_once(&signal_once, install_signal);
}

/* }==================================================================== */


/* {====================================================================
** Keeping the loop alive
** ===================================================================== */

void xhold_add(xhold *h, int delta) {
  int was = h->awaited;
  h->awaited += delta;
  if (was == 0 && h->awaited > 0) uv_ref((uv_handle_t *)&h->async);
  else if (was > 0 && h->awaited == 0) uv_unref((uv_handle_t *)&h->async);
}

/* }==================================================================== */


/* {====================================================================
** The thread pool
** ===================================================================== */

typedef struct xworker {
  xengine eng;
  uv_thread_t tid;
  struct xtpool *pool;
  xjob *job;                   /* running job (under the pool mutex) */
  uv_cond_t cond;              /* signalled to give it work */
  int listed;                  /* on the idle stack */
} xworker;

struct xtpool {
  xhold hold;                  /* must be first: the async handle */
  uv_mutex_t mu;
  xjob *qhead, *qtail;         /* queued jobs */
  int qlen;
  atomic_int nqueued;          /* qlen, readable without the mutex */
  xjob *dhead, *dtail;         /* finished jobs, for the loop */
  xworker *w;
  xworker **idle;              /* idle workers, most recent on top: one
                                  job at a time keeps one warm worker */
  int max, nstarted, nidle;
  int stop;                    /* workers leave once the queue is empty */
  int spinning;                /* a worker waits for the next job awake */
  atomic_int has_done;         /* dhead != NULL, readable without the mutex */
  uv_prepare_t wait;           /* the loop's brief wait for short jobs */
  int inflight;                /* submitted, not yet delivered (loop side) */
  int nclosing;                /* handles whose close callback is due */
  uint64_t rtt_ns;             /* moving average of round trips */
};


static void worker_main(void *arg) {
  xworker *w = arg;
  xtpool *p = w->pool;
  sigset_t set;
  xeng_current = &w->eng;
  sigemptyset(&set);
  sigaddset(&set, XINTERRUPT_SIG);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  uv_mutex_lock(&p->mu);
  for (;;) {
    if (p->qhead == NULL && !p->stop && !p->spinning) {
      /* A caller sending jobs one at a time submits the next one right
      ** after it sees this one's result: wait a little for it before
      ** sleeping, which saves a wake-up on an idle CPU.  One worker at a
      ** time: more spinning threads than cores would fight the loop for
      ** them. */
      p->spinning = 1;
      uv_mutex_unlock(&p->mu);
      uint64_t until = uv_hrtime() + SPIN_NS;
      while (atomic_load_explicit(&p->nqueued, memory_order_relaxed) == 0 &&
             uv_hrtime() < until) {}
      uv_mutex_lock(&p->mu);
      p->spinning = 0;             /* and it looks at the queue next */
    }
    while (p->qhead == NULL && !p->stop) {
      w->listed = 1;
      p->idle[p->nidle++] = w;
      while (w->listed) uv_cond_wait(&w->cond, &p->mu);
    }
    xjob *j = p->qhead;
    if (j == NULL) break;                     /* stopping, queue empty */
    p->qhead = j->next;
    if (p->qhead) p->qhead->prev = NULL;
    else p->qtail = NULL;
    p->qlen--;
    atomic_store_explicit(&p->nqueued, p->qlen, memory_order_relaxed);
    j->next = j->prev = NULL;
    j->state = J_RUNNING;
    j->worker = w;
    w->job = j;
    atomic_store(&w->eng.interrupt, 0);
    uv_mutex_unlock(&p->mu);

    xbuf out = {NULL, 0, 0};
    if (xeng_run(&w->eng, j->msg.p, j->msg.len, &out) != 0) xbuf_free(&out);
    xbuf_free(&j->msg);
    j->msg = out;                             /* empty: out of memory */

    uv_mutex_lock(&p->mu);
    w->job = NULL;
    atomic_store(&w->eng.interrupt, 0);
    j->state = J_DONE;
    j->worker = NULL;
    if (p->dtail) p->dtail->next = j;
    else p->dhead = j;
    p->dtail = j;
    atomic_store_explicit(&p->has_done, 1, memory_order_release);
    uv_mutex_unlock(&p->mu);        /* the loop may be waiting to take it */
    uv_async_send(&p->hold.async);
    uv_mutex_lock(&p->mu);
  }
  uv_mutex_unlock(&p->mu);
  xeng_close(&w->eng);
  xeng_current = NULL;
}


/* Wakes the most recently idle worker (under the mutex). */
static void wake_one(xtpool *p) {
  xworker *w = p->idle[--p->nidle];
  w->listed = 0;
  uv_cond_signal(&w->cond);
}


/* Starts one more worker thread (under the mutex).  Signals are blocked
** in it, except the interrupt, so process signals go to the loop. */
static int start_worker(xtpool *p) {
  xworker *w = &p->w[p->nstarted];
  uv_thread_options_t opts;
  sigset_t all, old;
  memset(w, 0, sizeof *w);
  w->pool = p;
  if (uv_cond_init(&w->cond) != 0) return UV_ENOMEM;
  opts.flags = UV_THREAD_HAS_STACK_SIZE;
  opts.stack_size = 8 << 20;                  /* deep tables, deep Lua */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = uv_thread_create_ex(&w->tid, &opts, worker_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) p->nstarted++;
  else uv_cond_destroy(&w->cond);
  return rc;
}


static void on_wait(uv_prepare_t *h);

/* Queues a job; 0 or a libuv error (no thread could be started). */
int xtpool_submit(xtpool *p, xjob *j) {
  int rc = 0;
  j->submitted = uv_hrtime();
  uv_mutex_lock(&p->mu);
  j->state = J_QUEUED;
  j->next = NULL;
  j->prev = p->qtail;
  if (p->qtail) p->qtail->next = j;
  else p->qhead = j;
  p->qtail = j;
  p->qlen++;
  atomic_store_explicit(&p->nqueued, p->qlen, memory_order_relaxed);
  if (p->qlen > p->nidle + p->spinning && p->nstarted < p->max) {
    rc = start_worker(p);
    if (rc != 0 && p->nstarted > 0) rc = 0;   /* the others will do it */
  }
  if (rc != 0) {                              /* nobody could run it */
    p->qtail = j->prev;
    if (p->qtail) p->qtail->next = NULL;
    else p->qhead = NULL;
    p->qlen--;
    atomic_store_explicit(&p->nqueued, p->qlen, memory_order_relaxed);
  } else if (p->nidle > 0 && p->qlen > p->spinning) {
    wake_one(p);                              /* the spinner takes one */
  }
  uv_mutex_unlock(&p->mu);
  if (rc == 0 && p->inflight++ == 0) uv_prepare_start(&p->wait, on_wait);
  return rc;
}


/* A submitted job came back (or was dropped): it no longer keeps the
** loop's wait armed, and its round trip feeds the average. */
static void landed(xtpool *p, xjob *j) {
  uint64_t rtt = uv_hrtime() - j->submitted;
  p->rtt_ns = p->rtt_ns - p->rtt_ns / 8 + rtt / 8;
  if (--p->inflight == 0) uv_prepare_stop(&p->wait);
}


/* Drops a queued job (returns 1: the caller frees it) or interrupts a
** running one (returns 0: it comes back through the done list). */
int xtpool_cancel(xtpool *p, xjob *j) {
  int dropped = 0;
  uv_mutex_lock(&p->mu);
  if (j->state == J_NEW) {                    /* never submitted */
    dropped = 1;
  } else if (j->state == J_QUEUED) {
    if (j->prev) j->prev->next = j->next;
    else p->qhead = j->next;
    if (j->next) j->next->prev = j->prev;
    else p->qtail = j->prev;
    j->next = j->prev = NULL;
    p->qlen--;
    atomic_store_explicit(&p->nqueued, p->qlen, memory_order_relaxed);
    dropped = 1;
    landed(p, j);
  } else if (j->state == J_RUNNING) {
    xworker *w = j->worker;
    atomic_store(&w->eng.interrupt, 1);
    pthread_kill(w->tid, XINTERRUPT_SIG);
  }
  uv_mutex_unlock(&p->mu);
  return dropped;
}


static void on_async(uv_async_t *a) {
  xtpool *p = (xtpool *)a;
  uv_mutex_lock(&p->mu);
  xjob *list = p->dhead;
  p->dhead = p->dtail = NULL;
  atomic_store_explicit(&p->has_done, 0, memory_order_relaxed);
  uv_mutex_unlock(&p->mu);
  while (list) {
    xjob *j = list;
    list = j->next;
    j->next = NULL;
    landed(p, j);
    xcall_job_done(p->hold.rt, j);
  }
}


/* Just before the loop blocks in poll: if it has nothing else to run and
** the pool's jobs have been short, wait a little for a result here. */
static void on_wait(uv_prepare_t *h) {
  xtpool *p = container_of(h, xtpool, wait);
  corio_rt *rt = p->hold.rt;
  if (p->rtt_ns > SHORT_JOB_NS || rt->ready.head || rt->deferred.head)
    return;
  uint64_t until = uv_hrtime() + SPIN_NS;
  while (!atomic_load_explicit(&p->has_done, memory_order_acquire)) {
    if (uv_hrtime() >= until) return;
  }
  on_async(&p->hold.async);
}


xtpool *xtpool_new(corio_rt *rt, int n) {
  xtpool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->w = calloc((size_t)n, sizeof *p->w);
  p->idle = calloc((size_t)n, sizeof *p->idle);
  if (p->w == NULL || p->idle == NULL || uv_mutex_init(&p->mu) != 0) {
    free(p->w);
    free(p->idle);
    free(p);
    return NULL;
  }
  p->max = n;
  p->hold.rt = rt;
  p->rtt_ns = 2 * SHORT_JOB_NS;    /* no waiting until jobs prove short */
  uv_async_init(rt->loop, &p->hold.async, on_async);
  uv_unref((uv_handle_t *)&p->hold.async);
  uv_prepare_init(rt->loop, &p->wait);
  uv_unref((uv_handle_t *)&p->wait);
  corio__track(rt, (uv_handle_t *)&p->hold.async);
  corio__track(rt, (uv_handle_t *)&p->wait);
  /* The interrupt signal is process-wide: a host may forbid it. */
  if (!(rt->flags & CORIO_NO_SIGNALS)) xeng_install_signal();
  return p;
}


void xtpool_close(xtpool *p) {
  uv_mutex_lock(&p->mu);
  p->stop = 1;
  while (p->nidle > 0) wake_one(p);
  uv_mutex_unlock(&p->mu);
}


static void xtpool_free_cb(uv_handle_t *h) {
  xtpool *p = h->data;
  corio__untrack(p->hold.rt, h);
  if (--p->nclosing > 0) return;
  for (int i = 0; i < p->nstarted; i++) uv_cond_destroy(&p->w[i].cond);
  uv_mutex_destroy(&p->mu);
  free(p->w);
  free(p->idle);
  free(p);
}


/* Cancels what is queued, interrupts what runs, joins every worker and
** frees the jobs without touching Lua (this may run inside lua_close). */
void xtpool_teardown(xtpool *p) {
  uv_mutex_lock(&p->mu);
  p->stop = 1;
  xjob *queued = p->qhead;
  p->qhead = p->qtail = NULL;
  p->qlen = 0;
  atomic_store_explicit(&p->nqueued, 0, memory_order_relaxed);
  for (int i = 0; i < p->nstarted; i++) {
    xworker *w = &p->w[i];
    if (w->job) {
      atomic_store(&w->eng.interrupt, 1);
      pthread_kill(w->tid, XINTERRUPT_SIG);
    }
  }
  while (p->nidle > 0) wake_one(p);
  uv_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nstarted; i++) uv_thread_join(&p->w[i].tid);
  while (queued) {
    xjob *j = queued;
    queued = j->next;
    xjob_forget(j);
  }
  while (p->dhead) {
    xjob *j = p->dhead;
    p->dhead = j->next;
    xjob_forget(j);
  }
  p->nclosing = 2;
  p->hold.async.data = p->wait.data = p;
  uv_close((uv_handle_t *)&p->hold.async, xtpool_free_cb);
  uv_close((uv_handle_t *)&p->wait, xtpool_free_cb);
}

/* }==================================================================== */
