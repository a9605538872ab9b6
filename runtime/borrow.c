/*
** borrow.c -- Lua strings lent to thread-pool jobs.
**
** A job that writes a Lua string reads its bytes on a pool thread, with
** the string anchored so the collector leaves it alone.  lua_close does
** not ask: it frees every object.  A job still running then (its task
** was cancelled, or memory ran out and the run ended, while the thread
** was in write()) would read freed memory.  Teardown therefore waits,
** before it closes the state, until every borrow has ended.  The wait
** polls a counter instead of running the loop: no callback may run into
** a state that is being closed, and a job's thread ends its borrow
** before its completion is queued to the loop.
*/
#include "internal.h"


void corio__borrow(corio_rt *rt, atomic_int *flag) {
  atomic_store(flag, 1);
  atomic_fetch_add(&rt->borrows, 1);
}


void corio__borrow_end(corio_rt *rt, atomic_int *flag) {
  if (atomic_exchange(flag, 0))
    atomic_fetch_sub(&rt->borrows, 1);
}


int corio__await_borrows(corio_rt *rt) {
  uint64_t deadline = uv_hrtime() + CORIO_BORROW_MS * 1000000ull;
  while (atomic_load(&rt->borrows) > 0) {
    /* A write blocked for good (a FIFO nobody reads) keeps its borrow:
    ** the state is then left allocated rather than freed under it. */
    if (uv_hrtime() > deadline) return 0;
    uv_sleep(1);
  }
  return 1;
}
