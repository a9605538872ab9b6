/*
** uv_host.c -- host (b): the host owns a libuv loop with a timer and a TCP
** server of its own, and lends the loop to corio.  A Lua task connects to
** the host's server, reads its greeting and finishes; then corio_free
** closes only corio's handles, and the host's timer and server go on
** until the host closes them.
** Build: make build/embed_uv_host
*/
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "corio.h"

static int ticks;
static uv_write_t wreq;

static void on_tick(uv_timer_t *t) { (void)t; ticks++; }

static void on_written(uv_write_t *req, int status) {
  (void)status;
  uv_close((uv_handle_t *)req->handle, (uv_close_cb)free);
}

static void on_conn(uv_stream_t *server, int status) {
  uv_tcp_t *c = malloc(sizeof *c);
  uv_tcp_init(server->loop, c);
  if (status == 0 && uv_accept(server, (uv_stream_t *)c) == 0) {
    static char hello[] = "hello from the host\n";
    uv_buf_t b = uv_buf_init(hello, sizeof hello - 1);
    if (uv_write(&wreq, (uv_stream_t *)c, &b, 1, on_written) == 0) return;
  }
  uv_close((uv_handle_t *)c, (uv_close_cb)free);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  uv_timer_t timer;
  uv_tcp_t server;
  struct sockaddr_in addr;
  int len = sizeof addr;
  uv_timer_init(loop, &timer);
  uv_timer_start(&timer, on_tick, 10, 10);
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&server, (struct sockaddr *)&addr, 0);
  uv_listen((uv_stream_t *)&server, 8, on_conn);
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);

  corio_config cfg;
  corio_config_init(&cfg);
  cfg.loop = loop;                            /* borrowed: never closed */
  corio_runtime *rt = corio_create(&cfg, NULL);
  if (rt == NULL) return 1;
  lua_State *L = corio_state(rt);
  luaL_loadstring(L, "local net = require 'corio.net'\n"
                     "local s = net.connect('127.0.0.1', ...)\n"
                     "return s:read('l')");
  lua_pushinteger(L, ntohs(addr.sin_port));
  corio_spawn(rt, 1);                         /* the Task */
  int n = corio_run_until(rt, -1);            /* runs the host's loop too */
  printf("corio read: %s (%d)\n", n == 1 ? lua_tostring(L, -1) : "?", n);
  corio_free(rt);

  int before = ticks;                         /* the host's handles live */
  while (ticks < before + 3) uv_run(loop, UV_RUN_ONCE);
  printf("host timer still ticks: %d -> %d\n", before, ticks);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_close((uv_handle_t *)&server, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 && n == 1 ? 0 : 1;
}
