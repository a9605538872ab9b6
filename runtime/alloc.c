/*
** alloc.c -- the Lua allocator of a corio state: size-class slabs for
** small blocks, the C library for the rest.
**
** Lua tells its allocator the old size of every block it frees or
** resizes, so small blocks need no header: they are carved from arenas
** in classes of 16 bytes and recycled through one free list per
** class.  A task, a coroutine's lua_State and its CallInfo records are all
** small; without a header each saves 8-16 bytes of malloc overhead, which
** matters with 100,000 sleeping tasks, and allocating is a pop from a list.
** Blocks come from 1 MiB arenas, populated at once when the state is big,
** and then by a helper thread a little ahead (see "Prefault").  The state
** is single-threaded, so the slabs need no lock.  Arenas are aligned to
** their size, so a block's arena is its address rounded down; one that
** holds no live block is unmapped by corio__alloc_trim (see "Giving
** memory back"), the others when the state closes.
**
** Under AddressSanitizer or valgrind the slabs would hide use-after-free
** inside an arena, so sanitizer builds (and CORIO_PLAIN_ALLOC=1) use the C
** library for every block.
*/
#include <stdio.h>    /* fputs */
#include <stdlib.h>   /* malloc, realloc, free, getenv */
#include <string.h>   /* memcpy */
#include <stdint.h>   /* uintptr_t */
#include <sys/mman.h> /* mmap, munmap, madvise */

#include "internal.h"

#define SLAB_MAX    1024                   /* largest slab block: a coroutine stack */
#define SLAB_STEP   16
#define NCLASSES    (SLAB_MAX / SLAB_STEP)
#define ARENA_SIZE  ((size_t)1 << 20)      /* 1 MiB */
#define ARENAS_SMALL 2                     /* then populate when mapped */
#define ARENAS_PREFAULT 8                  /* then a helper maps them */
#define PREFAULT_AHEAD 2                   /* arenas the helper keeps ready */

/* {====================================================================
** The teardown reserve
**
** While corio_free closes the state (corio__alloc_closing), an allocation
** the system refuses is served from a small reserve instead: lua_close
** runs every __gc, and a finalizer that finds no memory for its call
** frame is skipped by Lua -- its C resources (a stream, an executor's
** threads, an open file) would leak.  Every allocator of a corio state
** keeps one (the default ones and the wrapper of a host's), made with the
** state.  It is C memory, handed out by a bump pointer: a block in it is
** never freed on its own (it goes with the reserve), shrinks in place and
** is copied out when it grows.
** ===================================================================== */

#define RESERVE_SIZE (64 * 1024)

typedef struct reserve {
  char *mem;                               /* RESERVE_SIZE bytes, or NULL */
  size_t used;
  int closing;                             /* lua_close has begun */
} reserve;

int corio__test_refuse_sys;

static void reserve_init(reserve *r) {
  r->used = 0;
  r->closing = 0;
  r->mem = malloc(RESERVE_SIZE);           /* NULL: no reserve */
}

/* Whether p lies in the reserve; cheap while it is untouched. */
static int in_reserve(const reserve *r, const void *p) {
  return r->used && (const char *)p >= r->mem &&
         (const char *)p < r->mem + RESERVE_SIZE;
}

static void *from_reserve(reserve *r, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!r->closing || r->mem == NULL || RESERVE_SIZE - r->used < n)
    return NULL;
  r->used += n;
  return r->mem + r->used - n;
}

/* Lua's request for block p of the reserve; `f` is the allocator itself,
** which falls back on the reserve when the system refuses. */
static void *reserve_realloc(lua_Alloc f, void *ud, void *p, size_t osize,
                             size_t nsize) {
  if (nsize == 0 || nsize <= osize) return nsize ? p : NULL;
  void *q = f(ud, NULL, 0, nsize);
  if (q) memcpy(q, p, osize);
  return q;
}

/* A refused request of nsize bytes for block p (NULL: a new one), served
** from the reserve; the old block, if any, is copied and then freed by
** `f`. */
static void *reserve_instead(reserve *r, lua_Alloc f, void *ud, void *p,
                             size_t osize, size_t nsize) {
  void *q = from_reserve(r, nsize);
  if (q && p) {
    memcpy(q, p, osize < nsize ? osize : nsize);
    f(ud, p, osize, 0);
  }
  return q;
}

