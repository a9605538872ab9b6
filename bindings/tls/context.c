/*
** context.c -- tls.context(opts): one SSL_CTX, built once and shared by
** every connection made with it (OpenSSL 3 makes building one and loading
** a CA store expensive: openssl#17627, #22560).  Also the client session
** cache (per host:port, TLS 1.3 tickets included: they arrive after the
** handshake, through the new-session callback), server SNI and keylog.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

int tls__ctx_idx = -1;


/* {====================================================================
** Life
** ===================================================================== */

void tls__ctx_unref(tlsctx *cx) {
  if (--cx->refs > 0) return;
  for (int i = 0; i < TLS_CACHE; i++)
    if (cx->cache[i].sess) SSL_SESSION_free(cx->cache[i].sess);
  if (cx->keylog) fclose(cx->keylog);
  free(cx->alpn);
  SSL_CTX_free(cx->ctx);
  free(cx);
}


tlsctx *tls__check_ctx(lua_State *L, int idx) {
  tlsctx_ud *u = luaL_checkudata(L, idx, TLSCTX_MT);
  return u->cx;
}


static int ctx_gc(lua_State *L) {
  tlsctx_ud *u = luaL_checkudata(L, 1, TLSCTX_MT);
  if (u->cx == NULL) return 0;
  if (u->cx->sni_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, u->cx->sni_ref);
    u->cx->sni_ref = LUA_NOREF;
  }
  tls__ctx_unref(u->cx);
  u->cx = NULL;
  return 0;
}


static int ctx_tostring(lua_State *L) {
  tlsctx_ud *u = luaL_checkudata(L, 1, TLSCTX_MT);
  lua_pushfstring(L, "corio.TlsContext (%s): %p",
                  u->cx && u->cx->server ? "server" : "client", (void *)u);
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Session cache (client) and callbacks that never touch Lua
** ===================================================================== */

SSL_SESSION *tls__cache_get(tlsctx *cx, const char *key) {
  for (int i = 0; i < TLS_CACHE; i++) {
    tls_sess *e = &cx->cache[i];
    if (e->sess && strcmp(e->key, key) == 0) {
      if (SSL_SESSION_is_resumable(e->sess)) return e->sess;
      return NULL;
    }
  }
  return NULL;
}


/* A new session (for TLS 1.3: a ticket after the handshake): keep the
** newest per host:port.  Returns 1: the cache took the reference. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  tlsconn *c = SSL_get_ex_data(ssl, tls__conn_idx);
  if (c == NULL || c->key[0] == '\0') return 0;
  tlsctx *cx = c->cx;
  tls_sess *slot = NULL;
  for (int i = 0; i < TLS_CACHE && slot == NULL; i++)
    if (cx->cache[i].sess && strcmp(cx->cache[i].key, c->key) == 0)
      slot = &cx->cache[i];
  if (slot == NULL) {
    slot = &cx->cache[cx->cache_next];
    cx->cache_next = (cx->cache_next + 1) % TLS_CACHE;
  }
  if (slot->sess) SSL_SESSION_free(slot->sess);
  memcpy(slot->key, c->key, sizeof slot->key);
  slot->sess = sess;
  return 1;
}


static void keylog_cb(const SSL *ssl, const char *line) {
  tlsctx *cx = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls__ctx_idx);
  if (cx && cx->keylog) {
    fputs(line, cx->keylog);
    fputc('\n', cx->keylog);
    fflush(cx->keylog);
  }
}


/* Server ALPN: the first of our protocols the client offers. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  tlsctx *cx = arg;
  unsigned char *o;
  (void)ssl;
  if (cx->alpn == NULL) return SSL_TLSEXT_ERR_NOACK;
  if (SSL_select_next_proto(&o, outlen, cx->alpn, (unsigned)cx->alpn_len,
                            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}


/* Server SNI with a map or function: the name is taken from the
** ClientHello here, and the handshake pauses (RETRY) so that conn.c asks
** Lua for the context outside of any OpenSSL callback. */
static int client_hello_cb(SSL *ssl, int *al, void *arg) {
  tlsconn *c = SSL_get_ex_data(ssl, tls__conn_idx);
  const unsigned char *p;
  size_t len;
  (void)al;
  (void)arg;
  if (c == NULL || c->sni_done) return SSL_CLIENT_HELLO_SUCCESS;
  c->sni[0] = '\0';
  /* server_name: list length (2), type (1) = 0, name length (2), name */
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) &&
      len > 5 && p[2] == TLSEXT_NAMETYPE_host_name) {
    size_t n = ((size_t)p[3] << 8) | p[4];
    if (n + 5 <= len && n < sizeof c->sni && memchr(p + 5, 0, n) == NULL) {
      memcpy(c->sni, p + 5, n);
      c->sni[n] = '\0';
    }
  }
  if (c->sni[0] == '\0') {
    c->sni_done = 1;
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  return SSL_CLIENT_HELLO_RETRY;
}


