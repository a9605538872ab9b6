/*
** nowait_host.c -- runs `corio test [paths]` the way a host with a main
** loop of its own would: poll() on corio_backend_fd with
** corio_backend_timeout, then corio_loop_run(CORIO_RUN_NOWAIT), turn after
** turn.  CI runs the whole Lua spec suite through it (make
** check-embed-nowait): every spec must pass driven this way too.
**
** usage: corio-nowait test [paths...]     (default: tests)
** Specs start "the binary under test" (process.execpath, arg[-1]) as
** subprocesses, and a process pool only runs a program named corio*:
** the Makefile builds this host as build/corio-nowait, and any
** invocation other than `test` runs the corio binary beside it.
*/
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "corio.h"


/* task:done() for the Task at idx. */
static int task_done(lua_State *L, int idx) {
  lua_getfield(L, idx, "done");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  int d = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return d;
}


/* [task] -> (): the binary's deadlock error raised in the task. */
static int deadlock(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "corio.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_deadlock");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}


/* One turn of the host's loop: wait as corio says, then a NOWAIT run.
** `more` is what the last run returned: 0 means corio has nothing left
** (no handle, request or ready task) that could finish the main task.  A
** host of its own decides what that means (a GUI may settle the task
** later); this one stands in for the binary, which raises a deadlock
** error in its main task there, and so does the same.  Polling instead
** would wait for good: corio_backend_timeout is -1 then. */
static int turn(corio_runtime *rt, int task, int more, long *turns) {
  lua_State *L = corio_state(rt);
  if (more) {
    struct pollfd p = {corio_backend_fd(rt), POLLIN, 0};
    poll(&p, 1, corio_backend_timeout(rt));
  } else {
    lua_pushcfunction(L, deadlock);
    lua_pushvalue(L, task);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      fprintf(stderr, "corio-nowait: %s\n", luaL_tolstring(L, -1, NULL));
      lua_pop(L, 2);
    }
  }
  ++*turns;
  return corio_loop_run(rt, CORIO_RUN_NOWAIT);
}


int main(int argc, char **argv) {
  const char *slash = strrchr(argv[0], '/');
  int dirlen = slash ? (int)(slash - argv[0]) : 1;
  char bin[4096];
  snprintf(bin, sizeof bin, "%.*s/corio", dirlen, slash ? argv[0] : ".");
  if (argc < 2 || strcmp(argv[1], "test") != 0) {
    argv[0] = bin;
    execv(bin, argv);
    perror(bin);
    return 127;
  }
  argc--;                                     /* drop "test" */
  argv++;
  corio_runtime *rt = corio_new();
  if (rt == NULL) return 2;
  lua_State *L = corio_state(rt);
  lua_createtable(L, argc, 1);                /* arg, as the binary's */
  lua_pushstring(L, bin);
  lua_rawseti(L, -2, -1);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");                /* the binary's main body */
  lua_pushliteral(L, "corio.cli");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "corio-nowait: %s\n", lua_tostring(L, -1));
    return 2;
  }
  lua_newtable(L);                            /* actions: {{kind="test"}} */
  lua_newtable(L);
  lua_pushliteral(L, "test");
  lua_setfield(L, -2, "kind");
  lua_rawseti(L, -2, 1);
  lua_newtable(L);                            /* the paths, as `...` */
  int n = 0;
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, ++n);
  }
  if (n == 0) {
    lua_pushliteral(L, "tests");
    lua_rawseti(L, -2, ++n);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  if (corio_spawn(rt, 2) != CORIO_OK) {
    fprintf(stderr, "corio-nowait: %s\n", lua_tostring(L, -1));
    return 2;
  }
  int task = lua_gettop(L);
  long turns = 0;
  int more = 1;
  while (!task_done(L, task)) more = turn(rt, task, more, &turns);
  /* What the specs left (as the binary, which waits for the other tasks
  ** after the main one) and the exit code. */
  int code = corio_run(rt);
  lua_getfield(L, task, "result");            /* a failed body raises */
  lua_pushvalue(L, task);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "corio-nowait: %s\n", luaL_tolstring(L, -1, NULL));
    code = 1;
  }
  fprintf(stderr, "corio-nowait: %ld turns\n", turns);
  corio_free(rt);
  return code;
}
