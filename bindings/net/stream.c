/*
** stream.c -- the Stream: a buffered, awaitable byte stream over a libuv
** stream handle (TCP, unix socket, pipe, tty) or a plain fd (stdio.c).
** This file holds its life (creation, close, abort, GC), the methods
** table and the interface for other bindings; stream_read.c holds the
** read side, stream_write.c the write side.
**
** Life of a stream:  open -> closed (close/abort/GC: every method but
** close raises CLOSED; a task blocked in it is woken with CLOSED) ->
** lingering (close with writes still queued: the handle stays open until
** they are out, then closes) -> closing (uv_close called) -> freed (in the
** close callback, after libuv has called back every write request).  The
** userdata only points at the C struct, so a collected Stream can still
** linger and be freed later.
**
** A stream handle is ref'ed (keeps the loop alive) only while a task waits
** on it or it has writes queued: read-ahead alone never keeps a process
** alive.
*/
#include <stdio.h>    /* fprintf: --debug */
#include <stdlib.h>   /* calloc, free, malloc */
#include <errno.h>    /* EAGAIN: pending */
#include <sys/socket.h> /* recv: pending */

#include "net.h"


/* {====================================================================
** The shared per-runtime state
** ===================================================================== */

static const char ns_key = 0;

void net__state_unref(netstate *ns) {
  if (--ns->refs == 0) free(ns);
}


static void close_now(stream *s);

/* The state is closing: close every stream still open, including those
** whose userdata is gone (lingering), so that each is freed by its own
** close callback when the runtime runs the loop one last time. */
static int ns_gc(lua_State *L) {
  netstate **p = lua_touserdata(L, 1);
  netstate *ns = *p;
  if (ns == NULL) return 0;
  *p = NULL;
  for (stream *s = ns->all, *next; s; s = next) {
    next = s->next;                /* close_now may free s (fd backend) */
    s->reader = NULL;
    s->nww = 0;
    s->flags |= SF_CLOSED;
    close_now(s);
  }
  net__state_unref(ns);
  return 0;
}


netstate *net__state(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ns_key);
  netstate **p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (p == NULL || *p == NULL) {
    p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ns_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    *p = malloc(sizeof **p);
    if (*p == NULL) luaL_error(L, "not enough memory");
    (*p)->refs = 1;
    (*p)->all = NULL;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ns_key);
  }
  (*p)->refs++;
  return *p;
}

/* }==================================================================== */


/* {====================================================================
** Life: creation, ref, close, free
** ===================================================================== */

/* Keeps the loop alive only while someone waits on this stream or (for a
** stream the script has not dropped) writes are queued. */
void net__update_ref(stream *s) {
  if (!(s->flags & SF_HANDLE) || (s->flags & SF_CLOSING)) return;
  int want = s->reader || s->nww || s->nreq > 0 ||
             ((s->wq > 0 || (s->flags & SF_FWANT)) && s->ud);
  if (want && !(s->flags & SF_REF)) {
    uv_ref(&s->u.h);
    s->flags |= SF_REF;
  } else if (!want && (s->flags & SF_REF)) {
    uv_unref(&s->u.h);
    s->flags &= ~SF_REF;
  }
}


stream *net__stream_new(lua_State *L, corio_rt *rt, int kind) {
  stream_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->magic = STREAM_MAGIC;
  ud->s = NULL;                               /* born closed */
  net__stream_metatable(L, rt);
  lua_setmetatable(L, -2);
  netstate *ns = net__state(L);               /* may raise: first */
  stream *s = calloc(1, sizeof *s);
  if (s == NULL) {
    net__state_unref(ns);
    luaL_error(L, "not enough memory");
  }
  s->ns = ns;
  s->rt = rt;
  s->kind = (unsigned char)kind;
  s->limit = NET_LIMIT;
  s->hwm = NET_HWM;
  s->lwm = NET_HWM / 2;
  s->fd = -1;
  s->ud = ud;
  ud->s = s;
  s->next = s->ns->all;
  if (s->next) s->next->prev = s;
  s->ns->all = s;
  return s;
}


void net__stream_opened(stream *s) {
  s->u.h.data = s;
  corio__track(s->rt, &s->u.h);
  s->flags |= SF_HANDLE | SF_REF;
  net__update_ref(s);
}


static void stream_free(stream *s) {
  if (s->filt && s->filt->free) s->filt->free(s);
  if (s->prev) s->prev->next = s->next;
  else s->ns->all = s->next;
  if (s->next) s->next->prev = s->prev;
  /* After corio_free's lua_close the userdata is gone even when its __gc
  ** (which clears s->ud) could not run for want of memory. */
  if (s->ud && !s->rt->lua_closed) s->ud->s = NULL;
  rbuf_free(&s->rb);
  free(s->sep);
  free(s->ww);
  net__state_unref(s->ns);
  free(s);
}


