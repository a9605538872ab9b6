/*
** track.c -- which libuv handles and requests on the loop are corio's.
**
** A host may lend corio its loop (corio_config.loop) and keep handles of
** its own on it, so teardown must not walk the loop and close whatever it
** finds (luv#721 was that bug).  Every handle corio opens is recorded
** here right after its init and forgotten in its close callback; the
** thread-pool requests corio submits are counted.  corio_free closes
** exactly the recorded handles and runs the loop until they and the
** counted requests are done.
**
** The record is a set of handle addresses: open addressing, linear
** probing, deletion by backward shift (no tombstones), at most half full.
** If it cannot grow (out of memory) it stops recording and says so
** (rt->track_lost); teardown then relies on the rule that the __gc of
** every binding object closes its handle.
*/
#include <stdint.h>   /* uintptr_t */
#include <stdlib.h>   /* calloc, free */

#include "internal.h"


static size_t slot_of(const void *p, size_t cap) {
  uintptr_t x = (uintptr_t)p >> 3;
  x *= (uintptr_t)0x9E3779B97F4A7C15ull;
  return (size_t)(x >> 16) & (cap - 1);
}


static int grow(corio_rt *rt) {
  size_t cap = rt->hset_cap ? rt->hset_cap * 2 : 64;
  void **t = calloc(cap, sizeof *t);
  if (t == NULL) return 0;
  for (size_t i = 0; i < rt->hset_cap; i++) {
    void *p = rt->hset[i];
    if (p == NULL) continue;
    size_t j = slot_of(p, cap);
    while (t[j]) j = (j + 1) & (cap - 1);
    t[j] = p;
  }
  free(rt->hset);
  rt->hset = t;
  rt->hset_cap = cap;
  return 1;
}


void corio__track(corio_rt *rt, uv_handle_t *h) {
  if (rt->track_lost) return;
  if ((rt->hset_n + 1) * 2 > rt->hset_cap && !grow(rt)) {
    rt->track_lost = 1;
    return;
  }
  size_t mask = rt->hset_cap - 1, i = slot_of(h, rt->hset_cap);
  while (rt->hset[i]) {
    if (rt->hset[i] == h) return;
    i = (i + 1) & mask;
  }
  rt->hset[i] = h;
  rt->hset_n++;
}


void corio__untrack(corio_rt *rt, uv_handle_t *h) {
  if (rt->hset_cap == 0) return;
  size_t mask = rt->hset_cap - 1, i = slot_of(h, rt->hset_cap);
  while (rt->hset[i] != h) {
    if (rt->hset[i] == NULL) return;          /* not recorded */
    i = (i + 1) & mask;
  }
  rt->hset_n--;
  /* Backward shift: move up every later entry of the probe run that may
  ** sit at i, so lookups never stop early at the hole. */
  for (size_t j = (i + 1) & mask; rt->hset[j]; j = (j + 1) & mask) {
    size_t home = slot_of(rt->hset[j], rt->hset_cap);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      rt->hset[i] = rt->hset[j];
      i = j;
    }
  }
  rt->hset[i] = NULL;
}


/* The close callback of a handle closed by teardown itself: a runtime
** handle, or one a binding left open (its memory is then not ours to
** free; leaking it beats freeing it under its owner). */
static void on_closed(uv_handle_t *h) {
  corio__untrack(h->data, h);
}


void corio__close_tracked(corio_rt *rt) {
  for (size_t i = 0; i < rt->hset_cap; i++) {
    uv_handle_t *h = rt->hset[i];
    if (h && !uv_is_closing(h)) {
      h->data = rt;
      uv_close(h, on_closed);
    }
  }
}


void corio__track_free(corio_rt *rt) {
  free(rt->hset);
  rt->hset = NULL;
  rt->hset_cap = rt->hset_n = 0;
}