/* Called by conn.c when the handshake paused for SNI: looks the name up
** in the map, or calls the function (which must not await: it runs on the
** main state, outside any task).  Returns NULL, or an error message. */
const char *tls__sni_resolve(tlsconn *c) {
  lua_State *L = c->s->rt->L;
  static char msg[200];
  c->sni_done = 1;
  if (c->cx->sni_ref == LUA_NOREF) return NULL;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->cx->sni_ref);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, c->sni);
  } else {
    lua_pushstring(L, c->sni);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      snprintf(msg, sizeof msg, "sni function failed: %s",
               lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
      lua_settop(L, top);
      return msg;
    }
  }
  tlsctx_ud *u = luaL_testudata(L, -1, TLSCTX_MT);
  if (u && u->cx && u->cx->ctx != SSL_get_SSL_CTX(c->ssl))
    SSL_set_SSL_CTX(c->ssl, u->cx->ctx);   /* cert and key of that one */
  lua_settop(L, top);
  return NULL;
}

/* }==================================================================== */


/* {====================================================================
** Options
** ===================================================================== */

/* Reported at the user's line: tls.connect, tls.serve and the HTTP client
** reach C.context through corio's own scripts. */
static int bad_option(lua_State *L, const char *key, const char *want) {
  return corio__argerror(L, 1, lua_pushfstring(L, "option '%s' must be %s",
                                               key, want));
}


static const char *opt_string(lua_State *L, int o, const char *key,
                              size_t *len) {
  int t = lua_getfield(L, o, key);
  lua_pop(L, 1);       /* the table keeps the string alive */
  if (t == LUA_TNIL) return NULL;
  if (t != LUA_TSTRING) bad_option(L, key, "a string");
  lua_getfield(L, o, key);
  const char *s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}


static int opt_bool(lua_State *L, int o, const char *key, int def) {
  int t = lua_getfield(L, o, key);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (t == LUA_TNIL) return def;
  if (t != LUA_TBOOLEAN) bad_option(L, key, "a boolean");
  return v;
}


static int opt_version(lua_State *L, int o, const char *key, int def) {
  const char *v = opt_string(L, o, key, NULL);
  if (v == NULL) return def;
  if (strcmp(v, "1.2") == 0) return TLS1_2_VERSION;
  if (strcmp(v, "1.3") == 0) return TLS1_3_VERSION;
  return bad_option(L, key, "\"1.2\" or \"1.3\"");
}


/* Reads a whole file into a new string on the stack; raises ENOENT & co
** with the path. */
static const char *slurp(lua_State *L, const char *path, const char *op,
                         size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    corio__push_uverror(L, uv_translate_sys_error(e), op, NULL);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_error(L);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n;
  char tmp[4096];
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) luaL_addlstring(&b, tmp, n);
  fclose(f);
  luaL_pushresult(&b);
  return lua_tolstring(L, -1, len);
}


static int pass_cb(char *buf, int size, int rw, void *u) {
  const char *pw = u;
  (void)rw;
  if (pw == NULL) return 0;
  int n = (int)strlen(pw);
  if (n > size) n = size;
  memcpy(buf, pw, (size_t)n);
  return n;
}


