/*
** wsconn.c -- a WebSocket connection's framing on libwslay, in pull mode
** (see wsconn.h and the comment at the top of ws.c).
**
** wslay's callbacks never touch a socket: recv reads from the bytes
** handed to ws__feed (borrowed for that call only), send appends to
** c->out, and a complete message is copied into c's queue.  Pongs are
** consumed here; close frames are read back through wslay's getters.
**
** The wslay context is made with the connection, not on the first frame
** that needs it: every connection that ends cleanly receives a close
** frame, which only wslay reads, so a lazy context would save no work
** per connection (only its memory, about 8 KiB, while no control frame
** has come).
*/
#include <stdlib.h>   /* malloc, realloc, free */
#include <string.h>   /* memcpy, memset */

#include <openssl/rand.h>       /* masking keys */

#include "wsconn.h"
#include "tls/ossl.h"  /* OpenSSL, loaded on first use */

/* {====================================================================
** wslay callbacks: memory in, memory out
** ===================================================================== */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  ws_conn *c = ud;
  (void)flags;
  if (c->inlen == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (len > c->inlen) len = c->inlen;
  memcpy(buf, c->in, len);
  c->in += len;
  c->inlen -= len;
  return (ssize_t)len;
}


static int out_append(ws_conn *c, const void *p, size_t len) {
  if (c->outcap - c->outlen < len) {
    size_t cap = c->outcap ? c->outcap : 256;
    while (cap - c->outlen < len) cap *= 2;
    char *n = realloc(c->out, cap);
    if (n == NULL) return -1;
    c->out = n;
    c->outcap = cap;
  }
  memcpy(c->out + c->outlen, p, len);
  c->outlen += len;
  return 0;
}


static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  ws_conn *c = ud;
  (void)flags;
  if (out_append(c, data, len) != 0) {
    c->nomem = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}


/* Masking keys must be unpredictable to the page's script (RFC 6455
** section 10.3: cache poisoning through a proxy), hence a CSPRNG. */
static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *ud) {
  (void)ud;
  if (RAND_bytes(buf, (int)len) != 1) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return 0;
}


/* Pongs are consumed here: receive() never returns them.  Close frames
** are read back through wslay's status getters.
**
** A ping's pong goes out at once: wslay has just queued it, and once a
** close is queued (the peer's close later in the same read, answered
** before wslay_event_recv returns) wslay drops every other queued control
** frame, so a ping followed by a close would go unanswered; RFC 6455
** section 5.5.2 wants the pong first.  wslay_event_send only works the
** output side, which wslay_event_recv is not using at this point. */
static void fail_with(ws_conn *c, int code);
#define fail_framing(c) fail_with((c), 1002)

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  ws_conn *c = ud;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length == 1) {
    /* a close body starts with a 2-byte code (RFC 6455 5.5.1), which
       wslay does not check: the peer broke the protocol (1002) */
    fail_framing(c);
    return;
  }
  if (arg->opcode == WSLAY_PING) {
    wslay_event_send(ctx);      /* no memory: c->nomem, seen by wslay_in */
    c->wr_off = !wslay_event_get_write_enabled(ctx);
    return;
  }
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length > 2) {
    size_t n = arg->msg_length - 2;   /* wslay checked n <= 123 */
    if (n > sizeof c->reason) n = sizeof c->reason;
    memcpy(c->reason, arg->msg + 2, n);
    c->reasonlen = n;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return;
  ws_msg *m = malloc(sizeof(ws_msg) + arg->msg_length);
  if (m == NULL) { c->nomem = 1; return; }
  m->next = NULL;
  m->len = arg->msg_length;
  m->opcode = arg->opcode;
  if (arg->msg_length) memcpy(m->data, arg->msg, arg->msg_length);
  if (c->tail) c->tail->next = m;
  else c->head = m;
  c->tail = m;
}

/* }==================================================================== */


void ws__free(ws_conn *c) {
  if (c->ctx == NULL) return;
  wslay_event_context_free(c->ctx);
  c->ctx = NULL;
  for (ws_msg *m = c->head, *n; m; m = n) { n = m->next; free(m); }
  c->head = c->tail = NULL;
  free(c->out);
  c->out = NULL;
  c->outlen = c->outcap = 0;
  free(c->held);
  c->held = NULL;
  c->heldlen = c->heldcap = 0;
}



