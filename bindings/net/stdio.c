/*
** stdio.c -- corio.stdin, corio.stdout, corio.stderr, and the fd backend
** of a Stream.
**
** What a stdio fd is decides how its Stream works:
**   - a tty: a uv_tty_t (libuv reopens the terminal, so the shared fd is
**     not switched to non-blocking mode);
**   - stdin on a pipe or socket: a uv_pipe_t, so a read can wait forever
**     and still be cancelled;
**   - anything else (stdin on a file, stdout/stderr on a pipe or file):
**     the fd backend.  A regular file cannot be polled, and making a
**     shared stdout pipe non-blocking would break Lua's own print() and
**     io.write (they would see EAGAIN).  The backend reads and writes the
**     blocking fd with libuv fs requests on the thread pool, one read and
**     one write at a time (queued writes go out together, in order).
**     stdout and stderr are the exception: written at once, blocking
**     (stdio_write_now), so they interleave with print in program order.
*/
#include <stdio.h>    /* fflush */
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* memcpy */
#include <unistd.h>   /* close, _exit */

#include "net.h"

#define FD_IOV 64                /* chunks per fs write */

typedef struct wchunk {
  struct wchunk *next;
  size_t len;                  /* bytes left */
  char *p;                     /* first byte left */
  char data[];
} wchunk;

typedef struct fdread {
  uv_fs_t req;
  stream *s;
  char buf[NET_RDBUF];
} fdread;

typedef struct fdwrite {
  uv_fs_t req;
  stream *s;
} fdwrite;


/* {====================================================================
** The fd backend
** ===================================================================== */

static void fdread_cb(uv_fs_t *req) {
  fdread *r = container_of(req, fdread, req);
  stream *s = r->s;
  corio__req_end(s->rt);
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  s->nreq--;
  if (s->flags & SF_CLOSING) {
    s->flags &= ~SF_READING;
    free(r);
    net__maybe_free(s);
    return;
  }
  net__fd_read_done(s, r->buf, n);
  free(r);
}


void net__fd_want_read(stream *s) {
  if (s->flags & SF_READING) return;
  fdread *r = malloc(sizeof *r);
  if (r == NULL) {
    s->rerr = UV_ENOMEM;
    return;
  }
  r->s = s;
  uv_buf_t b = uv_buf_init(r->buf, NET_RDBUF);
  int e = uv_fs_read(s->rt->loop, &r->req, s->fd, &b, 1, -1, fdread_cb);
  if (e != 0) {
    free(r);
    s->rerr = e;
    return;
  }
  corio__req_start(s->rt);
  s->flags |= SF_READING;
  s->nreq++;
}


static void free_chunks(stream *s) {
  while (s->fq) {
    wchunk *c = s->fq;
    s->fq = c->next;
    free(c);
  }
  s->fqtail = NULL;
}


static void fdwrite_cb(uv_fs_t *req);

/* Sends what is queued, in one request, unless one is in flight. */
static void fd_flush(stream *s) {
  uv_buf_t bufs[FD_IOV];
  unsigned n = 0;
  if ((s->flags & (SF_WBUSY | SF_CLOSING)) || s->fq == NULL) return;
  for (wchunk *c = s->fq; c && n < FD_IOV; c = c->next)
    bufs[n++] = uv_buf_init(c->p, (unsigned int)c->len);
  fdwrite *w = malloc(sizeof *w);
  int e = w ? uv_fs_write(s->rt->loop, &w->req, s->fd, bufs, n, -1,
                          fdwrite_cb)
            : UV_ENOMEM;
  if (e != 0) {
    free(w);
    size_t all = s->wq;
    free_chunks(s);
    net__write_done(s, all, e);
    return;
  }
  w->s = s;
  corio__req_start(s->rt);
  s->flags |= SF_WBUSY;
  s->nreq++;
}


static void fdwrite_cb(uv_fs_t *req) {
  fdwrite *w = container_of(req, fdwrite, req);
  stream *s = w->s;
  corio__req_end(s->rt);
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  free(w);
  s->nreq--;
  s->flags &= ~SF_WBUSY;
  if (s->flags & SF_CLOSING) {                /* aborted meanwhile */
    free_chunks(s);
    net__maybe_free(s);
    return;
  }
  if (r < 0) {
    size_t all = s->wq;
    free_chunks(s);
    net__write_done(s, all, (int)r);
    return;
  }
  size_t done = (size_t)r;
  while (done > 0 && s->fq) {                 /* drop what went out */
    wchunk *c = s->fq;
    size_t k = done < c->len ? done : c->len;
    c->p += k;
    c->len -= k;
    done -= k;
    if (c->len == 0) {
      s->fq = c->next;
      if (s->fq == NULL) s->fqtail = NULL;
      free(c);
    }
  }
  fd_flush(s);
  net__write_done(s, (size_t)r, 0);           /* may free s: last */
}


