/*
** fuzz_http.c -- libFuzzer target for corio.http's C half
** (bindings/http/head.c, inflate.c): the strict guard in front of
** libhttp-parser for heads and chunked bodies, and the inflater, driven
** through a bare Lua state.
**
** Checked: no crash or sanitizer report on any input; a head, as a
** request and as a response, is either accepted (lists of lowercase
** names and of values of one length; a request has a known framing) or
** refused with 400/431/501/505; an accepted head holds no bare LF; a
** parser that read other heads before (one per connection) answers as a
** fresh one does; Parser:next (the server's fast path) and fields()
** agree with Parser:request; a chunked body, read by the parser of its response's
** head, decodes to the same bytes, end and verdict whether it
** comes in one piece or split at any point, never to more bytes than it
** has, and an accepted body holds no bare LF.
**
**   make fuzz               (every target, FUZZ_TIME=60 seconds each)
*/
#define _GNU_SOURCE   /* memmem */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_corio__http(lua_State *L);

/* The server's keep-alive loop (serve.c) runs on corio.net Streams, which
** this target does not link: the module gets a function that refuses. */
int corio__http_serve(lua_State *L);
int corio__http_serve(lua_State *L) { return luaL_error(L, "no serve loop in the fuzzer"); }
void corio__http_deadline_methods(lua_State *L);
void corio__http_deadline_methods(lua_State *L) { (void)L; }
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* Stack slots set up once: 1 the module, 2 and 3 a request and a response
** parser that live across inputs, as a connection's parser does. */
enum { MOD = 1, KEEP_REQ = 2, KEEP_RES = 3 };

/* pushes a fresh parser of kind */
static void new_parser(const char *kind) {
  lua_getfield(L, MOD, "parser");
  lua_pushstring(L, kind);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
}

/* parser at index p reads s as a head: pushes nres results */
static void parse(int p, const char *kind, const char *s, size_t n) {
  int req = kind[2] == 'q';
  lua_getfield(L, p, req ? "request" : "response");
  lua_pushvalue(L, p);
  lua_pushlstring(L, s, n);
  lua_pushinteger(L, 20);
  if (lua_pcall(L, 3, req ? 9 : 5, 0) != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); abort(); }
}

/* A head is either refused with 400/431/501/505 or accepted with two
** equal-length lists of fields (lowercase names, at most 20), a known
** framing (requests) and no bare LF anywhere; a parser that read other
** heads before gives the same answer as a fresh one. */
static void check_head(const char *s, size_t n, const char *kind) {
  int req = kind[2] == 'q', nres = req ? 9 : 5;
  new_parser(kind);
  int fresh = lua_gettop(L);
  parse(fresh, kind, s, n);
  int r = fresh + 1;                      /* first result */
  parse(req ? KEEP_REQ : KEEP_RES, kind, s, n);
  int k = r + nres;
  if (lua_isnil(L, r) != lua_isnil(L, k)) abort();
  if (lua_isnil(L, r)) {
    lua_Integer st = lua_tointeger(L, r + 1);
    if (st != 400 && st != 431 && st != 501 && st != 505) abort();
    if (!lua_rawequal(L, r + 1, k + 1)) abort();
  } else {
    for (int i = 0; i < 3; i++)
      if (!lua_rawequal(L, r + i, k + i)) abort();
    if (!lua_istable(L, r + 3) || !lua_istable(L, r + 4)) abort();
    lua_Integer len = (lua_Integer)lua_rawlen(L, r + 3);
    if (len != (lua_Integer)lua_rawlen(L, r + 4) || len > 20) abort();
    if (len != (lua_Integer)lua_rawlen(L, k + 3)) abort();
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, r + 3, i);
      size_t m;
      const char *name = lua_tolstring(L, -1, &m);
      for (size_t j = 0; j < m; j++)
        if (name[j] >= 'A' && name[j] <= 'Z') abort();
      lua_pop(L, 1);
    }
    if (req) {
      const char *fr = lua_tostring(L, r + 5);
      if (!fr || (strcmp(fr, "length") && strcmp(fr, "chunked") && strcmp(fr, "none"))) abort();
      if (lua_tointeger(L, r + 6) < 0) abort();
    }
    for (size_t j = 0; j < n; j++)      /* accepted: every LF after a CR */
      if (s[j] == '\n' && (j == 0 || s[j - 1] != '\r')) abort();
  }
  lua_settop(L, fresh - 1);
}