/* }==================================================================== */


/* An arena's header, in its first ARENA_HDR bytes. */
typedef struct arena {
  struct arena *next;
  size_t carved;                           /* bytes handed out by the bump */
  size_t freeb;                            /* trim: bytes on free lists */
  int dead;                                /* trim: wholly free */
} arena;
#define ARENA_HDR 48                       /* sizeof(arena), 16-aligned */
#define arena_of(p) ((arena *)((uintptr_t)(p) & ~(uintptr_t)(ARENA_SIZE - 1)))
typedef struct block { struct block *next; } block;

/* The helper that maps the next arenas while the state uses this one. */
typedef struct prefault {
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;
  void *ready[PREFAULT_AHEAD];             /* populated arenas */
  int nready;
  int stop;
  int on;                                  /* the helper runs */
} prefault;

typedef struct slabs {
  block *free[NCLASSES];
  arena *arenas;                           /* every arena, for teardown */
  int narenas;
  char *bump, *bump_end;                   /* unused tail of the newest */
  size_t used;                             /* bytes in live blocks */
  unsigned long refused;                   /* allocations that failed */
  int pf_failed;                           /* the helper could not start */
  prefault pf;
  reserve rsv;
} slabs;


static int class_of(size_t n) { return (int)((n + SLAB_STEP - 1) / SLAB_STEP) - 1; }


/* {====================================================================
** Prefault
**
** Filling memory with pages costs the kernel about 0.45 ms per MiB here
** (it zeroes and accounts 256 pages), and a burst of tasks needs a MiB
** per ~950 new coroutines: a third of the time to start 100,000 sleepers
** (W3) and a fifth of spawning a million tasks (W1) went to those faults.
** Once a state has grown past a few arenas, a helper thread keeps two
** arenas mapped and populated ahead, so the loop thread takes a ready
** arena instead of waiting for the kernel (W1 -17 ms, W3 -20 ms; with
** one arena ahead, a fast burst outran the helper a fifth of the time).
** The price: 2 MiB mapped ahead in a big state, and a thread that
** sleeps when it is not needed.  If the helper is behind (or could not
** start), the state maps the arena itself, as before.
** ===================================================================== */

static void *map_arena(int populate) {
  /* Twice the size, then the unaligned ends are given back: the arena of
  ** a block is then found from its address alone. */
  size_t span = 2 * ARENA_SIZE;
  char *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  char *a = (char *)(((uintptr_t)p + ARENA_SIZE - 1) &
                     ~(uintptr_t)(ARENA_SIZE - 1));
  if (a > p) munmap(p, (size_t)(a - p));
  if (a + ARENA_SIZE < p + span)
    munmap(a + ARENA_SIZE, (size_t)(p + span - (a + ARENA_SIZE)));
#ifdef MADV_POPULATE_WRITE
  if (populate) madvise(a, ARENA_SIZE, MADV_POPULATE_WRITE);  /* best effort */
#else
  (void)populate;
#endif
  return a;
}


static void prefault_main(void *arg) {
  prefault *pf = arg;
  uv_mutex_lock(&pf->mu);
  for (;;) {
    while (!pf->stop && pf->nready == PREFAULT_AHEAD)
      uv_cond_wait(&pf->cv, &pf->mu);
    if (pf->stop) break;
    uv_mutex_unlock(&pf->mu);
    void *p = map_arena(1);                /* the slow part, unlocked */
    uv_mutex_lock(&pf->mu);
    if (p == NULL) {                       /* refused: the state maps its */
      uv_cond_wait(&pf->cv, &pf->mu);      /* own; retry when it takes */
      continue;
    }
    pf->ready[pf->nready++] = p;
  }
  uv_mutex_unlock(&pf->mu);
}


static int prefault_start(prefault *pf) {
  if (uv_mutex_init(&pf->mu) != 0) return 0;
  if (uv_cond_init(&pf->cv) != 0) {
    uv_mutex_destroy(&pf->mu);
    return 0;
  }
  if (uv_thread_create(&pf->thread, prefault_main, pf) != 0) {
    uv_cond_destroy(&pf->cv);
    uv_mutex_destroy(&pf->mu);
    return 0;
  }
  pf->on = 1;
  return 1;
}


