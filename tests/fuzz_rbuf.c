/*
** fuzz_rbuf.c -- libFuzzer target for a Stream's readers (bindings/net/rbuf.c).
**
** The input is a little program: chunks of data arriving (with their
** sizes chosen by the fuzzer, so every chunking is tried), EOF, and
** reads: read(n), "l", "L", "a", readexactly(n), readuntil(sep), a
** parser's wait for more bytes (which it then consumes in place), under a
** limit picked by the first byte.  The reads run through the real buffer
** and rreq_match() exactly as stream.c drives them -- a waiting reader
** is answered either from a fresh chunk (when nothing is buffered) or from
** the buffer after each append, with the scan position carried between
** attempts -- and every answer, NEED included, is checked against a
** simple model that rescans everything from scratch.
**
**   make fuzz                        (FUZZ_TIME=60 seconds by default)
**   build/fuzz_rbuf -max_total_time=10 build/fuzz-corpus
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbuf.h"

#define MAXDATA (1 << 20)

typedef struct prog {
  const uint8_t *p;
  size_t n;
} prog;

static int take_byte(prog *g) {
  if (g->n == 0) return -1;
  g->n--;
  return *g->p++;
}


/* {====================================================================
** The model: the buffered bytes as one plain array, rescanned each time
** ===================================================================== */

static char *model;             /* bytes not consumed yet */
static size_t mlen;

static size_t naive_find(const char *p, size_t len, const char *sep,
                         size_t seplen) {
  for (size_t i = 0; i + seplen <= len; i++)
    if (memcmp(p + i, sep, seplen) == 0) return i;
  return (size_t)-1;
}


static int model_match(const rreq *q, int eof, size_t *take,
                       size_t *consume) {
  size_t len = mlen;
  switch (q->kind) {
    case RQ_SOME:
      if (len == 0) return eof ? RM_NIL : RM_NEED;
      *take = *consume = len < q->n ? len : q->n;
      return RM_DATA;
    case RQ_ALL:
      if (!eof) return RM_NEED;
      *take = *consume = len;
      return RM_DATA;
    case RQ_EXACT:
      if (len >= q->n) {
        *take = *consume = q->n;
        return RM_DATA;
      }
      if (!eof) return RM_NEED;
      if (len == 0) return RM_NIL;
      *take = *consume = len;
      return RM_INCOMPLETE;
    case RQ_WAIT:
      if (len > q->n) {
        *take = *consume = 0;
        return RM_DATA;
      }
      return eof ? RM_NIL : RM_NEED;
    default: {
      const char *sep = q->kind == RQ_UNTIL ? q->sep : "\n";
      size_t seplen = q->kind == RQ_UNTIL ? q->seplen : 1;
      size_t i = naive_find(model, len, sep, seplen);
      if (i != (size_t)-1) {
        if (i + seplen > q->limit) return RM_LIMIT;
        *take = q->kind == RQ_LINE ? i : i + seplen;
        *consume = i + seplen;
        return RM_DATA;
      }
      if (eof) {
        if (len == 0) return RM_NIL;
        *take = *consume = len;
        if (q->kind == RQ_UNTIL) return RM_INCOMPLETE;
        return len > q->limit ? RM_LIMIT : RM_DATA;
      }
      return len >= q->limit ? RM_LIMIT : RM_NEED;
    }
  }
}

/* }==================================================================== */


static rbuf rb;
static int eof;

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_rbuf: mismatch: %s\n", what);
    abort();
  }
}


/* Compares one answer of the real code with the model's, then consumes
** as the stream would (LIMIT and NIL consume nothing). */
static void compare(int r, size_t take, size_t consume, const char *data,
                    const rreq *q) {
  size_t mt = 0, mc = 0;
  int m = model_match(q, eof, &mt, &mc);
  check(r == m, "result code");
  if (r == RM_NEED || r == RM_NIL || r == RM_LIMIT) return;
  check(take == mt && consume == mc, "take/consume");
  check(take <= consume, "take <= consume");
  check(take == 0 || memcmp(data, model, take) == 0, "answer bytes");
}


static void model_consume(size_t n) {
  memmove(model, model + n, mlen - n);
  mlen -= n;
}


