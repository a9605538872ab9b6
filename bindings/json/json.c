/*
** json.c -- corio._cjson: Debian's lua-cjson, linked statically into the
** binary, libcorio.so and corio.so (liblua5.4-cjson.a, see cjson_stderr
** below), opened under corio's own module name so no extra file has to be
** installed.  scripts/json.lua builds corio.json on
** it (json.null, json.array, integers, corio.Error with code JSON).
**
** lua-cjson 2.1.0 passes every number through a double and writes at most
** 14 significant digits, so it mangles integers past 2^53 both ways and
** floats that need 15 to 17 digits.  It stays the parser and the writer;
** the two helpers below only find the numbers it would get wrong:
**   exact(x)  the text a number must be written as, or nil when cjson's
**             own output is already exact and keeps the number's subtype;
**   scan(s)   rewrites the number tokens of a JSON text that cjson would
**             read wrongly into marker strings, which json.lua swaps back
**             for the exact values after cjson.decode.
** The markers carry a per-process random nonce (see json.lua).
*/
#include <errno.h>      /* ERANGE from strtoll */
#include <math.h>       /* isfinite, floor */
#include <stdint.h>     /* uintptr_t */
#include <stdio.h>      /* snprintf */
#include <stdlib.h>     /* strtod, strtoll */
#include <string.h>     /* memcpy */

#include <uv.h>         /* uv_random: the marker nonce */

#include <lua.h>
#include <lauxlib.h>

int luaopen_cjson(lua_State *L);   /* from liblua5.4-cjson */
int luaopen_corio__cjson(lua_State *L);

/* Debian compiles liblua5.4-cjson.a as position-independent executable
** code, not -fPIC: it reaches glibc's `stderr` PC-relative, through a copy
** relocation only an executable can have, so a shared object cannot link
** it as it is.  The Makefile links a copy of the archive with that one
** symbol renamed to this pointer, local to our object, set before cjson's
** first use (its fatal-error messages print there). */
__attribute__((visibility("hidden"))) FILE *corio__cjson_stderr;

/* cjson writes %.14g: integers below 10^14 in magnitude come out exact */
#define CJSON_EXACT_INT 100000000000000LL

/* Writes the shortest %.Ng (N = 14..17) that reads back as x; returns the
** length.  For a whole value without an exponent it appends ".0", so the
** text reads back as a float (as Python's repr does). */
static int fmt_float(char *buf, size_t size, double x) {
  int n = 0, p;
  for (p = 14; p <= 17; p++) {
    n = snprintf(buf, size, "%.*g", p, x);
    if (strtod(buf, NULL) == x) break;
  }
  if (strpbrk(buf, ".e") == NULL && (size_t)n + 2 < size) {
    memcpy(buf + n, ".0", 3);
    n += 2;
  }
  return n;
}

/* exact(x) -> string | nil */
static int json_exact(lua_State *L) {
  char buf[64];
  luaL_checktype(L, 1, LUA_TNUMBER);
  if (lua_isinteger(L, 1)) {
    lua_Integer i = lua_tointeger(L, 1);
    if (i < CJSON_EXACT_INT && i > -CJSON_EXACT_INT) return 0;
    lua_pushfstring(L, "%I", (LUAI_UACINT)i);
    return 1;
  } else {
    double x = lua_tonumber(L, 1);
    int n;
    if (!isfinite(x)) return 0;    /* cjson refuses it: its error stands */
    snprintf(buf, sizeof buf, "%.14g", x);
    /* cjson's text is exact when %.14g reads back and still reads as a
    ** float (has a '.' or an exponent; "3" or "-0" would come back as
    ** integers) */
    if (strtod(buf, NULL) == x && strpbrk(buf, ".e") != NULL) return 0;
    n = fmt_float(buf, sizeof buf, x);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
  }
}


/*
** {======================================================
** scan: the number tokens cjson.decode would get wrong
** =======================================================
*/

typedef struct scan_s {
  lua_State *L;
  luaL_Buffer b;
  const char *nonce;
  size_t nonce_len;
  const char *copied;      /* input copied to the buffer up to here */
  int n;                   /* markers written */
} scan_t;

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Length of a strict JSON number token at p (RFC 8259:
** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), 0 if there is none;
** *isint tells whether it has no fraction and no exponent. */
static size_t number_len(const char *p, const char *end, int *isint) {
  const char *q = p;
  *isint = 1;
  if (q < end && *q == '-') q++;
  if (q >= end || !is_digit(*q)) return 0;
  if (*q == '0') q++;
  else while (q < end && is_digit(*q)) q++;
  if (q < end && *q == '.') {
    *isint = 0;
    q++;
    if (q >= end || !is_digit(*q)) return 0;
    while (q < end && is_digit(*q)) q++;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    *isint = 0;
    q++;
    if (q < end && (*q == '+' || *q == '-')) q++;
    if (q >= end || !is_digit(*q)) return 0;
    while (q < end && is_digit(*q)) q++;
  }
  return (size_t)(q - p);
}