/* cert/certfile and key/keyfile: a leaf and its chain, then the key. */
static void load_cert(lua_State *L, int o, SSL_CTX *ctx) {
  size_t len;
  const char *pem = opt_string(L, o, "cert", &len);
  const char *file = opt_string(L, o, "certfile", NULL);
  size_t klen = 0;
  const char *kpem = opt_string(L, o, "key", &klen);
  const char *kfile = opt_string(L, o, "keyfile", NULL);
  const char *pw = opt_string(L, o, "password", NULL);
  if (pem == NULL && file == NULL) {
    if (kpem || kfile) bad_option(L, "key", "given with a certificate");
    return;
  }
  if (pem == NULL) pem = slurp(L, file, "context", &len);
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
    X509_free(x);
    BIO_free(b);
    tls__openssl_error(L, "context", "cannot load the certificate");
  }
  X509_free(x);
  SSL_CTX_clear_chain_certs(ctx);
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) X509_free(x);
  ERR_clear_error();                          /* the end of the chain */
  if (kpem == NULL && kfile == NULL) {        /* key in the same PEM */
    (void)BIO_reset(b);
  } else {
    BIO_free(b);
    if (kpem == NULL) kpem = slurp(L, kfile, "context", &klen);
    b = BIO_new_mem_buf(kpem, (int)klen);
  }
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)(uintptr_t)pw)
                  : NULL;
  BIO_free(b);
  if (k == NULL || SSL_CTX_use_PrivateKey(ctx, k) != 1) {
    EVP_PKEY_free(k);
    tls__openssl_error(L, "context", "cannot load the private key");
  }
  EVP_PKEY_free(k);
  if (SSL_CTX_check_private_key(ctx) != 1)
    tls__openssl_error(L, "context", "the key does not match the "
                       "certificate");
}


static void load_ca(lua_State *L, int o, SSL_CTX *ctx, int need) {
  size_t len;
  const char *pem = opt_string(L, o, "ca", &len);
  const char *file = opt_string(L, o, "cafile", NULL);
  const char *dir = opt_string(L, o, "capath", NULL);
  if (pem) {
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    int n = 0;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
      X509_STORE_add_cert(st, x);
      X509_free(x);
      n++;
    }
    BIO_free(b);
    ERR_clear_error();
    if (n == 0) tls__openssl_error(L, "context", "no certificate in 'ca'");
  }
  if (file) {
    size_t flen;
    slurp(L, file, "context", &flen);          /* ENOENT with the path */
    lua_pop(L, 1);
  }
  if ((file || dir) && SSL_CTX_load_verify_locations(ctx, file, dir) != 1)
    tls__openssl_error(L, "context", "cannot load the CA certificates");
  if (!pem && !file && !dir && need)
    SSL_CTX_set_default_verify_paths(ctx);     /* the system store */
}


/* alpn = {"h2", "http/1.1"} -> wire format (length-prefixed). */
static unsigned char *alpn_wire(lua_State *L, int o, size_t *len) {
  if (lua_getfield(L, o, "alpn") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1)) bad_option(L, "alpn", "a list of strings");
  size_t n = 0;
  lua_Integer i, cnt = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= cnt; i++) {
    size_t l;
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) bad_option(L, "alpn",
                                                         "a list of strings");
    lua_tolstring(L, -1, &l);
    if (l == 0 || l > 255) bad_option(L, "alpn", "1-255 byte names");
    n += l + 1;
    lua_pop(L, 1);
  }
  if (n == 0) {
    lua_pop(L, 1);
    return NULL;
  }
  unsigned char *w = malloc(n), *p = w;
  if (w == NULL) luaL_error(L, "not enough memory");
  for (i = 1; i <= cnt; i++) {
    size_t l;
    lua_rawgeti(L, -1, i);
    const char *s = lua_tolstring(L, -1, &l);
    *p++ = (unsigned char)l;
    memcpy(p, s, l);
    p += l;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *len = n;
  return w;
}