/* stdout and stderr on a pipe or file are written at once, blocking, as
** Node does on Linux: output then comes out in program order with Lua's
** print and io.write (flushed first), which share the fd.  Returns 0 or
** a libuv error; the binary ends quietly on EPIPE at stdout (its reader
** is gone, as `corio x.lua | head` does to it). */
static int stdio_write_now(stream *s, const uv_buf_t *bufs, int n) {
  uv_buf_t v[FD_IOV];
  int k = n < FD_IOV ? n : FD_IOV;
  memcpy(v, bufs, (size_t)k * sizeof *v);
  fflush(s->fd == 1 ? stdout : stderr);
  uv_buf_t *b = v;
  while (k > 0) {
    uv_fs_t req;
    int r = uv_fs_write(NULL, &req, s->fd, b, (unsigned int)k, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r == UV_EINTR || r == UV_EAGAIN) continue;
    if (r < 0) {
      if (r == UV_EPIPE && s->fd == 1 && s->rt->stdout_epipe_exit) {
        fflush(stderr);
        _exit(0);
      }
      return r;
    }
    size_t done = (size_t)r;
    while (k > 0 && done >= b->len) {       /* skip what went out */
      done -= b->len;
      b++;
      k--;
    }
    if (k > 0) {
      b->base += done;
      b->len -= done;
    }
  }
  return 0;
}


int net__fd_write(stream *s, const uv_buf_t *bufs, int n) {
  size_t total = 0;
  if ((s->fd == 1 || s->fd == 2) && n <= FD_IOV && s->fq == NULL &&
      !(s->flags & SF_WBUSY))
    return stdio_write_now(s, bufs, n);
  for (int i = 0; i < n; i++) total += bufs[i].len;
  wchunk *c = malloc(sizeof *c + total);
  if (c == NULL) return UV_ENOMEM;
  c->next = NULL;
  c->len = total;
  c->p = c->data;
  total = 0;
  for (int i = 0; i < n; i++) {
    memcpy(c->data + total, bufs[i].base, bufs[i].len);
    total += bufs[i].len;
  }
  if (s->fqtail) s->fqtail->next = c;
  else s->fq = c;
  s->fqtail = c;
  s->wq += total;
  fd_flush(s);
  return 0;
}


void net__fd_close(stream *s) {
  if (!(s->flags & SF_WBUSY)) free_chunks(s);
  if (s->fd > 2 && !(s->flags & SF_NOCLOSEFD)) close(s->fd);
  s->fd = -1;
}

/* }==================================================================== */


/* stdio(fd) -> a new Stream on fd 0, 1 or 2 (see the top of the file). */
static int l_stdio(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "not a stdio fd (0, 1 or 2)");
  uv_handle_type type = uv_guess_handle((uv_file)fd);
  stream *s;
  int r = 0;
  if (type == UV_TTY) {
    s = net__stream_new(L, rt, SK_TTY);
    r = uv_tty_init(rt->loop, &s->u.tty, (uv_file)fd, fd == 0);
  } else if (fd == 0 && (type == UV_NAMED_PIPE || type == UV_TCP)) {
    s = net__stream_new(L, rt, SK_PIPE);
    r = uv_pipe_init(rt->loop, &s->u.pipe, 0);
    if (r == 0) {
      net__stream_opened(s);
      r = uv_pipe_open(&s->u.pipe, (uv_file)fd);
      if (r != 0) {
        net__stream_abort(s);
        return corio__uverror(L, r, "stdio", NULL);
      }
      return 1;
    }
  } else {
    s = net__stream_new(L, rt, SK_FD);
    s->fd = (int)fd;
    s->flags |= SF_NOCLOSEFD;
    return 1;
  }
  if (r != 0) {
    s->ud->s = NULL;
    net__stream_discard(s);
    return corio__uverror(L, r, "stdio", NULL);
  }
  net__stream_opened(s);
  return 1;
}


void net__open_stdio(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"stdio", l_stdio},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}