/* Appends a chunk for a waiting reader as stream.c's on_data does:
** answered straight from the chunk when nothing is buffered, else
** appended and matched on the buffer.  Returns 1 once answered. */
static int arrive(rreq *q, const char *p, size_t n, int waiting) {
  size_t take = 0, consume = 0;
  check(mlen + n <= MAXDATA, "model size");
  if (waiting && rb.len == 0) {
    size_t old = mlen;
    memcpy(model + mlen, p, n);               /* the model sees it all */
    mlen += n;
    int r = rreq_match(q, p, n, 0, &take, &consume);
    if (r != RM_NEED) {
      compare(r, take, consume, p, q);
      if (r == RM_LIMIT) consume = 0;
      if (rbuf_append(&rb, p + consume, n - consume) != 0) abort();
      model_consume(consume);
      (void)old;
      return 1;
    }
    mlen = old;                               /* appended below */
  }
  if (rbuf_append(&rb, p, n) != 0) abort();
  memcpy(model + mlen, p, n);
  mlen += n;
  if (!waiting) return 0;
  int r = rreq_match(q, rbuf_data(&rb), rb.len, eof, &take, &consume);
  compare(r, take, consume, rbuf_data(&rb), q);
  if (r == RM_NEED) return 0;
  if (r != RM_LIMIT && r != RM_NIL) {
    rbuf_consume(&rb, consume);
    model_consume(consume);
  }
  return 1;
}


/* Reads a chunk description from the program: its size, and its bytes
** from a small alphabet (so separators are common). */
static size_t next_chunk(prog *g, char *out) {
  static const char alpha[] = "ab\n\r|xy\n";
  int len = take_byte(g);
  if (len < 0) return 0;
  size_t n = (size_t)len % 64 + 1;
  if (len & 0x80) n = (size_t)len * 37 % 3000 + 1;  /* a few big ones */
  for (size_t i = 0; i < n; i++) {
    int c = take_byte(g);
    out[i] = c < 0 ? 'z' : alpha[c & 7];
  }
  return n;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char chunk[4096];
  static const size_t limits[] = {1, 2, 3, 5, 8, 16, 64, 100, 65536};
  char sep[4];
  prog g = {data, size};
  if (model == NULL) model = malloc(MAXDATA);
  rbuf_free(&rb);
  mlen = 0;
  eof = 0;
  int lb = take_byte(&g);
  size_t limit = limits[(lb < 0 ? 0 : lb) % 9];
  for (;;) {
    int op = take_byte(&g);
    if (op < 0) break;
    if (op % 8 == 0) {                        /* data arrives, nobody waits */
      size_t n = next_chunk(&g, chunk);
      if (n == 0 || eof) continue;
      rreq none = {RQ_SOME, 1, NULL, 0, limit, 0};
      arrive(&none, chunk, n, 0);
      continue;
    }
    if (op % 8 == 1) {                        /* EOF */
      eof = 1;
      continue;
    }
    rreq q = {0, 0, NULL, 0, limit, 0};
    int arg = take_byte(&g);
    if (arg < 0) arg = 1;
    switch (op % 8) {
      case 2:
        if (arg & 0x80) {                     /* a parser waiting for more */
          q.kind = RQ_WAIT;
          q.n = arg & 0x40 ? rb.len : 0;
        } else {
          q.kind = RQ_SOME;
          q.n = (size_t)arg % 40;
        }
        break;
      case 3: q.kind = RQ_LINE; break;
      case 4: q.kind = RQ_LINEKEEP; break;
      case 5: q.kind = RQ_ALL; break;
      case 6: q.kind = RQ_EXACT; q.n = (size_t)arg * 3 % 200; break;
      default: {
        static const char sepch[] = "ab\n\r|xyz";
        q.kind = RQ_UNTIL;
        q.seplen = (size_t)(arg & 3) + 1;
        for (size_t i = 0; i < q.seplen; i++) sep[i] = sepch[((arg >> 2) + i) & 7];
        q.sep = sep;
      }
    }
    /* The read, as do_read then the read callbacks do it. */
    size_t take = 0, consume = 0;
    int r = rreq_match(&q, rbuf_data(&rb), rb.len, eof, &take, &consume);
    compare(r, take, consume, rbuf_data(&rb), &q);
    if (r != RM_NEED) {
      if (r != RM_LIMIT && r != RM_NIL) {
        rbuf_consume(&rb, consume);
        model_consume(consume);
      }
      continue;
    }
    int done = 0;
    while (!done) {
      size_t n = eof ? 0 : next_chunk(&g, chunk);
      if (n == 0) {                           /* the program ran out: EOF */
        eof = 1;
        r = rreq_match(&q, rbuf_data(&rb), rb.len, 1, &take, &consume);
        compare(r, take, consume, rbuf_data(&rb), &q);
        check(r != RM_NEED, "NEED at EOF");
        if (r != RM_LIMIT && r != RM_NIL) {
          rbuf_consume(&rb, consume);
          model_consume(consume);
        }
        break;
      }
      done = arrive(&q, chunk, n, 1);
    }
    check(rb.len == mlen && (mlen == 0 ||
          memcmp(rbuf_data(&rb), model, mlen) == 0), "buffer contents");
    if (q.kind == RQ_WAIT && rb.len > 0) {    /* the parser takes some */
      size_t k = (size_t)arg % (rb.len + 1);
      rbuf_consume(&rb, k);
      model_consume(k);
    }
  }
  return 0;
}
