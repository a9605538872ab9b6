/*
** info.c -- what a TLS connection tells: stream:tls_info(), and its
** errors as corio.Error values (TLS with OpenSSL's reason and the alert
** received; TLS_VERIFY with the verification error).
*/
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>  /* inet_ntop */

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"


/* {====================================================================
** Errors
** ===================================================================== */

/* Alerts received: the info callback only copies a string (no Lua). */
void tls__info_cb(const SSL *ssl, int where, int ret) {
  if (!(where & SSL_CB_READ_ALERT)) return;
  tlsconn *c = SSL_get_ex_data(ssl, tls__conn_idx);
  if (c == NULL || (ret & 0xff) == SSL_AD_CLOSE_NOTIFY) return;
  snprintf(c->alert, sizeof c->alert, "%s", SSL_alert_desc_string_long(ret));
}


/* Keeps what a fatal SSL error was (the queue is per thread and must be
** left empty for the next call). */
void tls__record_error(tlsconn *c) {
  long v = SSL_get_verify_result(c->ssl);
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    c->verify_failed = 1;
    c->verify_code = v;
  }
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (c->reason[0] == '\0')
    snprintf(c->reason, sizeof c->reason, "%s", r ? r :
             c->alert[0] ? "alert received" : "TLS protocol error");
  ERR_clear_error();
}


void tls__push_error(lua_State *L, stream *s, int err, const char *op) {
  tlsconn *c = s->fctx;
  (void)err;
  if (c == NULL) {
    corio__push_error(L, "TLS", op, "TLS connection is gone");
    return;
  }
  if (c->uverr) {
    corio__push_uverror(L, c->uverr, op, NULL);
    return;
  }
  if (c->verify_failed) {
    const char *ve = X509_verify_cert_error_string(c->verify_code);
    char msg[256];
    snprintf(msg, sizeof msg, "certificate verify failed: %s", ve);
    corio__push_error(L, "TLS_VERIFY", op, msg);
    lua_pushstring(L, ve);
    lua_setfield(L, -2, "verify_error");
    lua_pushinteger(L, c->verify_code);
    lua_setfield(L, -2, "verify_code");
    return;
  }
  corio__push_error(L, "TLS", op, c->reason[0] ? c->reason
                    : "TLS protocol error");
  if (c->alert[0]) {
    lua_pushstring(L, c->alert);
    lua_setfield(L, -2, "alert");
  }
}


int tls__openssl_error(lua_State *L, const char *op, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  char msg[300];
  if (r) snprintf(msg, sizeof msg, "%s: %s", what, r);
  else snprintf(msg, sizeof msg, "%s", what);
  ERR_clear_error();
  return corio__error(L, "TLS", op, msg);
}

/* }==================================================================== */


/* {====================================================================
** tls_info
** ===================================================================== */

static void push_name(lua_State *L, X509_NAME *n) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  if (b == NULL) {
    lua_pushnil(L);
    return;
  }
  X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  long len = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, (size_t)len);
  BIO_free(b);
}


static void push_time(lua_State *L, const ASN1_TIME *t) {
  struct tm tm;
  char buf[32];
  if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
    lua_pushnil(L);
    return;
  }
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  lua_pushstring(L, buf);
}


static void push_san(lua_State *L, X509 *x) {
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
                                         NULL);
  lua_newtable(L);
  if (gens == NULL) return;
  int k = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type == GEN_DNS) {
      const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
      lua_pushlstring(L, (const char *)d,
                      (size_t)ASN1_STRING_length(g->d.dNSName));
    } else if (g->type == GEN_IPADD) {
      char buf[64];
      int len = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof buf);
        lua_pushstring(L, buf);
      } else {
        continue;
      }
    } else {
      continue;
    }
    lua_rawseti(L, -2, ++k);
  }
  GENERAL_NAMES_free(gens);
}


static void push_cert(lua_State *L, X509 *x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char hex[EVP_MAX_MD_SIZE * 3];
  lua_createtable(L, 0, 6);
  push_name(L, X509_get_subject_name(x));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(x));
  lua_setfield(L, -2, "issuer");
  push_san(L, x);
  lua_setfield(L, -2, "san");
  push_time(L, X509_get0_notBefore(x));
  lua_setfield(L, -2, "not_before");
  push_time(L, X509_get0_notAfter(x));
  lua_setfield(L, -2, "not_after");
  if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1) {
    for (unsigned i = 0; i < mdlen; i++)
      snprintf(hex + 2 * i, 3, "%02x", md[i]);
    lua_pushlstring(L, hex, 2 * (size_t)mdlen);
    lua_setfield(L, -2, "sha256");
  }
}


/* stream:tls_info() -> table, or nil for a plain Stream */
int tls__info(lua_State *L) {
  stream *s = net__check_stream(L, 1, "tls_info");
  if (s->filt != &tls__filter) {
    lua_pushnil(L);
    return 1;
  }
  tlsconn *c = s->fctx;
  SSL *ssl = c->ssl;
  lua_createtable(L, 0, 8);
  int done = c->state != TS_HANDSHAKE && SSL_is_init_finished(ssl);
  lua_pushstring(L, c->state == TS_HANDSHAKE ? "handshake"
                 : c->state == TS_WRAPPED ? "open"
                 : c->state == TS_FAILED ? "failed" : "closed");
  lua_setfield(L, -2, "state");
  if (done) {
    lua_pushstring(L, SSL_get_version(ssl));
    lua_setfield(L, -2, "version");
    lua_pushstring(L, SSL_get_cipher_name(ssl));
    lua_setfield(L, -2, "cipher");
  }
  const unsigned char *a;
  unsigned int alen = 0;
  SSL_get0_alpn_selected(ssl, &a, &alen);
  if (alen) {
    lua_pushlstring(L, (const char *)a, alen);
    lua_setfield(L, -2, "alpn");
  }
  const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sn) {
    lua_pushstring(L, sn);
    lua_setfield(L, -2, "servername");
  }
  lua_pushboolean(L, SSL_session_reused(ssl));
  lua_setfield(L, -2, "session_reused");
  lua_pushboolean(L, SSL_is_server(ssl));
  lua_setfield(L, -2, "server");
  if (c->clean_close >= 0) {
    lua_pushboolean(L, c->clean_close);
    lua_setfield(L, -2, "clean_close");
  }
  X509 *x = SSL_get0_peer_certificate(ssl);
  if (x) {
    push_cert(L, x);
    lua_setfield(L, -2, "peer_cert");
  }
  long v = SSL_get_verify_result(ssl);
  lua_pushboolean(L, done && x && v == X509_V_OK &&
                  SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE);
  lua_setfield(L, -2, "verified");
  return 1;
}

/* }==================================================================== */
