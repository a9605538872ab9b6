/*
** stream_write.c -- the write side of a Stream: write with backpressure,
** write_nowait, drain, shutdown, and the flush that close() waits for.
**
** A write first tries the socket directly (uv_try_write) when nothing is
** queued, which for small messages is the whole story: no request, no
** copy.  What the kernel does not take is queued as one libuv write
** request holding a copy of the bytes (or, for one big string, a
** reference to it).  `wq` counts the queued bytes; above the high-water
** mark, write() waits until the queue is back under the low-water mark, so
** a slow reader never makes memory grow.  A failed write (EPIPE,
** ECONNRESET) is kept and raised by every later write, drain or shutdown.
**
** Tasks waiting on the write side (writers, drainers, a closer) are kept
** in s->ww with the queue size they wait for.
*/
#include <stdint.h>   /* SIZE_MAX, uintptr_t */
#include <stdlib.h>   /* malloc, free, realloc */
#include <string.h>   /* memcpy */

#include "net.h"

#define WMAX 16                      /* bufs per write before concat */
#define WBIG (64 * 1024)             /* a single string this big is
                                        referenced, not copied */

/* {====================================================================
** Waiters
** ===================================================================== */

/* Waits in a nested call whose index 1 is obj (for the undo hook), then
** goes on with k in the caller's frame: k's results are the caller's. */
typedef struct net_undo { corio_undo_fn fn; } net_undo;

static int suspend_fn(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  net_undo *u = lua_touserdata(L, lua_upvalueindex(2));
  return corio__suspend(L, rt, rt->current, u->fn);
}


static int await_k(lua_State *L, corio_rt *rt, void *obj, net_undo *u,
                   lua_KFunction k) {
  lua_pushlightuserdata(L, rt);
  lua_pushlightuserdata(L, u);
  lua_pushcclosure(L, suspend_fn, 2);
  lua_pushlightuserdata(L, obj);
  lua_callk(L, 1, 0, 0, k);
  return k(L, LUA_OK, 0);
}


static void add_waiter(lua_State *L, stream *s, corio_task *t,
                       size_t below) {
  if (s->nww == s->cww) {
    int n = s->cww ? s->cww * 2 : 4;
    wwaiter *p = realloc(s->ww, (size_t)n * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    s->ww = p;
    s->cww = n;
  }
  s->ww[s->nww].t = t;
  s->ww[s->nww].below = below;
  s->nww++;
  net__update_ref(s);
}


static void remove_waiter(stream *s, corio_task *t) {
  for (int i = 0; i < s->nww; i++) {
    if (s->ww[i].t == t) {
      memmove(s->ww + i, s->ww + i + 1,
              (size_t)(s->nww - i - 1) * sizeof *s->ww);
      s->nww--;
      break;
    }
  }
  net__update_ref(s);
}


static int push_closed(lua_State *L) {
  corio__push_error(L, "CLOSED", "write", "stream is closed");
  return 1;
}


static int push_werr(lua_State *L) {
  stream *s = lua_touserdata(L, 1);
  net__push_ioerror(L, s, s->werr, "write");
  return 1;
}


/* Wakes the waiters whose condition holds, in order.  A waiter leaves
** the list before it is woken, and an error is made protected
** (corio__wake_with): the list stays whole if memory runs out. */
void net__wake_writers(stream *s) {
  corio_rt *rt = s->rt;
  int i = 0;
  while (i < s->nww) {
    wwaiter w = s->ww[i];
    lua_CFunction push = NULL;
    if (rt->closing) {
      i++;
      continue;
    }
    if (w.below == SIZE_MAX) {                /* a closer */
      if (!net__linger_done(s) && !(s->flags & SF_CLOSING)) {
        i++;
        continue;
      }
    } else if (s->flags & SF_CLOSED) {
      push = push_closed;
    } else if (s->werr) {
      push = push_werr;
    } else if (s->wq > w.below) {
      i++;
      continue;
    }
    memmove(s->ww + i, s->ww + i + 1,
            (size_t)(s->nww - i - 1) * sizeof *s->ww);
    s->nww--;
    if (push) corio__wake_with(rt, w.t, push, s, WAKE_RAISE);
    else corio__wake(rt, w.t, rt->L, 0, WAKE_VALUES);
  }
}


static void waiter_undo(corio_rt *rt, corio_task *t) {
  (void)rt;
  remove_waiter(net__wait_obj(t), t);
}


static void closer_undo(corio_rt *rt, corio_task *t) {
  stream *s = net__wait_obj(t);
  (void)rt;
  remove_waiter(s, t);
  net__stream_abort(s);                       /* cancelled: close now */
}

static net_undo waiter_undo_box = {waiter_undo};
static net_undo closer_undo_box = {closer_undo};

/* }==================================================================== */


/* {====================================================================
** Queued writes
** ===================================================================== */

typedef struct wreq {
  uv_write_t req;
  size_t len;
  int anchor;                  /* live-table slot of the string, or 0 */
  uv_buf_t buf;
  char data[];
} wreq;


void net__write_done(stream *s, size_t len, int status) {
  s->wq -= len;
  if (status < 0 && status != UV_ECANCELED && !s->werr) s->werr = status;
  net__wake_writers(s);
  net__linger_check(s);
}


static void write_cb(uv_write_t *req, int status) {
  wreq *w = container_of(req, wreq, req);
  stream *s = req->handle->data;
  if (w->anchor && !s->rt->closing)
    corio__unanchor(s->rt, s->rt->L, w->anchor);
  net__write_done(s, w->len, status);
  free(w);
}


/* Queues the n bufs (total bytes); sidx is the stack index of the string
** when there is only one, so a big one can be referenced. */
static int queue_write(lua_State *L, stream *s, uv_buf_t *bufs, int n,
                       size_t total, int sidx) {
  wreq *w;
  if (n == 1 && sidx && total >= WBIG) {
    w = malloc(sizeof *w);
    if (w == NULL) return UV_ENOMEM;
    w->buf = bufs[0];
    w->anchor = corio__anchor(s->rt, L, sidx);
  } else {
    w = malloc(sizeof *w + total);
    if (w == NULL) return UV_ENOMEM;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
      memcpy(w->data + off, bufs[i].base, bufs[i].len);
      off += bufs[i].len;
    }
    w->buf.base = w->data;
    w->buf.len = total;
    w->anchor = 0;
  }
  w->len = total;
  int r = uv_write(&w->req, &s->u.s, &w->buf, 1, write_cb);
  if (r != 0) {
    if (w->anchor) corio__unanchor(s->rt, L, w->anchor);
    free(w);
    return r;
  }
  s->wq += total;
  net__update_ref(s);
  return 0;
}


