/*
** host.c -- a C host built the way docs/INSTALL.md says, against an
** installed corio: `cc host.c $(pkg-config --cflags --libs corio)`.
**
** It calls Lua's API directly (lua_setglobal, luaL_loadstring) as well as
** corio's, which is why corio.pc must name lua5.4 in Requires: with only
** -lcorio on the link line the linker refuses ("DSO missing from command
** line").  tools/check-install.sh runs it and checks what it prints.
*/
#include <stdio.h>
#include <lauxlib.h>
#include <corio.h>

static const char script[] =
  "local corio = require 'corio'\n"
  "local t = corio.spawn(function() corio.sleep(0.01) return answer * 2 end)\n"
  "print('host: task gave ' .. t:await() .. ', corio ' .. corio.version)\n";


int main(void) {
  corio_runtime *rt = corio_new();
  if (rt == NULL) return 2;
  lua_State *L = corio_state(rt);
  lua_pushinteger(L, 21);
  lua_setglobal(L, "answer");
  if (luaL_loadstring(L, script) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    corio_free(rt);
    return 2;
  }
  int code = corio_run_main(rt, 0);
  corio_free(rt);
  return code;
}
