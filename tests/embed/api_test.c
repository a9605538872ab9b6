/*
** api_test.c -- the embedding API on the loop thread: running, run
** modes, the report hook, re-entrancy, C futures, ports after free, the
** old entry points (corio_new, corio_attach), signal dispositions.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <string.h>

#include <lualib.h>

#include "t.h"


/* A task started from C whose body awaits. */
static void spawn_and_run(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "function job(a, b) corio.sleep(0.01) result = a + b "
                       "end") == LUA_OK);
  lua_getglobal(L, "job");
  lua_pushinteger(L, 2);
  lua_pushinteger(L, 3);
  CHECK_EQ(corio_spawn(rt, 2), CORIO_OK);
  lua_pop(L, 1);
  CHECK_EQ(corio_run(rt), 0);
  lua_getglobal(L, "result");
  CHECK_EQ(lua_tointeger(L, -1), 5);
  lua_pop(L, 1);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* corio_spawn of a non-function: a code and a message, nothing raised. */
static void spawn_bad(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  int top = lua_gettop(L);
  lua_pushinteger(L, 42);
  CHECK_EQ(corio_spawn(rt, 0), CORIO_EINVAL);
  CHECK(lua_isstring(L, -1));
  CHECK(strstr(lua_tostring(L, -1), "bad argument") != NULL);
  lua_settop(L, top);
  CHECK_EQ(corio_spawn(rt, 3), CORIO_EINVAL);  /* not that many values */
  CHECK_EQ(lua_gettop(L), top);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


static int nreports[3];
static char last_report[256];

static void count_report(void *ud, corio_runtime *rt, corio_report_kind kind,
                         const char *msg, const char *tb) {
  (void)ud;
  (void)rt;
  (void)tb;
  nreports[kind]++;
  snprintf(last_report, sizeof last_report, "%s", msg);
}


/* Each kind reaches the hook; nothing reaches stderr. */
static void report_hook(void) {
  memset(nreports, 0, sizeof nreports);
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.report = count_report;
  corio_runtime *rt = corio_create(&cfg, NULL);
  CHECK(rt != NULL);
  CHECK_EQ(t_run_main(rt,
    "local corio = require 'corio'\n"
    "corio.spawn(function() error('never awaited') end)\n"
    "corio.call_soon(function() error('a raising callback') end)\n"
    "warn('a ', 'warning')\n"
    "corio.sleep(0.01)\n"
    "collectgarbage() collectgarbage()\n"), 1);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  CHECK_EQ(ftell(tmp), 0);                    /* nothing on stderr */
  fclose(tmp);
  CHECK_EQ(nreports[CORIO_REPORT_UNHANDLED], 1);
  CHECK_EQ(nreports[CORIO_REPORT_CALLBACK], 1);
  CHECK_EQ(nreports[CORIO_REPORT_WARNING], 1);
}


/* corio_run_until: results, a failure, a plain future, and a deadlock. */
static void run_until(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  CHECK(t_dostring(rt, "corio = require 'corio'") == LUA_OK);
  int top = lua_gettop(L);
  CHECK(t_dostring(rt, "return corio.spawn(function(a) corio.sleep(0.01) "
                       "return a, 'two' end, 1)") == LUA_OK);
  CHECK_EQ(corio_run_until(rt, -1), 2);
  CHECK_EQ(lua_tointeger(L, -2), 1);
  CHECK(strcmp(lua_tostring(L, -1), "two") == 0);
  lua_settop(L, top);
  CHECK(t_dostring(rt, "return corio.spawn(function() corio.sleep(0.001) "
                       "error({code = 'X'}) end)") == LUA_OK);
  CHECK_EQ(corio_run_until(rt, -1), CORIO_ERROR);
  CHECK(lua_istable(L, -1));
  lua_settop(L, top);
  CHECK(t_dostring(rt, "f = corio.future() corio.call_later(0.01, "
                       "f.set_result, f, 'ok') return f") == LUA_OK);
  CHECK_EQ(corio_run_until(rt, -1), 1);
  CHECK(strcmp(lua_tostring(L, -1), "ok") == 0);
  lua_settop(L, top);
  CHECK(t_dostring(rt, "return corio.future()") == LUA_OK);
  CHECK_EQ(corio_run_until(rt, -1), CORIO_ESTATE);  /* nothing can settle */
  lua_settop(L, top);
  lua_pushinteger(L, 1);
  CHECK_EQ(corio_run_until(rt, -1), CORIO_EINVAL);
  lua_settop(L, top);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* Drives rt as a host whose main loop is poll() would: poll on the
** backend fd for the backend timeout (at most 1 s), then one NOWAIT run;
** until the script sets the global `done` or max rounds pass.  Returns the
** rounds; *done says how it ended; *lost counts polls that ran out their
** time although corio asked to be woken by its fd (a missed wake-up). */
static int poll_until_done(corio_runtime *rt, int max, int *done,
                           int *lost) {
  lua_State *L = corio_state(rt);
  int rounds = 0;
  *done = 0;
  if (lost) *lost = 0;
  while (!*done && rounds < max) {
    struct pollfd p = {corio_backend_fd(rt), POLLIN, 0};
    int ms = corio_backend_timeout(rt);
    if (poll(&p, 1, ms < 0 || ms > 1000 ? 1000 : ms) == 0 && ms != 0 &&
        lost)
      (*lost)++;
    CHECK(corio_loop_run(rt, CORIO_RUN_NOWAIT) >= 0);
    rounds++;
    lua_getglobal(L, "done");
    *done = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return rounds;
}


/* A host whose main loop is poll(): corio.sleep(0.05) ends in 50-150 ms,
** in a few iterations, not a busy loop. */
static void nowait_sleep(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "corio = require 'corio' done = false\n"
                       "corio.spawn(function() corio.sleep(0.05) done = true "
                       "end)") == LUA_OK);
  double t0 = t_now();
  int done, iterations = poll_until_done(rt, 1000, &done, NULL);
  double ms = (t_now() - t0) * 1000;
  CHECK(done);
  CHECK(ms >= 49 && ms <= 150);
  CHECK(iterations <= 10);
  /* Idle now: no task, no handle. */
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* corio.run from a callback (no current task) that the host's
** corio_loop_run runs raises INVALID_STATE: it used to nest uv_run inside
** the host's uv_run and spin there for good. */
static void nowait_nested_run(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "corio = require 'corio' done = false\n"
                       "corio.call_soon(function()\n"
                       "  ok, err = pcall(corio.run, function() end)\n"
                       "  done = true\n"
                       "end)") == LUA_OK);
  int done;
  poll_until_done(rt, 100, &done, NULL);
  CHECK(done);
  CHECK(t_dostring(rt, "assert(ok == false)\n"
                       "assert(err.code == 'INVALID_STATE', tostring(err))\n"
                       "assert(err.message:find('already running'))")
        == LUA_OK);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* A NOWAIT host whose task waits for something nothing can settle: the
** run returns 0 (idle) with the task pending and the timeout is -1 (poll
** would wait for good); core._deadlock, which nowait_host.c calls there as
** the binary's loop would, raises INVALID_STATE in the task, which goes on. */
static void nowait_deadlock(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "task = corio.spawn(function()\n"
                       "  local ok, err = pcall(function() "
                       "corio.future():await() end)\n"
                       "  corio.sleep(0.001)\n"
                       "  return ok, err.code, err.message\n"
                       "end)") == LUA_OK);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 0);
  CHECK_EQ(corio_backend_timeout(rt), -1);
  CHECK(t_dostring(rt, "assert(not task:done())\n"
                       "assert(require('corio.core')._deadlock(task))\n"
                       "assert(not require('corio.core')._deadlock(task))")
        == LUA_OK);                           /* no longer waiting */
  CHECK_EQ(corio_backend_timeout(rt), 0);
  int iterations = 0;
  for (int more = 1; more && iterations < 100; iterations++) {
    struct pollfd p = {corio_backend_fd(rt), POLLIN, 0};
    poll(&p, 1, corio_backend_timeout(rt));
    more = corio_loop_run(rt, CORIO_RUN_NOWAIT);
  }
  CHECK(iterations < 100);
  CHECK(t_dostring(rt, "local ok, code, msg = task:result()\n"
                       "assert(ok == false and code == 'INVALID_STATE')\n"
                       "assert(msg:find('deadlock'))") == LUA_OK);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* A thread sends a datagram to each of the two ports at ud, 50 ms apart. */
