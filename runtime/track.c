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
#include <stdlib.h>   /* calloc, free, malloc */
#include <string.h>   /* memcpy, strlen */

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
  corio_site **st = NULL;
  if (rt->hsite && (st = calloc(cap, sizeof *st)) == NULL) {
    free(t);
    return 0;
  }
  for (size_t i = 0; i < rt->hset_cap; i++) {
    void *p = rt->hset[i];
    if (p == NULL) continue;
    size_t j = slot_of(p, cap);
    while (t[j]) j = (j + 1) & (cap - 1);
    t[j] = p;
    if (st) st[j] = rt->hsite[i];
  }
  free(rt->hset);
  free(rt->hsite);
  rt->hset = t;
  rt->hsite = st;
  rt->hset_cap = cap;
  return 1;
}


/* The slot of h, or hset_cap if h is not recorded. */
static size_t find(corio_rt *rt, const void *h) {
  if (rt->hset_cap == 0) return 0;
  size_t mask = rt->hset_cap - 1, i = slot_of(h, rt->hset_cap);
  while (rt->hset[i] != h) {
    if (rt->hset[i] == NULL) return rt->hset_cap;
    i = (i + 1) & mask;
  }
  return i;
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
  size_t i = find(rt, h);
  if (i == rt->hset_cap) return;              /* not recorded */
  size_t mask = rt->hset_cap - 1;
  rt->hset_n--;
  if (rt->hsite) free(rt->hsite[i]);
  /* Backward shift: move up every later entry of the probe run that may
  ** sit at i, so lookups never stop early at the hole. */
  for (size_t j = (i + 1) & mask; rt->hset[j]; j = (j + 1) & mask) {
    size_t home = slot_of(rt->hset[j], rt->hset_cap);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      rt->hset[i] = rt->hset[j];
      if (rt->hsite) rt->hsite[i] = rt->hsite[j];
      i = j;
    }
  }
  rt->hset[i] = NULL;
  if (rt->hsite) rt->hsite[i] = NULL;
}


/* --debug only, so a plain run never allocates the site array.  Out of
** memory, the handle simply goes without a site. */
void corio__track_site(corio_rt *rt, lua_State *L, uv_handle_t *h,
                       const char *kind, const char *where) {
  char buf[256];
  if (!rt->debug || rt->track_lost) return;
  size_t i = find(rt, h);
  if (i == rt->hset_cap) return;
  if (where == NULL) {
    if (L == NULL && rt->current) L = rt->current->co;
    where = L && corio__where(L, 0, buf, sizeof buf) ? buf : "?";
  }
  if (rt->hsite == NULL &&
      (rt->hsite = calloc(rt->hset_cap, sizeof *rt->hsite)) == NULL)
    return;
  size_t n = strlen(where) + 1;
  corio_site *site = malloc(sizeof *site + n);
  if (site == NULL) return;
  site->kind = kind;
  memcpy(site->where, where, n);
  free(rt->hsite[i]);
  rt->hsite[i] = site;
}


const char *corio__track_where(corio_rt *rt, uv_handle_t *h) {
  size_t i = find(rt, h);
  if (rt->hsite == NULL || i == rt->hset_cap || rt->hsite[i] == NULL)
    return NULL;
  return rt->hsite[i]->where;
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
  if (rt->hsite) {
    for (size_t i = 0; i < rt->hset_cap; i++) free(rt->hsite[i]);
    free(rt->hsite);
    rt->hsite = NULL;
  }
  free(rt->hset);
  rt->hset = NULL;
  rt->hset_cap = rt->hset_n = 0;
}
