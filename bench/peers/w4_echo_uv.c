/*
** w4_echo_uv.c -- W4 reference: a TCP echo server in plain C on libuv,
** written the usual way (one 64 KiB read buffer per connection, writes
** tried at once and queued with a copy only when the socket is full).
** Prints "port=N", serves until stdin closes.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct conn {
  uv_tcp_t tcp;
  char buf[65536];
} conn;

typedef struct wreq {
  uv_write_t req;
  uv_buf_t buf;
  char data[];
} wreq;

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_pipe_t in;
static char inbuf[256];

static void on_close(uv_handle_t *h) { free(h->data); }

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn *c = h->data;
  (void)hint;
  b->base = c->buf;
  b->len = sizeof c->buf;
}

static void write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req);                   /* the first member of a wreq */
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (n == 0) return;
  uv_buf_t out = uv_buf_init(b->base, (unsigned int)n);
  int r = uv_try_write(s, &out, 1);
  if (r == n) return;
  if (r < 0) r = 0;
  wreq *w = malloc(sizeof *w + (size_t)(n - r));
  memcpy(w->data, b->base + r, (size_t)(n - r));
  w->buf = uv_buf_init(w->data, (unsigned int)(n - r));
  uv_write(&w->req, s, &w->buf, 1, write_cb);
}

static void on_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  } else {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  b->base = inbuf;
  b->len = sizeof inbuf;
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  (void)b;
  if (n < 0) uv_stop(loop);
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
  uv_tcp_init(loop, &server);
  if (uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&server, 511, on_conn)) {
    fprintf(stderr, "w4_echo_uv: cannot listen\n");
    return 1;
  }
  uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
  printf("port=%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fflush(stdout);
  uv_pipe_init(loop, &in, 0);
  uv_pipe_open(&in, 0);
  uv_read_start((uv_stream_t *)&in, in_alloc, in_read);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