static void send_datagrams(void *ud) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  for (int i = 0; i < 2; i++) {
    usleep(50 * 1000);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)((int *)ud)[i]);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(sendto(fd, "hi", 2, 0, (struct sockaddr *)&to, sizeof to) == 2);
  }
  close(fd);
}


/* A task woken by I/O starts reading another socket in the same turn,
** after that turn's poll: libuv hands a new watcher to epoll only in its
** next poll, so until then the backend fd cannot wake the host, and the
** timeout must be 0 (libuv's uv_backend_timeout says so for pending
** watchers; this holds corio_backend_timeout to it).  A -1 there would
** have the host sleep for good (here a capped poll makes each lost wake
** cost 1 s). */
static void nowait_new_watchers(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  CHECK(t_dostring(rt, "corio = require 'corio' net = require 'corio.net'\n"
                       "done = false\n"
                       "u1 = net.udp() u1:bind('127.0.0.1', 0)\n"
                       "u2 = net.udp() u2:bind('127.0.0.1', 0)\n"
                       "port1 = select(2, u1:sockname())\n"
                       "port2 = select(2, u2:sockname())\n"
                       "corio.spawn(function()\n"
                       "  got = u1:recvfrom()\n"
                       "  got = got .. u2:recvfrom()\n"
                       "  u1:close() u2:close()\n"
                       "  done = true\n"
                       "end)") == LUA_OK);
  int ports[2];
  lua_getglobal(L, "port1");
  lua_getglobal(L, "port2");
  ports[0] = (int)lua_tointeger(L, -2);
  ports[1] = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  CHECK(ports[0] > 0 && ports[1] > 0);
  uv_thread_t th;
  CHECK_EQ(uv_thread_create(&th, send_datagrams, ports), 0);
  double t0 = t_now();
  int done, lost, iterations = poll_until_done(rt, 1000, &done, &lost);
  uv_thread_join(&th);
  CHECK(done);
  CHECK_EQ(lost, 0);
  CHECK(t_now() - t0 < 0.9);
  CHECK(iterations <= 20);
  CHECK(t_dostring(rt, "assert(got == 'hihi')") == LUA_OK);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* corio_backend_timeout is 0 while a task is ready, -1 when idle. */
static void backend_timeout(void) {
  corio_runtime *rt = t_new();
  CHECK(corio_backend_fd(rt) >= 0);
  CHECK_EQ(corio_backend_timeout(rt), -1);
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "corio.spawn(function() for i = 1, 3 do corio.yield() "
                       "end end)") == LUA_OK);
  CHECK_EQ(corio_backend_timeout(rt), 0);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  CHECK_EQ(corio_backend_timeout(rt), -1);
  CHECK(t_dostring(rt, "corio.spawn(function() corio.sleep(10) end)")
        == LUA_OK);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 1);  /* the task started */
  int ms = corio_backend_timeout(rt);
  CHECK(ms > 9000 && ms <= 10002);           /* rounded up to the ms */
  CHECK_EQ(corio_loop_run(rt, 7), CORIO_EINVAL);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* Re-entrant calls from a task or a posted function return EBUSY. */
