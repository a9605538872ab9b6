/*
** port.c -- the way into a runtime from other threads: ports, corio_stop,
** and the delivery of C futures' results (cfuture.c).
**
** Every runtime has one hub: a mutex, a FIFO of posted items and a
** uv_async_t that wakes the loop.  Ports and C futures point at the hub,
** not at the runtime, so they outlive it: corio_free sets hub->rt to NULL
** under the lock, and every later post sees that and drops.  The hub is
** freed with its last reference (the runtime's, each port's, each C
** future's).  The async handle lives in the runtime and is signalled only
** under the lock while hub->rt is set, so no thread signals it after
** teardown.
**
** One FIFO keeps the order of each producer's posts.  The loop thread
** takes at most CORIO_POSTS_PER_TURN items per wake-up and signals itself
** again if more are left, so a flood of posts cannot starve I/O.  An open
** port, and a pending C future the host holds, keep the async handle
** referenced: the loop stays alive for them (they are wake sources).
*/
#include <stdlib.h>   /* malloc, free */

#include "internal.h"

#define CORIO_POSTS_PER_TURN 1000


struct corio_port {
  corio_hub *hub;
  int refs;                    /* host references (under hub->mu) */
  size_t queued;               /* its items in the hub's queue */
};


static void hub_unref_locked(corio_hub *hub, int *free_it) {
  *free_it = --hub->refs == 0;
}


static void hub_free(corio_hub *hub) {
  uv_mutex_destroy(&hub->mu);
  free(hub);
}


void corio__hub_release(corio_hub *hub) {
  int f;
  uv_mutex_lock(&hub->mu);
  hub_unref_locked(hub, &f);
  uv_mutex_unlock(&hub->mu);
  if (f) hub_free(hub);
}


void corio__hub_retain(corio_hub *hub) {
  uv_mutex_lock(&hub->mu);
  hub->refs++;
  uv_mutex_unlock(&hub->mu);
}


/* Loop thread: the async handle keeps the loop alive while something the
** host holds may still post. */
void corio__hub_sync(corio_rt *rt) {
  corio_hub *hub = rt->hub;
  uv_mutex_lock(&hub->mu);
  /* Queued items count too: the loop must run them even after the last
  ** port closed. */
  int alive = (hub->alive > 0 || hub->head) && !rt->closing && !rt->freeing;
  uv_mutex_unlock(&hub->mu);
  if (alive) uv_ref((uv_handle_t *)&rt->async);
  else uv_unref((uv_handle_t *)&rt->async);
}


/* Appends an item; the caller holds the lock and has checked hub->rt. */
void corio__hub_push_locked(corio_hub *hub, corio_item *it) {
  it->next = NULL;
  if (hub->tail) hub->tail->next = it;
  else hub->head = it;
  hub->tail = it;
  uv_async_send(&hub->rt->async);
}


void corio__hub_alive(corio_hub *hub, int delta) {
  uv_mutex_lock(&hub->mu);
  hub->alive += delta;
  if (hub->rt) uv_async_send(&hub->rt->async);   /* re-evaluate the ref */
  uv_mutex_unlock(&hub->mu);
}


/* {====================================================================
** Running posted items
** ===================================================================== */

typedef struct callctx { corio_post_fn fn; void *ud; corio_rt *rt; } callctx;

static int call_post(lua_State *L) {
  callctx *c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  c->fn(c->rt, c->ud);
  return 0;
}


/* Runs fn(rt, ud) protected on the loop thread; an error is reported as a
** raising callback. */
void corio__call_protected(corio_rt *rt, corio_post_fn fn, void *ud) {
  lua_State *L = rt->L;
  callctx c = {fn, ud, rt};
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) {                /* no room: run it bare */
    rt->in_post++;
    fn(rt, ud);
    rt->in_post--;
    return;
  }
  lua_pushcfunction(L, corio__msgh);
  lua_pushcfunction(L, call_post);
  lua_pushlightuserdata(L, &c);
  rt->in_post++;
  int st = lua_pcall(L, 1, 0, top + 1);
  rt->in_post--;
  if (st != LUA_OK) {
    lua_getfield(L, LUA_REGISTRYINDEX, "corio.traceback");
    corio__report(rt, L, -2, "callback", lua_gettop(L));
  }
  lua_settop(L, top);
}


/* Consumes an item that will not run. */
static void drop_item(corio_item *it) {
  if (it->kind != ITEM_POST) {               /* a C future's own item */
    corio__cfuture_item(NULL, it);
    return;
  }
  if (it->drop) it->drop(it->ud);
  free(it);
}