void net__stream_discard(stream *s) {
  stream_free(s);
}


static void close_cb(uv_handle_t *h) {
  corio__untrack(((stream *)h->data)->rt, h);
  stream_free(h->data);
}


void net__maybe_free(stream *s) {
  if ((s->flags & SF_CLOSING) && s->nreq == 0) stream_free(s);
}


/* Closes the handle now: queued writes are cancelled. */
/* reset: on TCP, close with a RST (see stream_abort) when libuv can */
static void close_how(stream *s, int reset) {
  if (s->flags & SF_CLOSING) return;
  s->flags |= SF_CLOSING;
  s->flags &= ~SF_READING;
  if (s->flags & SF_HANDLE) {
    if (!reset || s->u.h.type != UV_TCP || uv_tcp_close_reset(&s->u.tcp, close_cb) != 0)
      uv_close(&s->u.h, close_cb);
  } else if (s->kind == SK_FD) {
    net__fd_close(s);
    net__maybe_free(s);
  } else {
    stream_free(s);
  }
}

static void close_now(stream *s) {
  close_how(s, 0);
}


/* Wakes the reader with the error on top of rt->L [-1,+0]. */
void net__reader_raise(stream *s) {
  corio_task *t = s->reader;
  s->reader = NULL;
  corio__wake(s->rt, t, s->rt->L, 1, WAKE_RAISE);
}


static int push_read_closed(lua_State *L) {
  corio__push_error(L, "CLOSED", "read", "stream is closed");
  return 1;
}


/* Marks the stream closed and wakes every task blocked in it (the errors
** made protected: this runs in libuv callbacks too). */
static void mark_closed(stream *s) {
  s->flags |= SF_CLOSED;
  if (s->rt->closing) {
    s->reader = NULL;
    s->nww = 0;
    return;
  }
  if (s->reader) {                            /* from callbacks too */
    corio_task *t = s->reader;
    s->reader = NULL;
    corio__wake_with(s->rt, t, push_read_closed, NULL, WAKE_RAISE);
  }
  net__wake_writers(s);
}


void net__stream_abort(stream *s) {
  if (!(s->flags & SF_CLOSED)) mark_closed(s);
  close_now(s);
}


/* May a lingering stream close: its writes are out (or failed) and its
** filter waits for nothing more (the peer's close_notify)? */
int net__linger_done(stream *s) {
  return s->werr || (s->wq == 0 && !(s->filt && s->filt->hold(s)));
}


/* Called when the write queue shrinks (or a filter stops holding): a
** lingering stream closes once it is empty (or a write failed). */
void net__linger_check(stream *s) {
  if ((s->flags & SF_LINGER) && net__linger_done(s)) close_now(s);
  else net__update_ref(s);
}


/* Starts a close: if writes are queued (or the filter holds it), the
** stream lingers until they are out.  Returns 1 if it lingers. */
static int close_begin(stream *s) {
  if (!(s->flags & SF_CLOSED)) mark_closed(s);
  if (s->filt && !(s->flags & SF_CLOSING)) s->filt->close(s);
  if (!net__linger_done(s) && !(s->flags & SF_CLOSING)) {
    s->flags |= SF_LINGER;
    net__update_ref(s);
    return 1;
  }
  close_now(s);
  return 0;
}

/* }==================================================================== */





/* {====================================================================
** Close, abort, GC, small methods
** ===================================================================== */

/* Methods carry the metatable as upvalue 2, so the common check is one
** pointer compare (luaL_checkudata looks the metatable up by name). */
stream *net__check_stream(lua_State *L, int idx, const char *op) {
  stream_ud *ud = lua_touserdata(L, idx);
  /* Two API calls instead of a metatable fetch and compare: on every
  ** read and write (a light userdata's length is 0). */
  if (ud == NULL || lua_rawlen(L, idx) != sizeof *ud ||
      ud->magic != STREAM_MAGIC)
    ud = luaL_checkudata(L, idx, STREAM_MT);  /* raises */
  stream *s = ud->s;
  if (s == NULL || (s->flags & SF_CLOSED))
    corio__error(L, "CLOSED", op, "stream is closed");
  return s;
}


