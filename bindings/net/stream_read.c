/*
** stream_read.c -- the read side of a Stream (see stream.c for its life).
**
** A read first tries the bytes already buffered (rbuf.c decides);
** otherwise the task becomes the stream's only reader (a second one gets
** BUSY) and the read callback answers it.  Once someone has read, the
** stream reads ahead while less than max(limit, 64 KiB) is buffered, so a
** peer that sends without being read fills the kernel's buffers, not ours.
** A chunk that arrives for a waiting reader with nothing buffered is
** answered straight from the shared read buffer (no copy but the string).
*/
#include <stdlib.h>   /* realloc */
#include <string.h>   /* memcpy */

#include "net.h"


/* {====================================================================
** Reading
** ===================================================================== */

static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf);

/* A waiting reader with nothing buffered gets the shared buffer (an idle
** stream holds no buffer of its own; read_cb copies what came into a
** small one); otherwise the data is read straight into the stream's own
** buffer. */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  stream *s = h->data;
  (void)hint;
  if (s->filt == NULL && (s->reader == NULL || s->rb.len > 0) &&
      rbuf_reserve(&s->rb, NET_RDBUF) == 0) {
    buf->base = rbuf_tail(&s->rb);
    buf->len = s->rb.cap - s->rb.off - s->rb.len;
  } else {
    buf->base = s->ns->buf;
    buf->len = NET_RDBUF;
  }
}


/* Starts or stops reading as the state asks.  Returns 0 or the error of
** uv_read_start (also kept in s->rerr).  A filter may need the socket
** read with no reader, even once the Stream is closed (SF_FWANT). */
int net__rd_want(stream *s) {
  unsigned f = s->flags;
  if ((f & (SF_EOF | SF_CLOSING)) || s->rerr ||
      ((f & SF_CLOSED) && !(f & SF_FWANT))) {
    if ((f & SF_READING) && s->kind != SK_FD && !(f & SF_CLOSING)) {
      uv_read_stop(&s->u.s);
      s->flags &= ~SF_READING;
    }
    return 0;
  }
  if (s->kind == SK_FD) {
    if (s->reader) net__fd_want_read(s);
    return s->rerr;
  }
  size_t cap = s->limit > NET_READAHEAD ? s->limit : NET_READAHEAD;
  int want = s->reader || (f & SF_FWANT) ||
             ((f & SF_RSTART) && s->rb.len < cap);
  if (want && !(f & SF_READING)) {
    int r = uv_read_start(&s->u.s, alloc_cb, read_cb);
    if (r != 0) return s->rerr = r;
    s->flags |= SF_READING;
  } else if (!want && (f & SF_READING)) {
    uv_read_stop(&s->u.s);
    s->flags &= ~SF_READING;
  }
  return 0;
}


/* Pushes the answer of a match on data p (the buffer, or the chunk just
** read): a value (returns 1) or an error (returns -1).  Does not consume. */
static int push_answer(lua_State *L, stream *s, int r, const char *p,
                       size_t take) {
  switch (r) {
    case RM_DATA:
      if (s->rq.kind == RQ_WAIT) lua_pushboolean(L, 1);  /* no string */
      else lua_pushlstring(L, p, take);
      return 1;
    case RM_NIL:
      lua_pushnil(L);
      return 1;
    case RM_LIMIT:
      corio__push_error(L, "LIMIT", s->rq.kind == RQ_UNTIL ? "readuntil"
                        : "read", s->rq.kind == RQ_UNTIL
                        ? "separator not found within the stream's limit"
                        : "line longer than the stream's limit");
      lua_pushinteger(L, (lua_Integer)s->limit);
      lua_setfield(L, -2, "limit");
      return -1;
    default:                                  /* RM_INCOMPLETE */
      corio__push_error(L, "INCOMPLETE", s->rq.kind == RQ_UNTIL
                        ? "readuntil" : "readexactly",
                        s->rq.kind == RQ_UNTIL
                        ? "EOF before the separator"
                        : "EOF before the requested number of bytes");
      lua_pushlstring(L, p, take);
      lua_setfield(L, -2, "partial");
      return -1;
  }
}


/* Answers the waiting reader from the match r on p (already known not to
** be RM_NEED) and drops what it consumed from the buffer. */
static void answer(stream *s, int r, const char *p, size_t take,
                   size_t consume, int from_buffer) {
  corio_task *t = s->reader;
  s->reader = NULL;
  int ok = push_answer(s->rt->L, s, r, p, take);
  if (from_buffer && r != RM_LIMIT && r != RM_NIL)
    rbuf_consume(&s->rb, consume);
  corio__wake(s->rt, t, s->rt->L, 1, ok > 0 ? WAKE_VALUES : WAKE_RAISE);
}


