/*
** queue.c -- Queue, LifoQueue and PriorityQueue: the queues of corio.sync.
**
** One structure serves the three orders.  Items live in uservalue tables:
** a ring (FIFO), a stack (LIFO), or a binary heap of (item, priority,
** sequence) triples (PRIORITY; the sequence keeps equal priorities FIFO).
**
** Hand-off rules (they make Queue(1) cheap and keep items exactly-once):
**   - put() with a getter waiting (the queue is then empty) gives the item
**     straight to the first getter.
**   - get() that frees a slot while putters wait (the queue was full) moves
**     the first putter's item, read from that putter's suspended stack, into
**     the queue at once and wakes the putter: its put() has completed.
**   - A cancelled waiter is unlinked by the core before anything is handed
**     to it; a waiter that was handed an item, or whose item was taken, and
**     is cancelled before it runs still returns normally (the core raises
**     CANCELLED at its next await).  So no item is lost or duplicated.
**   - close() raises CLOSED in every waiting getter and putter; getters
**     still drain what is left, then get CLOSED.
*/
#include <math.h>     /* isnan */

#include "sync.h"

enum { Q_FIFO = 0, Q_LIFO, Q_PRIO };

#define UVQ_ITEMS 1             /* items: ring, stack or heap order */
#define UVQ_PRIOS 2             /* PRIO: priorities, same positions */
#define UVQ_SEQS  3             /* PRIO: arrival numbers, same positions */
#define Q_NUV     3

typedef struct queue {
  SYNC_HEAD;
  corio_fut getters, putters, joiners;
  lua_Integer maxsize;          /* 0: unbounded */
  lua_Integer count;            /* items held */
  lua_Integer head, cap;        /* FIFO ring: first slot, size (power of 2) */
  lua_Integer unfinished;       /* put but not task_done() yet */
  lua_Integer seq;              /* PRIO: last arrival number */
  unsigned char kind, closed;
} queue;

static sync_class queue_class = {"corio.Queue", sizeof(queue)};

static queue *check_queue(lua_State *L) {
  return sync__checkclass(L, 1, &queue_class);
}

static const char *const kind_names[] = {"Queue", "LifoQueue",
                                         "PriorityQueue"};


/* {====================================================================
** Storage.  Every helper takes the queue at stack index 1.
** ===================================================================== */

/* 1 if a < b, 0 if not, -1 on error (the error is pushed). */
static int lt_p(lua_State *L) {
  lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
  return 1;
}

static int lt(lua_State *L, int a, int b) {
  int ta = lua_type(L, a);
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (ta == lua_type(L, b) && (ta == LUA_TNUMBER || ta == LUA_TSTRING))
    return lua_compare(L, a, b, LUA_OPLT);    /* cannot raise */
  lua_pushcfunction(L, lt_p);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) return -1;
  int r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}


/* Heap order of the entries at positions a and b: 1, 0 or -1 (error). */
static int heap_less(lua_State *L, int tp, int ts, lua_Integer a,
                     lua_Integer b) {
  lua_rawgeti(L, tp, a);
  lua_rawgeti(L, tp, b);
  int r = lt(L, -2, -1);
  if (r == 0) {
    r = lt(L, -1, -2);
    if (r == 0) {                             /* equal: first come first */
      lua_rawgeti(L, ts, a);
      lua_rawgeti(L, ts, b);
      r = lua_tointeger(L, -2) < lua_tointeger(L, -1);
      lua_pop(L, 2);
    } else if (r == 1) {
      r = 0;
    }
  }
  if (r < 0) {
    lua_replace(L, -3);                       /* the error over a */
    lua_pop(L, 1);
    return -1;
  }
  lua_pop(L, 2);
  return r;
}


/* Moves the PRIO entry at position from to position to. */
static void heap_move(lua_State *L, int base, lua_Integer from,
                      lua_Integer to) {
  for (int i = 0; i < 3; i++) {
    lua_rawgeti(L, base + i, from);
    lua_rawseti(L, base + i, to);
  }
}


/* Pushes the three PRIO tables. [-0,+3] */
static int push_tables(lua_State *L) {
  lua_getiuservalue(L, 1, UVQ_ITEMS);
  lua_getiuservalue(L, 1, UVQ_PRIOS);
  lua_getiuservalue(L, 1, UVQ_SEQS);
  return lua_gettop(L) - 2;
}


