/*
** run_script.c -- host (a): a C program that runs an async Lua script.
**
** The host registers a C module its scripts can require ("host"), runs
** the script as the main task, and exits with the script's exit code.
** Build: make build/embed_run_script, or after `make install`:
**   cc run_script.c $(pkg-config --cflags --libs corio)
** usage: embed_run_script [script.lua]   (default: a built-in script)
*/
#include <stdio.h>

#include <lauxlib.h>

#include "corio.h"

static int host_log(lua_State *L) {           /* host.log(msg) */
  printf("[host] %s\n", luaL_checkstring(L, 1));
  return 0;
}

static int open_host(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, host_log);
  lua_setfield(L, -2, "log");
  return 1;
}

static const char *const builtin =
  "local corio, host = require 'corio', require 'host'\n"
  "local function worker(name, n)\n"
  "  for i = 1, n do corio.sleep(0.01) host.log(name .. ' step ' .. i) end\n"
  "  return name .. ' done'\n"
  "end\n"
  "local a, b = corio.spawn(worker, 'alpha', 2), corio.spawn(worker, 'beta', 3)\n"
  "host.log(a:await()) host.log(b:await())\n";

int main(int argc, char **argv) {
  corio_runtime *rt = corio_new();
  if (rt == NULL) return 1;
  lua_State *L = corio_state(rt);
  corio_register_module(rt, "host", open_host);
  int st = argc > 1 ? luaL_loadfile(L, argv[1]) : luaL_loadstring(L, builtin);
  int code = 1;
  if (st != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  else code = corio_run_main(rt, 0);          /* the chunk is the main task */
  corio_free(rt);
  printf("[host] exit code %d\n", code);
  return code;
}
