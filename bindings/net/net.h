/*
** net.h -- what the files of corio.net (stream.c, tcp.c, pipe.c,
** listen.c, udp.c, dns.c, stdio.c, net.c) share.  Not installed; the part
** other bindings may use (process pipes) is in runtime/internal.h.
**
** A Stream is a small userdata holding a pointer to a malloc'ed `stream`,
** which embeds the libuv handle.  The C struct outlives the userdata when
** a close is still in flight, and is freed only in the close callback
** (or, for the fd backend, when its last fs request has come back).
*/
#ifndef CORIO_NET_H
#define CORIO_NET_H

#include <stdint.h>      /* uint64_t */
#include <sys/socket.h>  /* struct sockaddr_storage */

#include "shared.h"    /* the core, and what modules offer each other */
#include "rbuf.h"

#define STREAM_MT   "corio.Stream"
#define LISTENER_MT "corio.Listener"
#define UDP_MT      "corio.UdpSocket"

#define NET_RDBUF     (64 * 1024)   /* the shared read buffer */
#define NET_LIMIT     (64 * 1024)   /* default line / readuntil limit */
#define NET_HWM       (64 * 1024)   /* default write high-water mark */
#define NET_READAHEAD (64 * 1024)   /* least read-ahead before pausing */

/* Per-runtime state shared by every socket: one read buffer, since libuv
** calls alloc_cb and read_cb back to back for a stream, and the data is
** copied out (or handed to a reader) before read_cb returns. */
struct stream;

typedef struct netstate {
  int refs;                  /* the registry's, and one per live socket */
  struct stream *all;        /* every stream not yet freed */
  char buf[NET_RDBUF];
} netstate;

netstate *net__state(lua_State *L);   /* this runtime's, with a new ref */
void net__state_unref(netstate *ns);

enum {                       /* stream->kind */
  SK_TCP = 1, SK_PIPE, SK_TTY,
  SK_FD                      /* a plain fd (stdio on a file, or a pipe we
                                must keep blocking): libuv fs requests */
};

enum {                       /* stream->flags */
  SF_HANDLE   = 0x0001,      /* the uv handle was initialised */
  SF_READING  = 0x0002,      /* uv_read_start is on (SK_FD: a read req) */
  SF_RSTART   = 0x0004,      /* someone read once: read ahead from now */
  SF_EOF      = 0x0008,      /* the peer sent EOF */
  SF_CLOSED   = 0x0010,      /* close()/abort() called: methods raise */
  SF_CLOSING  = 0x0020,      /* uv_close called (or fd backend done) */
  SF_SHUT     = 0x0040,      /* shutdown() called */
  SF_LINGER   = 0x0080,      /* closed; uv_close once the writes are out */
  SF_REF      = 0x0100,      /* the handle is ref'ed (keeps loop alive) */
  SF_NOCLOSEFD = 0x0200,     /* SK_FD: do not close the fd (stdio) */
  SF_WBUSY    = 0x0400,      /* SK_FD: a write request is in flight */
  SF_FWANT    = 0x0800,      /* the filter needs the socket read (a
                                handshake, a close waiting for the peer's
                                close_notify), even with no reader */
  SF_RPEND    = 0x1000       /* read_cb woke the reader to take its answer
                                from the buffer; until it resumes, no
                                other task may read (BUSY) */
};

typedef struct wwaiter {
  corio_task *t;
  size_t below;              /* wake once wq <= below; SIZE_MAX: closer */
} wwaiter;

struct wchunk;
struct stream;

/* A filter sits between the socket and the Stream's buffers (corio.tls:
** the socket carries ciphertext, the Stream's readers and writers see
** plaintext).  A plain Stream has none, and its read and write paths test
** one pointer.  The filter delivers plaintext with net__deliver and sends
** its bytes with net__send_raw. */
typedef struct net_filter {
  void (*on_read)(struct stream *s, const char *p, ssize_t n);
    /* bytes from the socket (n > 0), EOF (UV_EOF) or an error (< 0) */
  int (*write)(struct stream *s, const uv_buf_t *bufs, int n);
    /* the script's bytes: 0 or a libuv error code */
  int (*shutdown)(struct stream *s);  /* before the FIN: 0 or an error */
  void (*close)(struct stream *s);    /* close() (not abort) has begun */
  int (*hold)(struct stream *s);      /* a lingering close must wait */
  void (*push_error)(lua_State *L, struct stream *s, int err,
                     const char *op);  /* err is the filter's (UV_EPROTO) */
  void (*free)(struct stream *s);     /* the stream is being freed */
} net_filter;

