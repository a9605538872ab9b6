/*
** wsconn.c -- a WebSocket connection's framing on libwslay, in pull mode
** (see wsconn.h and the comment at the top of ws.c).
**
** wslay's callbacks never touch a socket: recv reads from the bytes
** handed to ws__feed (borrowed for that call only), send appends to
** c->out, and a complete message is copied into c's queue.  Pongs are
** consumed here; close frames are read back through wslay's getters.
*/
#include <stdlib.h>   /* malloc, realloc, free */
#include <string.h>   /* memcpy, memset */

#include <openssl/rand.h>       /* masking keys */

#include "wsconn.h"

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
** are read back through wslay's status getters. */
static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  ws_conn *c = ud;
  (void)ctx;
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
}



int ws__flush(ws_conn *c) {
  if (wslay_event_send(c->ctx) != 0 && c->nomem) {
    c->nomem = 0;
    return -1;
  }
  return 0;
}


/* A close frame with code 1002, built here: for a framing error wslay
** queues a close without a code (its frame layer has no code to give). */
static void fail_framing(ws_conn *c) {
  uint8_t f[8] = {0x88, 0x02};
  size_t n = 2;
  uint8_t mask[4] = {0, 0, 0, 0};
  if (!c->server) {
    f[1] |= 0x80;
    if (RAND_bytes(mask, 4) != 1) memset(mask, 0x5a, 4);
    memcpy(f + 2, mask, 4);
    n = 6;
  }
  f[n] = (uint8_t)((1002 >> 8) ^ mask[0]);
  f[n + 1] = (uint8_t)((1002 & 0xff) ^ mask[1]);
  if (out_append(c, f, n + 2) != 0) c->nomem = 1;
  c->failed = 1;
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
  return 0;
}


int ws__feed(ws_conn *c, const char *p, size_t n) {
  if (c->failed) return 0;
  c->in = p;
  c->inlen = n;
  int r = wslay_event_recv(c->ctx);
  c->in = NULL;
  c->inlen = 0;
  if (c->nomem || r == WSLAY_ERR_NOMEM) {
    c->nomem = 0;
    return -1;
  }
  if (r != 0) fail_framing(c);   /* only the frame layer fails here */
  else return ws__flush(c);
  return 0;
}


void ws__pop(ws_conn *c) {
  ws_msg *m = c->head;
  if (m == NULL) return;
  c->head = m->next;
  if (c->head == NULL) c->tail = NULL;
  free(m);
}
