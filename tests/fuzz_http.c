/*
** fuzz_http.c -- libFuzzer target for corio.http's C half
** (bindings/http/head.c, inflate.c): the strict head scanner, the
** chunk-size check and the inflater, driven through a bare Lua state.
**
** Checked: no crash or sanitizer report on any input; a head is either
** accepted (4 results: a list of fields with an even count and lowercase
** names) or refused with 400/431/505; an accepted head holds no bare LF;
** a chunk size is a non-negative integer below 16^15.
**
**   make fuzz               (every target, FUZZ_TIME=60 seconds each)
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_corio__http(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void check_head(const char *s, size_t n, const char *kind) {
  lua_getfield(L, 1, "parse_head");
  lua_pushlstring(L, s, n);
  lua_pushstring(L, kind);
  lua_pushinteger(L, 20);
  if (lua_pcall(L, 3, 4, 0) != LUA_OK) abort();
  if (lua_isnil(L, -4)) {
    lua_Integer st = lua_tointeger(L, -3);
    if (st != 400 && st != 431 && st != 505) abort();
  } else {
    if (!lua_istable(L, -1)) abort();
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    if (len % 2 != 0 || len > 40) abort();
    for (lua_Integer i = 1; i <= len; i += 2) {
      lua_rawgeti(L, -1, i);
      size_t k;
      const char *name = lua_tolstring(L, -1, &k);
      for (size_t j = 0; j < k; j++)
        if (name[j] >= 'A' && name[j] <= 'Z') abort();
      lua_pop(L, 1);
    }
    for (size_t j = 0; j < n; j++)      /* accepted: every LF after a CR */
      if (s[j] == '\n' && (j == 0 || s[j - 1] != '\r')) abort();
  }
  lua_pop(L, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "corio._http", luaopen_corio__http, 0);
  }
  const char *s = (const char *)data;
  check_head(s, size, "request");
  check_head(s, size, "response");
  lua_getfield(L, 1, "parse_chunk_size");
  lua_pushlstring(L, s, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
  if (!lua_isnil(L, -1)) {
    lua_Integer v = lua_tointeger(L, -1);
    if (v < 0 || v >= ((lua_Integer)1 << 60)) abort();
  }
  lua_pop(L, 1);
  /* the inflater on both kinds: errors are Lua errors, never crashes */
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
  lua_settop(L, 1);
  return 0;
}