/* Parser:next on the same block behind two bytes of an earlier message
** (the server's fast path): when the block's first blank line is its end,
** the same verdict and values as Parser:request, the position after the
** block, and fields() giving request's names and values. */
static void check_next(const char *s, size_t n) {
  const char *e = memmem(s, n, "\r\n\r\n", 4);
  if (!e || (size_t)(e - s) + 4 != n) return;
  lua_getfield(L, 1, "parser");
  lua_pushstring(L, "request");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
  int p = lua_gettop(L);
  lua_getfield(L, p, "request");
  lua_pushvalue(L, p);
  lua_pushlstring(L, s, n);
  lua_pushinteger(L, 20);
  if (lua_pcall(L, 3, 9, 0) != LUA_OK) abort();
  int r = p + 1;                          /* method, target, minor, names, values, kind, n, keep */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, "xx", 2);
  luaL_addlstring(&b, s, n);
  luaL_pushresult(&b);
  int buf = lua_gettop(L);
  lua_getfield(L, p, "next");
  lua_pushvalue(L, p);
  lua_pushvalue(L, buf);
  lua_pushinteger(L, 3);
  lua_pushinteger(L, 20);
  lua_pushinteger(L, 1 << 20);
  if (lua_pcall(L, 5, 9, 0) != LUA_OK) abort();
  int x = buf + 1;                        /* method, target, minor, kind, n, keep, expect, next, from */
  if (lua_isnil(L, r) != lua_isnil(L, x)) abort();
  if (lua_isnil(L, r)) {
    if (!lua_rawequal(L, r + 1, x + 1)) abort();          /* same status */
  } else {
    if (!lua_rawequal(L, r, x) || !lua_rawequal(L, r + 1, x + 1) || !lua_rawequal(L, r + 2, x + 2) ||
        !lua_rawequal(L, r + 5, x + 3) || !lua_rawequal(L, r + 6, x + 4) ||
        !lua_rawequal(L, r + 7, x + 5)) abort();
    if (lua_tointeger(L, x + 7) != (lua_Integer)n + 3) abort();
    lua_getfield(L, 1, "fields");
    lua_pushvalue(L, buf);
    lua_pushvalue(L, x + 8);
    lua_pushvalue(L, x + 7);
    if (lua_pcall(L, 3, 2, 0) != LUA_OK) abort();
    int f = lua_gettop(L) - 1;
    lua_Integer nf = (lua_Integer)lua_rawlen(L, r + 3);
    if ((lua_Integer)lua_rawlen(L, f) != nf || (lua_Integer)lua_rawlen(L, f + 1) != nf) abort();
    for (lua_Integer i = 1; i <= nf; i++) {
      lua_rawgeti(L, r + 3, i);
      lua_rawgeti(L, f, i);
      lua_rawgeti(L, r + 4, i);
      lua_rawgeti(L, f + 1, i);
      if (!lua_rawequal(L, -4, -3) || !lua_rawequal(L, -2, -1)) abort();
      lua_pop(L, 4);
    }
  }
  lua_settop(L, KEEP_RES);   /* the kept parsers stay for the next input */
}

/* Parser:response_at (the client's reading) against Parser:response on
** the block that ends at the first blank line: the same verdict and
** values, next after the block; false while no blank line is buffered,
** also when the bytes come in two reads (the search resumes where the
** first one stopped); and the summary agrees with the fields. */
static size_t first_blank_line_end(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\n') continue;
    if (i + 1 < n && s[i + 1] == '\n') return i + 2;
    if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

static int response_at(int p, const char *s, size_t n, lua_Integer scanned) {
  lua_getfield(L, p, "response_at");
  lua_pushvalue(L, p);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, "xx", 2);
  luaL_addlstring(&b, s, n);
  luaL_pushresult(&b);
  lua_pushinteger(L, 3);
  lua_pushinteger(L, 1 << 20);
  lua_pushinteger(L, 20);
  lua_pushboolean(L, 0);
  lua_pushinteger(L, scanned);
  if (lua_pcall(L, 7, 11, 0) != LUA_OK) abort();
  return lua_gettop(L) - 10;
}

