/*
** w14_floor_uv.c -- W14's floor in plain C on libuv: what the same load
** costs a server that does nothing but one read and one write per round
** trip (no framing, no runtime), so the kernel's share of every W14 row
** can be read off.  As w14_stream_floor.lua: the handshake's head is
** answered with a bare 101; then each read (one client frame) gets a
** fixed 34-byte text frame back; a close frame (0x88) ends the connection.
** Prints "port=N", serves until killed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char UPGRADED[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
static const char REPLY[] = "\x81\x20" "0123456789abcdef0123456789abcdef";

typedef struct conn {
  uv_tcp_t tcp;
  int upgraded;
  size_t headlen;              /* bytes of the head kept in head[] */
  char head[4096];
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
  free(req);                   /* the first member of a wreq */
}

/* Writes at once; only what the socket did not take is copied and
** queued. */
static void send_bytes(uv_stream_t *s, const char *p, size_t n) {
  uv_buf_t out = uv_buf_init((char *)(uintptr_t)p, (unsigned int)n);
  int r = uv_try_write(s, &out, 1);
  if (r == (int)n) return;
  if (r < 0) r = 0;
  wreq *w = malloc(sizeof *w + (n - (size_t)r));
  if (w == NULL) return;
  memcpy(w->data, p + r, n - (size_t)r);
  w->buf = uv_buf_init(w->data, (unsigned int)(n - (size_t)r));
  uv_write(&w->req, s, &w->buf, 1, write_cb);
}

/* The handshake: the head collected until its blank line. */
static int head_done(conn *c, const char *p, size_t n) {
  if (n > sizeof c->head - c->headlen) return -1;
  memcpy(c->head + c->headlen, p, n);
  c->headlen += n;
  for (size_t i = 3; i < c->headlen; i++)
    if (memcmp(c->head + i - 3, "\r\n\r\n", 4) == 0) return 1;
  return 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (n == 0) return;
  if (!c->upgraded) {
    int d = head_done(c, b->base, (size_t)n);
    if (d < 0) uv_close((uv_handle_t *)s, on_close);
    else if (d > 0) {
      c->upgraded = 1;
      send_bytes(s, UPGRADED, sizeof UPGRADED - 1);
    }
    return;
  }
  if ((unsigned char)b->base[0] == 0x88) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  send_bytes(s, REPLY, sizeof REPLY - 1);
}

static void on_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  conn *c = malloc(sizeof *c);
  if (c == NULL) return;
  c->upgraded = 0;
  c->headlen = 0;
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
  struct sockaddr_storage ss;
  int len = sizeof ss;
  loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
  uv_tcp_init(loop, &server);
  if (uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&server, 511, on_conn)) {
    fprintf(stderr, "w14_floor_uv: cannot listen\n");
    return 1;
  }
  uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
  printf("port=%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
