/*
** respond.c -- corio._http: a server response built in one buffer.
**
** The common answer of a handler -- `return status, {map}, "body"` -- goes
** out as one string made here: status line, the handler's fields in name
** order, the framing and Date fields corio adds, the blank line and the
** body, so the response is one write and no Lua table per field.  It
** checks what _http_msg.lua's Headers check (token names; no CR, LF or
** other control byte but HTAB in a value: response splitting), and hands
** anything else back to the Lua path, which raises the same errors as
** before:
**
**   respond(status, reason, map, body, flags) -> bytes, closing (the map's
**       Connection field says close), or nil when the
**       map is not a plain table of string names to string or number
**       values, holds more than MAX_FIELDS fields, or one fails a check,
**       or has a Transfer-Encoding field (send_head's rule decides).
**   flags: R_NOBODY (no body bytes: HEAD, 1xx, 204, 304), R_NOLEN (no
**       Content-Length added: 1xx, 204, 304), R_CLOSE ("Connection:
**       close"), R_KEEP ("Connection: keep-alive", for HTTP/1.0).  With
**       either Connection flag a handler's Connection field is dropped;
**       a handler's Content-Length or Date is kept and not added again.
*/
#include <stdio.h>    /* snprintf */
#include <string.h>   /* memcpy, memcmp */
#include <time.h>     /* time, gmtime_r */
#include <lua.h>
#include <lauxlib.h>
#include "http.h"

#define MAX_FIELDS 64

typedef struct { const char *k, *v; size_t kl, vl; } field;

