/*
** wshand.c -- the WebSocket opening handshake's hot parts (RFC 6455
** section 4), for corio._wslay (ws.c registers them; scripts/_ws.lua
** holds the policy).
**
** A server answers every upgrade: reading the head, checking the four
** fields that make it an upgrade, and computing the accept value were
** Lua patterns (gmatch and match per header line, ≈ 85,000 instructions
** of a 190,000-instruction connection).  Here each is one pass over the
** bytes, and the 101 is built in one buffer:
**
**   parse_head(head, true)  -> method, target, version, headers
**   parse_head(head, false) -> status, headers
**       head: a whole head up to its empty line (readuntil "\r\n\r\n").
**       headers: a table by lower-case name, repeated fields joined with
**       ", ", values without their surrounding whitespace.  Malformed:
**       nil, detail (a response's status comes third when its status
**       line was good, so a 403 with odd fields still says 403).
**   check_upgrade(method, version, upgrade, connection, wsversion, key)
**       -> nil when the request is an upgrade we take, else status, detail
**   has_token(list, token) -> whether the comma list holds token
**       (token in lower case; case-insensitive)
**   response(key, protocol, extra) -> the 101 head; extra: header lines
**       ending in CRLF (already checked by the caller), or nil
**   accept_key(key), random_key(), key_ok(key)
**
** Strictness: a header line must be a token, a colon, and a value of
** visible bytes, spaces and tabs (obs-text allowed); no obs-fold, no bare
** CR or LF, no NUL: the same bytes corio.http's guard (head.c) refuses,
** since a field read one way here and another way by a proxy in front is
** how header smuggling starts.
*/
#include <pthread.h>  /* pthread_once: SHA-1 fetched once per process */
#include <string.h>   /* memcpy */

#include <openssl/evp.h>        /* SHA-1, base64 */
#include <openssl/rand.h>       /* handshake keys */

#include "shared.h"   /* the core: corio_rt, Lua */
#include "http.h"
#include "tls/ossl.h"  /* OpenSSL, loaded on first use */

/* The handshake's fixed suffix (RFC 6455 section 1.3). */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define GUID_LEN (sizeof WS_GUID - 1)



static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}


/* {====================================================================
** Heads
** ===================================================================== */

/* Parses the header lines of p[0..n) (after the start line, up to and
** with the empty line) into a new table: 1 pushed, 0 (nothing pushed)
** when a line is malformed. */
static int push_fields(lua_State *L, const char *p, const char *e) {
  lua_createtable(L, 0, 8);
  for (;;) {
    if (e - p >= 2 && p[0] == '\r' && p[1] == '\n') return 1;  /* the end */
    const char *name = p;
    while (p < e && tchar[(unsigned char)*p]) p++;
    if (p == name || p >= e || *p != ':') break;   /* obs-fold lands here */
    size_t nlen = (size_t)(p - name);
    p++;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    const char *v = p;
    while (p < e) {
      unsigned char c = (unsigned char)*p;
      if ((c < 0x20 && c != '\t') || c == 0x7f) break;
      p++;
    }
    if (e - p < 2 || p[0] != '\r' || p[1] != '\n') break;   /* bare CR/LF, CTL */
    const char *ve = p;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    p += 2;
    luaL_Buffer b;                           /* the name, in lower case */
    char *d = luaL_buffinitsize(L, &b, nlen);
    for (size_t i = 0; i < nlen; i++) d[i] = (char)lower((unsigned char)name[i]);
    luaL_pushresultsize(&b, nlen);           /* t name */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TNIL) {     /* t name old */
      lua_pop(L, 1);
      lua_pushlstring(L, v, (size_t)(ve - v));
    } else {                                 /* repeated: joined */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);                       /* t */
  }
  lua_pop(L, 1);
  return 0;
}


/* Request line: METHOD SP target SP HTTP/d.d CRLF.  Pushes method,
** target, version ("1.1") and returns the bytes it took, or 0. */
static size_t request_line(lua_State *L, const char *p, const char *e) {
  const char *s = p;
  while (p < e && *p >= 'A' && *p <= 'Z') p++;
  if (p == s || p >= e || *p != ' ') return 0;
  const char *t = ++p;
  while (p < e && (unsigned char)*p > 0x20 && *p != 0x7f) p++;
  if (p == t || e - p < 11 || *p != ' ' || memcmp(p + 1, "HTTP/", 5) != 0)
    return 0;
  const char *ver = p + 6;
  if (ver[0] < '0' || ver[0] > '9' || ver[1] != '.' || ver[2] < '0' ||
      ver[2] > '9' || ver[3] != '\r' || ver[4] != '\n')
    return 0;
  lua_pushlstring(L, s, (size_t)(t - 1 - s));
  lua_pushlstring(L, t, (size_t)(p - t));
  lua_pushlstring(L, ver, 3);
  return (size_t)(ver + 5 - s);
}