int ws__flush(ws_conn *c) {
  int r = wslay_event_send(c->ctx);
  c->wr_off = !wslay_event_get_write_enabled(c->ctx);
  if (r != 0 && c->nomem) {
    c->nomem = 0;
    return -1;
  }
  return 0;
}


/* A close frame with code 1002 (or 1009), built here: for a framing
** error wslay queues a close without a code (its frame layer has no code
** to give). */
static void fail_with(ws_conn *c, int code) {
  uint8_t f[8] = {0x88, 0x02};
  size_t n = 2;
  uint8_t mask[4] = {0, 0, 0, 0};
  if (!c->server) {
    f[1] |= 0x80;
    if (RAND_bytes(mask, 4) != 1) memset(mask, 0x5a, 4);
    memcpy(f + 2, mask, 4);
    n = 6;
  }
  f[n] = (uint8_t)((code >> 8) ^ mask[0]);
  f[n + 1] = (uint8_t)((code & 0xff) ^ mask[1]);
  if (out_append(c, f, n + 2) != 0) c->nomem = 1;
  c->failed = 1;
  c->failcode = code;
  c->rd_off = c->wr_off = 1;
  wslay_event_shutdown_read(c->ctx);
  wslay_event_shutdown_write(c->ctx);
}



int ws__init(ws_conn *c, int server, uint64_t max) {
  static const struct wslay_event_callbacks cbs = {
    on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg
  };
  c->server = server;
  int r = server ? wslay_event_context_server_init(&c->ctx, &cbs, c)
                 : wslay_event_context_client_init(&c->ctx, &cbs, c);
  if (r != 0) { c->ctx = NULL; return -1; }
  wslay_event_config_set_max_recv_msg_length(c->ctx, max);
  c->max = max;
  return 0;
}


/* {====================================================================
** Input: the fast path, and wslay for the rest
** ===================================================================== */

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF
** (what wslay accepts in a text message).  ASCII runs go 8 at a time. */
int ws__utf8_ok(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p, *e = s + n;
  while (s < e) {
    while (e - s >= 8) {
      uint64_t w;
      memcpy(&w, s, 8);
      if (w & UINT64_C(0x8080808080808080)) break;
      s += 8;
    }
    if (s == e) break;
    unsigned c = *s;
    if (c < 0x80) { s++; continue; }
    size_t k;
    unsigned lo = 0x80, hi = 0xbf;         /* the second byte's range */
    if (c >= 0xc2 && c <= 0xdf) k = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      k = 2;
      if (c == 0xe0) lo = 0xa0;
      else if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      k = 3;
      if (c == 0xf0) lo = 0x90;
      else if (c == 0xf4) hi = 0x8f;
    } else {
      return 0;
    }
    if ((size_t)(e - s) <= k || s[1] < lo || s[1] > hi) return 0;
    for (size_t j = 2; j <= k; j++)
      if ((s[j] & 0xc0) != 0x80) return 0;
    s += k + 1;
  }
  return 1;
}


/* Hands n bytes (part of wslay's current frame) to wslay. */
static int wslay_in(ws_conn *c, const char *p, size_t n) {
  c->in = p;
  c->inlen = n;
  int r = wslay_event_recv(c->ctx);
  c->rd_off = !wslay_event_get_read_enabled(c->ctx);
  c->in = NULL;
  c->inlen = 0;
  if (c->nomem || r == WSLAY_ERR_NOMEM) {
    c->nomem = 0;
    return -1;
  }
  if (r != 0) fail_framing(c);   /* only the frame layer fails here */
  return 0;
}


/* d = p XOR the 4-byte mask, 8 bytes at a time; d may be p. */
static void unmask(char *d, const char *p, size_t n,
                   const unsigned char *mask) {
  uint32_t k4;
  uint64_t k8;
  memcpy(&k4, mask, 4);
  k8 = ((uint64_t)k4 << 32) | k4;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= k8;
    memcpy(d + i, &w, 8);
  }
  for (; i < n; i++) d[i] = (char)(p[i] ^ mask[i & 3]);
}