/* close(): flushes what is queued, then closes.  In a task it waits for
** the flush (a cancel aborts); elsewhere the stream lingers on its own. */
static int stream_close(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  stream_ud *ud = luaL_checkudata(L, 1, STREAM_MT);
  stream *s = ud->s;
  if (s == NULL || (s->flags & SF_CLOSED)) return 0;
  if (close_begin(s) && net__can_wait(L, rt)) return net__close_wait(L, rt,
                                                                    s);
  return 0;
}


/* close_nowait(): close() that never waits (for transports); the stream
** still flushes what is queued before it really closes. */
static int stream_close_nowait(lua_State *L) {
  stream_ud *ud = luaL_checkudata(L, 1, STREAM_MT);
  if (ud->s && !(ud->s->flags & SF_CLOSED)) close_begin(ud->s);
  return 0;
}


/* s:abort([how]).  "reset" on TCP: the kernel drops what it still holds
** for the peer and sends a RST, instead of keeping it (FIN-WAIT-1) for as
** long as a peer that reads nothing likes -- nginx's
** reset_timedout_connection.  Elsewhere (or once libuv is shutting the
** socket down) a plain abort. */
static int stream_abort(lua_State *L) {
  static const char *const hows[] = { "close", "reset", NULL };
  stream_ud *ud = luaL_checkudata(L, 1, STREAM_MT);
  int reset = luaL_checkoption(L, 2, "close", hows) == 1;
  stream *s = ud->s;
  if (s == NULL) return 0;
  if (!(s->flags & SF_CLOSED)) mark_closed(s);
  close_how(s, reset);
  return 0;
}


/* __gc: a forgotten stream closes; queued writes still go out, but no
** longer keep the loop alive.  --debug says so: a socket left to the
** collector is closed at an unpredictable time (asyncio's ResourceWarning).
** stdio streams (fd backend) and the final teardown are not reported. */
static int stream_gc(lua_State *L) {
  stream_ud *ud = lua_touserdata(L, 1);
  stream *s = ud->s;
  if (s == NULL) return 0;
  if (s->rt->debug && !s->rt->closing && !(s->flags & SF_CLOSED) &&
      s->kind != SK_FD && s->kind != SK_TTY) {
    const char *where = s->flags & SF_HANDLE
                        ? corio__track_where(s->rt, &s->u.h) : NULL;
    fprintf(stderr, "corio: [debug] a Stream%s%s was garbage-collected "
            "while open; close it (or declare it `local s <close> = "
            "...`)\n", where ? " created at " : "", where ? where : "");
    fflush(stderr);
  }
  s->ud = NULL;
  ud->s = NULL;
  if (!(s->flags & SF_CLOSED)) close_begin(s);
  else net__update_ref(s);
  return 0;
}


static int stream_closed(lua_State *L) {
  stream_ud *ud = luaL_checkudata(L, 1, STREAM_MT);
  lua_pushboolean(L, ud->s == NULL || (ud->s->flags & SF_CLOSED));
  return 1;
}


static int stream_at_eof(lua_State *L) {
  stream *s = net__check_stream(L, 1, "at_eof");
  lua_pushboolean(L, (s->flags & SF_EOF) && s->rb.len == 0);
  return 1;
}


/* s:pending() -> "data", "eof" or nil: what a read would find now, without
** reading -- bytes (buffered, or waiting in a TCP socket: MSG_PEEK), the
** end (EOF seen or sent by the peer, an error pending), or nothing yet
** (nil; also for what cannot be peeked at: pipes, ttys).  A TLS stream's
** bytes are records: any counts as data.  corio.http checks an idle pooled
** connection with it before reusing it.  A stream that reads ahead (it
** was read from, and its buffer has room) has the loop's last word in its
** buffer and flags: only one that stopped reading costs a recv(MSG_PEEK),
** which cost a keep-alive GET about a fifth more CPU when made each time. */
static int stream_pending(lua_State *L) {
  stream *s = net__check_stream(L, 1, "pending");
  const char *what = NULL;
  uv_os_fd_t fd;
  if (s->rb.len > 0) what = "data";
  else if ((s->flags & SF_EOF) || s->rerr) what = "eof";
  else if (!(s->flags & SF_READING) && (s->flags & SF_HANDLE) && s->u.h.type == UV_TCP &&
           uv_fileno(&s->u.h, &fd) == 0) {
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0) what = "data";
    else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) what = "eof";
  }
  if (what) lua_pushstring(L, what);
  else lua_pushnil(L);
  return 1;
}


static int stream_tostring(lua_State *L) {
  static const char *const kinds[] = {"?", "tcp", "unix", "tty", "fd"};
  stream_ud *ud = luaL_checkudata(L, 1, STREAM_MT);
  if (ud->s == NULL || (ud->s->flags & SF_CLOSED))
    lua_pushfstring(L, "corio.Stream (closed): %p", (void *)ud);
  else
    lua_pushfstring(L, "corio.Stream (%s): %p", ud->s->filt ? "tls"
                    : kinds[ud->s->kind],
                    (void *)ud);
  return 1;
}


