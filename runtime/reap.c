/*
** reap.c -- children still running when a runtime is torn down.
**
** libuv reaps a child (waitpid) only while its uv_process_t is open, and
** teardown closes it: from then on nobody would.  In the binary the
** process ends soon after and init inherits the child, but an embedding
** host lives on after corio_free, so the child would run on unsupervised
** and stay a zombie of the host once it exits.  As asyncio does when a
** subprocess transport closes under a running child (and as corio's own
** worker processes, procpool.c), teardown ends it: SIGTERM at once,
** SIGKILL if it is still there after REAP_GRACE_MS, and waitpid either
** way, all before corio_free (or the state's lua_close) returns.  The
** children of one teardown share the grace period.
**
** A child spawned `detached` was asked to outlive its parent: it is not
** signalled.  If it has exited already it is reaped; else it is left to
** the host (see docs/EMBEDDING.md, "Teardown").
*/
#include <errno.h>      /* ECHILD, EINTR */
#include <signal.h>     /* kill */
#include <stdlib.h>     /* realloc, free */
#include <sys/wait.h>   /* waitpid */
#include <time.h>       /* nanosleep */

#include "internal.h"

#define REAP_GRACE_MS 2000


/* 1 once pid is reaped (or is not our child: nothing to wait for). */
static int try_reap(int pid) {
  int r;
  while ((r = waitpid(pid, NULL, WNOHANG)) < 0 && errno == EINTR) {}
  return r == pid || (r < 0 && errno == ECHILD);
}


static void sleep_1ms(void) {
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}


/* Waits for the n children in pids (entries set to 0 as they go), with
** SIGKILL for those still there after the grace period. */
static void wait_children(int *pids, int n) {
  uint64_t deadline = uv_hrtime() + (uint64_t)REAP_GRACE_MS * 1000000u;
  for (;;) {
    int left = 0;
    for (int i = 0; i < n; i++) {
      if (pids[i] > 0 && try_reap(pids[i])) pids[i] = 0;
      if (pids[i] > 0) left++;
    }
    if (left == 0) return;
    if (uv_hrtime() >= deadline) break;
    sleep_1ms();
  }
  for (int i = 0; i < n; i++) {
    if (pids[i] <= 0) continue;
    kill(pids[i], SIGKILL);
    while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {}
    pids[i] = 0;
  }
}


void corio__reap(corio_rt *rt, int pid, int detached) {
  if (pid <= 0) return;
  if (detached) {                             /* reaped only if it is done */
    try_reap(pid);
    return;
  }
  kill(pid, SIGTERM);
  if (rt->nreap == rt->reap_cap) {
    int cap = rt->reap_cap ? rt->reap_cap * 2 : 8;
    int *p = realloc(rt->reap, (size_t)cap * sizeof *p);
    if (p == NULL) {                          /* no room: wait for it now */
      wait_children(&pid, 1);
      return;
    }
    rt->reap = p;
    rt->reap_cap = cap;
  }
  rt->reap[rt->nreap++] = pid;
}


void corio__reap_all(corio_rt *rt) {
  wait_children(rt->reap, rt->nreap);
  free(rt->reap);
  rt->reap = NULL;
  rt->nreap = rt->reap_cap = 0;
}