/* Takes the arena the helper made, if it is ready, and asks for the next;
** NULL if there is none yet. */
static void *prefault_take(prefault *pf) {
  void *p = NULL;
  uv_mutex_lock(&pf->mu);
  if (pf->nready > 0) p = pf->ready[--pf->nready];
  uv_cond_signal(&pf->cv);
  uv_mutex_unlock(&pf->mu);
  return p;
}


static void prefault_stop(prefault *pf) {
  if (!pf->on) return;
  uv_mutex_lock(&pf->mu);
  pf->stop = 1;
  uv_cond_signal(&pf->cv);
  uv_mutex_unlock(&pf->mu);
  uv_thread_join(&pf->thread);
  while (pf->nready > 0) munmap(pf->ready[--pf->nready], ARENA_SIZE);
  uv_cond_destroy(&pf->cv);
  uv_mutex_destroy(&pf->mu);
  pf->on = 0;
}

/* }==================================================================== */


/* Maps an arena.  Once the state has grown past a few arenas, each
** new one is populated when mapped (MAP_POPULATE): the kernel fills its
** pages in one call instead of taking a page fault for each, which halved
** the system time of a burst of a million tasks.  (Huge pages did better
** on average but sometimes stalled for most of a second in compaction.)
** Past a few more, the helper above maps them ahead.  Small scripts never
** get there, so their memory stays small and they start no thread. */
static arena *arena_new(slabs *s) {
  void *p = NULL;
  if (corio__test_refuse_sys) return NULL;
  if (s->narenas >= ARENAS_PREFAULT && !s->pf.on && !s->pf_failed)
    s->pf_failed = !prefault_start(&s->pf);
  if (s->pf.on) p = prefault_take(&s->pf);
  if (p == NULL) p = map_arena(s->narenas >= ARENAS_SMALL);
  if (p == NULL) return NULL;
  arena *ar = p;
  ar->carved = 0;
  ar->dead = 0;
  ar->next = s->arenas;
  s->arenas = ar;
  s->narenas++;
  return ar;
}


/* Makes a new arena the bump area (the old one's tail is given up);
** 0 if the system refused it. */
static int refill(slabs *s) {
  arena *ar = arena_new(s);
  if (ar == NULL) return 0;
  if (s->bump) {                           /* the old one is done */
    arena *old = arena_of(s->bump - 1);
    old->carved = (size_t)(s->bump - ((char *)old + ARENA_HDR));
  }
  s->bump = (char *)ar + ARENA_HDR;        /* keeps blocks 16-aligned */
  s->bump_end = (char *)ar + ARENA_SIZE;
  return 1;
}


static void *slab_get(slabs *s, size_t n) {
  int c = class_of(n);
  block *b = s->free[c];
  size_t size = (size_t)(c + 1) * SLAB_STEP;
  if (b) {
    s->free[c] = b->next;
    s->used += size;
    return b;
  }
  if ((size_t)(s->bump_end - s->bump) < size && !refill(s)) return NULL;
  void *p = s->bump;
  s->bump += size;
  s->used += size;
  return p;
}


static void slab_put(slabs *s, void *p, size_t n) {
  block *b = p;
  int c = class_of(n);
  b->next = s->free[c];
  s->free[c] = b;
  s->used -= (size_t)(c + 1) * SLAB_STEP;
}


static void *sys_realloc(void *p, size_t n) {
  return corio__test_refuse_sys ? NULL : realloc(p, n);
}


static void *slab_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  slabs *s = ud;
  if (p == NULL) osize = 0;                /* osize is then a type tag */
  else if (in_reserve(&s->rsv, p))
    return reserve_realloc(slab_alloc, ud, p, osize, nsize);
  if (nsize == 0) {
    if (p == NULL) return NULL;
    if (osize <= SLAB_MAX) slab_put(s, p, osize);
    else free(p);
    return NULL;
  }
  if (osize > SLAB_MAX && nsize > SLAB_MAX) {
    void *q = sys_realloc(p, nsize);
    if (q == NULL) {
      s->refused++;
      q = reserve_instead(&s->rsv, slab_alloc, ud, p, osize, nsize);
    }
    return q;
  }
  if (p && osize <= SLAB_MAX && nsize <= SLAB_MAX &&
      class_of(osize) == class_of(nsize))
    return p;
  void *q = nsize <= SLAB_MAX ? slab_get(s, nsize)
                               : sys_realloc(NULL, nsize);
  if (q == NULL) {                         /* Lua keeps the old block */
    s->refused++;
    return reserve_instead(&s->rsv, slab_alloc, ud, p, osize, nsize);
  }
  if (p) {
    memcpy(q, p, osize < nsize ? osize : nsize);
    if (osize <= SLAB_MAX) slab_put(s, p, osize);
    else free(p);
  }
  return q;
}