static void configure(lua_State *L, int o, tlsctx *cx) {
  SSL_CTX *ctx = cx->ctx;
  int server = cx->server;
  int verify = opt_bool(L, o, "verify", !server);
  int require = opt_bool(L, o, "require_cert", 0);
  int minv = opt_version(L, o, "min_version", TLS1_2_VERSION);
  int maxv = opt_version(L, o, "max_version", TLS1_3_VERSION);
  if (maxv < minv) bad_option(L, "max_version", "at least min_version");
  SSL_CTX_set_min_proto_version(ctx, minv);
  SSL_CTX_set_max_proto_version(ctx, maxv);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                      SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const char *s;
  if ((s = opt_string(L, o, "ciphers", NULL)) &&
      SSL_CTX_set_cipher_list(ctx, s) != 1)
    tls__openssl_error(L, "context", "bad 'ciphers'");
  if ((s = opt_string(L, o, "ciphersuites", NULL)) &&
      SSL_CTX_set_ciphersuites(ctx, s) != 1)
    tls__openssl_error(L, "context", "bad 'ciphersuites'");
  load_cert(L, o, ctx);
  load_ca(L, o, ctx, server ? require : verify);
  if (server) {
    SSL_CTX_set_verify(ctx, require ? SSL_VERIFY_PEER |
                       SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE,
                       NULL);
    static const unsigned char sid[] = "corio";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    lua_Integer tickets = 2;
    if (lua_getfield(L, o, "tickets") != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
          lua_tointeger(L, -1) > 16)
        bad_option(L, "tickets", "an integer 0-16");
      tickets = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    SSL_CTX_set_num_tickets(ctx, (size_t)tickets);
    if (tickets == 0) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    cx->alpn = alpn_wire(L, o, &cx->alpn_len);
    if (cx->alpn) SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, cx);
    int t = lua_getfield(L, o, "sni");
    if (t == LUA_TTABLE || t == LUA_TFUNCTION) {
      cx->sni_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
    } else {
      lua_pop(L, 1);
      if (t != LUA_TNIL) bad_option(L, "sni", "a table or a function");
    }
  } else {
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                   SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    size_t n = 0;
    unsigned char *w = alpn_wire(L, o, &n);
    if (w) {
      int r = SSL_CTX_set_alpn_protos(ctx, w, (unsigned)n);
      free(w);
      if (r != 0) tls__openssl_error(L, "context", "bad 'alpn'");
    }
  }
  const char *kl = opt_string(L, o, "keylog", NULL);
  if (kl == NULL) kl = getenv("SSLKEYLOGFILE");
  if (kl && *kl) {
    cx->keylog = fopen(kl, "a");
    if (cx->keylog == NULL) {
      corio__push_uverror(L, uv_translate_sys_error(errno), "context", NULL);
      lua_pushstring(L, kl);
      lua_setfield(L, -2, "path");
      lua_error(L);
    }
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
  }
  SSL_CTX_set_info_callback(ctx, tls__info_cb);
}


/* Every option tls.context knows.  An unknown key is a `bad argument`
** naming it: a typo ("verfy = false", "cafle") must not silently give
** a context with the default in its place. */
static const char *const known_options[] = {
  "server", "verify", "require_cert", "ca", "cafile", "capath", "cert",
  "key", "certfile", "keyfile", "password", "alpn", "min_version",
  "max_version", "ciphers", "ciphersuites", "tickets", "sni", "keylog",
  NULL
};


static void check_known(lua_State *L, int o) {
  lua_pushnil(L);
  while (lua_next(L, o)) {
    lua_pop(L, 1);                                  /* stack: key */
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                    : NULL;
    int i = 0;
    while (k && known_options[i] && strcmp(known_options[i], k) != 0) i++;
    if (k == NULL || known_options[i] == NULL) {
      if (k) corio__argerror(L, 1, lua_pushfstring(L,
                             "unknown option '%s'", k));
      corio__argerror(L, 1, lua_pushfstring(L, "unknown option (a %s key)",
                                            luaL_typename(L, -1)));
    }
  }
}


/* context([opts]) -> Context */
int tls__context_new(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_known(L, 1);                  /* before anything is allocated */
  tlsctx_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->cx = NULL;
  luaL_setmetatable(L, TLSCTX_MT);
  tlsctx *cx = calloc(1, sizeof *cx);
  if (cx == NULL) return luaL_error(L, "not enough memory");
  cx->refs = 1;
  cx->sni_ref = LUA_NOREF;
  cx->server = opt_bool(L, 1, "server", 0);
  cx->ctx = SSL_CTX_new(cx->server ? TLS_server_method()
                                   : TLS_client_method());
  if (cx->ctx == NULL) {
    free(cx);
    return tls__openssl_error(L, "context", "cannot create a context");
  }
  SSL_CTX_set_ex_data(cx->ctx, tls__ctx_idx, cx);
  u->cx = cx;                        /* from here the GC frees it */
  configure(L, 1, cx);                /* may leave file contents */
  ERR_clear_error();
  lua_settop(L, 2);
  return 1;
}

/* }==================================================================== */


void tls__open_context(lua_State *L, corio_rt *rt) {
  static const luaL_Reg meta[] = {
    {"__gc", ctx_gc},
    {"__tostring", ctx_tostring},
    {NULL, NULL}
  };
  if (tls__ctx_idx < 0)
    tls__ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  if (corio__newclass(L, rt, TLSCTX_MT, NULL, meta, NULL)) {}
  lua_pop(L, 1);
}