int net__send_raw(stream *s, const char *p, size_t len) {
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned int)len);
  if (s->werr) return s->werr;
  if (s->flags & SF_CLOSING) return s->werr = UV_ECANCELED;
  if (len == 0) return 0;
  if (s->wq == 0) {
    int r = uv_try_write(&s->u.s, &b, 1);
    if (r >= 0) {
      if ((size_t)r == len) return 0;
      b.base += r;
      b.len -= (size_t)r;
    } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
      return s->werr = r;
    }
  }
  int r = queue_write(s->rt->L, s, &b, 1, b.len, 0);   /* copies */
  if (r != 0 && !s->werr) s->werr = r;
  return r;
}


/* Whether s can be written: not after a shutdown, nor after a (sticky)
** write error.  0, or -1 with the error pushed (check_writable raises it). */
static int writable(lua_State *L, stream *s, const char *op) {
  if (s->flags & SF_SHUT) {
    corio__push_error(L, "CLOSED", op, "stream was shut down for writing");
    return -1;
  }
  if (s->werr) {
    net__push_ioerror(L, s, s->werr, op);
    return -1;
  }
  return 0;
}

static void check_writable(lua_State *L, stream *s, const char *op) {
  if (writable(L, s, op) < 0) lua_error(L);
}


/* Sends or queues the n bufs (total bytes; sidx as for queue_write):
** 0, or -1 with the error pushed (write_bufs raises it). */
static int send_bufs(lua_State *L, stream *s, uv_buf_t *bufs, int n,
                     size_t total, int sidx, const char *op) {
  if (total == 0) return 0;
  if (s->filt) {
    int r = s->filt->write(s, bufs, n);
    if (r != 0) {
      net__push_ioerror(L, s, r, op);
      return -1;
    }
    return 0;
  }
  if (s->kind == SK_FD) {
    int r = net__fd_write(s, bufs, n);
    if (r != 0) { corio__push_uverror(L, r, op, NULL); return -1; }
    return 0;
  }
  if (s->wq == 0) {
    int r = uv_try_write(&s->u.s, bufs, (unsigned int)n);
    if (r >= 0) {
      size_t done = (size_t)r;
      if (done == total) return 0;
      total -= done;
      while (done >= bufs[0].len) {         /* skip what went out */
        done -= bufs[0].len;
        bufs++;
        n--;
      }
      bufs[0].base += done;
      bufs[0].len -= done;
    } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
      s->werr = r;
      corio__push_uverror(L, r, op, NULL);
      return -1;
    }
  }
  int r = queue_write(L, s, bufs, n, total, n == 1 ? sidx : 0);
  if (r != 0) {
    if (!s->werr) s->werr = r;
    corio__push_uverror(L, r, op, NULL);
    return -1;
  }
  return 0;
}

