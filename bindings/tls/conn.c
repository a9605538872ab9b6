/*
** conn.c -- a TLS connection: the Stream filter (net.h) and its state
** machine.  pump() is the one transition function:
**
**   TS_HANDSHAKE --done--> TS_WRAPPED --close()--> TS_FLUSHING --peer's
**   close_notify, EOF or shutdown_timeout--> TS_SHUTDOWN
**   (any fatal error --> TS_FAILED)
**
** Ciphertext from the socket goes into the read BIO; in one pass pump()
** finishes the handshake and decrypts whatever application data came in
** the same read, straight into the Stream's read buffer.  What OpenSSL
** wants sent (handshake messages, tickets, alerts, close_notify, records)
** is moved out of the write BIO at once with net__send_raw, which sends it
** or copies it into the write request's own buffer.  No OpenSSL callback
** resumes a task: tasks are only woken from here, after OpenSSL returned.
** The SSL* is freed with the Stream, in its close callback, after libuv
** has called back every write request.
*/
#include <arpa/inet.h>  /* inet_pton */
#include <stdint.h>      /* uintptr_t */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

int tls__conn_idx = -1;

static void pump(tlsconn *c);


/* {====================================================================
** Sending what OpenSSL produced
** ===================================================================== */

/* Moves every pending ciphertext byte to the socket.  0 or an error. */
static int flush(tlsconn *c) {
  char *p;
  long n = BIO_get_mem_data(c->wbio, &p);
  if (n <= 0) return 0;
  int r = net__send_raw(c->s, p, (size_t)n);  /* sent or copied */
  (void)BIO_reset(c->wbio);
  return r;
}

/* }==================================================================== */


/* {====================================================================
** Waking the handshake's task, ending the close wait
** ===================================================================== */

/* [c] -> the handshake's error; [] -> the CLOSED one.  The wakes run in
** libuv callbacks, outside any pcall: the errors are made protected
** (corio__wake_with; out of memory, the task raises ENOMEM). */
static int push_hs_error(lua_State *L) {
  tlsconn *c = lua_touserdata(L, 1);
  tls__push_error(L, c->s, UV_EPROTO, "handshake");
  return 1;
}

static int push_hs_closed(lua_State *L) {
  corio__push_error(L, "CLOSED", "handshake", "stream is closed");
  return 1;
}


static void wake_hs(tlsconn *c, int ok) {
  corio_task *t = c->hs;
  corio_rt *rt = c->s->rt;
  if (t == NULL) return;
  c->hs = NULL;
  if (rt->closing) return;
  if (ok)
    corio__wake(rt, t, rt->L, 0, WAKE_VALUES);
  else
    corio__wake_with(rt, t, push_hs_error, c, WAKE_RAISE);
  net__update_ref(c->s);
}


/* The close wait is over (the peer's close_notify, EOF, an error or the
** timeout): a lingering close may go on. */
static void release(tlsconn *c) {
  stream *s = c->s;
  if (c->state == TS_FLUSHING) c->state = TS_SHUTDOWN;
  s->flags &= ~SF_FWANT;
  if (c->tm) uv_timer_stop(c->tm);
  net__rd_want(s);
  net__wake_writers(s);
  net__linger_check(s);              /* may start the handle's close */
}


static void fail(tlsconn *c, int uverr) {
  int was = c->state;
  c->state = TS_FAILED;
  if (uverr) c->uverr = uverr;
  else tls__record_error(c);
  flush(c);                          /* the alert we send, if any */
  if (was == TS_HANDSHAKE) wake_hs(c, 0);
  c->s->flags &= ~SF_FWANT;
}

/* }==================================================================== */


/* {====================================================================
** The transition function
** ===================================================================== */