/* The fields every read and write touches come first, together (three
** cache lines), ahead of the libuv handle: a message on a stream that
** sat idle while others ran then misses on few lines, not on one per
** field spread over the struct (callgrind --cache-sim, bench/README.md
** W14). */
typedef struct stream {
  unsigned flags;            /* SF_* */
  unsigned char kind;        /* SK_* */
  int rerr, werr;            /* sticky read / write error (libuv code) */
  int nreq;                  /* requests in flight that point at us */
  int nww, cww;              /* waiters on the write side (ww) */
  corio_rt *rt;
  netstate *ns;
  const net_filter *filt;    /* NULL for a plain stream */
  corio_task *reader;        /* the task suspended in a read, or NULL */
  size_t wq;                 /* bytes queued, not yet written */
  size_t hwm, lwm;           /* write waits above hwm until <= lwm */
  size_t limit;              /* line / readuntil limit */
  rbuf rb;                   /* read-ahead */
  rreq rq;                   /* the pending read request */
  size_t rtake, rconsume;    /* SF_RPEND: the match read_cb found */
  int rmatch;                /* SF_RPEND: its result (RM_*) */
  uint64_t rdue;             /* the pending read's deadline (0: none) */
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  struct stream_ud *ud;      /* the userdata, NULL once collected */
  char *sep;                 /* readuntil's separator (a copy) */
  size_t sepcap;
  wwaiter *ww;               /* tasks waiting on the write side */
  int fd;                    /* SK_FD */
  struct wchunk *fq, *fqtail;  /* SK_FD: write queue */
  struct stream *next, *prev;  /* in ns->all */
  void *fctx;                /* the filter's state */
} stream;

/* The userdata: a magic word (net__check_stream's cheap test, as in
** bindings/http/ws.c: only this module makes userdata of this size that
** start with it, and Lua cannot write into a userdata), then the stream,
** NULL once closed and collected or moved to another userdata. */
#define STREAM_MAGIC UINT64_C(0x636f72696f2d7374)

typedef struct stream_ud {
  uint64_t magic;            /* STREAM_MAGIC */
  stream *s;
} stream_ud;

int luaopen_corio__net(lua_State *L);   /* net.c */
int net__read_within(lua_State *L);
  /* (stream, n [, seconds]) -> as Stream:read(n); a wait past `seconds`
     raises TIMEOUT: a bound per read without a corio.timeout scope
     (stream_read.c; corio._net.read_within) */

/* stream.c */
stream *net__stream_new(lua_State *L, corio_rt *rt, int kind);
  /* pushes a new Stream whose handle is not initialised yet [-0,+1];
     the caller initialises s->u and then calls net__stream_opened */
void net__stream_opened(stream *s);   /* handle is initialised */
void net__stream_discard(stream *s);  /* handle init failed: free it */
stream *net__check_stream(lua_State *L, int idx, const char *op);
  /* an open Stream, else raises CLOSED */
void net__stream_abort(stream *s);    /* close now; wakes waiters */
void net__stream_setopts(lua_State *L, stream *s, int oidx);
  /* limit= and high_water= from the options table at oidx (if any) */
void net__stream_metatable(lua_State *L, corio_rt *rt);  /* ensures it */
void net__fd_read_done(stream *s, const char *p, ssize_t n);
  /* the fd backend delivers data (n > 0), EOF (0) or an error (< 0) */
void net__write_done(stream *s, size_t len, int status);
  /* a queued write of len bytes finished */
void net__maybe_free(stream *s);      /* SK_FD: free once idle */
void net__update_ref(stream *s);      /* ref the handle iff needed */
void net__linger_check(stream *s);    /* the write queue shrank */
int net__linger_done(stream *s);      /* a lingering close may end */
void net__reader_raise(stream *s);    /* wakes the reader with the error
                                         on top of rt->L [-1,+0] */

/* For filters (corio.tls). */
void net__deliver(stream *s, const char *p, ssize_t n);
  /* plaintext (n > 0), EOF (UV_EOF) or an error (< 0) for the readers;
     p may be rbuf_tail(&s->rb) after an rbuf_reserve (no copy) */