/* Tries to answer the waiting reader from the buffer. */
static void deliver(stream *s) {
  size_t take = 0, consume = 0;
  int r = rreq_match(&s->rq, rbuf_data(&s->rb), s->rb.len,
                     (s->flags & SF_EOF) != 0, &take, &consume);
  if (r != RM_NEED) {
    answer(s, r, rbuf_data(&s->rb), take, consume, 1);
  } else if (s->rerr) {
    net__push_ioerror(s->rt->L, s, s->rerr, "read");
    net__reader_raise(s);
  }
}


/* Data, EOF or an error from the handle (or the fd backend, or a
** filter). */
void net__deliver(stream *s, const char *p, ssize_t n) {
  if (s->rt->closing) return;
  if (n > 0 && s->rb.base && p == rbuf_tail(&s->rb)) {  /* read into rb */
    s->rb.len += (size_t)n;
  } else if (n > 0) {
    if (s->reader && s->rb.len == 0) {
      size_t take = 0, consume = 0;
      int r = rreq_match(&s->rq, p, (size_t)n, 0, &take, &consume);
      if (r != RM_NEED) {
        answer(s, r, p, take, consume, 0);
        if (r == RM_LIMIT) consume = 0;
        if (rbuf_append(&s->rb, p + consume, (size_t)n - consume) != 0)
          s->rerr = UV_ENOBUFS;
        net__rd_want(s);
        net__update_ref(s);
        return;
      }
    }
    if (rbuf_append(&s->rb, p, (size_t)n) != 0) s->rerr = UV_ENOBUFS;
  } else if (n == UV_EOF || n == 0) {
    s->flags |= SF_EOF;
    if (s->filt == NULL)
      s->flags &= ~SF_READING;                /* libuv stopped reading */
  } else {
    s->rerr = (int)n;
  }
  if (s->reader) deliver(s);
  net__rd_want(s);
  net__update_ref(s);
}


/* What arrived, handed to the filter or net__deliver under lua_pcall:
** answering the reader pushes a string or an error. */
typedef struct rd_ctx { stream *s; const char *p; ssize_t n; } rd_ctx;

static int deliver_lua(lua_State *L) {
  rd_ctx *c = lua_touserdata(L, 1);
  if (c->s->filt) c->s->filt->on_read(c->s, c->p, c->n);
  else net__deliver(c->s, c->p, c->n);
  return 0;
}


/* Out of memory, the reader (if any) raises ENOMEM, and so does every
** later read: the bytes of this chunk may be lost, so the stream is
** failed rather than read on with a hole. */
static void deliver_protected(stream *s, const char *p, ssize_t n) {
  rd_ctx c = {s, p, n};
  if (corio__protect(s->rt, deliver_lua, &c, s->reader, "a stream's read")
      != LUA_OK) {
    if (s->rerr == 0) s->rerr = UV_ENOMEM;
    net__rd_want(s);
    net__update_ref(s);
  }
}


/* Bytes read into a plain stream's buffer: no Lua here.  A reader they
** satisfy is woken with no values and answers itself in its own resume
** (read_k), inside the ready queue's protected turn: one protection for
** the whole batch, not a lua_pcall per read.  EOF, errors and filters
** take the protected path. */
static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  stream *s = h->data;
  if (n == 0) return;                         /* EAGAIN */
  if (n < 0 || s->filt || s->rt->closing) {
    deliver_protected(s, buf->base, n);
    return;
  }
  if (s->rb.base && buf->base == rbuf_tail(&s->rb)) {
    s->rb.len += (size_t)n;
  } else if (rbuf_append(&s->rb, buf->base, (size_t)n) != 0) {
    deliver_protected(s, buf->base, n);       /* answered from the chunk */
    return;
  }
  corio_task *t = s->reader;
  size_t take = 0, consume = 0;
  int r;
  if (t && (r = rreq_match(&s->rq, rbuf_data(&s->rb), s->rb.len, 0, &take,
                           &consume)) != RM_NEED) {
    /* The match stays valid until the reader resumes: the buffer only
    ** grows at its tail meanwhile (no one else may read: BUSY). */
    s->reader = NULL;
    if (s->rq.kind != RQ_WAIT) {
      s->flags |= SF_RPEND;
      s->rmatch = r;
      s->rtake = take;
      s->rconsume = consume;
    }
    corio__wake(s->rt, t, s->rt->L, 0, WAKE_VALUES);   /* no values */
    if (s->rq.kind != RQ_WAIT) {
      /* read_k runs next in the reader (a woken task always resumes) and
      ** sets both again after consuming: the reference it drops now
      ** would only be taken again by the next read. */
      if (s->rb.len >= NET_READAHEAD) net__rd_want(s);
      return;
    }
  }
  net__rd_want(s);
  net__update_ref(s);
}