static void decrypt(tlsconn *c) {
  stream *s = c->s;
  char scratch[16384];
  for (;;) {
    int closed = (s->flags & SF_CLOSED) != 0;
    char *dst = scratch;
    size_t room = sizeof scratch, n = 0;
    if (!closed) {
      if (rbuf_reserve(&s->rb, 16384) != 0) {
        s->rerr = UV_ENOBUFS;
        net__deliver(s, NULL, UV_ENOBUFS);
        return;
      }
      dst = rbuf_tail(&s->rb);
      room = s->rb.cap - s->rb.off - s->rb.len;
    }
    ERR_clear_error();
    int r = SSL_read_ex(c->ssl, dst, room, &n);
    if (r == 1) {
      if (!closed) net__deliver(s, dst, (ssize_t)n);
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e == SSL_ERROR_ZERO_RETURN) {           /* the peer's close_notify */
      c->clean_close = 1;
      if (!(s->flags & SF_EOF) && !closed) net__deliver(s, NULL, UV_EOF);
      else s->flags |= SF_EOF;
      if (c->state == TS_FLUSHING) release(c);
      else net__rd_want(s);
      return;
    }
    fail(c, 0);
    if (!closed) net__deliver(s, NULL, UV_EPROTO);
    release(c);
    return;
  }
}


static void pump(tlsconn *c) {
  if (c->state == TS_HANDSHAKE) {
    for (;;) {
      ERR_clear_error();
      int r = SSL_do_handshake(c->ssl);
      if (r == 1) break;
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        const char *msg = tls__sni_resolve(c);
        if (msg) {
          snprintf(c->reason, sizeof c->reason, "%s", msg);
          c->state = TS_FAILED;
          c->s->flags &= ~SF_FWANT;
          wake_hs(c, 0);
          return;
        }
        continue;
      }
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int w = flush(c);
        if (w != 0) fail(c, w);
        return;
      }
      fail(c, 0);
      return;
    }
    c->state = TS_WRAPPED;
    c->s->flags &= ~SF_FWANT;
    if (flush(c) != 0) {
      fail(c, c->s->werr);
      return;
    }
    wake_hs(c, 1);
    net__rd_want(c->s);
  }
  if (c->state == TS_WRAPPED || c->state == TS_FLUSHING) {
    decrypt(c);
    if (c->state != TS_FAILED) flush(c);     /* tickets, key updates */
  }
}

/* }==================================================================== */


/* {====================================================================
** The filter
** ===================================================================== */

static void f_on_read(stream *s, const char *p, ssize_t n) {
  tlsconn *c = s->fctx;
  if (s->rt->closing) return;
  if (n < 0) {
    if (n == UV_EOF) s->flags &= ~SF_READING;  /* libuv stopped */
    if (c->state == TS_HANDSHAKE) {
      if (n == UV_EOF) {
        snprintf(c->reason, sizeof c->reason,
                 "connection closed during the handshake");
        c->state = TS_FAILED;
        s->flags &= ~SF_FWANT;
        wake_hs(c, 0);
      } else {
        fail(c, (int)n);
      }
      net__deliver(s, NULL, n == UV_EOF ? UV_EPROTO : n);
      return;
    }
    if (c->clean_close < 0) c->clean_close = 0;   /* ragged EOF */
    if (!(s->flags & SF_EOF) && !(s->flags & SF_CLOSED))
      net__deliver(s, NULL, n);
    else
      s->flags |= SF_EOF;
    release(c);
    return;
  }
  if (c->state == TS_FAILED || c->state == TS_SHUTDOWN) return;
  if (BIO_write(c->rbio, p, (int)n) != (int)n) {
    fail(c, UV_ENOMEM);
    net__deliver(s, NULL, UV_EPROTO);
    return;
  }
  pump(c);
}


static int f_write(stream *s, const uv_buf_t *bufs, int n) {
  tlsconn *c = s->fctx;
  if (c->state == TS_FAILED) return UV_EPROTO;
  if (c->state != TS_WRAPPED) return UV_EPIPE;
  for (int i = 0; i < n; i++) {
    size_t done = 0;
    ERR_clear_error();
    if (bufs[i].len && SSL_write_ex(c->ssl, bufs[i].base, bufs[i].len,
                                    &done) != 1) {
      fail(c, 0);
      s->werr = UV_EPROTO;
      return UV_EPROTO;
    }
    /* Flushing per buffer keeps the BIO small for big writes. */
    int r = flush(c);
    if (r != 0) return r;
  }
  return 0;
}