/* Status line: HTTP/1.1 SP ddd [SP reason] CRLF.  Returns the status
** and sets *used, or -1. */
static int status_line(const char *p, const char *e, size_t *used) {
  const char *s = p;
  if (e - p < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0) return -1;
  p += 9;
  int st = 0;
  for (int i = 0; i < 3; i++, p++) {
    if (*p < '0' || *p > '9') return -1;
    st = st * 10 + (*p - '0');
  }
  if (*p == ' ') {
    while (p < e && *p != '\r' && *p != '\n') p++;
  }
  if (e - p < 2 || p[0] != '\r' || p[1] != '\n') return -1;
  *used = (size_t)(p + 2 - s);
  return st;
}


static int l_parse_head(lua_State *L) {
  size_t n, used;
  const char *p = luaL_checklstring(L, 1, &n);
  const char *e = p + n;
  if (lua_toboolean(L, 2)) {
    used = request_line(L, p, e);
    if (used == 0) {
      lua_pushnil(L);
      lua_pushliteral(L, "malformed request line");
      return 2;
    }
    if (!push_fields(L, p + used, e)) {
      lua_pushnil(L);
      lua_pushliteral(L, "malformed header line");
      return 2;
    }
    return 4;
  }
  int st = status_line(p, e, &used);
  if (st < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "not an HTTP/1.1 response");
    return 2;
  }
  if (!push_fields(L, p + used, e)) {
    lua_pushnil(L);
    lua_pushliteral(L, "malformed header line");
    lua_pushinteger(L, st);
    return 3;
  }
  lua_pushinteger(L, st);
  lua_insert(L, -2);
  return 2;
}

/* }==================================================================== */


/* {====================================================================
** The upgrade's fields
** ===================================================================== */

/* Whether the list p[0..n) (tokens between commas and whitespace) holds
** tok (lower case), compared case-insensitively. */
static int has_token(const char *p, size_t n, const char *tok, size_t tlen) {
  const char *e = p + n;
  while (p < e) {
    while (p < e && (*p == ',' || *p == ' ' || *p == '\t')) p++;
    const char *s = p;
    while (p < e && *p != ',' && *p != ' ' && *p != '\t') p++;
    if ((size_t)(p - s) == tlen) {
      size_t i = 0;
      while (i < tlen && lower((unsigned char)s[i]) == (unsigned char)tok[i])
        i++;
      if (i == tlen) return 1;
    }
  }
  return 0;
}


/* A field's value at idx, or NULL (absent, or not a string). */
static const char *field(lua_State *L, int idx, size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING) { *len = 0; return NULL; }
  return lua_tolstring(L, idx, len);
}


/* Sec-WebSocket-Key: base64 of exactly 16 bytes (section 4.2.1 item 5):
** 22 base64 characters and "=="; the 22nd carries only 2 bits, so its
** low 4 must be 0 (A, Q, g, w), else it is not the encoding of 16 bytes. */
static int key_ok(const char *k, size_t len) {
  unsigned char raw[24];
  return k != NULL && len == 24 && k[22] == '=' && k[23] == '='
    && strchr("AQgw", k[21]) != NULL && k[21] != '\0'
    && EVP_DecodeBlock(raw, (const unsigned char *)k, 24) == 18;
}


static int refuse(lua_State *L, int status, const char *detail) {
  lua_pushinteger(L, status);
  lua_pushstring(L, detail);
  return 2;
}


static int l_check_upgrade(lua_State *L) {
  tls__ossl_load(L);          /* EVP, RAND: OpenSSL */
  size_t len;
  const char *s = field(L, 1, &len);
  if (s == NULL || len != 3 || memcmp(s, "GET", 3) != 0)
    return refuse(L, 400, "method must be GET");
  s = field(L, 2, &len);
  if (s == NULL || !((len == 3 && memcmp(s, "1.1", 3) == 0) ||
                     (len == 8 && memcmp(s, "HTTP/1.1", 8) == 0)))
    return refuse(L, 400, "HTTP/1.1 required");
  s = field(L, 3, &len);
  if (s == NULL || !has_token(s, len, "websocket", 9))
    return refuse(L, 400, "no 'Upgrade: websocket'");
  s = field(L, 4, &len);
  if (s == NULL || !has_token(s, len, "upgrade", 7))
    return refuse(L, 400, "no 'Connection: Upgrade'");
  s = field(L, 5, &len);
  if (s == NULL || len != 2 || s[0] != '1' || s[1] != '3')
    return refuse(L, 426, "Sec-WebSocket-Version 13 required");
  s = field(L, 6, &len);
  if (!key_ok(s, len)) return refuse(L, 400, "bad Sec-WebSocket-Key");
  return 0;
}


