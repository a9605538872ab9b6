/*
** W9 in C on libuv: spawn 1,000 `true` processes, 16 at a time (stdio
** inherited), each handle closed in its exit callback.
** Build: cc -O2 -o w9_spawn w9_spawn.c -luv
*/
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define N 1000
#define FLIGHT 16

static uv_loop_t *loop;
static int started, done;
static char *args[] = {"true", NULL};
static uv_stdio_container_t stdio[3];

static void start(void);

static void on_close(uv_handle_t *h) {
  free(h);
  start();
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  (void)sig;
  if (status == 0) done++;
  uv_close((uv_handle_t *)p, on_close);
}

static void start(void) {
  if (started >= N) return;
  started++;
  uv_process_t *p = malloc(sizeof *p);
  uv_process_options_t o = {0};
  o.file = "true";
  o.args = args;
  o.exit_cb = on_exit_cb;
  o.stdio = stdio;
  o.stdio_count = 3;
  int r = uv_spawn(loop, p, &o);
  if (r) { fprintf(stderr, "spawn: %s\n", uv_strerror(r)); exit(1); }
}

int main(void) {
  loop = uv_default_loop();
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < FLIGHT; i++) start();
  uv_run(loop, UV_RUN_DEFAULT);
  printf("time=%.4f check=%d\n", (uv_hrtime() - t0) / 1e9, done);
  return 0;
}