int ws__frame(const ws_conn *c, const char *b, size_t len, size_t *hlen,
              uint64_t *plen) {
  const unsigned char *h = (const unsigned char *)b;
  if (len < 2) return WS_FR_NEED;
  unsigned l7 = h[1] & 0x7f;
  int masked = (h[1] & 0x80) != 0;
  size_t hl = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + (masked ? 4 : 0);
  if (len < hl) return WS_FR_NEED;
  uint64_t pl = l7;
  if (l7 == 126) pl = ((uint64_t)h[2] << 8) | h[3];
  else if (l7 == 127) {
    pl = 0;
    for (int i = 2; i < 10; i++) pl = (pl << 8) | h[i];
  }
  *hlen = hl;
  *plen = pl;
  int op = h[0] & 0x0f, fin = (h[0] & 0x80) != 0;
  int fast = fin && (h[0] & 0x70) == 0 && !c->frag
    && (op == WSLAY_TEXT_FRAME || op == WSLAY_BINARY_FRAME)
    && masked == c->server && pl <= c->max
    && pl <= WS_FAST_MAX && (l7 < 126 || (l7 == 126 && pl >= 126));
  if (!fast) return WS_FR_SLOW;
  return len - hl < pl ? WS_FR_NEED : WS_FR_FAST;
}


int ws__take_fast(const ws_conn *c, char *b, size_t hlen, size_t plen) {
  const unsigned char *mask = c->server ? (const unsigned char *)b + hlen - 4
                                        : NULL;
  char *p = b + hlen;
  if (mask) unmask(p, p, plen, mask);
  if ((b[0] & 0x0f) == WSLAY_TEXT_FRAME && !ws__utf8_ok(p, plen)) {
    if (mask) unmask(p, p, plen, mask);       /* as it was, for wslay */
    return 0;
  }
  return 1;
}


/* A fast frame's payload, unmasked into a queued message; 1 queued, 0
** not (invalid UTF-8: wslay will say so), -1 out of memory. */
static int fast_msg(ws_conn *c, int op, const unsigned char *mask,
                    const char *p, size_t n) {
  ws_msg *m = malloc(sizeof(ws_msg) + n);
  if (m == NULL) return -1;
  if (mask) unmask(m->data, p, n, mask);
  else if (n) memcpy(m->data, p, n);
  if (op == WSLAY_TEXT_FRAME && !ws__utf8_ok(m->data, n)) {
    free(m);
    return 0;
  }
  m->next = NULL;
  m->len = n;
  m->opcode = (uint8_t)op;
  if (c->tail) c->tail->next = m;
  else c->head = m;
  c->tail = m;
  return 1;
}


/* Runs over b[0..len): fast frames are queued, the rest goes to wslay.
** Returns the bytes consumed (the rest is an incomplete frame start to
** keep), or -1 out of memory. */
static ptrdiff_t scan(ws_conn *c, const char *b, size_t len) {
  size_t off = 0;
  while (off < len && !c->failed) {
    size_t avail = len - off;
    if (c->slow_left > 0) {
      size_t k = c->slow_left < avail ? (size_t)c->slow_left : avail;
      if (wslay_in(c, b + off, k) != 0) return -1;
      off += k;
      c->slow_left -= k;
      continue;
    }
    const unsigned char *h = (const unsigned char *)b + off;
    if (c->nofast || c->rd_off) {
      c->slow_left = UINT64_MAX;       /* wslay has it all from now on */
      continue;
    }
    size_t hlen;
    uint64_t plen;
    int fr = ws__frame(c, b + off, avail, &hlen, &plen);
    if (fr == WS_FR_NEED) break;       /* wait for the rest */
    int op = h[0] & 0x0f, fin = (h[0] & 0x80) != 0;
    if (fr == WS_FR_FAST) {
      int r = fast_msg(c, op, c->server ? h + hlen - 4 : NULL,
                       b + off + hlen, (size_t)plen);
      if (r < 0) return -1;
      if (r > 0) {
        off += hlen + (size_t)plen;
        continue;
      }
    } else if (op <= WSLAY_BINARY_FRAME) {   /* what wslay will make of it */
      if (op != 0 && !fin) c->frag = 1;
      else if (op == 0 && fin) c->frag = 0;
      if (op != 0) c->pieces = 0;
      if ((op != 0 && !fin) || op == 0) {   /* a fragment: see WS_PIECE_COST */
        c->pieces++;
        if (c->pieces > WS_PIECE_MIN && c->pieces > c->max / WS_PIECE_COST) {
          fail_with(c, 1009);
          break;
        }
      }
    }
    /* to wslay, header and payload (the sum cannot overflow: plen is at
    ** most 2^64 - 1 only if wslay rejects it at the header) */
    c->slow_left = plen > UINT64_MAX - hlen ? UINT64_MAX : hlen + plen;
  }
  return (ptrdiff_t)off;
}


