/*
** fuzz_marshal.c -- libFuzzer target for the executor's message decoder
** (bindings/executor/marshal.c).
**
** A worker process reads messages from a pipe, so the decoder must treat
** its input as untrusted: any byte string either decodes or raises
** "corrupt executor message", never crashes, reads out of bounds or
** nests without bound.  Each input is decoded as a whole message; when it
** decodes, the values are encoded again (a T_REF may have made a cycle,
** which the encoder refuses -- that is fine) and our own message must
** decode to the same number of values and encode again (its tables
** cannot hold a cycle any more).
**
**   make fuzz                        (FUZZ_TIME seconds per target)
**   build/fuzz_marshal -max_total_time=10 build/fuzz-corpus-marshal
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static lua_State *L;

typedef struct job {
  const char *p;
  size_t len;
  int n;                       /* values decoded */
} job;


static int decode(lua_State *S) {
  job *j = lua_touserdata(S, 1);
  int kind, flags, n;
  const char *v = xdec_header(j->p, j->len, &kind, &flags, &n);
  if (v == NULL) return 0;
  lua_settop(S, 0);
  const char *end = xdec_values(S, v, j->p + j->len, flags, n);
  if (end < v || end > j->p + j->len) abort();  /* read past the end */
  j->n = n;
  return n;
}


/* Encodes the top n values of L; returns 0 and fills b, or -1 if the
** encoder refused them (a cycle) or memory ran out. */
static int encode(int n, xbuf *b) {
  xenc e;
  memset(b, 0, sizeof *b);
  xenc_init(&e, L, b);
  if (xenc_header(&e, 1, n) != 0) return -1;
  int base = lua_gettop(L) - n;
  for (int i = 1; i <= n; i++) {
    if (xenc_value(&e, base + i) != NULL) {
      xenc_finish(&e);
      xbuf_free(b);
      return -1;
    }
  }
  xenc_finish(&e);
  return 0;
}


/* Decodes p[0..len) onto L in a protected call; the number of values, or
** -1 if the message was refused. */
static int decode_top(const char *p, size_t len) {
  job j = { p, len, -1 };
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, &j);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || (!strstr(msg, "corrupt executor message") &&
                        !strstr(msg, "not enough memory") &&
                        !strstr(msg, "too many values") &&
                        !strstr(msg, "nested too deep") &&
                        !strstr(msg, "stack overflow"))) {
      fprintf(stderr, "unexpected decode error: %s\n", msg ? msg : "?");
      abort();
    }
    lua_settop(L, 0);
    return -1;
  }
  if (j.n < 0) {                               /* a malformed header */
    lua_settop(L, 0);
    return -1;
  }
  return j.n;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) L = luaL_newstate();
  lua_settop(L, 0);
  int n = decode_top((const char *)data, size);
  if (n < 0) return 0;
  xbuf b1, b2;
  if (encode(n, &b1) != 0) {
    lua_settop(L, 0);
    return 0;
  }
  lua_settop(L, 0);
  int n2 = decode_top(b1.p, b1.len);
  if (n2 != n) abort();                        /* our own message refused */
  if (encode(n2, &b2) != 0) abort();           /* it had no cycle */
  lua_settop(L, 0);
  xbuf_free(&b1);
  xbuf_free(&b2);
  return 0;
}
