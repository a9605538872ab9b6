/*
** wsconn.h -- one WebSocket connection's framing state on libwslay, in
** pull mode and without Lua (bindings/http/wsconn.c): bytes go in with
** ws__feed, complete messages come out of a queue, frames to send collect
** in an output buffer.  ws.c binds it to Lua, wsstream.c runs it on a
** Stream's buffers; tests/fuzz_ws.c fuzzes it.
**
** The common frame takes a fast path that wslay never sees: a whole,
** unfragmented, well-formed text or binary frame of at most WS_FAST_MAX
** bytes (with valid UTF-8 if text) is unmasked straight into the queue,
** and data frames are sent without wslay's queue.  Everything else (control
** frames, fragments, anything odd or broken, big frames) goes to wslay,
** which stays the judge of the protocol; the fast path only ever takes
** frames wslay would accept unchanged.
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

#define WS_MAGIC UINT64_C(0x636f72696f2d7773)   /* marks a ws.c userdata */

typedef struct ws_conn {
  uint64_t magic;               /* WS_MAGIC (ws.c's cheap self check) */
  wslay_event_context_ptr ctx;  /* NULL before init and once freed */
  const char *in;               /* ws__feed: bytes not yet given to wslay */
  size_t inlen;
  char *out;                    /* frames waiting to be written */
  size_t outlen, outcap;
  ws_msg *head, *tail;          /* complete messages, oldest first */
  int server;
  int nomem;                    /* a copy failed inside a callback */
  int failed;                   /* the peer broke framing or a limit: a
                                   close with failcode sent */
  int failcode;                 /* 1002, or 1009 (too many fragments) */
  uint64_t pieces;              /* fragments of the message wslay is
                                   joining (see WS_PIECE_COST) */
  int rd_off;                   /* wslay reads no more (a close came):
                                   its read_enabled, kept by wslay_in, the
                                   one caller of wslay_event_recv, so that
                                   every message does not touch wslay's
                                   context (another cache line) */
  int wr_off;                   /* wslay writes no more (a close went out,
                                   or it failed): kept by ws__flush and
                                   on_msg, the callers of wslay_event_send,
                                   for the same reason */
  int nofast;                   /* 1: every frame goes to wslay (tests) */
  int frag;                     /* wslay is inside a fragmented message */
  int pulling;                  /* wsstream.c: a task waits in conn:pull */
  void *bound;                  /* wsstream.c: the Stream's userdata that
                                   conn:bind made the user value, or NULL */
  uint64_t slow_left;           /* bytes of wslay's current frame to come */
  uint64_t max;                 /* max_message_size */
  char *held;                   /* the start of a frame not yet complete */
  size_t heldlen, heldcap;
  size_t reasonlen;             /* the peer's close reason */
  char reason[123];
} ws_conn;

#define WS_FAST_MAX (64 * 1024)  /* larger frames stream through wslay */
/* wslay keeps each fragment of a message as a malloc'ed chunk (about 100
** bytes besides its payload), which max_message_size, a count of payload
** bytes, does not see: 1-byte fragments would make a message cost 100
** times its limit.  A message may have max_message_size / WS_PIECE_COST
** fragments (at least WS_PIECE_MIN), so that it costs at most about
** twice the limit; past that, 1009. */
#define WS_PIECE_COST 128
#define WS_PIECE_MIN 64

int ws__init(ws_conn *c, int server, uint64_t max_message_size);
  /* c zeroed by the caller; 0, or -1 out of memory */
void ws__free(ws_conn *c);      /* idempotent */
int ws__feed(ws_conn *c, const char *p, size_t n);
  /* runs wslay over all of p (queuing messages, pongs and close replies);
     0, or -1 out of memory */
int ws__flush(ws_conn *c);      /* queued frames to c->out; -1 no memory */
int ws__send(ws_conn *c, int opcode, const char *p, size_t n, int copy);
  /* a text or binary frame into c->out: the payload too when copy or
     when it must be masked (a client), else only the header (the caller
     sends p after c->out).  1 sent, 0 sending is over (a close was
     sent), -1 out of memory */
size_t ws__header(const ws_conn *c, int op, size_t n, unsigned char *h);
  /* an unmasked text or binary frame's header for n payload bytes into
     h (2, 4 or 10 bytes: its length); 0 when sending is over */
int ws__utf8_ok(const char *p, size_t n);   /* RFC 3629, strict */

/* Reading frames in place (wsstream.c on a Stream's buffer): what the frame
** starting at b (len bytes there) is.  Only while nothing is held, queued
** or half given to wslay (ws__direct). */
enum {
  WS_FR_NEED = 0,   /* its header or (for a fast frame) payload is short */
  WS_FR_FAST,       /* a whole fast-path frame: *hlen + *plen bytes */
  WS_FR_SLOW        /* anything else: wslay's (ws__feed) */
};
int ws__frame(const ws_conn *c, const char *b, size_t len, size_t *hlen,
              uint64_t *plen);
int ws__take_fast(const ws_conn *c, char *b, size_t hlen, size_t plen);
  /* unmasks a WS_FR_FAST frame's payload in place; 1, or 0 (text that
     is not UTF-8: b is left as it was, for ws__feed to reject) */
#define ws__direct(c) ((c)->head == NULL && (c)->heldlen == 0 && \
  (c)->slow_left == 0 && !(c)->nofast && !(c)->failed)
void ws__pop(ws_conn *c);       /* drops c->head */
void ws__out_taken(ws_conn *c);
  /* c->out was written out (or copied): empties it, and frees it past
     64 KiB so that one big message does not pin its buffer */

#endif