static void check_response_at(const char *s, size_t n, size_t cut) {
  size_t e = first_blank_line_end(s, n);
  new_parser("response");
  int p = lua_gettop(L);
  lua_Integer scanned = 0;
  if (cut < n) {                          /* a first read of cut bytes */
    size_t e1 = first_blank_line_end(s, cut);
    int a = response_at(p, s, cut, 0);
    if (e1 == 0 && !(lua_isboolean(L, a) && !lua_toboolean(L, a))) abort();
    if (e1 != 0 && lua_isboolean(L, a)) abort();
    if (e1 == 0) scanned = (lua_Integer)cut;   /* searched: the next read resumes */
    lua_settop(L, p);
  }
  int x = response_at(p, s, n, scanned);
  if (e == 0) {
    if (!lua_isboolean(L, x) || lua_toboolean(L, x)) abort();
    lua_settop(L, KEEP_RES);
    return;
  }
  parse(p, "response", s, e);
  int r = lua_gettop(L) - 4;              /* status, reason, minor, names, values */
  if (lua_isnil(L, r) != lua_isnil(L, x)) abort();
  if (lua_isnil(L, r)) {
    if (!lua_rawequal(L, r + 1, x + 1)) abort();
  } else {
    if (lua_tointeger(L, x) != (lua_Integer)e + 3) abort();
    for (int i = 0; i < 3; i++)
      if (!lua_rawequal(L, r + i, x + 1 + i)) abort();
    lua_Integer nf = (lua_Integer)lua_rawlen(L, r + 3), ncl = 0;
    if ((lua_Integer)lua_rawlen(L, x + 4) != nf) abort();
    const char *clv = NULL;
    int te = 0;
    for (lua_Integer i = 1; i <= nf; i++) {
      lua_rawgeti(L, r + 3, i);
      lua_rawgeti(L, x + 4, i);
      lua_rawgeti(L, r + 4, i);
      lua_rawgeti(L, x + 5, i);
      if (!lua_rawequal(L, -4, -3) || !lua_rawequal(L, -2, -1)) abort();
      const char *name = lua_tostring(L, -4);
      if (strcmp(name, "content-length") == 0) { ncl++; clv = lua_tostring(L, -2); }
      if (strcmp(name, "transfer-encoding") == 0) te = 1;
      lua_pop(L, 4);
    }
    if (lua_toboolean(L, x + 7) != te) abort();
    if (!lua_isnil(L, x + 6)) {           /* length: one plain Content-Length */
      if (ncl != 1 || te || !clv || strlen(clv) > 15) abort();
      for (const char *c = clv; *c; c++) if (*c < '0' || *c > '9') abort();
      if (lua_tointeger(L, x + 6) != (lua_Integer)strtoll(clv, NULL, 10)) abort();
    }
  }
  lua_settop(L, KEEP_RES);
}

static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
      || (c && strchr("!#$%&'*+-.^_`|~", c));
}
static int is_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* A reference decoder written straight from RFC 9112 section 7.1, strict
** (CRLF only, "name: value" trailers), without limits and without speed:
** 1 complete (*used bytes), 0 needs more, -1 malformed.  Used as the
** oracle for what the guard and the parser accept together. */
static int ref_chunked(const char *s, size_t n, size_t *used, luaL_Buffer *out) {
  size_t i = 0;
#define NEED(k) do { if (i + (k) > n) return 0; } while (0)
  for (;;) {
    uint64_t size = 0;
    int digits = 0;
    while (i < n && isxdigit((unsigned char)s[i])) {
      int c = (unsigned char)s[i++];
      size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
      if (++digits > 15) return -1;
    }
    NEED(1);
    if (!digits) return -1;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    NEED(1);
    if (s[i] == ';') while (i < n && is_vchar((unsigned char)s[i])) i++;
    NEED(1);
    if (s[i] != '\r') return -1;
    i++; NEED(1);
    if (s[i++] != '\n') return -1;
    if (size == 0) break;
    if (n - i < size) return 0;
    luaL_addlstring(out, s + i, (size_t)size);
    i += (size_t)size;
    NEED(1);
    if (s[i++] != '\r') return -1;
    NEED(1);
    if (s[i++] != '\n') return -1;
  }
  for (;;) {               /* trailer fields, then the empty line */
    NEED(1);
    if (s[i] == '\r') {
      i++; NEED(1);
      if (s[i++] != '\n') return -1;
      *used = i;
      return 1;
    }
    if (!is_tchar((unsigned char)s[i])) return -1;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    NEED(1);
    if (s[i++] != ':') return -1;
    while (i < n && is_vchar((unsigned char)s[i])) i++;
    NEED(1);
    if (s[i++] != '\r') return -1;
    NEED(1);
    if (s[i++] != '\n') return -1;
  }
#undef NEED
}