void net__fd_read_done(stream *s, const char *p, ssize_t n) {
  s->flags &= ~SF_READING;
  if (s->flags & SF_EOF) return;              /* shutdown_read came first */
  deliver_protected(s, p, n);
}


/* shutdown_read(): reading ends here, as if the peer had sent EOF: what
** is buffered can still be read, then readers get EOF; what the peer
** sends later is not read.  (A server's close_clients uses it so that
** handlers waiting for a request end as they would on a quiet peer.) */
static int stream_shutdown_read(lua_State *L) {
  stream *s = net__check_stream(L, 1, "shutdown_read");
  if (s->flags & (SF_EOF | SF_CLOSING)) return 0;
  s->flags |= SF_EOF;
  if (s->reader) deliver(s);
  net__rd_want(s);
  net__update_ref(s);
  return 0;
}


static void read_undo(corio_rt *rt, corio_task *t) {
  stream *s = net__wait_obj(t);
  (void)rt;
  if (s->reader == t) s->reader = NULL;
  net__rd_want(s);
  net__update_ref(s);
}


/* Answers q now if the buffer can, else suspends the task as the reader.
** The request's separator, if any, must stay valid during the call. */
static int read_k(lua_State *L, int status, lua_KContext ctx);

static int do_read(lua_State *L, corio_rt *rt, stream *s, rreq *q,
                   const char *op, uint64_t due) {
  size_t take = 0, consume = 0;
  if (s->reader || (s->flags & SF_RPEND))
    return corio__error(L, "BUSY", op, "another task is reading this "
                        "stream");
  q->scanned = 0;
  q->limit = s->limit;
  int r = rreq_match(q, rbuf_data(&s->rb), s->rb.len,
                     (s->flags & SF_EOF) != 0, &take, &consume);
  if (r == RM_NEED && s->rerr) {
    net__push_ioerror(L, s, s->rerr, op);
    return lua_error(L);
  }
  if (r != RM_NEED) {
    s->rq = *q;                               /* push_answer reads kind */
    int ok = push_answer(L, s, r, rbuf_data(&s->rb), take);
    if (r != RM_LIMIT && r != RM_NIL) rbuf_consume(&s->rb, consume);
    if (ok < 0) return lua_error(L);
    if (s->flags & SF_RSTART) net__rd_want(s);
    return 1;
  }
  corio_task *t = corio__check_await(L, rt, op);
  /* An idle stream keeps at most the smallest buffer (1 KiB): read_cb
  ** copies a small message there, not into a new one for every read. */
  if (s->rb.len == 0 && s->rb.cap > 1024) rbuf_free(&s->rb);
  if (q->kind == RQ_UNTIL && q->sep != s->sep) {  /* keep our own copy */
    if (s->sepcap < q->seplen) {
      char *p = realloc(s->sep, q->seplen);
      if (p == NULL) return luaL_error(L, "not enough memory");
      s->sep = p;
      s->sepcap = q->seplen;
    }
    memcpy(s->sep, q->sep, q->seplen);
    q->sep = s->sep;
  }
  s->rq = *q;
  s->flags |= SF_RSTART;
  s->reader = t;
  if (net__rd_want(s) != 0) {
    s->reader = NULL;
    net__push_ioerror(L, s, s->rerr, op);
    return lua_error(L);
  }
  s->rdue = due;
  if (due && corio__wait_due(rt, t, due, op) != 0) {
    s->reader = NULL;
    net__rd_want(s);
    return luaL_error(L, "not enough memory");
  }
  net__update_ref(s);
  lua_pushlightuserdata(L, s);                /* read_undo finds it */
  return corio__suspend_k(L, rt, t, read_undo, lua_gettop(L), read_k);
}