static corio_runtime *busy_rt;
static int busy_codes[6];

static int l_reenter(lua_State *L) {
  corio_runtime *rt = corio_from_state(L);
  CHECK(rt == busy_rt);
  busy_codes[0] = corio_loop_run(rt, CORIO_RUN_NOWAIT);
  busy_codes[1] = corio_run(rt);
  busy_codes[2] = corio_free(rt);
  lua_pushinteger(L, 0);
  busy_codes[3] = corio_run_until(rt, -1);
  lua_settop(L, 0);
  return 0;
}

static void post_reenter(corio_runtime *rt, void *ud) {
  (void)ud;
  busy_codes[4] = corio_free(rt);
  busy_codes[5] = corio_loop_run(rt, CORIO_RUN_ONCE);
}

static void reentrancy(void) {
  corio_runtime *rt = busy_rt = t_new();
  lua_State *L = corio_state(rt);
  lua_register(L, "reenter", l_reenter);
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "corio.spawn(function() reenter() end)") == LUA_OK);
  corio_port *p = corio_port_open(rt);
  CHECK(corio_port_post(p, post_reenter, NULL, NULL) == CORIO_OK);
  corio_port_close(p);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  for (int i = 0; i < 6; i++) CHECK_EQ(busy_codes[i], CORIO_EBUSY);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* corio_stop from the loop thread ends a DEFAULT run after the turn. */