/* Adds the item at vi with the priority at pi.  Returns 0, or -1 with
** the comparison error on top, having changed nothing. */
static int heap_push(lua_State *L, queue *q, int vi, int pi) {
  vi = lua_absindex(L, vi);
  pi = lua_absindex(L, pi);
  int base = push_tables(L);
  lua_Integer pos = q->count + 1, k = pos;
  while (k > 1) {                             /* find the place first */
    lua_rawgeti(L, base + 1, k / 2);
    int r = lt(L, pi, -1);
    if (r < 0) {
      lua_replace(L, base);
      lua_settop(L, base);
      return -1;
    }
    lua_pop(L, 1);
    if (!r) break;
    k /= 2;
  }
  for (lua_Integer c = pos; c > k; c /= 2) heap_move(L, base, c / 2, c);
  lua_pushvalue(L, vi);
  lua_rawseti(L, base, k);
  lua_pushvalue(L, pi);
  lua_rawseti(L, base + 1, k);
  lua_pushinteger(L, ++q->seq);
  lua_rawseti(L, base + 2, k);
  q->count++;
  lua_settop(L, base - 1);
  return 0;
}


/* Pushes the first item and its priority and removes them.  Returns 2, or
** -1 with the comparison error on top, having changed nothing. */
static int heap_pop(lua_State *L, queue *q) {
  int base = push_tables(L);
  lua_Integer n = q->count, k = 1, path[64];
  int depth = 0;
  for (;;) {                                  /* where the last one goes */
    lua_Integer c = 2 * k;
    int r = 0;
    if (c > n - 1) break;
    if (c + 1 <= n - 1 && (r = heap_less(L, base + 1, base + 2, c + 1,
                                         c)) != 0) {
      if (r < 0) goto fail;
      c++;
    }
    if ((r = heap_less(L, base + 1, base + 2, c, n)) < 0) goto fail;
    if (!r) break;
    path[depth++] = k = c;
  }
  lua_rawgeti(L, base, 1);                    /* the results */
  lua_rawgeti(L, base + 1, 1);
  lua_Integer parent = 1;
  for (int i = 0; i < depth; i++) {
    heap_move(L, base, path[i], parent);
    parent = path[i];
  }
  if (parent != n) heap_move(L, base, n, parent);
  for (int i = 0; i < 3; i++) {
    lua_pushnil(L);
    lua_rawseti(L, base + i, n);
  }
  q->count--;
  lua_replace(L, base + 1);
  lua_replace(L, base);
  lua_settop(L, base + 1);
  return 2;
fail:
  lua_replace(L, base);
  lua_settop(L, base);
  return -1;
}


/* Stores the value at vi (priority at vi + 1 for PRIO).  Returns 0, or -1
** with an error on top (PRIO comparison), having changed nothing. */
static int store(lua_State *L, queue *q, int vi) {
  vi = lua_absindex(L, vi);
  if (q->kind == Q_PRIO) return heap_push(L, q, vi, vi + 1);
  lua_getiuservalue(L, 1, UVQ_ITEMS);
  int ti = lua_gettop(L);
  if (q->kind == Q_LIFO) {
    lua_pushvalue(L, vi);
    lua_rawseti(L, ti, ++q->count);
  } else {
    if (q->count == q->cap) {                 /* grow the ring: unwrap */
      for (lua_Integer i = 0; i < q->head; i++) {
        lua_rawgeti(L, ti, i + 1);
        lua_rawseti(L, ti, q->cap + i + 1);
        lua_pushnil(L);
        lua_rawseti(L, ti, i + 1);
      }
      q->cap *= 2;
    }
    lua_pushvalue(L, vi);
    lua_rawseti(L, ti, ((q->head + q->count) & (q->cap - 1)) + 1);
    q->count++;
  }
  lua_pop(L, 1);
  return 0;
}


/* Pushes the next item (and its priority for PRIO) and removes it.  Returns
** the number of values on top (other values may be left below them), or
** raises (PRIO comparison) having changed nothing. */
static int pop_item(lua_State *L, queue *q) {
  if (q->kind == Q_PRIO) {
    if (heap_pop(L, q) < 0) lua_error(L);
    return 2;
  }
  lua_getiuservalue(L, 1, UVQ_ITEMS);
  lua_Integer slot;
  if (q->kind == Q_LIFO) {
    slot = q->count;
  } else {
    slot = q->head + 1;
    q->head = q->count == 1 ? 0 : (q->head + 1) & (q->cap - 1);
  }
  q->count--;
  lua_rawgeti(L, -1, slot);
  lua_pushnil(L);
  lua_rawseti(L, -3, slot);
  return 1;                                   /* [items, item] */
}