/* {====================================================================
** Giving memory back
**
** A burst (a million tasks, ten thousand connections) leaves most arenas
** holding only free blocks.  Counting, at a quiet moment, the free bytes
** of each arena from the free lists finds those with no live block; their
** blocks are taken off the lists and the arenas unmapped.  The work is
** proportional to the free blocks and is done only when the runtime asks
** (runtime/trim.c: a second after a burst, when many bytes are free), so
** allocating and freeing cost one addition more (s->used), nothing else.
** ===================================================================== */

static size_t slab_trim(slabs *s) {
  arena *cur = s->bump ? arena_of(s->bump - 1) : NULL;
  for (arena *a = s->arenas; a; a = a->next) a->freeb = a->dead = 0;
  for (int c = 0; c < NCLASSES; c++) {
    size_t size = (size_t)(c + 1) * SLAB_STEP;
    for (block *b = s->free[c]; b; b = b->next) arena_of(b)->freeb += size;
  }
  int ndead = 0;
  for (arena *a = s->arenas; a; a = a->next)
    if (a != cur && a->freeb == a->carved) a->dead = 1, ndead++;
  if (ndead == 0) return 0;
  for (int c = 0; c < NCLASSES; c++) {     /* their blocks leave the lists */
    block **pp = &s->free[c];
    while (*pp) {
      if (arena_of(*pp)->dead) *pp = (*pp)->next;
      else pp = &(*pp)->next;
    }
  }
  size_t gone = 0;
  for (arena **pa = &s->arenas; *pa;) {
    arena *a = *pa;
    if (a->dead) {
      *pa = a->next;
      munmap(a, ARENA_SIZE);
      s->narenas--;
      gone += ARENA_SIZE;
    } else {
      pa = &a->next;
    }
  }
  return gone;
}


/* Bytes mapped for slabs but not in a live block (the most a trim could
** give back); 0 for the C library's allocator. */
size_t corio__alloc_slack(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != slab_alloc) return 0;
  slabs *s = ud;
  return (size_t)s->narenas * ARENA_SIZE - s->used;
}


/* Unmaps every arena that holds no live block; returns the bytes given
** back. */
size_t corio__alloc_trim(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != slab_alloc) return 0;
  return slab_trim(ud);
}

/* }==================================================================== */


/* Can blocks of sizes a and b (both <= SLAB_MAX) be had without asking
** the system for memory it may refuse?  If the free lists and the bump
** area cannot serve them, a new arena is mapped now; 0 if that fails. */
static int slab_can(slabs *s, size_t a, size_t b) {
  int ca = class_of(a), cb = class_of(b);
  size_t need = 0;
  if (s->free[ca] == NULL) need += (size_t)(ca + 1) * SLAB_STEP;
  if (s->free[cb] == NULL || (ca == cb && s->free[cb]->next == NULL))
    need += (size_t)(cb + 1) * SLAB_STEP;
  return (size_t)(s->bump_end - s->bump) >= need || refill(s);
}


static void *slab_alloc(void *ud, void *p, size_t osize, size_t nsize);

/* Whether a new coroutine (its lua_State and stack) can be allocated
** without Lua meeting a refused allocation.  Lua answers a refusal with
** an emergency full collection before it raises, so the scheduler asks
** first: when memory has run out, a million pending tasks then fail to
** start at once instead of after a million full collections.  With the C
** library's allocator (sanitizer builds) there is no way to ask: 1. */
int corio__can_alloc_thread(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != slab_alloc) return 1;
  return slab_can(ud, CORIO_THREAD_BYTES, CORIO_STACK_BYTES);
}


/* The C library's allocator (sanitizer builds). */
typedef struct plain_heap {
  unsigned long refused;
  reserve rsv;
} plain_heap;