int net__rd_want(stream *s);          /* start or stop reading as needed */
int net__send_raw(stream *s, const char *p, size_t len);
  /* sends len bytes under the Stream's writes: tried at once when nothing
     is queued, else copied into a buffer the write request owns; 0 or a
     libuv error (kept in s->werr) */
void net__push_ioerror(lua_State *L, stream *s, int err, const char *op);
  /* the error for a sticky rerr/werr: the filter's, or libuv's */
stream_ud *net__stream_rebind(lua_State *L, int idx);
  /* moves the open Stream at idx to a new userdata (pushed [-0,+1]): the
     old one raises CLOSED from then on.  Raises CLOSED, or BUSY when a
     task is blocked on it */

/* stream_write.c */
void net__wake_writers(stream *s);    /* wakes who may go on */
int net__close_wait(lua_State *L, corio_rt *rt, stream *s);
  /* close() in a task: waits for the flush */

/* tcp.c / pipe.c: Stream methods that depend on the socket kind */
int net__peername(lua_State *L);
int net__sockname(lua_State *L);
int net__set_nodelay(lua_State *L);
int net__set_keepalive(lua_State *L);
int net__push_addr(lua_State *L, const struct sockaddr *sa);  /* host, port
                                                                 [-0,+2] */
int net__check_port(lua_State *L, int idx);   /* 0..65535 or raises */
int net__parse_addr(const char *ip, int port, struct sockaddr_storage *ss);
  /* 0 or UV_EINVAL */
/* A connect in flight (tcp.c; pipe.c uses it too). */
typedef struct net_creq {
  uv_connect_t req;
  corio_task *t;               /* the waiting task, NULL once cancelled */
  int anchor;                  /* the new Stream, while waiting */
  int port;                    /* -1 for a unix path */
  int status;                  /* connect_cb's, for its push function */
  char host[128];              /* ip or path, for the error */
} net_creq;
net_creq *net__creq_new(lua_State *L, corio_task *t, const char *host,
                        int port);            /* NULL when out of memory */
extern const uv_connect_cb net__connect_cb;
int net__connect_wait(lua_State *L, corio_rt *rt, stream *s, int si,
                      net_creq *c);           /* suspends; -> Stream */
int net__connect_error(lua_State *L, int status, const char *host,
                       int port);             /* raises */
void net__open_tcp(lua_State *L, corio_rt *rt);    /* into module at -1 */
void net__open_pipe(lua_State *L, corio_rt *rt);
void net__open_listen(lua_State *L, corio_rt *rt);
void net__open_udp(lua_State *L, corio_rt *rt);
void net__open_dns(lua_State *L, corio_rt *rt);
void net__open_stdio(lua_State *L, corio_rt *rt);

/* stdio.c: the fd backend */
void net__fd_want_read(stream *s);    /* submit a read if none in flight */
int net__fd_write(stream *s, const uv_buf_t *bufs, int n);  /* copies */
void net__fd_close(stream *s);

/* listen.c */
int net__listener_new(lua_State *L, corio_rt *rt, int fd, int family,
                      const char *unlink_path, int cbidx, int oidx);
  /* takes a listening fd; pushes a Listener [-0,+1] */

/* Suspends t so that its undo hook can find `obj`: obj goes on top of the
** suspended C call's stack as a light userdata.  A suspended coroutine
** keeps the frame of the C function that yielded on its stack, untouched
** until it is resumed, and an undo hook runs only before the wake pushes
** any value there, so the hook reads obj back with net__wait_obj(t).  The
** slot is not among the results: the continuation counts only what the
** wake pushed above it. */
static inline int net__suspend(lua_State *L, corio_rt *rt, corio_task *t,
                               void *obj, corio_undo_fn undo) {
  lua_pushlightuserdata(L, obj);
  return corio__suspend(L, rt, t, undo);
}

static inline void *net__wait_obj(corio_task *t) {
  return lua_touserdata(t->co, -1);
}

/* True when L is a task's coroutine that may suspend here. */
static inline int net__can_wait(lua_State *L, corio_rt *rt) {
  return rt->current && rt->current->co == L && lua_isyieldable(L);
}

#endif
