/*
** wsconn.h -- one WebSocket connection's framing state on libwslay, in
** pull mode and without Lua (bindings/http/wsconn.c): bytes go in with
** ws__feed, complete messages come out of a queue, frames to send collect
** in an output buffer.  ws.c binds it to Lua; tests/fuzz_ws.c fuzzes it.
*/
#ifndef CORIO_WSCONN_H
#define CORIO_WSCONN_H

#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

typedef struct ws_msg {
  struct ws_msg *next;
  size_t len;
  uint8_t opcode;               /* WSLAY_TEXT_FRAME or WSLAY_BINARY_FRAME */
  char data[];
} ws_msg;

typedef struct ws_conn {
  wslay_event_context_ptr ctx;  /* NULL before init and once freed */
  const char *in;               /* ws__feed: bytes not yet given to wslay */
  size_t inlen;
  char *out;                    /* frames waiting to be written */
  size_t outlen, outcap;
  ws_msg *head, *tail;          /* complete messages, oldest first */
  int server;
  int nomem;                    /* a copy failed inside a callback */
  int failed;                   /* the peer broke framing: 1002 sent */
  size_t reasonlen;             /* the peer's close reason */
  char reason[123];
} ws_conn;

int ws__init(ws_conn *c, int server, uint64_t max_message_size);
  /* c zeroed by the caller; 0, or -1 out of memory */
void ws__free(ws_conn *c);      /* idempotent */
int ws__feed(ws_conn *c, const char *p, size_t n);
  /* runs wslay over all of p (queuing messages, pongs and close replies);
     0, or -1 out of memory */
int ws__flush(ws_conn *c);      /* queued frames to c->out; -1 no memory */
void ws__pop(ws_conn *c);       /* drops c->head */

#endif