static void *plain_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  plain_heap *pl = ud;
  if (p && in_reserve(&pl->rsv, p))
    return reserve_realloc(plain_alloc, ud, p, osize, nsize);
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  void *q = sys_realloc(p, nsize);
  if (q == NULL) {
    pl->refused++;
    q = reserve_instead(&pl->rsv, plain_alloc, ud, p, p ? osize : 0, nsize);
  }
  return q;
}


/* A host's allocator (corio_config.alloc), wrapped to count the
** allocations it refused: teardown gives up on tasks that cannot unwind
** only once memory has run out (runtime.c, corio__shutdown_tasks).  Its
** reserve is never handed to the host. */
typedef struct host_alloc {
  lua_Alloc f;
  void *ud;
  unsigned long refused;
  reserve rsv;
} host_alloc;

static void *counted_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  host_alloc *h = ud;
  if (p && in_reserve(&h->rsv, p))           /* osize is its real size */
    return reserve_realloc(counted_alloc, ud, p, osize, nsize);
  void *q = h->f(h->ud, p, osize, nsize);
  if (q == NULL && nsize > 0) {
    h->refused++;
    q = from_reserve(&h->rsv, nsize);
    if (q && p) {                            /* moved out of the host's */
      memcpy(q, p, osize < nsize ? osize : nsize);
      h->f(h->ud, p, osize, 0);
    }
  }
  return q;
}


/* A new state on allocator f with its heap (malloc'ed, reserve r in it);
** on failure the heap is freed. */
static lua_State *heap_state(lua_Alloc f, void *heap, reserve *r) {
  reserve_init(r);
  lua_State *L = lua_newstate(f, heap);
  if (L == NULL) {
    free(r->mem);
    free(heap);
  }
  return corio__setup_state(L);
}


lua_State *corio__newstate_host(lua_Alloc f, void *ud) {
  host_alloc *h = malloc(sizeof *h);
  if (h == NULL) return NULL;
  h->f = f;
  h->ud = ud;
  h->refused = 0;
  return heap_state(counted_alloc, h, &h->rsv);
}


/* The reserve of the state's allocator, NULL for one corio did not make. */
static reserve *reserve_of(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (f == slab_alloc) return &((slabs *)ud)->rsv;
  if (f == plain_alloc) return &((plain_heap *)ud)->rsv;
  if (f == counted_alloc) return &((host_alloc *)ud)->rsv;
  return NULL;
}


void corio__alloc_closing(lua_State *L) {
  reserve *r = reserve_of(L);
  if (r) r->closing = 1;
}


unsigned long corio__alloc_refused(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (f == slab_alloc) return ((slabs *)ud)->refused;
  if (f == counted_alloc) return ((host_alloc *)ud)->refused;
  if (f == plain_alloc) return ((plain_heap *)ud)->refused;
  return 0;                                /* a state corio did not make */
}


#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif


static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "corio: PANIC: unprotected error in call to Lua API (%s)\n",
          msg ? msg : "error object is not a string");
  return 0;                                /* then Lua aborts */
}


lua_State *corio__setup_state(lua_State *L) {
  if (L) lua_atpanic(L, panic);
  return L;
}


lua_State *corio__newstate(void) {
  const char *plain = getenv("CORIO_PLAIN_ALLOC");
#ifdef SANITIZED
  plain = "1";
#endif
  if (plain && plain[0] == '1') {
    plain_heap *pl = calloc(1, sizeof *pl);
    return pl ? heap_state(plain_alloc, pl, &pl->rsv) : NULL;
  }
  slabs *s = calloc(1, sizeof *s);
  return s ? heap_state(slab_alloc, s, &s->rsv) : NULL;
}


/* Frees the slabs (or the counter) of a closed state made by
** corio__newstate or corio__newstate_host. */
void corio__freestate_alloc(lua_Alloc f, void *ud) {
  if (ud == NULL) return;
  if (f == counted_alloc) free(((host_alloc *)ud)->rsv.mem);
  if (f == plain_alloc) free(((plain_heap *)ud)->rsv.mem);
  if (f == plain_alloc || f == counted_alloc) free(ud);
  if (f != slab_alloc) return;
  slabs *s = ud;
  free(s->rsv.mem);
  prefault_stop(&s->pf);
  while (s->arenas) {
    arena *next = s->arenas->next;
    munmap(s->arenas, ARENA_SIZE);
    s->arenas = next;
  }
  free(s);
}
