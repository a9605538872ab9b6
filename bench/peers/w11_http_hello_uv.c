/*
** w11_http_hello_uv.c -- W11 floor: an HTTP hello server in plain C on
** libuv with no parser at all: every "\r\n\r\n" in the input ends a
** bodiless request and is answered with one fixed keep-alive response;
** the answers to one read go out in one write.  Serves on argv[1].
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
  "Content-Length: 12\r\n\r\nhello world\n";
#define RLEN (sizeof RESP - 1)

typedef struct conn {
  uv_tcp_t tcp;
  int match;                   /* bytes of "\r\n\r\n" seen so far */
  char buf[65536];
} conn;

typedef struct wreq {
  uv_write_t req;
  uv_buf_t buf;
  char data[];
} wreq;

static uv_loop_t *loop;
static uv_tcp_t server;

static void on_close(uv_handle_t *h) { free(h->data); }

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn *c = h->data;
  (void)hint;
  b->base = c->buf;
  b->len = sizeof c->buf;
}

static void write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  size_t reqs = 0;
  static const char end[] = "\r\n\r\n";
  for (ssize_t i = 0; i < n; i++) {
    if (b->base[i] == end[c->match]) {
      if (++c->match == 4) { reqs++; c->match = 0; }
    } else {
      c->match = b->base[i] == '\r' ? 1 : 0;
    }
  }
  if (!reqs) return;
  wreq *w = malloc(sizeof *w + reqs * RLEN);
  for (size_t i = 0; i < reqs; i++) memcpy(w->data + i * RLEN, RESP, RLEN);
  w->buf = uv_buf_init(w->data, (unsigned int)(reqs * RLEN));
  int r = uv_try_write(s, &w->buf, 1);
  if (r == (int)w->buf.len) { free(w); return; }
  if (r > 0) { w->buf.base += r; w->buf.len -= (unsigned int)r; }
  uv_write(&w->req, s, &w->buf, 1, write_cb);
}

static void on_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  c->match = 0;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  } else {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  loop = uv_default_loop();
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&server, 511, on_conn)) {
    fprintf(stderr, "listen failed\n");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