static size_t opt_size(lua_State *L, int oidx, const char *key, size_t def,
                       size_t min) {
  size_t v = def;
  if (lua_getfield(L, oidx, key) != LUA_TNIL) {
    lua_Integer n = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || n < (lua_Integer)min)
      luaL_error(L, "bad option '%s' (an integer >= %d expected)", key,
                 (int)min);
    v = (size_t)n;
  }
  lua_pop(L, 1);
  return v;
}


void net__stream_setopts(lua_State *L, stream *s, int oidx) {
  if (oidx == 0 || !lua_istable(L, oidx)) return;
  s->limit = opt_size(L, oidx, "limit", s->limit, 1);
  s->hwm = opt_size(L, oidx, "high_water", s->hwm, 0);
  s->lwm = s->hwm / 2;
}

/* }==================================================================== */


void net__push_ioerror(lua_State *L, stream *s, int err, const char *op) {
  if (s->filt && err == UV_EPROTO) s->filt->push_error(L, s, err, op);
  else corio__push_uverror(L, err, op, NULL);
}


stream_ud *net__stream_rebind(lua_State *L, int idx) {
  stream_ud *old = luaL_checkudata(L, idx, STREAM_MT);
  stream *s = old->s;
  if (s == NULL || (s->flags & SF_CLOSED))
    corio__error(L, "CLOSED", "upgrade", "stream is closed");
  if (s->reader || s->nww)
    corio__error(L, "BUSY", "upgrade", "a task is waiting on this stream");
  stream_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->magic = STREAM_MAGIC;
  ud->s = NULL;
  net__stream_metatable(L, s->rt);
  lua_setmetatable(L, -2);
  old->s = NULL;
  ud->s = s;
  s->ud = ud;
  return ud;
}


/* {====================================================================
** Metatable, and the interface for process pipes (internal.h)
** ===================================================================== */

extern const luaL_Reg net__read_methods[];    /* stream_read.c */
extern const luaL_Reg net__write_methods[];   /* stream_write.c */

void net__stream_metatable(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"close", stream_close},
    {"close_nowait", stream_close_nowait},
    {"abort", stream_abort},
    {"closed", stream_closed},
    {"at_eof", stream_at_eof},
    {"pending", stream_pending},
    {"peername", net__peername},
    {"sockname", net__sockname},
    {"set_nodelay", net__set_nodelay},
    {"set_keepalive", net__set_keepalive},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", stream_gc},
    {"__close", stream_close},
    {"__tostring", stream_tostring},
    {NULL, NULL}
  };
  if (!corio__newclass(L, rt, STREAM_MT, methods, meta, NULL)) return;
  corio__addmethods(L, rt, net__read_methods, NULL);
  corio__addmethods(L, rt, net__write_methods, NULL);
}


uv_pipe_t *corio__stream_new_pipe(lua_State *L, corio_rt *rt) {
  stream *s = net__stream_new(L, rt, SK_PIPE);
  int r = uv_pipe_init(rt->loop, &s->u.pipe, 0);
  if (r != 0) {
    s->ud->s = NULL;
    net__stream_discard(s);
    corio__uverror(L, r, "pipe", NULL);
  }
  net__stream_opened(s);
  corio__track_site(rt, L, &s->u.h, "Stream (child's pipe)", NULL);
  return &s->u.pipe;
}


void corio__stream_close(lua_State *L, int idx) {
  stream_ud *ud = luaL_testudata(L, idx, STREAM_MT);
  if (ud && ud->s) net__stream_abort(ud->s);
}


uv_stream_t *corio__stream_handle(lua_State *L, int idx) {
  stream_ud *ud = luaL_testudata(L, idx, STREAM_MT);
  stream *s = ud ? ud->s : NULL;
  if (s == NULL || (s->flags & SF_CLOSED) || !(s->flags & SF_HANDLE))
    return NULL;
  return &s->u.s;
}


int corio__stream_fd(lua_State *L, int idx) {
  stream_ud *ud = luaL_testudata(L, idx, STREAM_MT);
  stream *s = ud ? ud->s : NULL;
  uv_os_fd_t fd;
  if (s == NULL || (s->flags & SF_CLOSED)) return -1;
  if (s->kind == SK_FD) return s->fd;
  if (uv_fileno(&s->u.h, &fd) != 0) return -1;
  return fd;
}

/* }==================================================================== */
