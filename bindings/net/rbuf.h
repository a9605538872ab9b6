/*
** rbuf.h -- a Stream's read buffer and the rules of its readers, with no
** libuv and no Lua, so that the libFuzzer target (tests/fuzz_rbuf.c) can
** check them alone against a simple model.
**
** A reader asks for one thing (a request: "up to n bytes", "a line", "all
** until EOF", "exactly n bytes", "until this separator") and rreq_match()
** tells, from the bytes buffered so far and whether EOF was seen, whether
** the request is answered, needs more data, or fails.  The caller then
** hands out `take` bytes and drops `consume` bytes from the buffer.
*/
#ifndef CORIO_RBUF_H
#define CORIO_RBUF_H

#include <stddef.h>   /* size_t */

/* The buffered bytes are base[off .. off + len). */
typedef struct rbuf {
  char *base;
  size_t off, len, cap;
} rbuf;

#define RBUF_INIT {NULL, 0, 0, 0}

int rbuf_reserve(rbuf *b, size_t n);  /* room for n more bytes at the end:
                                         0, or -1 out of memory (b intact) */
int rbuf_append(rbuf *b, const char *p, size_t n);    /* 0 or -1 */
void rbuf_consume(rbuf *b, size_t n);                 /* n <= b->len */
void rbuf_free(rbuf *b);                              /* back to empty */
/* NULL for a buffer never allocated (no offset on a null pointer). */
#define rbuf_data(b) ((b)->base ? (b)->base + (b)->off : (b)->base)
#define rbuf_tail(b) ((b)->base + (b)->off + (b)->len)  /* after reserve */

enum {                   /* what a reader asks for */
  RQ_SOME = 1,           /* read(n): 1..n bytes (n = 0: "" unless EOF) */
  RQ_LINE,               /* read("l"): a line without its "\n" */
  RQ_LINEKEEP,           /* read("L"): a line with its "\n" */
  RQ_ALL,                /* read("a"): everything up to EOF */
  RQ_EXACT,              /* readexactly(n) */
  RQ_UNTIL,              /* readuntil(sep): data up to and with sep */
  RQ_WAIT                /* more than n bytes buffered, taking none (a
                            parser reads them in place: corio._wslay) */
};

enum {                   /* what rreq_match found */
  RM_NEED = 0,           /* not enough data yet: read more */
  RM_DATA,               /* answer: `take` bytes; drop `consume` bytes */
  RM_NIL,                /* EOF and nothing to give: the reader gets nil */
  RM_LIMIT,              /* the line/separator cannot fit in `limit` */
  RM_INCOMPLETE          /* EOF inside readexactly/readuntil: the partial
                            data is `take` bytes (consume them) */
};

typedef struct rreq {
  int kind;              /* RQ_* */
  size_t n;              /* RQ_SOME, RQ_EXACT, RQ_WAIT */
  const char *sep;       /* RQ_UNTIL (not empty) */
  size_t seplen;
  size_t limit;          /* longest line / readuntil answer, sep included */
  size_t scanned;        /* bytes already known to hold no separator start;
                            valid while nothing is consumed: the reader
                            sets it to 0 when it makes the request */
} rreq;

/* Decides the request q against the len buffered bytes at p; eof says no
** more will come.  Sets *take and *consume for RM_DATA and RM_INCOMPLETE.
** Scans each byte about once over a sequence of calls (q->scanned). */
int rreq_match(rreq *q, const char *p, size_t len, int eof, size_t *take,
               size_t *consume);

/* How many more bytes q needs at least before it can be answered (1 when
** unknown); used to decide whether reading may pause. */
size_t rreq_need(const rreq *q, size_t len);

#endif