static void on_async(uv_async_t *a) {
  corio_rt *rt = a->data;
  corio_hub *hub = rt->hub;
  corio_item *batch = NULL, **tail = &batch;
  int stop, more;
  uv_mutex_lock(&hub->mu);
  for (int n = 0; n < CORIO_POSTS_PER_TURN && hub->head; n++) {
    corio_item *it = hub->head;
    hub->head = it->next;
    if (hub->head == NULL) hub->tail = NULL;
    *tail = it;
    tail = &it->next;
    it->next = NULL;
    if (it->port && --it->port->queued == 0 && it->port->refs == 0) {
      free(it->port);                 /* closed and drained; the hub keeps */
      hub->refs--;                    /* the runtime's reference meanwhile */
      it->port = NULL;
    }
  }
  more = hub->head != NULL;
  stop = hub->stop;
  hub->stop = 0;
  uv_mutex_unlock(&hub->mu);
  while (batch) {
    corio_item *it = batch;
    batch = it->next;
    if (it->kind != ITEM_POST) {
      corio__cfuture_item(rt, it);
    } else {
      corio__call_protected(rt, it->fn, it->ud);
      free(it);
    }
  }
  corio__flush_reports(rt);
  if (more) uv_async_send(a);                 /* the rest: next turn */
  corio__hub_sync(rt);
  if (stop) corio__stop_now(rt);
}

/* }==================================================================== */


/* {====================================================================
** The hub's life (runtime.c calls these)
** ===================================================================== */

int corio__hub_init(corio_rt *rt) {
  corio_hub *hub = calloc(1, sizeof *hub);
  if (hub == NULL) return UV_ENOMEM;
  if (uv_mutex_init(&hub->mu) != 0) {
    free(hub);
    return UV_ENOMEM;
  }
  int r = uv_async_init(rt->loop, &rt->async, on_async);
  if (r != 0) {
    hub_free(hub);
    return r;
  }
  rt->async.data = rt;
  uv_unref((uv_handle_t *)&rt->async);
  corio__track(rt, (uv_handle_t *)&rt->async);
  hub->refs = 1;
  hub->rt = rt;
  rt->hub = hub;
  return 0;
}


/* Teardown: no post reaches the runtime any more; what is queued is
** dropped (drop hooks run, C futures' items are freed). */
void corio__hub_detach(corio_rt *rt) {
  corio_hub *hub = rt->hub;
  if (hub == NULL) return;
  uv_mutex_lock(&hub->mu);
  hub->rt = NULL;
  corio_item *q = hub->head;
  hub->head = hub->tail = NULL;
  uv_mutex_unlock(&hub->mu);
  while (q) {
    corio_item *it = q;
    q = it->next;
    corio_port *p = it->port;
    drop_item(it);
    if (p) {
      int f = 0;
      uv_mutex_lock(&hub->mu);
      if (--p->queued == 0 && p->refs == 0) f = 1;
      uv_mutex_unlock(&hub->mu);
      if (f) {
        free(p);
        corio__hub_release(hub);
      }
    }
  }
}

/* }==================================================================== */


/* {====================================================================
** The public calls
** ===================================================================== */

void corio_stop(corio_runtime *rt) {
  if (rt == NULL || rt->hub == NULL) return;
  corio_hub *hub = rt->hub;
  uv_mutex_lock(&hub->mu);
  if (hub->rt) {
    hub->stop = 1;
    uv_async_send(&rt->async);
  }
  uv_mutex_unlock(&hub->mu);
}


corio_port *corio_port_open(corio_runtime *rt) {
  if (rt == NULL || rt->hub == NULL || rt->closing) return NULL;
  corio_port *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->hub = rt->hub;
  p->refs = 1;
  uv_mutex_lock(&rt->hub->mu);
  rt->hub->refs++;
  rt->hub->alive++;
  uv_mutex_unlock(&rt->hub->mu);
  corio__hub_sync(rt);
  return p;
}


corio_port *corio_port_dup(corio_port *p) {
  if (p == NULL) return NULL;
  uv_mutex_lock(&p->hub->mu);
  p->refs++;
  uv_mutex_unlock(&p->hub->mu);
  return p;
}


void corio_port_close(corio_port *p) {
  if (p == NULL) return;
  corio_hub *hub = p->hub;
  int free_port = 0, free_hub = 0;
  uv_mutex_lock(&hub->mu);
  if (--p->refs == 0) {
    hub->alive--;
    if (hub->rt) uv_async_send(&hub->rt->async);  /* may unref the loop */
    if (p->queued == 0) {
      free_port = 1;
      hub_unref_locked(hub, &free_hub);
    }
  }
  uv_mutex_unlock(&hub->mu);
  if (free_port) free(p);
  if (free_hub) hub_free(hub);
}


int corio_port_post(corio_port *p, corio_post_fn fn, void *ud,
                    corio_drop_fn drop) {
  if (p == NULL || fn == NULL) {
    if (drop) drop(ud);
    return CORIO_EINVAL;
  }
  corio_item *it = malloc(sizeof *it);
  if (it == NULL) {
    if (drop) drop(ud);
    return CORIO_ENOMEM;
  }
  it->fn = fn;
  it->ud = ud;
  it->drop = drop;
  it->port = p;
  it->kind = ITEM_POST;
  corio_hub *hub = p->hub;
  int rc = CORIO_OK;
  uv_mutex_lock(&hub->mu);
  if (hub->rt == NULL) rc = CORIO_ECLOSED;
  else if (hub->queue_max && p->queued >= hub->queue_max) rc = CORIO_EFULL;
  else {
    p->queued++;
    corio__hub_push_locked(hub, it);
  }
  uv_mutex_unlock(&hub->mu);
  if (rc != CORIO_OK) {
    free(it);
    if (drop) drop(ud);
  }
  return rc;
}

/* }==================================================================== */