static void write_bufs(lua_State *L, stream *s, uv_buf_t *bufs, int n,
                       size_t total, int sidx, const char *op) {
  if (send_bufs(L, s, bufs, n, total, sidx, op) < 0) lua_error(L);
}


/* Sends or queues arguments 2..top; raises on a closed stream, after a
** shutdown and on a (sticky) write error. */
static void write_args(lua_State *L, stream *s, const char *op) {
  int top = lua_gettop(L), n = top - 1;
  uv_buf_t bufs[WMAX];
  size_t total = 0;
  if (n > WMAX) {                             /* one string of them all */
    for (int i = 2; i <= top; i++) luaL_checklstring(L, i, NULL);
    lua_concat(L, n);
    n = 1;
    top = 2;
  }
  for (int i = 0; i < n; i++) {               /* checked and taken at once */
    size_t len;
    const char *p = luaL_checklstring(L, i + 2, &len);
    bufs[i].base = (char *)(uintptr_t)p;
    bufs[i].len = len;
    total += len;
  }
  check_writable(L, s, op);
  write_bufs(L, s, bufs, n, total, top, op);
}


static int write_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_settop(L, 1);
  return 1;
}


/* write(...) -> the stream.  Waits while the queue is above the
** high-water mark (only in a task: elsewhere it never waits). */
static int stream_write(lua_State *L) {
  stream *s = net__check_stream(L, 1, "write");
  write_args(L, s, "write");
  if (s->wq <= s->hwm || !net__can_wait(L, s->rt)) {
    lua_settop(L, 1);
    return 1;
  }
  corio_rt *rt = s->rt;
  corio_task *t = corio__check_await(L, rt, "write");
  add_waiter(L, s, t, s->lwm);
  return await_k(L, rt, s, &waiter_undo_box, write_k);
}


static int none_k(lua_State *L, int status, lua_KContext ctx);

void corio__stream_send(lua_State *L, stream *s, uv_buf_t *bufs, int n,
                        const char *op) {
  if (corio__stream_try_send(L, s, bufs, n, op) < 0) lua_error(L);
}


int corio__stream_try_send(lua_State *L, stream *s, uv_buf_t *bufs, int n,
                           const char *op) {
  size_t total = 0;
  if (writable(L, s, op) < 0) return -1;
  for (int i = 0; i < n; i++) total += bufs[i].len;
  return send_bufs(L, s, bufs, n, total, 0, op);
}


size_t corio__stream_queued(stream *s) {
  return s->wq;
}


int corio__stream_write_wait(lua_State *L, corio_rt *rt, stream *s,
                             const char *op) {
  if (s->wq <= s->hwm || !net__can_wait(L, rt)) return 0;
  corio_task *t = corio__check_await(L, rt, op);
  add_waiter(L, s, t, s->lwm);
  return await_k(L, rt, s, &waiter_undo_box, none_k);
}


/* write_nowait(...) -> bytes queued.  Never waits (for transports). */
static int stream_write_nowait(lua_State *L) {
  stream *s = net__check_stream(L, 1, "write");
  write_args(L, s, "write");
  lua_pushinteger(L, (lua_Integer)s->wq);
  return 1;
}


static int none_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L;
  (void)status;
  (void)ctx;
  return 0;
}


/* drain(): waits until everything queued is written. */
static int stream_drain(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  stream *s = net__check_stream(L, 1, "drain");
  if (s->werr) {
    net__push_ioerror(L, s, s->werr, "drain");
    return lua_error(L);
  }
  if (s->wq == 0) return 0;
  corio_task *t = corio__check_await(L, rt, "drain");
  add_waiter(L, s, t, 0);
  return await_k(L, rt, s, &waiter_undo_box, none_k);
}


int net__close_wait(lua_State *L, corio_rt *rt, stream *s) {
  corio_task *t = corio__check_await(L, rt, "close");
  add_waiter(L, s, t, SIZE_MAX);
  return await_k(L, rt, s, &closer_undo_box, none_k);
}