int ws__feed(ws_conn *c, const char *p, size_t n) {
  if (c->failed) return 0;
  const char *b = p;
  size_t len = n;
  if (c->heldlen > 0) {                /* join the held frame start */
    if (c->heldcap - c->heldlen < n) {
      size_t cap = c->heldcap ? c->heldcap : 256;
      while (cap - c->heldlen < n) cap *= 2;
      char *q = realloc(c->held, cap);
      if (q == NULL) return -1;
      c->held = q;
      c->heldcap = cap;
    }
    memcpy(c->held + c->heldlen, p, n);
    c->heldlen += n;
    b = c->held;
    len = c->heldlen;
  }
  ptrdiff_t used = scan(c, b, len);
  if (used < 0) return -1;
  size_t rest = c->failed ? 0 : len - (size_t)used;
  if (b == c->held) {
    if (rest) memmove(c->held, c->held + used, rest);
    c->heldlen = rest;
  } else if (rest) {                   /* at most one frame: bounded */
    if (c->heldcap < rest) {
      size_t cap = 256;
      while (cap < rest) cap *= 2;
      char *q = realloc(c->held, cap);
      if (q == NULL) return -1;
      c->held = q;
      c->heldcap = cap;
    }
    memcpy(c->held, b + used, rest);
    c->heldlen = rest;
  }
  if (c->heldlen == 0 && c->heldcap > 4096) {  /* keep no big buffer idle */
    free(c->held);
    c->held = NULL;
    c->heldcap = 0;
  }
  return ws__flush(c);
}


/* {====================================================================
** Output: data frames without wslay's queue
** ===================================================================== */

size_t ws__header(const ws_conn *c, int op, size_t n, unsigned char *h) {
  if (c->failed || c->wr_off) return 0;    /* a sent close disables writes */
  h[0] = (unsigned char)(0x80 | op);
  if (n < 126) {
    h[1] = (unsigned char)n;
    return 2;
  }
  if (n <= 0xffff) {
    h[1] = 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; i++)
    h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
  return 10;
}


int ws__send(ws_conn *c, int op, const char *p, size_t n, int copy) {
  unsigned char h[14];
  size_t hlen = ws__header(c, op, n, h);
  if (hlen == 0) return 0;
  if (c->server) {
    if (out_append(c, h, hlen) != 0) return -1;
    if (copy && n && out_append(c, p, n) != 0) return -1;
    return 1;
  }
  unsigned char *mask = h + hlen;
  h[1] |= 0x80;
  if (RAND_bytes(mask, 4) != 1) return -1;
  hlen += 4;
  if (out_append(c, h, hlen) != 0 || out_append(c, p, n) != 0) return -1;
  char *d = c->out + c->outlen - n;
  for (size_t i = 0; i < n; i++) d[i] = (char)(d[i] ^ mask[i & 3]);
  return 1;
}

/* }==================================================================== */


void ws__pop(ws_conn *c) {
  ws_msg *m = c->head;
  if (m == NULL) return;
  c->head = m->next;
  if (c->head == NULL) c->tail = NULL;
  free(m);
}


void ws__out_taken(ws_conn *c) {
  c->outlen = 0;
  if (c->outcap > 65536) {      /* the next frame reallocates */
    free(c->out);
    c->out = NULL;
    c->outcap = 0;
  }
}