static int f_shutdown(stream *s) {
  tlsconn *c = s->fctx;
  if (c->state != TS_WRAPPED) return 0;
  ERR_clear_error();
  SSL_shutdown(c->ssl);              /* close_notify */
  return flush(c);
}


static void timer_cb(uv_timer_t *tm) {
  tlsconn *c = tm->data;
  if (c == NULL) return;
  c->timed_out = 1;
  release(c);
}


/* close() began (not abort): send close_notify, and wait for the peer's
** for up to shutdown_timeout, reading (so that a response just written is
** not lost to an RST for unread bytes). */
static void f_close(stream *s) {
  tlsconn *c = s->fctx;
  if (c->state == TS_HANDSHAKE) {
    c->state = TS_FAILED;
    snprintf(c->reason, sizeof c->reason, "closed during the handshake");
    s->flags &= ~SF_FWANT;
    return;
  }
  if (c->state != TS_WRAPPED) return;
  ERR_clear_error();
  SSL_shutdown(c->ssl);
  if (flush(c) != 0 || c->clean_close == 1 || (s->flags & SF_EOF) ||
      s->rerr || c->shutdown_timeout <= 0) {
    c->state = TS_SHUTDOWN;
    return;
  }
  c->state = TS_FLUSHING;
  if (c->tm == NULL) {
    c->tm = malloc(sizeof *c->tm);
    if (c->tm == NULL) {
      c->state = TS_SHUTDOWN;
      return;
    }
    uv_timer_init(s->rt->loop, c->tm);
    corio__track(s->rt, (uv_handle_t *)c->tm);
    c->tm->data = c;
    uv_unref((uv_handle_t *)c->tm);
  }
  uv_timer_start(c->tm, timer_cb,
                 (uint64_t)(c->shutdown_timeout * 1000 + 0.5), 0);
  s->flags |= SF_FWANT;
  net__rd_want(s);
}


static int f_hold(stream *s) {
  tlsconn *c = s->fctx;
  return c->state == TS_FLUSHING;
}


static void free_timer(uv_handle_t *h) {
  corio__untrack(h->data, h);                 /* data: the runtime */
  free(h);
}


static void f_free(stream *s) {
  tlsconn *c = s->fctx;
  if (c == NULL) return;
  if (c->hs && !s->rt->closing) {
    corio_task *t = c->hs;
    c->hs = NULL;
    corio__wake_with(s->rt, t, push_hs_closed, NULL, WAKE_RAISE);
  }
  if (c->tm) {
    c->tm->data = s->rt;
    uv_close((uv_handle_t *)c->tm, free_timer);
  }
  SSL_free(c->ssl);
  tls__ctx_unref(c->cx);
  free(c);
  s->fctx = NULL;
}


const net_filter tls__filter = {
  f_on_read, f_write, f_shutdown, f_close, f_hold, tls__push_error, f_free
};

/* }==================================================================== */


/* {====================================================================
** wrap (connect, serve and upgrade all come here) and handshake
** ===================================================================== */

tlsconn *tls__conn_of(lua_State *L, int idx, const char *op) {
  stream *s = net__check_stream(L, idx, op);
  if (s->filt != &tls__filter)
    luaL_argerror(L, idx, "a TLS stream expected");
  return s->fctx;
}


static int is_ip(const char *h) {
  unsigned char buf[16];
  return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}