/* The reader's resume.  Values: a callback answered it (or an error to
** raise).  None: read_cb left the answer in the buffer; it is made here,
** in the task, as if the read had just been called (the stream is
** argument 1 of every read; closed meanwhile, that raises CLOSED). */
static int read_k(lua_State *L, int status, lua_KContext ctx) {
  static const char *const ops[] = {"read", "readexactly", "readuntil"};
  stream_ud *ud = lua_touserdata(L, 1);
  stream *s = ud->s;
  /* the Stream's runtime (no API call); read_within has no upvalue */
  corio_rt *rt = s ? s->rt : corio__rt(L);
  int n = corio__resumed(L, rt, (int)ctx, 1);
  (void)status;
  if (n > 0) return n;
  if (s == NULL || (s->flags & SF_CLOSED) || !(s->flags & SF_RPEND)) {
    int k = s ? s->rq.kind : RQ_SOME;
    const char *op = ops[k == RQ_EXACT ? 1 : k == RQ_UNTIL ? 2 : 0];
    if (s) s->flags &= ~SF_RPEND;
    s = net__check_stream(L, 1, op);          /* raises CLOSED */
    rreq q = s->rq;
    lua_settop(L, (int)ctx - 1);              /* as the read was called */
    return do_read(L, rt, s, &q, op, s->rdue);
  }
  s->flags &= ~SF_RPEND;
  int r = s->rmatch;
  int ok = push_answer(L, s, r, rbuf_data(&s->rb), s->rtake);
  if (r != RM_LIMIT && r != RM_NIL) rbuf_consume(&s->rb, s->rconsume);
  if (ok < 0) return lua_error(L);
  net__rd_want(s);
  net__update_ref(s);
  return 1;
}


/* Parses a read format at idx into q; raises bad argument. */
static void check_format(lua_State *L, int idx, rreq *q) {
  q->sep = NULL;
  q->seplen = 0;
  q->n = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int isint;
    lua_Integer n = lua_tointegerx(L, idx, &isint);
    if (!isint) luaL_checkinteger(L, idx);   /* raises: not an integer */
    luaL_argcheck(L, n >= 0, idx, "negative size");
    q->kind = RQ_SOME;
    q->n = (size_t)n;
    return;
  }
  const char *f = luaL_optstring(L, idx, "l");
  if (*f == '*') f++;                         /* Lua 5.1/5.2 style */
  switch (*f) {
    case 'l': q->kind = RQ_LINE; return;
    case 'L': q->kind = RQ_LINEKEEP; return;
    case 'a': q->kind = RQ_ALL; return;
    default: corio__argerror(L, idx, "invalid format");
  }
}


static int stream_read1(lua_State *L) {
  stream *s = net__check_stream(L, 1, "read");
  rreq q;
  check_format(L, 2, &q);
  return do_read(L, s->rt, s, &q, "read", 0);
}


/* read_within(stream, n, seconds) -> as stream:read(n), but a wait past
** `seconds` (nil: none) raises TIMEOUT.  The HTTP reader's bound per read
** (corio._http): the task's own timer entry, where a corio.timeout scope
** per read costs a table, a timer Handle and a to-be-closed exit. */
int net__read_within(lua_State *L) {
  stream *s = net__check_stream(L, 1, "read");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "negative size");
  uint64_t due = 0;
  if (!lua_isnoneornil(L, 3)) {
    double secs = luaL_checknumber(L, 3);
    luaL_argcheck(L, secs == secs, 3, "not a number");
    due = corio__due_after(s->rt, secs < 0 ? 0 : secs);
    if (due == 0) due = 1;                    /* 0 means none */
  }
  lua_settop(L, 2);
  rreq q = {RQ_SOME, (size_t)n, NULL, 0, 0, 0};
  return do_read(L, s->rt, s, &q, "read", due);
}


/* read(f1, f2, ...): reads each in turn, stops at the first nil, like
** file:read.  Each step may suspend, so the loop continues in k. */
static int read_multi_k(lua_State *L, int status, lua_KContext ctx) {
  int n = (int)ctx;                           /* stack: s, f1..fn, r1..rk */
  int k = lua_gettop(L) - 1 - n;
  (void)status;
  if (k == n || (k > 0 && lua_isnil(L, -1))) return k;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, stream_read1, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2 + k);
  lua_callk(L, 2, 1, ctx, read_multi_k);
  return read_multi_k(L, LUA_OK, ctx);
}


static int stream_read(lua_State *L) {
  int n = lua_gettop(L) - 1;
  if (n <= 1) return stream_read1(L);
  net__check_stream(L, 1, "read");
  for (int i = 2; i <= n + 1; i++) {          /* check them all first */
    rreq q;
    check_format(L, i, &q);
  }
  luaL_checkstack(L, n + 4, "too many formats");
  return read_multi_k(L, LUA_OK, n);
}


static int stream_readexactly(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  stream *s = net__check_stream(L, 1, "readexactly");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "negative size");
  rreq q = {RQ_EXACT, (size_t)n, NULL, 0, 0, 0};
  return do_read(L, rt, s, &q, "readexactly", 0);
}


