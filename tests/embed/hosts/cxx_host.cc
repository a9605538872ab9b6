// cxx_host.cc -- a C++ host: corio.h has extern "C", so this links
// (make check-embed-headers).
#include <cstdio>

#include "corio.h"       // first: its lua.h is declared extern "C"
#include <lua.hpp>       // the Lua C API for C++

int main() {
  corio_runtime *rt = corio_new();
  if (rt == nullptr) return 1;
  lua_State *L = corio_state(rt);
  if (luaL_loadstring(L, "require('corio').sleep(0.001) return 1") != LUA_OK)
    return 1;
  int code = corio_run_main(rt, 0);
  std::printf("c++ host: exit code %d, corio %s\n", code, corio_version());
  return corio_free(rt) == CORIO_OK ? code : 1;
}
