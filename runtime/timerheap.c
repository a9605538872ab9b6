/*
** timerheap.c -- one min-heap of deadlines driven by one uv_timer.
**
** Every sleep and call_later is an entry embedded in its owner (a task or
** a handle), so arming a timer never allocates.  Entries are ordered by
** (due, seq): equal deadlines fire in the order they were armed.  The
** single uv_timer is re-armed for the earliest deadline after each change,
** and is referenced only while the heap is not empty, so pending timers
** keep the loop alive exactly as libuv's own timers would.
*/
#include <math.h>     /* ceil */
#include <stdlib.h>   /* realloc */

#include "internal.h"


/* Sequence numbers wrap; two armed entries are never 2^31 arms apart. */
static int seq_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }


/* The heap is 4-ary (half the depth of a binary one) and compares keys
** stored beside the entry pointers: a key is the deadline in ms after
** timer_base, saturated at UINT32_MAX (49 days).  Popping the earliest of
** 100,000 sleepers then reads one cache line of keys per level instead of
** following a pointer per child into scattered tasks.  Equal keys -- the
** same millisecond, or two saturated deadlines -- fall back to the exact
** (due, seq) order kept in the entries. */
#define ARITY 4

static uint32_t key_of(corio_rt *rt, uint64_t due) {
  uint64_t k = due > rt->timer_base ? due - rt->timer_base : 0;
  return k < UINT32_MAX ? (uint32_t)k : UINT32_MAX;
}


/* Does (ka, a) come strictly before (kb, b)? */
static int before(uint32_t ka, const corio_tentry *a,
                  uint32_t kb, const corio_tentry *b) {
  if (ka != kb) return ka < kb;
  return a->due < b->due || (a->due == b->due && seq_before(a->seq, b->seq));
}


static void place(corio_rt *rt, int i, uint32_t k, corio_tentry *e) {
  rt->heap[i] = e;
  rt->heap_key[i] = k;
  e->hidx = i;
}


static void sift_up(corio_rt *rt, int i, uint32_t k, corio_tentry *e) {
  while (i > 0) {
    int parent = (i - 1) / ARITY;
    if (!before(k, e, rt->heap_key[parent], rt->heap[parent])) break;
    place(rt, i, rt->heap_key[parent], rt->heap[parent]);
    i = parent;
  }
  place(rt, i, k, e);
}


static void sift_down(corio_rt *rt, int i, uint32_t k, corio_tentry *e) {
  int n = rt->heap_n;
  for (;;) {
    int c = ARITY * i + 1;
    if (c >= n) break;
    int end = c + ARITY < n ? c + ARITY : n;
    for (int j = c + 1; j < end; j++)         /* the earliest child */
      if (before(rt->heap_key[j], rt->heap[j], rt->heap_key[c], rt->heap[c]))
        c = j;
    if (!before(rt->heap_key[c], rt->heap[c], k, e)) break;
    place(rt, i, rt->heap_key[c], rt->heap[c]);
    i = c;
  }
  place(rt, i, k, e);
}


/* Takes the entry at i out and fills the hole with the last one. */
static void remove_at(corio_rt *rt, int i) {
  int n = --rt->heap_n;
  rt->heap[i]->hidx = -1;
  if (i == n) return;
  corio_tentry *last = rt->heap[n];
  uint32_t k = rt->heap_key[n];
  int parent = (i - 1) / ARITY;
  if (i > 0 && before(k, last, rt->heap_key[parent], rt->heap[parent]))
    sift_up(rt, i, k, last);
  else
    sift_down(rt, i, k, last);
}


static void on_timer(uv_timer_t *h);

/* Points the uv timer at the earliest deadline, or stops it. */
static void rearm(corio_rt *rt) {
  if (rt->heap_n == 0) {
    if (rt->timer_on) {
      uv_timer_stop(&rt->timer);
      rt->timer_on = 0;
    }
    return;
  }
  uint64_t due = rt->heap[0]->due;
  if (rt->timer_on && rt->timer_due == due) return;
  uint64_t now = uv_hrtime() / 1000000;
  uv_timer_start(&rt->timer, on_timer, due > now ? due - now : 0, 0);
  rt->timer_due = due;
  rt->timer_on = 1;
}


/* Fires every entry whose deadline has passed.  Entries armed by the fire
** callbacks wait for the next turn: they get a sequence number above the
** snapshot taken here.  Deadlines are compared with the precise clock, not
** uv_now(): libuv may use a coarse clock for its own, which can lag.  Woken
** tasks run in the check phase of this loop turn. */
static void on_timer(uv_timer_t *h) {
  corio_rt *rt = h->data;
  uint64_t now = uv_hrtime() / 1000000;
  uint32_t last_seq = rt->timer_seq;
  rt->timer_on = 0;
  while (rt->heap_n > 0) {
    corio_tentry *e = rt->heap[0];
    if (e->due > now || !seq_before(e->seq, last_seq)) break;
    remove_at(rt, 0);
    corio__timer_fired(rt, e);
  }
  rearm(rt);
}


int corio__timer_arm(corio_rt *rt, corio_tentry *e, uint64_t due) {
  if (e->hidx >= 0) remove_at(rt, e->hidx);
  if (rt->heap_n == rt->heap_cap) {
    int cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
    corio_tentry **h = realloc(rt->heap, (size_t)cap * sizeof *h);
    if (h == NULL) return -1;  /* nothing changed but the disarm */
    rt->heap = h;
    uint32_t *keys = realloc(rt->heap_key, (size_t)cap * sizeof *keys);
    if (keys == NULL) return -1;  /* the bigger entry array is kept */
    rt->heap_key = keys;
    rt->heap_cap = cap;
  }
  e->due = due;
  e->seq = rt->timer_seq++;
  sift_up(rt, rt->heap_n++, key_of(rt, due), e);
  rearm(rt);
  return 0;
}


void corio__timer_disarm(corio_rt *rt, corio_tentry *e) {
  if (e->hidx < 0) return;
  remove_at(rt, e->hidx);
  rearm(rt);
}


double corio__now(void) {
  return (double)uv_hrtime() / 1e9;
}


/* Deadlines are whole milliseconds of uv_hrtime() rounded up, so a sleep
** never ends early by corio.now(). */
uint64_t corio__due_at(double t) {
  double ms = ceil(t * 1000.0);
  if (ms < 0) ms = 0;
  if (ms > 9e15) ms = 9e15;
  return (uint64_t)ms;
}


uint64_t corio__due_after(corio_rt *rt, double seconds) {
  (void)rt;
  if (seconds < 0) seconds = 0;
  return corio__due_at(corio__now() + seconds);
}


void corio__timer_init(corio_rt *rt) {
  rt->timer_base = uv_hrtime() / 1000000;
  uv_timer_init(rt->loop, &rt->timer);
  rt->timer.data = rt;
}
