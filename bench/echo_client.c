/*
** echo_client.c -- the W4 load client: drives any TCP echo server, on
** libuv, in one thread.
**
**   echo_client HOST PORT rt   [CONNS [ROUNDS [SIZE]]]   (100, 2000, 64)
**     CONNS connections, each sending SIZE bytes and waiting for all of
**     them to come back, ROUNDS times.  Prints round trips per second.
**   echo_client HOST PORT bulk [MIB]                      (512)
**     one connection streaming MIB MiB out while reading the echo back
**     (at most 4 MiB in flight).  Prints MiB/s.
**   echo_client HOST PORT ws   [CONNS [ROUNDS]]          (50, 2000)
**     the W14 load: CONNS WebSocket connections (an upgrade, then one
**     pre-masked 32-byte text frame and its 34-byte echo, ROUNDS times),
**     so the client does no framing work of its own.
**   echo_client HOST PORT idle [CONNS]                    (10000)
**     opens CONNS connections, does one round trip on each (so the
**     server has accepted and served them), prints "ready" and holds them
**     until stdin closes or a line arrives.
**
** Output is one line of key=value pairs (time=, rt_per_s=, mib_per_s=,
** check=ok).  The echoed bytes are checked: a position pattern, sampled
** at the start of every chunk read (and fully in rt mode).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define CHUNK (64 * 1024)
#define WINDOW (4 * 1024 * 1024)

enum { MODE_RT, MODE_BULK, MODE_IDLE, MODE_WS };

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  size_t got;                  /* bytes of the current round received
                                  (ws: of the upgrade's answer, first) */
  char head[512];              /* ws: the upgrade's answer */
  int rounds;                  /* rounds left */
  int idx;
} conn;

static uv_loop_t *loop;
static int mode, nconns = 100, rounds = 2000;
static size_t size = 64;
static char *msg;              /* the rt payload (ws: the masked frame) */
static const char *reply;      /* what comes back: msg, or the ws echo */
static size_t reply_len;
static int connected, finished, failed;
static uint64_t t0;
static struct sockaddr_storage addr;
static conn *conns;
static char rbuf[CHUNK];
static uv_tty_t tty;
static uv_pipe_t in_pipe;

/* bulk */
static uint64_t total, sent, recvd;
static char *pattern;          /* CHUNK + 256 bytes of the pattern */
static int writing;

static void die(const char *what, int r) {
  fprintf(stderr, "echo_client: %s: %s\n", what, uv_strerror(r));
  exit(1);
}


static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}


static void start_round(conn *c);

static void on_write(uv_write_t *req, int status) {
  (void)req;
  if (status < 0) die("write", status);
}


static void finish_all(void) {
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  if (mode != MODE_BULK)
    printf("time=%.6f rt_per_s=%.0f check=%s\n", secs,
           (double)nconns * rounds / secs, failed ? "bad" : "ok");
  else
    printf("time=%.6f mib_per_s=%.1f check=%s\n", secs,
           (double)total / (1024 * 1024) / secs, failed ? "bad" : "ok");
  fflush(stdout);
  uv_stop(loop);
}


static void rt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  if (n < 0) die("read", (int)n);
  if (n == 0) return;
  if (c->got + (size_t)n > reply_len ||
      memcmp(buf->base, reply + c->got, (size_t)n) != 0)
    failed = 1;
  c->got += (size_t)n;
  if (c->got < reply_len) return;
  c->got = 0;
  if (--c->rounds > 0) {
    start_round(c);
  } else if (++finished == nconns) {
    finish_all();
  }
}


static void start_round(conn *c) {
  uv_buf_t b = uv_buf_init(msg, (unsigned int)size);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r == (int)size) return;
  if (r > 0) {
    b.base += r;
    b.len -= (size_t)r;
  }
  r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r) die("write", r);
}


/* Bulk: write while fewer than WINDOW bytes are in flight. */
static void bulk_pump(void);

static void bulk_write_cb(uv_write_t *req, int status) {
  (void)req;
  if (status < 0) die("write", status);
  writing = 0;
  bulk_pump();
}


static void bulk_pump(void) {
  conn *c = &conns[0];
  while (!writing && sent < total && sent - recvd < WINDOW) {
    size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
    uv_buf_t b = uv_buf_init(pattern + sent % 256, (unsigned int)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == UV_EAGAIN) r = 0;
    if (r < 0) die("write", r);
    sent += (uint64_t)r;
    if ((size_t)r < n) {
      b.base += r;
      b.len -= (size_t)r;
      writing = 1;
      sent += b.len;
      r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, bulk_write_cb);
      if (r) die("write", r);
    }
  }
}


static void bulk_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  if (n < 0) die("read", (int)n);
  if (n == 0) return;
  if ((unsigned char)buf->base[0] != (unsigned char)(recvd % 256))
    failed = 1;
  recvd += (uint64_t)n;
  if (recvd >= total) {
    if (recvd > total) failed = 1;
    finish_all();
    return;
  }
  bulk_pump();
}


static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  (void)buf;
  if (n < 0) die("read", (int)n);
  c->got += (size_t)n;
  if (c->got >= size && c->rounds) {
    c->rounds = 0;
    if (++finished == nconns) {
      printf("ready\n");
      fflush(stdout);
    }
  }
}