static void post_stop(corio_runtime *rt, void *ud) {
  (void)ud;
  corio_stop(rt);
}

static void stop(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "corio.spawn(function() corio.sleep(30) end)")
        == LUA_OK);
  corio_port *p = corio_port_open(rt);
  CHECK_EQ(corio_port_post(p, post_stop, NULL, NULL), CORIO_OK);
  double t0 = t_now();
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 1);
  CHECK(t_now() - t0 < 5);
  corio_port_close(p);
  CHECK_EQ(corio_free(rt), CORIO_OK);          /* cancels the sleeper */
}


/* corio_run_main ended by corio_stop leaves no stop behind: the next run
** is a whole run (it used to end at its first idle moment, as stopped). */
static int l_stop(lua_State *L) {
  corio_stop(corio_from_state(L));
  return 0;
}

static void stop_then_run_main(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  lua_register(L, "stop", l_stop);
  double t0 = t_now();
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "stop()\n"
                          "corio.sleep(30)\n"
                          "reached = true\n"), 0);   /* stopped: cancelled */
  CHECK(t_now() - t0 < 5);
  CHECK_EQ(lua_getglobal(L, "reached"), LUA_TNIL);
  lua_pop(L, 1);
  /* A main task with nothing left to wake it gets the deadlock error
  ** (the stale flag ended the run before that: exit code 0, no error). */
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "local ok, err = pcall(function()\n"
                          "  corio.future():await() end)\n"
                          "code = err.code\n"), 0);
  CHECK_EQ(lua_getglobal(L, "code"), LUA_TSTRING);
  CHECK(strcmp(lua_tostring(L, -1), "INVALID_STATE") == 0);
  lua_pop(L, 1);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* C futures on the loop thread: resolve, reject, release unsettled. */
static int push_two(lua_State *L, void *ud) {
  lua_pushstring(L, ud);
  lua_pushinteger(L, 2);
  return 2;
}

static void cfuture_loop_thread(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  CHECK(t_dostring(rt, "corio = require 'corio'") == LUA_OK);
  int top = lua_gettop(L);
  corio_future *f = corio_future_new(L);
  CHECK(f != NULL);
  CHECK_EQ(corio_future_resolve(f, push_two, "one", NULL), CORIO_OK);
  CHECK_EQ(corio_future_resolve(f, push_two, "again", NULL), CORIO_ESTATE);
  CHECK_EQ(corio_run_until(rt, top + 1), 2);
  CHECK(strcmp(lua_tostring(L, -2), "one") == 0);
  corio_future_release(f);
  lua_settop(L, top);

  f = corio_future_new(L);
  CHECK_EQ(corio_future_reject(f, "EHOST", "the host failed"), CORIO_OK);
  CHECK_EQ(corio_run_until(rt, top + 1), CORIO_ERROR);
  lua_getfield(L, -1, "code");
  CHECK(strcmp(lua_tostring(L, -1), "EHOST") == 0);
  corio_future_release(f);
  lua_settop(L, top);

  /* Released unsettled: its awaiter gets ABANDONED. */
  f = corio_future_new(L);
  lua_setglobal(L, "cf");
  CHECK(t_dostring(rt, "return corio.spawn(function() "
                       "local ok, e = pcall(cf.await, cf) return e.code end)")
        == LUA_OK);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 1);   /* it awaits */
  corio_future_release(f);
  CHECK_EQ(corio_run_until(rt, -1), 1);
  CHECK(strcmp(lua_tostring(L, -1), "ABANDONED") == 0);
  lua_settop(L, top);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* Cancelling the awaiter cancels the C future: on_cancel runs on the
