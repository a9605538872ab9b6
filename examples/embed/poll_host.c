/*
** poll_host.c -- host (c): the main loop is poll() (as a GUI or game loop
** would be).  corio runs one NOWAIT turn whenever its backend fd is
** readable or its timeout passes; a worker thread computes a result and
** hands it to a waiting Lua task through a C future.
** Build: make build/embed_poll_host
*/
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include <lauxlib.h>

#include "corio.h"

static int push_result(lua_State *L, void *ud) {
  lua_pushinteger(L, (lua_Integer)(size_t)ud);
  return 1;
}

static void worker(void *arg) {               /* any thread may settle it */
  usleep(50 * 1000);                          /* "work" */
  corio_future_resolve(arg, push_result, (void *)(size_t)(6 * 7), NULL);
  corio_future_release(arg);
}

int main(void) {
  corio_runtime *rt = corio_new();
  if (rt == NULL) return 1;
  lua_State *L = corio_state(rt);
  corio_future *f = corio_future_new(L);      /* pushes the Lua Future */
  lua_setglobal(L, "answer");
  uv_thread_t th;
  uv_thread_create(&th, worker, f);
  (void)luaL_dostring(L, "local corio = require 'corio'\n"
                   "corio.spawn(function()\n"
                   "  print('task: the answer is', answer:await())\n"
                   "  done = true\n"
                   "end)");
  int frames = 0, done = 0;
  while (!done) {                             /* the host's own loop */
    struct pollfd p = {corio_backend_fd(rt), POLLIN, 0};
    int timeout = corio_backend_timeout(rt);
    poll(&p, 1, timeout < 0 || timeout > 16 ? 16 : timeout);  /* 60 fps */
    corio_loop_run(rt, CORIO_RUN_NOWAIT);
    frames++;
    lua_getglobal(L, "done");
    done = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  uv_thread_join(&th);
  printf("host: done after %d frames\n", frames);
  return corio_free(rt) == CORIO_OK ? 0 : 1;
}