/* The exact value of a token cjson would read wrongly, pushed; returns 0
** (nothing pushed) when cjson reads it right.  Integer tokens of up to
** 15 digits are exact in a double (json.lua turns them into integers);
** longer ones that fit int64 are read here; past int64 they are floats,
** as in Python and JavaScript.  A token with a fraction or an exponent
** whose value is whole must stay a float (json.lua would make it an
** integer). */
static int exact_value(lua_State *L, const char *p, size_t len, int isint) {
  char tok[400];
  if (isint) {
    long long v;
    size_t digits = len - (*p == '-');
    if (digits <= 15 || len >= sizeof tok) return 0;
    memcpy(tok, p, len);
    tok[len] = '\0';
    errno = 0;
    v = strtoll(tok, NULL, 10);
    if (errno == ERANGE) return 0;
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
  } else {
    double x;
    if (len >= sizeof tok) return 0;   /* cjson's own verdict */
    memcpy(tok, p, len);
    tok[len] = '\0';
    x = strtod(tok, NULL);
    if (!isfinite(x) || x != floor(x)) return 0;
    lua_pushnumber(L, (lua_Number)x);
    return 1;
  }
}

/* scan(s, nonce, values) -> s2 | nil: s2 is s with the number tokens
** cjson would read wrongly replaced by "\u0000<nonce><i>" strings, values[i]
** their exact values; nil when there are none (the common case). */
static int json_scan(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *p = s, *end = s + len;
  scan_t S;
  S.L = L;
  S.nonce = luaL_checklstring(L, 2, &S.nonce_len);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  S.copied = NULL;
  S.n = 0;
  while (p < end) {
    int c = (unsigned char)*p;
    if (c == '"') {                       /* skip a string */
      p++;
      while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) p++;
        p++;
      }
      if (p < end) p++;
    } else if (c == '-' || is_digit(c)) {
      int isint;
      size_t n = number_len(p, end, &isint);
      const char *q = p + n, *r;
      if (n == 0) { p++; continue; }
      /* only a whole token in value position: what follows is a
      ** delimiter, and not ':' (a number used as a key is cjson's error) */
      r = q;
      while (r < end && (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')) r++;
      if ((q == end || strchr(" \t\r\n,]}", *q) != NULL) && (r == end || *r != ':')
          && exact_value(L, p, n, isint)) {
        /* store the value (on top) before the buffer takes stack slots */
        S.n++;
        lua_rawseti(L, 3, S.n);
        if (S.copied == NULL) {
          luaL_buffinit(L, &S.b);
          S.copied = s;
        }
        luaL_addlstring(&S.b, S.copied, (size_t)(p - S.copied));
        {
          char idx[24];
          int k = snprintf(idx, sizeof idx, "%d", S.n);
          luaL_addstring(&S.b, "\"\\u0000");
          luaL_addlstring(&S.b, S.nonce, S.nonce_len);
          luaL_addlstring(&S.b, idx, (size_t)k);
          luaL_addchar(&S.b, '"');
        }
        S.copied = q;
      }
      p = q;
    } else {
      p++;
    }
  }
  if (S.copied == NULL) return 0;
  luaL_addlstring(&S.b, S.copied, (size_t)(end - S.copied));
  luaL_pushresult(&S.b);
  return 1;
}

/* }====================================================== */


/* nonce() -> 16 random hex digits (the marker nonce) */
static int json_nonce(lua_State *L) {
  unsigned char r[8];
  char hex[17];
  int i;
  if (uv_random(NULL, NULL, r, sizeof r, 0, NULL) != 0) {
    uintptr_t a = (uintptr_t)&r ^ (uintptr_t)uv_hrtime();   /* fallback */
    memcpy(r, &a, sizeof r < sizeof a ? sizeof r : sizeof a);
  }
  for (i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", r[i]);
  lua_pushlstring(L, hex, 16);
  return 1;
}

int luaopen_corio__cjson(lua_State *L) {
  corio__cjson_stderr = stderr;
  luaopen_cjson(L);                                 /* cjson */
  lua_pushcfunction(L, json_exact);
  lua_setfield(L, -2, "exact");
  lua_pushcfunction(L, json_scan);
  lua_setfield(L, -2, "scan");
  lua_pushcfunction(L, json_nonce);
  lua_setfield(L, -2, "nonce");
  return 1;
}