** loop, then resolve gives ESTATE and drops once; nothing is reported. */
static int cancel_seen, drops;

static void on_cancel(corio_runtime *rt, void *ud) {
  (void)rt;
  CHECK(ud == &cancel_seen);
  cancel_seen++;
}

static void drop_count(void *ud) {
  (void)ud;
  drops++;
}

static void cfuture_cancel(void) {
  cancel_seen = drops = 0;
  memset(nreports, 0, sizeof nreports);
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.report = count_report;
  corio_runtime *rt = corio_create(&cfg, NULL);
  lua_State *L = corio_state(rt);
  CHECK(t_dostring(rt, "corio = require 'corio'") == LUA_OK);
  corio_future *f = corio_future_new(L);
  corio_future_on_cancel(f, on_cancel, &cancel_seen);
  lua_setglobal(L, "cf");
  CHECK(t_dostring(rt, "t = corio.spawn(function() cf:await() end)")
        == LUA_OK);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 1);  /* awaiting; the */
  CHECK(t_dostring(rt, "t:cancel()") == LUA_OK);      /* future holds it */
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  CHECK_EQ(cancel_seen, 1);
  CHECK_EQ(corio_future_cancelled(f), 1);
  CHECK_EQ(corio_future_resolve(f, push_two, "late", drop_count),
           CORIO_ESTATE);
  CHECK_EQ(drops, 1);
  corio_future_release(f);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  CHECK_EQ(nreports[0] + nreports[1] + nreports[2], 0);
}


/* A port outlives its runtime: posts after corio_free return ECLOSED and
** drop; close still frees (valgrind checks). */
static void port_after_free(void) {
  drops = 0;
  corio_runtime *rt = t_new();
  corio_port *p = corio_port_open(rt);
  corio_port *q = corio_port_dup(p);
  CHECK(q == p);
  CHECK_EQ(corio_port_post(p, post_stop, NULL, drop_count), CORIO_OK);
  CHECK_EQ(corio_free(rt), CORIO_OK);         /* drops the queued post */
  CHECK_EQ(drops, 1);
  CHECK_EQ(corio_port_post(p, post_stop, NULL, drop_count), CORIO_ECLOSED);
  CHECK_EQ(drops, 2);
  corio_port_close(p);
  corio_port_close(q);
}


/* A C future outlives its runtime too. */
static void cfuture_after_free(void) {
  drops = 0;
  corio_runtime *rt = t_new();
  corio_future *f = corio_future_new(corio_state(rt));
  CHECK(f != NULL);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  CHECK_EQ(corio_future_resolve(f, push_two, "x", drop_count), CORIO_ECLOSED);
  CHECK_EQ(drops, 1);
  CHECK_EQ(corio_future_reject(f, "E", "m"), CORIO_ECLOSED);
  corio_future_release(f);
}


/* A main task that fails: exit code 1, everything still freed. */
static void main_failure(void) {
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.report = count_report;
  memset(nreports, 0, sizeof nreports);
  corio_runtime *rt = corio_create(&cfg, NULL);
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "corio.spawn(function() corio.sleep(5) end)\n"
                          "corio.sleep(0.01) error('expected failure')"), 1);
  CHECK_EQ(nreports[CORIO_REPORT_UNHANDLED], 1);
  CHECK(strstr(last_report, "expected failure") != NULL);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* Freeing a runtime with tasks and timers still pending. */
static void free_with_pending_work(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "local corio = require 'corio'\n"
    "for i = 1, 100 do corio.spawn(function() corio.sleep(100) end) end\n"
    "corio.call_later(100, print)") == LUA_OK);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* The module attached to a plain Lua state, as stock lua5.4 does; such a