/* RFC 9110 tchar, as head.c's guard and _http_msg.lua's check_field. */
static int valid_field(const field *f) {
  if (f->kl == 0) return 0;
  for (size_t i = 0; i < f->kl; i++)
    if (!tchar[(unsigned char)f->k[i]]) return 0;
  for (size_t i = 0; i < f->vl; i++) {
    unsigned char c = (unsigned char)f->v[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  return 1;
}

/* Whether a Connection value lists the token "close" (a comma list,
** case-insensitive): the response then ends the connection (RFC 9112,
** 9.6: a server that sends it must close after the response). */
static int has_close(const char *v, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (ieq(v + s, e - s, "close")) return 1;
  }
  return 0;
}

/* Whether a Content-Length value is exactly the decimal n. */
static int is_length(const char *v, size_t vl, size_t n) {
  if (vl == 0 || vl > 15) return 0;
  size_t x = 0;
  for (size_t i = 0; i < vl; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    x = x * 10 + (size_t)(v[i] - '0');
  }
  return x == n;
}

/* Byte order, as Lua compares the names in the C locale. */
static int before(const field *a, const field *b) {
  size_t n = a->kl < b->kl ? a->kl : b->kl;
  int c = memcmp(a->k, b->k, n);
  return c < 0 || (c == 0 && a->kl < b->kl);
}

/* The Date field's value, formatted once a second per thread (runtimes
** may share a process).  Day and month names are fixed: no locale. */
static const char *http_date(void) {
  static _Thread_local time_t at = (time_t)-1;
  static _Thread_local char out[128];   /* room for any int snprintf may see */
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  time_t now = time(NULL);
  if (now != at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, sizeof out, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday,
             tm.tm_mday, months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    at = now;
  }
  return out;
}

/* Decimal digits of v at the end of buf[32]; returns where they start. */
static char *digits(char *end, size_t v) {
  do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
  return end;
}

static char *put(char *d, const char *s, size_t n) {
  memcpy(d, s, n);
  return d + n;
}

#define PUTLIT(d, lit) put((d), (lit), sizeof(lit) - 1)

/* Collects the map at mi into f; -1 when the Lua path must take it.
** Number values are converted on the stack, where they stay (and keep
** their strings alive) until the result is pushed. */
static int collect(lua_State *L, int mi, field *f) {
  int n = 0;
  if (lua_isnil(L, mi)) return 0;
  if (!lua_istable(L, mi) || lua_getmetatable(L, mi)) return -1;
  lua_pushnil(L);
  while (lua_next(L, mi)) {                  /* stack: ..., key, value */
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || n == MAX_FIELDS ||
        (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
      lua_pop(L, 2);
      return -1;
    }
    f[n].k = lua_tolstring(L, -2, &f[n].kl);
    f[n].v = lua_tolstring(L, -1, &f[n].vl);  /* a number becomes a string */
    if (!valid_field(&f[n])) { lua_pop(L, 2); return -1; }
    if (vt == LUA_TSTRING) lua_pop(L, 1);
    else lua_rotate(L, -2, 1);              /* keep it below the key */
    n++;
  }
  return n;
}

int corio__http_build(lua_State *L, int mapidx, lua_Integer status, const char *reason,
                      size_t rl, const char *body, size_t bl, int flags, char *out,
                      size_t cap, size_t *outlen, int *closing) {
  field f[MAX_FIELDS];
  int n = collect(L, mapidx, f);
  if (n < 0) return -1;
  *closing = 0;
  for (int i = 1; i < n; i++) {             /* insertion sort: few fields */
    field x = f[i];
    int j = i;
    for (; j > 0 && before(&x, &f[j - 1]); j--) f[j] = f[j - 1];
    f[j] = x;
  }
  int has_cl = 0, has_date = 0, drop_conn = (flags & (R_CLOSE | R_KEEP)) != 0;
  size_t total = 9 + 4 + rl + 2 + 2 + (flags & R_NOBODY ? 0 : bl);
  for (int i = 0; i < n; i++) {
    if (ieq(f[i].k, f[i].kl, "content-length")) {
      /* the handler's own length must be the body's: else the Lua path
         refuses the answer (a client would read the next response as
         part of this one) */
      if (!(flags & R_NOBODY) && !is_length(f[i].v, f[i].vl, bl)) return -1;
      has_cl = 1;
    }
    else if (ieq(f[i].k, f[i].kl, "date")) has_date = 1;
    else if (ieq(f[i].k, f[i].kl, "connection")) {
      if (has_close(f[i].v, f[i].vl)) {     /* the handler's "Connection: close" */
        *closing = 1;
        if (flags & R_KEEP) flags = (flags & ~R_KEEP) | R_CLOSE;   /* 1.0: ours says close */
      }
      if (drop_conn) { f[i].k = NULL; continue; }   /* (unchanged by the line above) */
    }
    else if (ieq(f[i].k, f[i].kl, "transfer-encoding")) {
      return -1;             /* the handler's own framing: the Lua path's rule */
    }
    total += f[i].kl + 2 + f[i].vl + 2;
  }
  char lenbuf[32], *len = lenbuf + sizeof lenbuf;
  size_t ll = 0;
  if (!has_cl && !(flags & R_NOLEN)) {
    len = digits(len, bl);
    ll = (size_t)(lenbuf + sizeof lenbuf - len);
    total += 16 + ll + 2;
  }
  if (flags & R_CLOSE) total += 19;
  if (flags & R_KEEP) total += 24;
  const char *date = has_date ? NULL : http_date();
  size_t dl = date ? strlen(date) : 0;
  if (date) total += 6 + dl + 2;
  luaL_Buffer b;
  char *d0 = total <= cap ? out : luaL_buffinitsize(L, &b, total), *d = d0;
  d = PUTLIT(d, "HTTP/1.1 ");
  *d++ = (char)('0' + status / 100);
  *d++ = (char)('0' + status / 10 % 10);
  *d++ = (char)('0' + status % 10);
  *d++ = ' ';
  d = put(d, reason, rl);
  d = PUTLIT(d, "\r\n");
  for (int i = 0; i < n; i++) {
    if (!f[i].k) continue;
    d = put(d, f[i].k, f[i].kl);
    d = PUTLIT(d, ": ");
    d = put(d, f[i].v, f[i].vl);
    d = PUTLIT(d, "\r\n");
  }
  if (ll) {
    d = PUTLIT(d, "Content-Length: ");
    d = put(d, len, ll);
    d = PUTLIT(d, "\r\n");
  }
  if (flags & R_CLOSE) d = PUTLIT(d, "Connection: close\r\n");
  if (flags & R_KEEP) d = PUTLIT(d, "Connection: keep-alive\r\n");
  if (date) {
    d = PUTLIT(d, "Date: ");
    d = put(d, date, dl);
    d = PUTLIT(d, "\r\n");
  }
  d = PUTLIT(d, "\r\n");
  if (!(flags & R_NOBODY)) d = put(d, body, bl);
  if (d0 == out) { *outlen = (size_t)(d - d0); return 0; }
  luaL_pushresultsize(&b, (size_t)(d - d0));
  return 1;
}

/* build() as respond() and reply() want it: a string or nil pushed;
** *closing: the handler's own Connection field says close. */
static int build(lua_State *L, lua_Integer status, const char *reason, size_t rl,
                 const char *body, size_t bl, int flags, int *closing) {
  if (corio__http_build(L, 3, status, reason, rl, body, bl, flags, NULL, 0, NULL, closing) < 0)
    lua_pushnil(L);
  return 1;
}

int corio__http_respond(lua_State *L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  size_t rl, bl = 0;
  const char *reason = luaL_checklstring(L, 2, &rl);
  const char *body = luaL_optlstring(L, 4, "", &bl);
  lua_Integer flags = luaL_checkinteger(L, 5);
  luaL_argcheck(L, status >= 100 && status <= 999, 1, "status must be 100-999");
  lua_settop(L, 5);
  luaL_checkstack(L, MAX_FIELDS + 4, "respond");
  int closing = 0;
  build(L, status, reason, rl, body, bl, (int)flags, &closing);
  lua_pushboolean(L, closing);
  return 2;
}

#define rawfield(L, t, k) (lua_pushvalue((L), HTTP_KEY(k)), lua_rawget((L), (t)))

/* reply(res, status, map, body, reasons) -> bytes or nil: a server
** handler's `return status, map, body` answered at once, as far as one C
** call can (the Lua path takes anything else, and raises its errors):
** status an integer 100-999, body nil or a string, res (a
** ServerResponse) not started by write_head.  The framing flags come
** from res._req (method, minor) and res._c.keep; reasons maps a status to
** its reason phrase.  On success res is marked sent and finished, and
** the caller writes the bytes. */
int corio__http_reply(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);
  int bt = lua_type(L, 4);
  if (!lua_isinteger(L, 2) || (bt != LUA_TNIL && bt != LUA_TSTRING)) goto lua_path;
  lua_Integer status = lua_tointeger(L, 2);
  if (status < 200 || status > 999) goto lua_path;   /* 1xx: the Lua path refuses it */
  luaL_checkstack(L, MAX_FIELDS + 12, "reply");
  if (rawfield(L, 1, _status) != LUA_TNIL) goto lua_path;     /* 6 */
  if (rawfield(L, 1, _req) != LUA_TTABLE) goto lua_path;      /* 7 */
  if (rawfield(L, 1, _c) != LUA_TTABLE) goto lua_path;        /* 8 */
  rawfield(L, 7, method);                                     /* 9 */
  int head = lua_type(L, 9) == LUA_TSTRING && strcmp(lua_tostring(L, 9), "HEAD") == 0;
  lua_getfield(L, 7, "minor");       /* 10 (made on first use: not raw) */
  lua_Integer minor = lua_tointeger(L, 10);
  rawfield(L, 8, keep);                                       /* 11 */
  int keep = lua_toboolean(L, 11);
  lua_Integer flags = 0;
  if (head || status == 204 || status == 304 || status < 200) flags = head ? R_NOBODY : R_NOBODY | R_NOLEN;
  if (!keep) flags |= R_CLOSE;
  else if (minor == 0) flags |= R_KEEP;
  size_t rl, bl = 0;
  const char *reason = "Unknown";
  rl = 7;
  if (lua_rawgeti(L, 5, status) == LUA_TSTRING) reason = lua_tolstring(L, -1, &rl);  /* 12 */
  const char *body = bt == LUA_TSTRING ? lua_tolstring(L, 4, &bl) : "";
  int closing = 0;
  build(L, status, reason, rl, body, bl, flags, &closing);
  if (lua_isnil(L, -1)) return 1;
  if (closing) {                     /* the connection ends after this one */
    lua_pushvalue(L, HTTP_KEY(keep));
    lua_pushboolean(L, 0);
    lua_rawset(L, 8);
  }
  lua_pushvalue(L, HTTP_KEY(headers_sent));
  lua_pushboolean(L, 1);
  lua_rawset(L, 1);
  lua_pushvalue(L, HTTP_KEY(finished));
  lua_pushboolean(L, 1);
  lua_rawset(L, 1);
  return 1;
lua_path:
  lua_pushnil(L);
  return 1;
}
