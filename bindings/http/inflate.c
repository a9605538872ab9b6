/*
** inflate.c -- gzip/deflate response bodies for corio.http, on zlib.
** An Inflater is fed compressed chunks and returns what they decode to;
** it holds no runtime state, so it runs in the reading task without
** ever calling back into Lua.
**
**   _http.inflater("gzip" | "deflate") -> Inflater
**   inf:feed(data) -> string   inf:finish() -> string
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
** (RFC 9110 says zlib): the first byte tells which (CM = 8 in a header). */
static int start(lua_State *L, inflater *in, const unsigned char *p, size_t n) {
  if (in->open) return 0;
  int bits = 15 + 16;
  if (!in->gzip) {
    if (n == 0) return -1;
    bits = (p[0] & 0x0f) == 8 ? 15 : -15;
  }
  memset(&in->z, 0, sizeof in->z);
  if (inflateInit2(&in->z, bits) != Z_OK) return luaL_error(L, "zlib: out of memory");
  in->open = 1;
  return 0;
}

static int l_feed(lua_State *L) {
  inflater *in = check(L);
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 2, &n);
  if (in->ended || n == 0) { lua_pushliteral(L, ""); return 1; }
  if (start(L, in, p, n) < 0) { lua_pushliteral(L, ""); return 1; }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  in->z.next_in = (Bytef *)(uintptr_t)p;
  in->z.avail_in = (uInt)n;
  while (in->z.avail_in > 0 && !in->ended) {
    char *out = luaL_prepbuffsize(&b, 16384);
    in->z.next_out = (Bytef *)out;
    in->z.avail_out = 16384;
    int rc = inflate(&in->z, Z_NO_FLUSH);
    luaL_addsize(&b, 16384 - in->z.avail_out);
    if (rc == Z_STREAM_END) in->ended = 1;
    else if (rc == Z_BUF_ERROR && in->z.avail_out != 0) break;
    else if (rc != Z_OK && rc != Z_BUF_ERROR) return zfail(L, in);
  }
  /* the output of one feed grows with the input; corio.http bounds the
     total (a compression bomb) */
  while (!in->ended) {
    char *out = luaL_prepbuffsize(&b, 16384);
    in->z.next_out = (Bytef *)out;
    in->z.avail_out = 16384;
    int rc = inflate(&in->z, Z_NO_FLUSH);
    luaL_addsize(&b, 16384 - in->z.avail_out);
    if (rc == Z_STREAM_END) { in->ended = 1; break; }
    if (rc == Z_BUF_ERROR || in->z.avail_out != 0) break;
    if (rc != Z_OK) return zfail(L, in);
  }
  luaL_pushresult(&b);
  return 1;
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