static int stream_readuntil(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  stream *s = net__check_stream(L, 1, "readuntil");
  size_t len;
  const char *sep = luaL_optlstring(L, 2, "\n", &len);
  luaL_argcheck(L, len > 0, 2, "empty separator");
  rreq q = {RQ_UNTIL, 0, sep, len, 0, 0};
  return do_read(L, rt, s, &q, "readuntil", 0);
}


/* The iterator of lines(): upvalues rt, stream, formats... */
static int lines_iter(lua_State *L) {
  lua_settop(L, 0);
  for (int i = 2; !lua_isnone(L, lua_upvalueindex(i)); i++)
    lua_pushvalue(L, lua_upvalueindex(i));
  return stream_read(L);
}


static int stream_lines(lua_State *L) {
  int n = lua_gettop(L);
  net__check_stream(L, 1, "lines");
  luaL_argcheck(L, n <= 250, 250, "too many arguments");
  for (int i = 2; i <= n; i++) {
    rreq q;
    check_format(L, i, &q);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushcclosure(L, lines_iter, n + 1);
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Reading in place, for another module's parser (bindings/shared.h)
** ===================================================================== */

stream *corio__stream_check(lua_State *L, int idx, const char *op) {
  return net__check_stream(L, idx, op);
}


stream *corio__stream_get(lua_State *L, int idx) {
  stream_ud *ud = lua_touserdata(L, idx);
  if (ud == NULL || lua_rawlen(L, idx) != sizeof *ud ||
      ud->magic != STREAM_MAGIC)
    ud = luaL_testudata(L, idx, STREAM_MT);
  return ud ? corio__stream_of(ud) : NULL;
}


stream *corio__stream_of(void *p) {
  stream *s = ((stream_ud *)p)->s;
  return s == NULL || (s->flags & SF_CLOSED) ? NULL : s;
}


int corio__is_stream(lua_State *L, int idx) {
  return luaL_testudata(L, idx, STREAM_MT) != NULL;
}


corio_rt *corio__stream_rt(stream *s) {
  return s->rt;
}


char *corio__stream_peek(stream *s, size_t *len, int *eof) {
  *len = s->rb.len;
  *eof = (s->flags & SF_EOF) != 0;
  return rbuf_data(&s->rb);
}


void corio__stream_consume(stream *s, size_t n) {
  rbuf_consume(&s->rb, n);
  if (s->flags & SF_RSTART) net__rd_want(s);  /* read ahead again */
}


/* The stream is on top of the suspended frame, as net__suspend leaves
** it, for read_undo; ctx is the top below it. */
int corio__stream_wait(lua_State *L, corio_rt *rt, stream *s,
                       const char *op, lua_KFunction k) {
  if (s->reader || (s->flags & SF_RPEND)) {
    corio__push_error(L, "BUSY", op, "another task is reading this "
                      "stream");
    return -1;
  }
  if (s->rerr) {
    net__push_ioerror(L, s, s->rerr, op);
    return -1;
  }
  if (corio__take_cancel(L, rt)) return -1;
  corio_task *t = corio__check_await(L, rt, op);
  /* A parser waits between small messages: it keeps the smallest buffer
  ** (1 KiB), not a malloc and a free for every message. */
  if (s->rb.len == 0 && s->rb.cap > 1024) rbuf_free(&s->rb);
  rreq q = {RQ_WAIT, s->rb.len, NULL, 0, s->limit, 0};
  s->rq = q;
  s->flags |= SF_RSTART;
  s->reader = t;
  if (net__rd_want(s) != 0) {
    s->reader = NULL;
    net__push_ioerror(L, s, s->rerr, op);
    return -1;
  }
  net__update_ref(s);
  int base = lua_gettop(L);
  lua_pushlightuserdata(L, s);
  return corio__suspend_k(L, rt, t, read_undo, base, k);
}


int corio__stream_waited(lua_State *L, corio_rt *rt, lua_KContext ctx) {
  int base = (int)ctx;
  if (corio__resumed(L, rt, base + 1, 0) < 0) {  /* base, slot, .., err */
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return -1;
  }
  lua_settop(L, base);
  return 0;
}

/* }==================================================================== */


const luaL_Reg net__read_methods[] = {
  {"read", stream_read},
  {"readexactly", stream_readexactly},
  {"readuntil", stream_readuntil},
  {"lines", stream_lines},
  {"shutdown_read", stream_shutdown_read},
  {NULL, NULL}
};
