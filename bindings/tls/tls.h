/*
** tls.h -- what the files of corio.tls share (context.c, conn.c, info.c,
** tls.c).  Not installed.
**
** A TLS connection is a corio.net Stream with a filter (net.h): the
** socket carries ciphertext, the Stream's buffers plaintext.  One SSL*
** with two memory BIOs does the work: ciphertext read from the socket is
** written into the read BIO and SSL_read decrypts it straight into the
** Stream's read buffer; SSL_write encrypts into the write BIO, whose bytes
** are handed to the socket at once (uv_try_write) or copied into a buffer
** the write request owns -- never a pointer into OpenSSL's memory.
*/
#ifndef CORIO_TLS_H
#define CORIO_TLS_H

#include <openssl/ssl.h>

#include "tls/ossl.h"    /* OpenSSL, loaded on first use */

#include "net/net.h"

#define TLSCTX_MT "corio.TlsContext"
#define TLS_CACHE 64                 /* client sessions kept per context */

/* A context's C side: shared by every connection made with it, so it is
** counted (the Lua object and each SSL* hold a reference); the SSL_CTX
** points back at it (ex_data). */
typedef struct tls_sess {
  char key[272];                     /* "host:port" */
  SSL_SESSION *sess;
} tls_sess;

typedef struct tlsctx {
  SSL_CTX *ctx;
  int refs;
  int server;
  int sni_ref;                       /* registry ref: sni map/function */
  unsigned char *alpn;               /* wire format, for the server */
  size_t alpn_len;
  FILE *keylog;
  tls_sess cache[TLS_CACHE];
  int cache_next;
} tlsctx;

typedef struct tlsctx_ud {
  tlsctx *cx;
} tlsctx_ud;

enum {                               /* tlsconn->state: one transition
                                        function, conn.c's pump() */
  TS_HANDSHAKE = 1,                  /* SSL_do_handshake until done */
  TS_WRAPPED,                        /* application data both ways */
  TS_FLUSHING,                       /* close(): close_notify sent, waiting
                                        for the peer's (shutdown_timeout) */
  TS_SHUTDOWN,                       /* done: the peer's came, EOF, or the
                                        wait timed out */
  TS_FAILED                          /* a fatal error: err_* say which */
};

typedef struct tlsconn {
  SSL *ssl;
  BIO *rbio, *wbio;                  /* owned by ssl */
  tlsctx *cx;                        /* a reference */
  stream *s;
  int state;
  corio_task *hs;                    /* the task waiting for the handshake */
  int clean_close;                   /* -1 unknown, 0 ragged, 1 notify */
  int uverr;                         /* a socket error ended it */
  int verify_failed;
  long verify_code;
  char reason[160];                  /* OpenSSL's reason string */
  char alert[80];                    /* the alert received, if any */
  char key[272];                     /* session cache key, or "" */
  char sni[256];                     /* server: name asked for */
  int sni_done;
  double shutdown_timeout;           /* seconds; 0 = do not wait */
  uv_timer_t *tm;                    /* the close wait */
  int timed_out;
} tlsconn;

extern int tls__conn_idx;            /* SSL ex_data index of the tlsconn */
extern int tls__ctx_idx;             /* SSL_CTX ex_data index of tlsctx */

int luaopen_corio__tls(lua_State *L);    /* tls.c */

/* context.c */
tlsctx *tls__check_ctx(lua_State *L, int idx);
void tls__ctx_unref(tlsctx *cx);
int tls__context_new(lua_State *L);     /* context(opts) -> Context */
void tls__open_context(lua_State *L, corio_rt *rt);
SSL_SESSION *tls__cache_get(tlsctx *cx, const char *key);
const char *tls__sni_resolve(tlsconn *c);  /* switches the SSL_CTX; an
                                              error message or NULL */

/* conn.c */
int tls__wrap(lua_State *L);            /* wrap(stream, ctx, opts) */
int tls__handshake(lua_State *L);       /* handshake(tlsstream) */
tlsconn *tls__conn_of(lua_State *L, int idx, const char *op);
extern const net_filter tls__filter;

/* info.c */
int tls__info(lua_State *L);            /* stream:tls_info() */
void tls__push_error(lua_State *L, stream *s, int err, const char *op);
void tls__record_error(tlsconn *c);     /* after a fatal SSL error */
void tls__info_cb(const SSL *ssl, int where, int ret);  /* alerts */
int tls__openssl_error(lua_State *L, const char *op, const char *what);
  /* raises TLS with OpenSSL's last reason */

#endif