/* }==================================================================== */


/* {====================================================================
** Hand-off
** ===================================================================== */

static int nvalues(queue *q) { return q->kind == Q_PRIO ? 2 : 1; }

static int is_full(queue *q) {
  return q->maxsize > 0 && q->count >= q->maxsize;
}


/* Takes the value(s) of put() at index 2 (and 3) into the queue: to a
** waiting getter, or into storage.  Returns 1, or 0 if the queue is full;
** raises on a PRIO comparison error. */
static int offer(lua_State *L, queue *q) {
  corio_task *g = sync__wl_pop(&q->getters);
  int n = nvalues(q);
  if (g) {
    lua_pushvalue(L, 2);
    if (n == 2) lua_pushvalue(L, 3);
    corio__wake(RT_UPVALUE(L), g, L, n, WAKE_VALUES);
    q->unfinished++;
    return 1;
  }
  if (is_full(q)) return 0;
  if (store(L, q, 2) < 0) lua_error(L);
  q->unfinished++;
  return 1;
}


/* After a slot was freed: moves the first waiting putter's item in and
** wakes it.  A putter whose priority cannot be compared gets the error. */
static void refill(lua_State *L, corio_rt *rt, queue *q) {
  corio_task *p;
  int n = nvalues(q);
  while (!is_full(q) && (p = sync__wl_pop(&q->putters)) != NULL) {
    lua_checkstack(p->co, n + 1);             /* its stack: q, item[, prio] */
    lua_pushvalue(p->co, 2);
    if (n == 2) lua_pushvalue(p->co, 3);
    lua_xmove(p->co, L, n);
    if (store(L, q, -n) < 0) {
      lua_replace(L, -n - 1);                 /* error over the values */
      if (n == 2) lua_pop(L, 1);
      corio__wake(rt, p, L, 1, WAKE_RAISE);
      continue;
    }
    lua_pop(L, n);
    q->unfinished++;
    corio__wake(rt, p, L, 0, WAKE_VALUES);
  }
}


/* Pushes the next item (and priority) and lets a waiting putter in. */
static int take(lua_State *L, queue *q) {
  int n = pop_item(L, q);
  if (q->putters.whead) refill(L, RT_UPVALUE(L), q);
  return n;
}

/* }==================================================================== */


/* {====================================================================
** Methods
** ===================================================================== */

static int closed_error(lua_State *L, const char *op) {
  return corio__error(L, "CLOSED", op, "queue is closed");
}


/* Checks put()'s arguments: the item, and for PRIO the priority (the item
** itself by default) at index 3. */
static void check_put(lua_State *L, queue *q) {
  int top = lua_gettop(L);
  if (top < 2) luaL_checkany(L, 2);
  if (q->kind != Q_PRIO) {
    if (top > 2) lua_settop(L, 2);            /* a waiting putter's stack */
    return;                                   /* is [q, item] */
  }
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_pushvalue(L, 2);
    lua_replace(L, 3);
  }
  luaL_argcheck(L, !lua_isnil(L, 3), 2, "priority expected (the item is "
                "nil and no priority was given)");
  luaL_argcheck(L, !(lua_type(L, 3) == LUA_TNUMBER &&
                     isnan(lua_tonumber(L, 3))), 3, "priority is NaN");
}


static int q_put(lua_State *L) {
  queue *q = check_queue(L);
  check_put(L, q);
  if (q->closed) return closed_error(L, "put");
  if (offer(L, q)) return 0;
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "put");
  return sync__wl_wait(L, rt, t, &q->putters);
}


static int q_put_nowait(lua_State *L) {
  queue *q = check_queue(L);
  check_put(L, q);
  if (q->closed) return closed_error(L, "put_nowait");
  if (offer(L, q)) return 0;
  return corio__error(L, "QUEUE_FULL", "put_nowait",
                      "queue is full (maxsize %I)", q->maxsize);
}


static int q_get(lua_State *L) {
  queue *q = check_queue(L);
  if (q->count > 0) return take(L, q);
  if (q->closed) return closed_error(L, "get");
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "get");
  lua_settop(L, 1);
  return sync__wl_wait(L, rt, t, &q->getters);
}


static int q_get_nowait(lua_State *L) {
  queue *q = check_queue(L);
  if (q->count > 0) return take(L, q);
  if (q->closed) return closed_error(L, "get_nowait");
  return corio__error(L, "QUEUE_EMPTY", "get_nowait", "queue is empty");
}


