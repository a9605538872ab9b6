/*
** embed_test.c -- the embedding API from a C host: create a runtime, run
** Lua code that awaits, spawn a task from C, run to completion, free.
** Run under valgrind by `make check-embed`: nothing may leak.
*/
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "corio.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
  fprintf(stderr, "embed_test.c:%d: check failed: %s\n", __LINE__, #cond); \
  failures++; } } while (0)

/* A task started from C whose body awaits. */
static void test_spawn_and_run(void) {
  corio_runtime *rt = corio_new();
  CHECK(rt != NULL);
  lua_State *L = corio_state(rt);
  CHECK(luaL_dostring(L,
    "corio = require 'corio'\n"
    "result = nil\n"
    "function job(a, b) corio.sleep(0.01) result = a + b end") == LUA_OK);
  lua_getglobal(L, "job");
  lua_pushinteger(L, 2);
  lua_pushinteger(L, 3);
  CHECK(corio_spawn(rt, 2) == 0);
  lua_pop(L, 1);                              /* the task */
  CHECK(corio_run(rt) == 0);
  lua_getglobal(L, "result");
  CHECK(lua_tointeger(L, -1) == 5);
  lua_pop(L, 1);
  corio_free(rt);
}

/* A main task that fails: exit code 1, everything still freed. */
static void test_main_failure(void) {
  corio_runtime *rt = corio_new();
  lua_State *L = corio_state(rt);
  fprintf(stderr, "(an error report is expected below)\n");
  CHECK(luaL_loadstring(L, "local corio = require 'corio'\n"
                           "corio.spawn(function() corio.sleep(5) end)\n"
                           "corio.sleep(0.01) error('expected failure')")
        == LUA_OK);
  CHECK(corio_run_main(rt, 0) == 1);
  corio_free(rt);
}

/* Freeing a runtime with tasks and timers still pending. */
static void test_free_with_pending_work(void) {
  corio_runtime *rt = corio_new();
  lua_State *L = corio_state(rt);
  CHECK(luaL_dostring(L,
    "local corio = require 'corio'\n"
    "for i = 1, 100 do corio.spawn(function() corio.sleep(100) end) end\n"
    "corio.call_later(100, print)") == LUA_OK);
  corio_free(rt);
}

/* The module attached to a plain Lua state, as stock lua5.4 does. */
static void test_attach(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "corio", luaopen_corio, 0);
  lua_pop(L, 1);
  CHECK(luaL_dostring(L,
    "local corio = require 'corio'\n"
    "local a, b = corio.run(function() corio.sleep(0.01) return 1, 2 end)\n"
    "assert(a == 1 and b == 2)") == LUA_OK);
  lua_close(L);
}

int main(void) {
  static void (*const tests[])(void) = {
    test_spawn_and_run, test_main_failure, test_free_with_pending_work,
    test_attach,
  };
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int before = failures;
    tests[i]();
    if (failures == before) passed++;
    else failed++;
  }
  printf("embedding: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
