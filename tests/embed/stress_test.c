/*
** stress_test.c -- life and death of runtimes: create/free 10,000 times
** on their own loop and on a borrowed one (memory and fds stay flat),
** freeing a busy runtime, the host's handles surviving corio_free, and
** an out-of-memory sweep.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"


static long rss_kib(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}


/* t_dostring with one integer argument for the chunk's `...`. */
static int t_dostring_n(corio_runtime *rt, const char *code, int n) {
  lua_State *L = corio_state(rt);
  if (luaL_loadstring(L, code) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  lua_pushinteger(L, n);
  return lua_pcall(L, 1, 0, 0);
}


static void cycle(uv_loop_t *loop) {
  corio_runtime *rt = t_new_on(loop);
  if (rt == NULL) return;
  CHECK(t_dostring(rt, "local corio = require 'corio'\n"
                       "corio.spawn(function() corio.sleep(10) end)") == 0);
  corio_port *p = corio_port_open(rt);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_NOWAIT), 1);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  corio_port_close(p);
}


static void create_free(uv_loop_t *loop) {
  long n = t_scale(10000);
  for (int i = 0; i < 100; i++) cycle(loop);   /* warm up the C library */
  long rss0 = rss_kib();
  int fds0 = t_count_fds();
  for (long i = 0; i < n; i++) cycle(loop);
  long grew = rss_kib() - rss0;
  printf("  %ld cycles: RSS %+ld KiB, fds %d -> %d\n", n, grew, fds0,
         t_count_fds());
  /* Sanitizers keep freed memory in quarantine: RSS means nothing there
  ** (their own leak checks stand in). */
  if (getenv("CORIO_EMBED_NO_RSS") == NULL) CHECK(grew < 2048);
  CHECK_EQ(t_count_fds(), fds0);
}


static void create_free_own(void) { create_free(NULL); }


static void create_free_borrowed(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  create_free(&loop);
  CHECK_EQ(uv_loop_close(&loop), 0);          /* nothing of corio's left */
}


/* Free while 1,000 tasks sleep, 100 servers listen, fs requests and
** executor jobs run: under a second. */
static void free_busy(void) {
  corio_runtime *rt = t_new();
  /* TSan delivers the executor's interrupt signal only at an intercepted
  ** call, which a spinning Lua job never makes: no spinning jobs there. */
  CHECK(t_dostring_n(rt,
    "local corio = require 'corio'\n"
    "local net, fs = require 'corio.net', require 'corio.fs'\n"
    "for i = 1, 1000 do corio.spawn(corio.sleep, 100) end\n"
    "for i = 1, 100 do corio.spawn(function()\n"
    "  net.serve('127.0.0.1', 0, function(s) end):serve_forever() end) end\n"
    "for i = 1, 20 do corio.spawn(function()\n"
    "  while true do fs.stat('/') fs.read_file('/etc/hostname') end end) end\n"
    "for i = 1, (...) do corio.spawn(function()\n"
    "  corio.to_thread(function() local x = 0 while true do x = x + 1 end "
    "end) end) end\n", getenv("CORIO_EMBED_NO_SPIN") ? 0 : 4) == LUA_OK);
  for (int i = 0; i < 20; i++) corio_loop_run(rt, CORIO_RUN_NOWAIT);
  double t0 = t_now();
  CHECK_EQ(corio_free(rt), CORIO_OK);
  double s = t_now() - t0;
  printf("  corio_free took %.0f ms\n", s * 1000);
  /* Under valgrind (the scaled run) threads take turns and a spinning
  ** job sees its interrupt only when its turn comes: there the bound only
  ** says that freeing does not hang (it took 0.1 to 7 s). */
  CHECK(s < (t_scale(50) < 50 ? 30.0 : 1.0));
}


/* {================================================================
** The host's handles survive corio_free on a borrowed loop
** ================================================================ */

static int host_ticks, host_accepted, client_connected;

static void on_tick(uv_timer_t *t) {
  (void)t;
  host_ticks++;
}