static int stream_get_write_buffer_size(lua_State *L) {
  stream *s = net__check_stream(L, 1, "get_write_buffer_size");
  lua_pushinteger(L, (lua_Integer)s->wq);
  return 1;
}


/* get_write_buffer_limits() -> high, low */
static int stream_get_write_buffer_limits(lua_State *L) {
  stream *s = net__check_stream(L, 1, "get_write_buffer_limits");
  lua_pushinteger(L, (lua_Integer)s->hwm);
  lua_pushinteger(L, (lua_Integer)s->lwm);
  return 2;
}


/* set_write_buffer_limits(high [, low]) */
static int stream_set_write_buffer_limits(lua_State *L) {
  stream *s = net__check_stream(L, 1, "set_write_buffer_limits");
  lua_Integer hi = luaL_checkinteger(L, 2);
  lua_Integer lo = luaL_optinteger(L, 3, hi / 2);
  luaL_argcheck(L, hi >= 0, 2, "negative size");
  luaL_argcheck(L, lo >= 0 && lo <= hi, 3, "must be in [0, high]");
  s->hwm = (size_t)hi;
  s->lwm = (size_t)lo;
  net__wake_writers(s);
  return 0;
}

/* }==================================================================== */


/* {====================================================================
** Shutdown
** ===================================================================== */

typedef struct sreq {
  uv_shutdown_t req;
  corio_task *t;               /* the task waiting, or NULL */
} sreq;


static int push_shutdown_error(lua_State *L) {
  int status = (int)(intptr_t)lua_touserdata(L, 1);
  if (status == UV_ECANCELED)
    corio__push_error(L, "CLOSED", "shutdown", "stream is closed");
  else
    corio__push_uverror(L, status, "shutdown", NULL);
  return 1;
}


static void shutdown_cb(uv_shutdown_t *req, int status) {
  sreq *r = container_of(req, sreq, req);
  stream *s = req->handle->data;
  s->nreq--;
  if (r->t && !s->rt->closing) {
    if (status < 0)
      corio__wake_with(s->rt, r->t, push_shutdown_error,
                       (void *)(intptr_t)status, WAKE_RAISE);
    else
      corio__wake(s->rt, r->t, s->rt->L, 0, WAKE_VALUES);
  }
  free(r);
  net__update_ref(s);
}


static void shutdown_undo(corio_rt *rt, corio_task *t) {
  sreq *r = net__wait_obj(t);
  (void)rt;
  r->t = NULL;
}


/* shutdown(): sends EOF once the queued writes are out; waits for it in
** a task.  A second call does nothing. */
static int stream_shutdown(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  stream *s = net__check_stream(L, 1, "shutdown");
  if (s->flags & SF_SHUT) return 0;
  if (s->werr) {
    net__push_ioerror(L, s, s->werr, "shutdown");
    return lua_error(L);
  }
  if (s->filt) {                              /* close_notify first */
    int e = s->filt->shutdown(s);
    if (e != 0) {
      net__push_ioerror(L, s, e, "shutdown");
      return lua_error(L);
    }
  }
  if (s->kind == SK_FD) {                     /* nothing to send: drain */
    s->flags |= SF_SHUT;
    if (s->wq == 0 || !net__can_wait(L, rt)) return 0;
    corio_task *t = corio__check_await(L, rt, "shutdown");
    add_waiter(L, s, t, 0);
    return await_k(L, rt, s, &waiter_undo_box, none_k);
  }
  corio_task *t = net__can_wait(L, rt) ? corio__check_await(L, rt,
                                                            "shutdown")
                                       : NULL;
  sreq *r = malloc(sizeof *r);
  if (r == NULL) return luaL_error(L, "not enough memory");
  r->t = NULL;
  int st = uv_shutdown(&r->req, &s->u.s, shutdown_cb);
  if (st != 0) {
    free(r);
    return corio__uverror(L, st, "shutdown", NULL);
  }
  s->flags |= SF_SHUT;
  s->nreq++;
  net__update_ref(s);
  if (t == NULL) return 0;
  r->t = t;
  return net__suspend(L, rt, t, r, shutdown_undo);
}

/* }==================================================================== */


const luaL_Reg net__write_methods[] = {
  {"write", stream_write},
  {"write_nowait", stream_write_nowait},
  {"drain", stream_drain},
  {"shutdown", stream_shutdown},
  {"get_write_buffer_size", stream_get_write_buffer_size},
  {"set_write_buffer_limits", stream_set_write_buffer_limits},
  {"get_write_buffer_limits", stream_get_write_buffer_limits},
  {NULL, NULL}
};
