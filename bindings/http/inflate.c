/*
** inflate.c -- gzip/deflate response bodies for corio.http, on zlib.
** An Inflater is fed compressed chunks and returns what they decode to;
** it holds no runtime state, so it runs in the reading task without
** ever calling back into Lua.
**
**   _http.inflater("gzip" | "deflate") -> Inflater
**   inf:feed(data [, max]) -> out, used   inf:finish() -> string
**
** feed decodes at most `max` bytes (64 KiB) per call: a compression bomb
** (a megabyte that inflates to a gigabyte) never becomes one huge string,
** and the reader can stop at its limit.  `used` is how much of data was
** consumed; what is left, the caller feeds again (an empty data drains
** what zlib still holds).  Gzip members one after another decode as one
** body (as gunzip does); other bytes after the end are an error.
**
** A truncated or corrupt stream is the peer's fault, not a bug: feed and
** finish return nil plus a message, and corio._http_body raises it as
** HTTP_PROTOCOL (only running out of memory raises here).
*/
#include <string.h>
#include <zlib.h>
#include <lua.h>
#include <lauxlib.h>
#include "http.h"

#define INFLATER "corio.http.Inflater"

typedef struct {
  z_stream z;
  int open;      /* inflateInit2 done, inflateEnd pending */
  int ended;     /* Z_STREAM_END seen */
  int gzip;
  int sniffed;   /* deflate: zlib wrapper or raw, decided on byte 1 */
} inflater;

static inflater *check(lua_State *L) {
  return luaL_checkudata(L, 1, INFLATER);
}

/* nil, "corrupt gzip body (zlib's reason)"; the output gathered so far
** is dropped (the caller raises) */
static int zfail(lua_State *L, inflater *in) {
  luaL_pushfail(L);
  lua_pushfstring(L, "corrupt %s body (%s)", in->gzip ? "gzip" : "deflate",
                  in->z.msg ? in->z.msg : "invalid data");
  return 2;
}

/* Many servers send "deflate" as a raw stream without the zlib header
** (RFC 9110 says zlib): a zlib header has CM = 8 and CINFO <= 7 in its
** first byte and makes, with the second, a multiple of 31 (RFC 1950); a
** raw stream's first byte can have CM's bits too (a stored block's
** padding), so both bytes decide when both are there. */
static int start(lua_State *L, inflater *in, const unsigned char *p, size_t n) {
  if (in->open) return 0;
  int bits = 15 + 16;
  if (!in->gzip) {
    if (n == 0) return -1;
    int zlib = (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 &&
               (n < 2 || ((unsigned)p[0] << 8 | p[1]) % 31 == 0);
    bits = zlib ? 15 : -15;
  }
  memset(&in->z, 0, sizeof in->z);
  if (inflateInit2(&in->z, bits) != Z_OK) return luaL_error(L, "zlib: out of memory");
  in->open = 1;
  return 0;
}

#define FEED_MAX 65536

static int l_feed(lua_State *L) {
  inflater *in = check(L);
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 2, &n);
  lua_Integer max = luaL_optinteger(L, 3, FEED_MAX);
  luaL_argcheck(L, max > 0, 3, "must be positive");
  if (in->ended && n > 0) {
    /* another gzip member (1f 8b) goes on; anything else is not gzip */
    if (!in->gzip || p[0] != 0x1f || (n > 1 && p[1] != 0x8b)) {
      luaL_pushfail(L);
      lua_pushfstring(L, "data after the end of the %s body", in->gzip ? "gzip" : "deflate");
      return 2;
    }
    if (inflateReset(&in->z) != Z_OK) return zfail(L, in);
    in->ended = 0;
  }
  if (in->ended || (n == 0 && !in->open) || start(L, in, p, n) < 0) {
    lua_pushliteral(L, "");
    lua_pushinteger(L, 0);
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  in->z.next_in = (Bytef *)(uintptr_t)p;
  in->z.avail_in = (uInt)n;
  size_t got = 0;
  while (got < (size_t)max && !in->ended) {
    size_t room = (size_t)max - got < 16384 ? (size_t)max - got : 16384;
    char *out = luaL_prepbuffsize(&b, room);
    uInt before = in->z.avail_in;
    in->z.next_out = (Bytef *)out;
    in->z.avail_out = (uInt)room;
    int rc = inflate(&in->z, Z_NO_FLUSH);
    size_t made = room - in->z.avail_out;
    luaL_addsize(&b, made);
    got += made;
    if (rc == Z_STREAM_END) in->ended = 1;
    else if (rc == Z_BUF_ERROR || (made == 0 && in->z.avail_in == before)) break;
    else if (rc != Z_OK) return zfail(L, in);
  }
  luaL_pushresult(&b);
  lua_pushinteger(L, (lua_Integer)(n - in->z.avail_in));
  return 2;
}

static int l_finish(lua_State *L) {
  inflater *in = check(L);
  if (in->open && !in->ended) {
    luaL_pushfail(L);
    lua_pushfstring(L, "truncated %s body", in->gzip ? "gzip" : "deflate");
    return 2;
  }
  lua_pushliteral(L, "");
  return 1;
}

static int l_gc(lua_State *L) {
  inflater *in = check(L);
  if (in->open) { inflateEnd(&in->z); in->open = 0; }
  return 0;
}

int corio__http_inflater(lua_State *L) {
  static const char *const kinds[] = { "gzip", "deflate", NULL };
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  inflater *in = lua_newuserdatauv(L, sizeof *in, 0);
  memset(in, 0, sizeof *in);
  in->gzip = kind == 0;
  if (luaL_newmetatable(L, INFLATER)) {
    static const luaL_Reg m[] = { { "feed", l_feed }, { "finish", l_finish }, { NULL, NULL } };
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return 1;
}