** runtime is freed by lua_close, not corio_free. */
static void attach(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "corio", luaopen_corio, 0);
  lua_pop(L, 1);
  corio_runtime *rt = corio_from_state(L);
  CHECK(rt != NULL);
  CHECK(corio_attach(L, NULL) == rt);
  CHECK_EQ(corio_free(rt), CORIO_EINVAL);
  CHECK(luaL_dostring(L,
    "local corio = require 'corio'\n"
    "local a, b = corio.run(function() corio.sleep(0.01) return 1, 2 end)\n"
    "assert(a == 1 and b == 2)") == LUA_OK);
  lua_close(L);
}


/* from_state from a coroutine; register_module; strerror; version. */
static int open_host(lua_State *L) {
  lua_newtable(L);
  lua_pushinteger(L, 7);
  lua_setfield(L, -2, "seven");
  return 1;
}

static void access_calls(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  lua_State *co = lua_newthread(L);
  CHECK(corio_from_state(co) == rt);
  lua_pop(L, 1);
  lua_State *plain = luaL_newstate();
  CHECK(corio_from_state(plain) == NULL);
  lua_close(plain);
  CHECK_EQ(corio_register_module(rt, "host", open_host), CORIO_OK);
  CHECK_EQ(corio_register_module(rt, NULL, open_host), CORIO_EINVAL);
  CHECK(t_dostring(rt, "assert(require('host').seven == 7)") == LUA_OK);
  CHECK(strcmp(corio_version(), "0.1.0") >= 0);
  for (int c = 0; c >= CORIO_ERROR - 1; c--) CHECK(corio_strerror(c) != NULL);
  CHECK(corio_create(&(corio_config){.size = 3}, NULL) == NULL);
  int err = 0;
  CHECK(corio_create(&(corio_config){.size = 3}, &err) == NULL);
  CHECK_EQ(err, CORIO_EINVAL);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* CORIO_NO_SIGNALS: no disposition changes, also with an executor. */
static void no_signals(void) {
  struct sigaction before[3], after[3];
  int sigs[3] = {SIGPIPE, SIGXFSZ, SIGURG};
  for (int i = 0; i < 3; i++) {               /* from a known state */
    signal(sigs[i], SIG_DFL);
    sigaction(sigs[i], NULL, &before[i]);
  }
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.flags = CORIO_NO_SIGNALS;
  corio_runtime *rt = corio_create(&cfg, NULL);
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "assert(corio.to_thread(function(a) return a * 2 "
                          "end, 21) == 42)\n"
                          /* a SIGPIPE handler closed: SIG_DFL stays, not
                          ** corio's SIG_IGN */
                          "require('corio.signal').on('SIGPIPE', "
                          "function() end):close()"), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  for (int i = 0; i < 3; i++) {
    sigaction(sigs[i], NULL, &after[i]);
    CHECK(before[i].sa_handler == after[i].sa_handler);
  }
  signal(SIGPIPE, SIG_IGN);                   /* as the other tests had it */
  signal(SIGXFSZ, SIG_IGN);
}


const t_case t_api[] = {
  {"spawn_and_run", spawn_and_run},
  {"spawn_bad", spawn_bad},
  {"report_hook", report_hook},
  {"run_until", run_until},
  {"nowait_sleep", nowait_sleep},
  {"nowait_nested_run", nowait_nested_run},
  {"nowait_deadlock", nowait_deadlock},
  {"nowait_new_watchers", nowait_new_watchers},
  {"backend_timeout", backend_timeout},
  {"reentrancy", reentrancy},
  {"stop", stop},
  {"stop_then_run_main", stop_then_run_main},
  {"cfuture_loop_thread", cfuture_loop_thread},
  {"cfuture_cancel", cfuture_cancel},
  {"port_after_free", port_after_free},
  {"cfuture_after_free", cfuture_after_free},
  {"main_failure", main_failure},
  {"free_with_pending_work", free_with_pending_work},
  {"attach", attach},
  {"access", access_calls},
  {"no_signals", no_signals},
  {NULL, NULL}
};
