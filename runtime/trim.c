/*
** trim.c -- giving memory back after a burst.
**
** A million tasks or ten thousand connections leave behind free slab
** arenas, a C heap glibc keeps, and anchor chunks sized for the peak.
** Each loop turn checks, in a few instructions, whether a burst has
** ended: many tasks fewer than the peak since the last trim, or many more
** free slab bytes than after it.  Then a one-shot timer gives the program
** a grace period (TRIM_GRACE_MS: a burst that comes back soon would only
** map the memory again; while tasks still end in numbers it waits another)
** and, when it fires, a full collection frees the
** garbage, the anchor table is cut back to its highest live slot, wholly
** free arenas are unmapped (alloc.c) and the C heap is trimmed.  The
** timer is unref'd: it never keeps a program alive, and it is not armed
** at all while nothing changes.
*/
#include <malloc.h>   /* malloc_trim */

#include "internal.h"

#define TRIM_GRACE_MS 1000
#define TRIM_TASKS    1000                  /* tasks ended since the peak */
#define TRIM_BYTES    ((size_t)4 << 20)     /* free slab bytes */


static void on_trim(uv_timer_t *h);

static void arm(corio_rt *rt) {
  rt->trim_armed = 1;
  rt->trim_at_tasks = rt->ntasks;
  rt->trim_at_slack = corio__alloc_slack(rt->mainL);
  uv_timer_start(&rt->trim_timer, on_trim, TRIM_GRACE_MS, 0);
}


static void on_trim(uv_timer_t *h) {
  corio_rt *rt = h->data;
  lua_State *L = rt->mainL;
  rt->trim_armed = 0;
  if (rt->closing) return;
  /* Still ending (tasks finishing, memory being freed): not quiet yet.
  ** Trimming in the middle of a burst's end would collect a heap that is
  ** still large, and for nothing; wait another grace period. */
  if (rt->ntasks + TRIM_TASKS < rt->trim_at_tasks ||
      corio__alloc_slack(L) > rt->trim_at_slack + TRIM_BYTES) {
    arm(rt);
    return;
  }
  lua_gc(L, LUA_GCCOLLECT, 0);
  corio__shrink_anchors(rt);
  lua_gc(L, LUA_GCCOLLECT, 0);               /* the chunks' stacks shrink */
  corio__alloc_trim(L);
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  rt->trim_floor = corio__alloc_slack(L);
  rt->trim_peak = rt->ntasks;
}


void corio__trim_init(corio_rt *rt) {
  uv_timer_init(rt->loop, &rt->trim_timer);
  rt->trim_timer.data = rt;
  uv_unref((uv_handle_t *)&rt->trim_timer);
}


void corio__trim_check(corio_rt *rt) {
  if (rt->ntasks > rt->trim_peak) rt->trim_peak = rt->ntasks;
  if (rt->trim_armed || rt->closing) return;
  size_t slack = corio__alloc_slack(rt->mainL);
  if (slack < rt->trim_floor) rt->trim_floor = slack;
  if (rt->ntasks + TRIM_TASKS < rt->trim_peak ||
      slack > rt->trim_floor + TRIM_BYTES) {
    arm(rt);
  }
}