static int l_has_token(lua_State *L) {
  size_t len, tlen;
  const char *s = field(L, 1, &len);
  const char *t = luaL_checklstring(L, 2, &tlen);
  lua_pushboolean(L, s != NULL && has_token(s, len, t, tlen));
  return 1;
}


static int l_key_ok(lua_State *L) {
  tls__ossl_load(L);          /* EVP, RAND: OpenSSL */
  size_t len;
  const char *k = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, key_ok(k, len));
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Keys and the 101
** ===================================================================== */

/* EVP_sha1() makes EVP_DigestInit fetch the implementation by name on
** every call in OpenSSL 3 (a property lookup that cost as much as the
** hash): fetch it once, for the process. */
static const EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void) {
  sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
}


/* b64 = base64(SHA-1(key .. GUID)): 28 bytes, or -1. */
static int accept_value(const char *key, size_t klen, char b64[29]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  pthread_once(&sha1_once, sha1_fetch);
  const EVP_MD *type = sha1_md ? sha1_md : EVP_sha1();
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx != NULL
    && EVP_DigestInit_ex(ctx, type, NULL) == 1
    && EVP_DigestUpdate(ctx, key, klen) == 1
    && EVP_DigestUpdate(ctx, WS_GUID, GUID_LEN) == 1
    && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
  EVP_MD_CTX_free(ctx);
  if (!ok) return -1;
  return EVP_EncodeBlock((unsigned char *)b64, md, 20);
}


/* accept_key(key) -> base64(SHA-1(key .. GUID)), section 4.2.2 */
static int l_accept_key(lua_State *L) {
  tls__ossl_load(L);          /* EVP, RAND: OpenSSL */
  size_t klen;
  const char *key = luaL_checklstring(L, 1, &klen);
  char b64[29];
  int n = accept_value(key, klen, b64);
  if (n < 0) return luaL_error(L, "SHA-1 failed");
  lua_pushlstring(L, b64, (size_t)n);
  return 1;
}


/* random_key() -> base64 of 16 random bytes (Sec-WebSocket-Key) */
static int l_random_key(lua_State *L) {
  tls__ossl_load(L);          /* EVP, RAND: OpenSSL */
  unsigned char raw[16], b64[25];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return luaL_error(L, "no random bytes");
  int n = EVP_EncodeBlock(b64, raw, sizeof raw);
  lua_pushlstring(L, (const char *)b64, (size_t)n);
  return 1;
}


#define HEAD_101 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" \
  "Connection: Upgrade\r\nSec-WebSocket-Accept: "

/* response(key, protocol, extra) -> the 101 head in one string.  The
** caller checked protocol (a token) and extra (whole header lines). */
static int l_response(lua_State *L) {
  tls__ossl_load(L);          /* EVP, RAND: OpenSSL */
  size_t klen, plen = 0, xlen = 0;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *proto = luaL_optlstring(L, 2, NULL, &plen);
  const char *extra = luaL_optlstring(L, 3, NULL, &xlen);
  char b64[29];
  int n = accept_value(key, klen, b64);
  if (n < 0) return luaL_error(L, "SHA-1 failed");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, HEAD_101, sizeof HEAD_101 - 1);
  luaL_addlstring(&b, b64, (size_t)n);
  luaL_addlstring(&b, "\r\n", 2);
  if (proto) {
    luaL_addlstring(&b, "Sec-WebSocket-Protocol: ", 24);
    luaL_addlstring(&b, proto, plen);
    luaL_addlstring(&b, "\r\n", 2);
  }
  if (extra) luaL_addlstring(&b, extra, xlen);
  luaL_addlstring(&b, "\r\n", 2);
  luaL_pushresult(&b);
  return 1;
}

/* }==================================================================== */


void corio__ws_handshake_funcs(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"parse_head", l_parse_head},
    {"check_upgrade", l_check_upgrade},
    {"has_token", l_has_token},
    {"response", l_response},
    {"accept_key", l_accept_key},
    {"random_key", l_random_key},
    {"key_ok", l_key_ok},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}
