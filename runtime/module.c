/*
** module.c -- the `corio.core` module (the C half of `corio`), corio.run,
** the error handler, the low-level wait/wake primitives used by the Lua
** half of the library, and `luaopen_corio`, which registers every
** built-in module (C bindings and embedded scripts) in package.preload.
*/
#include <string.h>   /* strcmp */

#include "internal.h"
#include "modules.h"  /* generated: corio__scripts, corio__cmodules */


/* {====================================================================
** corio.run and the error handler
** ===================================================================== */

/* corio.run(fn, ...) -> fn's results.  Runs the loop until fn (as a task)
** finishes, then cancels what is left and lets it unwind. */
static int l_run(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  if (lua_type(L, 1) != LUA_TFUNCTION) {      /* checked here, so that the
                                                 error names 'run' */
    if (!luaL_getmetafield(L, 1, "__call")) luaL_typeerror(L, 1, "function");
    lua_pop(L, 1);
  }
  if (corio__busy(rt))
    return corio__error(L, "INVALID_STATE", "run",
                        "corio.run: the loop is already running (await "
                        "the work instead, or spawn it)");
  lua_getfield(L, lua_upvalueindex(2), "spawn");
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);          /* task */
  corio_task *t = lua_touserdata(L, 1);
  lua_State *saved = rt->L;
  rt->L = L;
  rt->main_task = t;
  t->fut.observed = 1;
  corio__loop(rt, t, 0);
  rt->main_task = NULL;
  corio__shutdown_tasks(rt);
  corio__flush_reports(rt);    /* queued while the loop wound down */
  rt->L = saved;
  if (t->state != T_DONE)
    return corio__error(L, "INVALID_STATE", "run",
                        "corio.run: the task did not finish");
  return corio__fut_push_results(L, 1, &t->fut);
}


/* set_error_handler(fn | nil) -> the previous handler (or nil). */
static int l_set_error_handler(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  if (rt->errh_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->errh_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, rt->errh_ref);
  } else {
    lua_pushnil(L);
  }
  if (lua_isnil(L, 1)) {        /* pushing nothing keeps `previous` on top */
    rt->errh_ref = LUA_NOREF;
  } else {
    lua_pushvalue(L, 1);
    rt->errh_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Low-level wait/wake for the Lua half (corio.core)
**
**   local task, token = core.waiter()   -- before suspending
**   ... put {task, token} where a waker will find it ...
**   local v = core.wait()               -- suspends; raises CANCELLED
**   core.wake(task, token, ...)         -- true if it woke that wait
**   core.throw(task, token, err)        -- raise err in that wait
** A wake for an earlier wait of the same task (an old token) is dropped.
** ===================================================================== */

static int l_waiter(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "wait");
  corio__push_task(rt, L, t);
  lua_pushinteger(L, (lua_Integer)(uint32_t)(t->token + 1));
  return 2;
}


static int l_wait(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "wait");
  lua_settop(L, 0);
  t->flags |= TF_CORE_WAIT;
  return corio__suspend(L, rt, t, NULL);
}


/* Returns the task if (task, token) names a wait that can be woken. */
static corio_task *wakeable(lua_State *L) {
  corio_task *t = luaL_checkudata(L, 1, CORIO_TASK_MT);
  lua_Integer tok = luaL_checkinteger(L, 2);
  if (t->state != T_WAITING || !(t->flags & TF_CORE_WAIT) ||
      (lua_Integer)t->token != tok)
    return NULL;
  return t;
}


static int l_wake(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = wakeable(L);
  if (t) corio__wake(rt, t, L, lua_gettop(L) - 2, WAKE_VALUES);
  lua_pushboolean(L, t != NULL);
  return 1;
}


static int l_throw(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  corio_task *t = wakeable(L);
  if (t) corio__wake(rt, t, L, 1, WAKE_RAISE);
  lua_pushboolean(L, t != NULL);
  return 1;
}


