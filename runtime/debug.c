/*
** debug.c -- `corio --debug` (or CORIO_DEBUG=1): warnings about steps that
** block the loop, and a dump of every task's stack (on SIGQUIT).
*/
#include <stdio.h>    /* fprintf */

#include "internal.h"


void corio__push_label(corio_rt *rt, lua_State *L, corio_task *t) {
  if (t->state != T_DONE && t->fut.type == TYPE_TASK && t->anchor > 0) {
    corio__push_task(rt, L, t);
    int top = lua_gettop(L);
    if (corio__get_extra(L, top) == LUA_TTABLE &&
        lua_getfield(L, -1, "name") == LUA_TSTRING) {
      lua_replace(L, top);
      lua_settop(L, top);
      return;
    }
    lua_settop(L, top - 1);
  }
  lua_pushfstring(L, "Task-%d", (int)t->id);
}


void corio__debug_slow(corio_rt *rt, lua_State *L, corio_task *t,
                       uint64_t ns) {
  if (t == NULL) {
    fprintf(stderr, "corio: [debug] a callback blocked the loop for "
            "%.0f ms\n", (double)ns / 1e6);
    return;
  }
  corio__push_label(rt, L, t);
  fprintf(stderr, "corio: [debug] task %s blocked the loop for %.0f ms "
          "without awaiting\n", lua_tostring(L, -1), (double)ns / 1e6);
  lua_pop(L, 1);
}


/* L is the stack to work on: rt->L from the loop, or the running task's
** coroutine from the interrupt hook (interrupt.c), which also gives the
** running task's traceback. */
void corio__dump_tasks(corio_rt *rt, lua_State *L) {
  static const char *const states[] = {"new", "running", "waiting",
                                       "ready", "done"};
  int n = 0;
  luaL_checkstack(L, 8, NULL);
  fprintf(stderr, "corio: [debug] %ld task(s):\n", rt->ntasks);
  for (int s = 1; s <= rt->max_slot; s++) {
    corio__push_live(rt, L, s);
    corio_fut *f = corio__to_fut(rt, L, -1);
    if (f && f->type == TYPE_TASK) {
      corio_task *t = container_of(f, corio_task, fut);
      corio__push_label(rt, L, t);
      fprintf(stderr, "--- %s (%s)\n", lua_tostring(L, -1),
              states[t->state]);
      lua_pop(L, 1);
      if (t->co && (t->state != T_RUNNING || t->co == L)) {
        luaL_traceback(L, t->co, NULL, 0);
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
      }
      n++;
    }
    lua_pop(L, 1);
  }
  if (n == 0) fprintf(stderr, "(none)\n");
  fflush(stderr);
}
