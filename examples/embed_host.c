/*
** embed_host.c -- corio inside a C program.
**
** The host creates a runtime, registers a C function its scripts can call,
** starts two tasks written in Lua, and runs the loop until they finish.
** Build: make build/embed_host (or: cc embed_host.c $(pkg-config --cflags
** --libs corio lua5.4 libuv) after `make install`).
*/
#include <stdio.h>

#include <lauxlib.h>

#include "corio.h"

/* A host service exposed to scripts: host.log(msg). */
static int host_log(lua_State *L) {
  printf("[host] %s\n", luaL_checkstring(L, 1));
  return 0;
}

static const char *const script =
  "local corio = require 'corio'\n"
  "local function worker(name, n)\n"
  "  for i = 1, n do\n"
  "    corio.sleep(0.01)\n"
  "    host.log(name .. ' step ' .. i)\n"
  "  end\n"
  "  return name .. ' done'\n"
  "end\n"
  "local a = corio.spawn(worker, 'alpha', 2)\n"
  "local b = corio.spawn(worker, 'beta', 3)\n"
  "host.log(a:await())\n"
  "host.log(b:await())\n";

int main(void) {
  corio_runtime *rt = corio_new();
  if (rt == NULL) return 1;
  lua_State *L = corio_state(rt);

  lua_newtable(L);                            /* the `host` global */
  lua_pushcfunction(L, host_log);
  lua_setfield(L, -2, "log");
  lua_setglobal(L, "host");

  if (luaL_loadstring(L, script) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    corio_free(rt);
    return 1;
  }
  int code = corio_run_main(rt, 0);           /* the chunk is the main task */
  corio_free(rt);
  printf("[host] exit code %d\n", code);
  return code;
}