/* _requeue(): suspends the running task at the back of the ready queue,
** to run again in this turn after what is queued now (yield() waits for
** the next turn, behind everything queued meanwhile).  tests/diff takes
** with it the loop turn asyncio takes before it delivers a cancel. */
static int l_requeue(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "_requeue");
  corio__enqueue(rt, &t->node);
  return corio__suspend(L, rt, t, NULL);
}


/* cancel_others(msg): cancels every task but the running one (the test
** runner cleans up after a leaking test with it). */
static int l_cancel_others(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  lua_pushinteger(L, corio__cancel_all(rt, luaL_optstring(L, 1, NULL)));
  return 1;
}


/* close_others(): closes every server, watcher and signal handler still
** open (the test runner's cleanup after a test that left one). */
static int l_close_others(lua_State *L) {
  corio__close_anchored(RT_UPVALUE(L), L);
  return 0;
}


/* _deadlock(task) -> bool: raises the binary's deadlock error in a
** waiting task, as corio__loop does to its main task when nothing is left
** to wake it.  For hosts that stand in for the binary while driving the
** loop themselves (tests/embed/hosts/nowait_host.c): corio_loop_run
** returning 0 with their main task pending is that case, and only the host
** can know that nothing of its own will settle the task later. */
static int l_deadlock(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = luaL_checkudata(L, 1, CORIO_TASK_MT);
  lua_pushboolean(L, corio__deadlock(rt, t, L));
  return 1;
}


/* exit_code(n): the binary exits with at least n. */
static int l_exit_code(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int code = (int)luaL_checkinteger(L, 1);
  if (code > rt->exit_code) rt->exit_code = code;
  return 0;
}


/* _inject_fault(phase): for tests of the scheduler's recovery from an
** error in its own code (what running out of memory there would do). */
static int l_inject_fault(lua_State *L) {
  corio__inject_fault(L, RT_UPVALUE(L), luaL_checkstring(L, 1));
  return 0;
}


/* on_interrupt(fn | nil): in the binary, SIGINT calls fn(delivered) on
** the loop instead of cancelling the main task (delivered: the interrupt
** hook already raised CANCELLED "interrupted" in a step that was running),
** and a second SIGINT exits only if the loop has not handled the first.
** The REPL uses it to stay alive; nil restores the default. */
static int l_on_interrupt(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  int on = !lua_isnil(L, 1);            /* before setfield pops it */
  lua_setfield(L, LUA_REGISTRYINDEX, "corio.on_interrupt");
  corio__interrupt_custom(on);
  return 0;
}


static void count_handle(uv_handle_t *h, void *arg) {
  if (uv_is_active(h) && uv_has_ref(h)) (*(int *)arg)++;
}


/* stats() -> {tasks=, handles=, timers=, active=}: what is still alive;
** the test harness checks it after every case. */
static void count_kind(uv_handle_t *h, void *arg) {
  if (uv_is_active(h) && uv_has_ref(h)) ((int *)arg)[h->type]++;
}


/* stats() -> {tasks=, callbacks=, timers=, handles=}: what is alive. */
static int l_stats(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int active = 0;
  uv_walk(rt->loop, count_handle, &active);
  if (rt->timer_on && uv_has_ref((uv_handle_t *)&rt->timer)) active--;
  if (rt->idle_on) active--;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, rt->ntasks);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, rt->nhandles);
  lua_setfield(L, -2, "callbacks");
  lua_pushinteger(L, rt->heap_n);
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, active);
  lua_setfield(L, -2, "handles");
  return 1;
}


/* handle_kinds() -> {poll = n, tcp = n, ...}: the active handles that
** stats() counts, by libuv type (the REPL and the test runner say what
** is still open). */
static int l_handle_kinds(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int kinds[UV_HANDLE_TYPE_MAX] = {0};
  uv_walk(rt->loop, count_kind, kinds);
  if (rt->timer_on && uv_has_ref((uv_handle_t *)&rt->timer))
    kinds[UV_TIMER]--;
  if (rt->idle_on) kinds[UV_IDLE]--;
  lua_newtable(L);
  for (int k = 1; k < UV_HANDLE_TYPE_MAX; k++) {
    if (kinds[k] <= 0) continue;
    lua_pushinteger(L, kinds[k]);
    lua_setfield(L, -2, uv_handle_type_name((uv_handle_type)k));
  }
  return 1;
}