/* ws: the upgrade's answer, up to its blank line; nothing may follow it
** (the server speaks only when spoken to). */
static const char UPGRADE[] =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
  "Sec-WebSocket-Version: 13\r\n\r\n";
static int upgraded;
static void begin(void);

static void ws_head_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  if (n < 0) die("read (upgrade)", (int)n);
  if (c->got + (size_t)n >= sizeof c->head) {
    fprintf(stderr, "echo_client: upgrade answer too long\n");
    exit(1);
  }
  memcpy(c->head + c->got, buf->base, (size_t)n);
  c->got += (size_t)n;
  c->head[c->got] = '\0';
  char *end = strstr(c->head, "\r\n\r\n");
  if (end == NULL) return;
  if (strncmp(c->head, "HTTP/1.1 101", 12) != 0 ||
      (size_t)(end + 4 - c->head) != c->got) {
    fprintf(stderr, "echo_client: bad upgrade answer: %s\n", c->head);
    exit(1);
  }
  c->got = 0;
  uv_read_stop(s);
  if (++upgraded == nconns) begin();
}


static void ws_upgrade(conn *c) {
  uv_buf_t b = uv_buf_init((char *)UPGRADE, sizeof UPGRADE - 1);
  int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r) die("write", r);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, ws_head_read);
}


static void stdin_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  (void)buf;
  if (n != 0) uv_stop(loop);                  /* a line, or EOF */
}


static void begin(void) {
  t0 = uv_hrtime();
  if (mode == MODE_BULK) {
    uv_read_start((uv_stream_t *)&conns[0].tcp, alloc_cb, bulk_read);
    bulk_pump();
    return;
  }
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
                  mode == MODE_IDLE ? idle_read : rt_read);
    start_round(c);
  }
}


/* Connects are paced (at most 256 in flight) so a big idle run does not
** overflow the server's accept backlog. */
static int next_conn;

static void connect_next(void);

static void on_connect(uv_connect_t *req, int status) {
  (void)req;
  if (status < 0) die("connect", status);
  if (mode == MODE_WS) ws_upgrade(req->handle->data);   /* begins when all are up */
  if (++connected < nconns) connect_next();
  else if (mode != MODE_WS) begin();
}


static void connect_next(void) {
  if (next_conn >= nconns) return;
  conn *c = &conns[next_conn++];
  int r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&addr,
                         on_connect);
  if (r) die("connect", r);
}


int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: echo_client HOST PORT rt|bulk|idle [...]\n");
    return 2;
  }
  loop = uv_default_loop();
  const char *host = argv[1];
  int port = atoi(argv[2]);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "echo_client: bad address %s\n", host);
    return 2;
  }
  if (strcmp(argv[3], "rt") == 0) {
    mode = MODE_RT;
    if (argc > 4) nconns = atoi(argv[4]);
    if (argc > 5) rounds = atoi(argv[5]);
    if (argc > 6) size = (size_t)atol(argv[6]);
  } else if (strcmp(argv[3], "bulk") == 0) {
    mode = MODE_BULK;
    nconns = 1;
    total = (uint64_t)(argc > 4 ? atol(argv[4]) : 512) * 1024 * 1024;
  } else if (strcmp(argv[3], "ws") == 0) {
    mode = MODE_WS;
    nconns = argc > 4 ? atoi(argv[4]) : 50;
    rounds = argc > 5 ? atoi(argv[5]) : 2000;
  } else if (strcmp(argv[3], "idle") == 0) {
    mode = MODE_IDLE;
    nconns = argc > 4 ? atoi(argv[4]) : 10000;
    rounds = 1;
    size = 1;
  } else {
    fprintf(stderr, "echo_client: unknown mode %s\n", argv[3]);
    return 2;
  }
  struct rlimit rl;                           /* idle needs many fds */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  msg = malloc(size);
  for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + i % 26);
  reply = msg;
  reply_len = size;
  if (mode == MODE_WS) {               /* FIN text, masked, 32 bytes */
    static const char payload[] = "0123456789abcdef0123456789abcdef";
    static const unsigned char key[4] = {0x11, 0x22, 0x33, 0x44};
    static char echo[34] = {(char)0x81, 32};
    size = 2 + 4 + 32;
    msg = realloc(msg, size);
    msg[0] = (char)0x81;
    msg[1] = (char)(0x80 | 32);
    memcpy(msg + 2, key, 4);
    for (int i = 0; i < 32; i++) msg[6 + i] = (char)(payload[i] ^ key[i % 4]);
    memcpy(echo + 2, payload, 32);
    reply = echo;
    reply_len = sizeof echo;
  }
  pattern = malloc(CHUNK + 256);
  for (size_t i = 0; i < CHUNK + 256; i++) pattern[i] = (char)(i % 256);
  conns = calloc((size_t)nconns, sizeof *conns);
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    c->idx = i;
    c->rounds = rounds;
    uv_tcp_init(loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
  }
  for (int i = 0; i < 256; i++) connect_next();
  if (mode == MODE_IDLE) {
    if (uv_guess_handle(0) == UV_TTY) {
      uv_tty_init(loop, &tty, 0, 1);
      uv_read_start((uv_stream_t *)&tty, alloc_cb, stdin_read);
    } else {
      uv_pipe_init(loop, &in_pipe, 0);
      uv_pipe_open(&in_pipe, 0);
      uv_read_start((uv_stream_t *)&in_pipe, alloc_cb, stdin_read);
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return failed ? 1 : 0;
}