/* wrap(stream, ctx, servername|nil, session_key|nil, shutdown_timeout)
** -> TlsStream.  The old Stream raises CLOSED from now on; the bytes it
** had buffered are fed to TLS as ciphertext. */
int tls__wrap(lua_State *L) {
  tlsctx *cx = tls__check_ctx(L, 2);
  const char *name = luaL_optstring(L, 3, NULL);
  const char *key = luaL_optstring(L, 4, NULL);
  double sto = luaL_optnumber(L, 5, 30);
  stream_ud *old = luaL_checkudata(L, 1, STREAM_MT);
  if (old->s && old->s->filt)
    return corio__error(L, "INVALID_STATE", "upgrade",
                        "the stream is TLS already");
  if (old->s && (old->s->kind == SK_FD || old->s->kind == SK_TTY))
    luaL_argerror(L, 1, "a socket stream expected");
  tlsconn *c = calloc(1, sizeof *c);
  if (c == NULL) return luaL_error(L, "not enough memory");
  c->ssl = SSL_new(cx->ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
    SSL_free(c->ssl);
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    free(c);
    return tls__openssl_error(L, "upgrade", "cannot create a connection");
  }
  BIO_set_mem_eof_return(c->rbio, -1);      /* empty: "want read" */
  BIO_set_mem_eof_return(c->wbio, -1);
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_ex_data(c->ssl, tls__conn_idx, c);
  c->cx = cx;
  cx->refs++;
  c->clean_close = -1;
  c->shutdown_timeout = sto;
  if (cx->server) {
    SSL_set_accept_state(c->ssl);
  } else {
    SSL_set_connect_state(c->ssl);
    int verify = SSL_CTX_get_verify_mode(cx->ctx) != SSL_VERIFY_NONE;
    if (name && is_ip(name)) {
      if (verify)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name);
    } else if (name && *name) {
      /* SSL_set_tlsext_host_name, without its cast dropping const */
      SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
               TLSEXT_NAMETYPE_host_name, (void *)(uintptr_t)name);
      if (verify) {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(c->ssl, name);
      }
    }
    if (key) {
      snprintf(c->key, sizeof c->key, "%s", key);
      SSL_SESSION *sess = tls__cache_get(cx, c->key);
      if (sess) SSL_set_session(c->ssl, sess);
    }
  }
  /* From here c belongs to the stream (freed with it). */
  stream *s = NULL;
  if (old->s && !(old->s->flags & SF_CLOSED) && !old->s->reader &&
      !old->s->nww) {
    s = old->s;
    s->filt = &tls__filter;
    s->fctx = c;
    c->s = s;
  }
  if (s == NULL) {                          /* rebind raises the error */
    SSL_free(c->ssl);
    tls__ctx_unref(cx);
    free(c);
    net__stream_rebind(L, 1);
    return 0;
  }
  net__stream_rebind(L, 1);                 /* the new Stream */
  c->state = TS_HANDSHAKE;
  s->flags |= SF_FWANT;
  if (s->rb.len > 0) {                      /* STARTTLS: ciphertext */
    if (BIO_write(c->rbio, rbuf_data(&s->rb), (int)s->rb.len) !=
        (int)s->rb.len)
      fail(c, UV_ENOMEM);
    rbuf_free(&s->rb);
  }
  if (s->flags & SF_EOF) {
    snprintf(c->reason, sizeof c->reason,
             "connection closed before the handshake");
    c->state = TS_FAILED;
    s->flags &= ~SF_FWANT;
  }
  if (c->state == TS_HANDSHAKE) pump(c);
  net__rd_want(s);
  net__update_ref(s);
  return 1;
}


static void hs_undo(corio_rt *rt, corio_task *t) {
  tlsconn *c = net__wait_obj(t);
  (void)rt;
  c->hs = NULL;
  net__stream_abort(c->s);                  /* cancelled: close now */
}


/* handshake(tlsstream): waits until the handshake is done; raises TLS,
** TLS_VERIFY or the socket's error. */
int tls__handshake(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  tlsconn *c = tls__conn_of(L, 1, "handshake");
  if (c->state == TS_FAILED) {
    tls__push_error(L, c->s, UV_EPROTO, "handshake");
    return lua_error(L);
  }
  if (c->state != TS_HANDSHAKE) return 0;
  if (c->hs) return corio__error(L, "BUSY", "handshake",
                                 "another task waits for the handshake");
  corio_task *t = corio__check_await(L, rt, "handshake");
  c->hs = t;
  net__update_ref(c->s);
  return net__suspend(L, rt, t, c, hs_undo);
}

/* }==================================================================== */