/* }==================================================================== */


static int luaopen_corio_core(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg funcs[] = {
    {"set_error_handler", l_set_error_handler},
    {"waiter", l_waiter},
    {"wait", l_wait},
    {"wake", l_wake},
    {"throw", l_throw},
    {"stats", l_stats},
    {"handle_kinds", l_handle_kinds},
    {"cancel_others", l_cancel_others},
    {"close_others", l_close_others},
    {"exit_code", l_exit_code},
    {"on_interrupt", l_on_interrupt},
    {"tasks", corio__l_tasks},
    {"open_handles", corio__l_open_handles},
    {"where", corio__l_where},
    {"debugging", corio__l_debugging},
    {"_inject_fault", l_inject_fault},
    {"_deadlock", l_deadlock},
    {"_cancel_pending", corio__l_cancel_pending},
    {"_requeue", l_requeue},
    {NULL, NULL}
  };
  lua_newtable(L);
  corio__open_error(L);
  corio__open_future(L, rt);
  corio__open_task(L, rt);
  corio__open_timer(L, rt);
  corio__open_context(L, rt);
  corio__setfuncs(L, rt, funcs);
  lua_pushlightuserdata(L, rt);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, l_run, 2);
  lua_setfield(L, -2, "run");
  lua_pushliteral(L, CORIO_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}


/* Loads corio.core (its metatables) if no script has required it yet:
** the C API may create tasks first (the binary spawns its main task
** before the script runs), and a Task made before the "corio.Task"
** metatable exists would have no methods and no __gc. */
void corio__open_core(lua_State *L) {
  if (luaL_getmetatable(L, CORIO_TASK_MT) == LUA_TNIL) {
    luaL_requiref(L, "corio.core", luaopen_corio_core, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}


/* Loader of an embedded script; upvalue: its index in corio__scripts. */
static int load_script(lua_State *L) {
  const corio_script *s = &corio__scripts[lua_tointeger(L,
                                                       lua_upvalueindex(1))];
  if (luaL_loadbuffer(L, (const char *)s->src, s->len, s->chunkname))
    return lua_error(L);
  lua_pushstring(L, s->name);
  lua_call(L, 1, 1);
  return 1;
}


/* Registers every built-in module in package.preload; returns the index
** of the "corio" script in corio__scripts, or -1. */
int corio__preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_corio_core);
  lua_setfield(L, -2, "corio.core");
  for (int i = 0; corio__cmodules[i].name; i++) {
    lua_pushcfunction(L, corio__cmodules[i].open);
    lua_setfield(L, -2, corio__cmodules[i].name);
  }
  int self = -1;
  for (int i = 0; corio__scripts[i].name; i++) {
    if (strcmp(corio__scripts[i].name, "corio") == 0) {
      self = i;
      continue;
    }
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_script, 1);
    lua_setfield(L, -2, corio__scripts[i].name);
  }
  lua_pushcfunction(L, luaopen_corio);
  lua_setfield(L, -2, "corio");
  lua_pop(L, 1);
  /* Load corio.core now: it registers the Task metatable, which a task
  ** spawned before any require (the binary's main task, corio_spawn from a
  ** host) needs, or core.wake would not recognise it. */
  luaL_requiref(L, "corio.core", luaopen_corio_core, 0);
  lua_pop(L, 1);
  return self;
}


int luaopen_corio(lua_State *L) {
  if (corio_attach(L, NULL) == NULL) return luaL_error(L, "not enough memory");
  int self = corio__preload(L);
  if (self < 0) return luaopen_corio_core(L);
  lua_pushinteger(L, self);
  lua_pushcclosure(L, load_script, 1);
  lua_call(L, 0, 1);
  return 1;
}