static void on_host_conn(uv_stream_t *server, int status) {
  uv_tcp_t *c = malloc(sizeof *c);
  uv_tcp_init(server->loop, c);
  if (status == 0 && uv_accept(server, (uv_stream_t *)c) == 0)
    host_accepted++;
  uv_close((uv_handle_t *)c, (uv_close_cb)free);
}

static void on_connected(uv_connect_t *req, int status) {
  if (status == 0) client_connected++;
  uv_close((uv_handle_t *)req->handle, NULL);
}

static void host_handles_survive(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, on_tick, 1, 1);
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&loop, &server);
  CHECK_EQ(uv_tcp_bind(&server, (struct sockaddr *)&addr, 0), 0);
  CHECK_EQ(uv_listen((uv_stream_t *)&server, 16, on_host_conn), 0);
  int len = sizeof addr;
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);

  corio_runtime *rt = t_new_on(&loop);
  CHECK(t_dostring(rt,
    "local corio, net = require 'corio', require 'corio.net'\n"
    "for i = 1, 10 do corio.spawn(corio.sleep, 100) end\n"
    "corio.spawn(function() net.serve('127.0.0.1', 0, function() end)"
    ":serve_forever() end)") == LUA_OK);
  for (int i = 0; i < 5; i++) corio_loop_run(rt, CORIO_RUN_NOWAIT);
  CHECK_EQ(corio_free(rt), CORIO_OK);

  host_ticks = host_accepted = client_connected = 0;
  uv_tcp_t client;
  uv_connect_t creq;
  uv_tcp_init(&loop, &client);
  uv_tcp_connect(&creq, &client, (struct sockaddr *)&addr, on_connected);
  double t0 = t_now();
  while ((host_ticks < 5 || host_accepted < 1 || client_connected < 1) &&
         t_now() - t0 < 5)
    uv_run(&loop, UV_RUN_ONCE);
  CHECK(host_ticks >= 5);
  CHECK_EQ(host_accepted, 1);
  CHECK_EQ(client_connected, 1);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_close((uv_handle_t *)&server, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

/* }================================================================ */


/* {================================================================
** Out of memory: the allocator refuses every call from the Nth on
** ================================================================ */

typedef struct budget { long calls, fail_at; } budget;

static void *limited_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  budget *b = ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  if (nsize > osize || p == NULL) {          /* growing: may fail */
    if (++b->calls >= b->fail_at) return NULL;
  }
  return realloc(p, nsize);
}

static long oom_try(long fail_at) {
  budget b = {0, fail_at};
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.alloc = limited_alloc;
  cfg.alloc_ud = &b;
  int err = 0;
  corio_runtime *rt = corio_create(&cfg, &err);
  if (rt == NULL) {
    CHECK_EQ(err, CORIO_ENOMEM);
    return b.calls;
  }
  lua_State *L = corio_state(rt);
  if (luaL_loadstring(L, "local corio = require 'corio'\n"
                         "local t = corio.spawn(function() corio.sleep(0) "
                         "return 1 end)\n"
                         "corio.sleep(0.001) return t:await()") == LUA_OK)
    corio_run_main(rt, 0);
  else
    lua_pop(L, 1);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  return b.calls;
}

static void oom_sweep(void) {
  long total = oom_try(1L << 40);             /* how many it takes */
  long step = total / t_scale(2000) + 1;
  int tried = 0;
  fflush(stderr);
  int saved = dup(2);                         /* reports are expected */
  FILE *null = fopen("/dev/null", "w");
  dup2(fileno(null), 2);
  for (long n = 1; n <= total; n += n < 400 ? 1 : step) {
    oom_try(n);
    tried++;
  }
  dup2(saved, 2);
  close(saved);
  fclose(null);
  printf("  %d failure points over %ld allocations\n", tried, total);
}

/* }================================================================ */


const t_case t_stress[] = {
  {"create_free_own", create_free_own},
  {"create_free_borrowed", create_free_borrowed},
  {"free_busy", free_busy},
  {"host_handles_survive", host_handles_survive},
  {"oom_sweep", oom_sweep},
  {NULL, NULL}
};