/* decode s[0..n) as a chunked body given in pieces split at `cut`;
** pushes a result string "ok:<done>:<used>:<data>" or "err:<status>" */
static void decode_chunked(const char *s, size_t n, size_t cut) {
  static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  /* the parser that read a chunked response's head goes on with its body */
  new_parser("response");
  int dec = lua_gettop(L);
  parse(dec, "response", head, sizeof head - 1);
  if (lua_isnil(L, -5)) abort();
  lua_settop(L, dec);
  luaL_Buffer out;
  luaL_buffinit(L, &out);
  size_t used = 0, from = 0;
  int done = 0, err = 0;
  size_t parts[2] = { cut, n };
  for (int i = 0; i < 2 && !done && !err; i++) {
    /* the reader keeps unconsumed bytes: everything from `used` on */
    lua_getfield(L, dec, "chunk");
    lua_pushvalue(L, dec);
    lua_pushlstring(L, s + from, parts[i] - from);
    lua_pushinteger(L, (lua_Integer)(used - from) + 1);
    if (lua_pcall(L, 3, 3, 0) != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); abort(); }
    if (lua_isnil(L, -3)) {
      err = (int)lua_tointeger(L, -2);
      if (err != 400 && err != 431) abort();
      lua_pop(L, 3);
      break;
    }
    size_t dl;
    const char *d = lua_tolstring(L, -3, &dl);
    lua_Integer pos = lua_tointeger(L, -2);
    done = lua_toboolean(L, -1);
    lua_pushlstring(L, d, dl);            /* keep it past the pop */
    lua_replace(L, -4);
    lua_pop(L, 2);
    luaL_addvalue(&out);
    if (pos < 1 || (size_t)pos - 1 > parts[i] - from) abort();
    used = from + (size_t)pos - 1;
    if (!done && used != parts[i]) abort();   /* all taken until the end */
    from = used;
  }
  luaL_pushresult(&out);
  size_t dl;
  (void)lua_tolstring(L, -1, &dl);
  if (dl > n) abort();
  if (!err) {             /* what was accepted is what a strict reader takes */
    size_t rused = 0;
    luaL_Buffer rb;
    luaL_buffinit(L, &rb);
    int rv = ref_chunked(s, n, &rused, &rb);
    luaL_pushresult(&rb);
    if (done && (rv != 1 || rused != used || !lua_rawequal(L, -1, -2))) abort();
    if (!done && rv != 0) abort();
    lua_pop(L, 1);
  }
  if (err) {                /* what came before the error does not count */
    lua_pop(L, 1);
    lua_pushfstring(L, "err:%d", err);
  } else {
    lua_pushfstring(L, "ok:%d:%d:", done, (int)used);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  lua_replace(L, dec);
  lua_settop(L, dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "corio._http", luaopen_corio__http, 0);
    new_parser("request");
    new_parser("response");
  }
  const char *s = (const char *)data;
  check_head(s, size, "request");
  check_head(s, size, "response");
  check_next(s, size);
  check_response_at(s, size, size > 0 ? (size_t)data[0] % (size + 1) : 0);
  /* the chunked decoder: one piece vs two, split where byte 0 says:
     the same bytes in the same order, so the same verdict, data and end */
  if (size > 0) {
    decode_chunked(s + 1, size - 1, size - 1);
    decode_chunked(s + 1, size - 1, (size_t)data[0] % size);
    const char *a = lua_tostring(L, -2), *b = lua_tostring(L, -1);
    if (strcmp(a, b) != 0) abort();
    lua_settop(L, KEEP_RES);
  }
  /* the inflater on both kinds: a corrupt stream gives nil and a message
     (out of memory a Lua error), never a crash */
  for (int k = 0; k < 2; k++) {
    lua_getfield(L, 1, "inflater");
    lua_pushstring(L, k ? "deflate" : "gzip");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
    lua_getfield(L, -1, "feed");
    lua_pushvalue(L, -2);
    lua_pushlstring(L, s, size);
    lua_pcall(L, 2, 1, 0);
    lua_pop(L, 2);
  }
  lua_settop(L, KEEP_RES);
  /* free this input's garbage now: libFuzzer counts mallocs against frees
     per input and runs a slow leak scan when they differ */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