static int q_task_done(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  queue *q = check_queue(L);
  if (q->unfinished <= 0)
    return corio__error(L, "INVALID_STATE", "task_done",
                        "task_done() called more times than items were "
                        "put");
  if (--q->unfinished == 0) sync__wl_wake_all(rt, L, &q->joiners, 1, 0);
  return 0;
}


static int q_join(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  queue *q = check_queue(L);
  if (q->unfinished == 0) return 0;
  corio_task *t = corio__check_await(L, rt, "join");
  lua_settop(L, 1);
  return sync__wl_wait(L, rt, t, &q->joiners);
}


/* close([immediate]): no more puts; waiting putters and getters get
** CLOSED, later getters drain what is left first.  With immediate, the
** items left are dropped (and count as done for join()). */
static int q_close(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  queue *q = check_queue(L);
  int immediate = lua_toboolean(L, 2);
  lua_settop(L, 1);
  q->closed = 1;
  if (immediate && q->count > 0) {
    for (int i = 1; i <= (q->kind == Q_PRIO ? 3 : 1); i++) {
      lua_newtable(L);
      lua_setiuservalue(L, 1, i);
    }
    q->unfinished -= q->count;
    if (q->unfinished < 0) q->unfinished = 0;
    q->count = q->head = 0;
    if (q->unfinished == 0) sync__wl_wake_all(rt, L, &q->joiners, 1, 0);
  }
  corio__push_error(L, "CLOSED", "put", "queue is closed");
  sync__wl_throw_all(rt, L, &q->putters, -1);
  corio__push_error(L, "CLOSED", "get", "queue is closed");
  sync__wl_throw_all(rt, L, &q->getters, -1);
  return 0;
}


static int q_qsize(lua_State *L) {
  lua_pushinteger(L, ((queue *)check_queue(L))->count);
  return 1;
}


static int q_empty(lua_State *L) {
  lua_pushboolean(L, ((queue *)check_queue(L))->count == 0);
  return 1;
}


static int q_full(lua_State *L) {
  lua_pushboolean(L, is_full(check_queue(L)));
  return 1;
}


static int q_maxsize(lua_State *L) {
  lua_pushinteger(L, ((queue *)check_queue(L))->maxsize);
  return 1;
}


static int q_closed(lua_State *L) {
  lua_pushboolean(L, ((queue *)check_queue(L))->closed);
  return 1;
}


static int q_tostring(lua_State *L) {
  queue *q = check_queue(L);
  lua_pushfstring(L, "corio.%s (%I items, maxsize %I%s): %p",
                  kind_names[q->kind], q->count, q->maxsize,
                  q->closed ? ", closed" : "", (void *)q);
  return 1;
}


static int q_new(lua_State *L, int kind) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, maxsize >= 0, 1, "maxsize must be >= 0 (0: unbounded)");
  queue *q = sync__new(L, &queue_class, Q_NUV);
  sync__wl_init(&q->getters);
  sync__wl_init(&q->putters);
  sync__wl_init(&q->joiners);
  q->maxsize = maxsize;
  q->cap = 4;
  q->kind = (unsigned char)kind;
  for (int i = 1; i <= (kind == Q_PRIO ? 3 : 1); i++) {
    lua_createtable(L, 4, 0);
    lua_setiuservalue(L, -2, i);
  }
  return 1;
}

static int l_queue(lua_State *L) { return q_new(L, Q_FIFO); }
static int l_lifo_queue(lua_State *L) { return q_new(L, Q_LIFO); }
static int l_priority_queue(lua_State *L) { return q_new(L, Q_PRIO); }

/* }==================================================================== */


void corio__open_queue(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"put", q_put},
    {"get", q_get},
    {"put_nowait", q_put_nowait},
    {"get_nowait", q_get_nowait},
    {"task_done", q_task_done},
    {"join", q_join},
    {"close", q_close},
    {"qsize", q_qsize},
    {"empty", q_empty},
    {"full", q_full},
    {"maxsize", q_maxsize},
    {"closed", q_closed},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"Queue", l_queue},
    {"LifoQueue", l_lifo_queue},
    {"PriorityQueue", l_priority_queue},
    {NULL, NULL}
  };
  sync__newclass(L, rt, &queue_class, methods, q_tostring);
  luaL_getmetatable(L, queue_class.name);
  lua_getfield(L, -2, "qsize");
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  lua_setfield(L, -2, "queue_methods");
  corio__setfuncs(L, rt, funcs);
}
