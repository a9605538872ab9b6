/*
** rbuf.c -- the read buffer and the readers' matching rules (see rbuf.h).
** Pure C: no libuv, no Lua.
*/
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* memchr, memcmp, memcpy, memmove */

#include "rbuf.h"


int rbuf_reserve(rbuf *b, size_t n) {
  if (b->cap - b->off - b->len >= n) return 0;
  if (b->len + n <= b->cap && b->off > 0 && b->len <= b->cap / 2) {
    /* Enough room once the data moves to the front, and it is at most
    ** half the buffer: moving it costs less than growing. */
    memmove(b->base, b->base + b->off, b->len);
    b->off = 0;
    return 0;
  }
  if (n > (size_t)-1 / 2 - b->len) return -1;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + n) cap *= 2;
  char *p = malloc(cap);
  if (p == NULL) return -1;
  if (b->len) memcpy(p, b->base + b->off, b->len);
  free(b->base);
  b->base = p;
  b->off = 0;
  b->cap = cap;
  return 0;
}


int rbuf_append(rbuf *b, const char *p, size_t n) {
  if (n == 0) return 0;
  if (rbuf_reserve(b, n) != 0) return -1;
  memcpy(rbuf_tail(b), p, n);
  b->len += n;
  return 0;
}


void rbuf_consume(rbuf *b, size_t n) {
  b->off += n;
  b->len -= n;
  if (b->len == 0) b->off = 0;
}


void rbuf_free(rbuf *b) {
  free(b->base);
  b->base = NULL;
  b->off = b->len = b->cap = 0;
}


/* Finds sep in p[from .. len); returns its offset or (size_t)-1. */
static size_t find(const char *p, size_t len, size_t from, const char *sep,
                   size_t seplen) {
  if (seplen == 1) {
    const char *q = from < len ? memchr(p + from, sep[0], len - from) : NULL;
    return q ? (size_t)(q - p) : (size_t)-1;
  }
  while (from + seplen <= len) {
    const char *q = memchr(p + from, sep[0], len - from - seplen + 1);
    if (q == NULL) break;
    size_t i = (size_t)(q - p);
    if (memcmp(q + 1, sep + 1, seplen - 1) == 0) return i;
    from = i + 1;
  }
  return (size_t)-1;
}


/* A line or a readuntil: look for the separator past what was scanned. */
static int match_sep(rreq *q, const char *p, size_t len, int eof,
                     size_t *take, size_t *consume) {
  static const char nl = '\n';
  const char *sep = q->kind == RQ_UNTIL ? q->sep : &nl;
  size_t seplen = q->kind == RQ_UNTIL ? q->seplen : 1;
  size_t i = find(p, len, q->scanned, sep, seplen);
  if (i != (size_t)-1) {
    size_t end = i + seplen;
    if (end > q->limit) return RM_LIMIT;
    *take = q->kind == RQ_LINE ? i : end;
    *consume = end;
    return RM_DATA;
  }
  /* A separator may still start in the last seplen-1 bytes. */
  q->scanned = len >= seplen ? len - seplen + 1 : 0;
  if (eof) {
    if (len == 0) return RM_NIL;
    *take = *consume = len;
    if (q->kind == RQ_UNTIL) return RM_INCOMPLETE;
    return len > q->limit ? RM_LIMIT : RM_DATA;  /* last line, no "\n" */
  }
  /* Any answer would end past len, so past the limit. */
  return len >= q->limit ? RM_LIMIT : RM_NEED;
}


int rreq_match(rreq *q, const char *p, size_t len, int eof, size_t *take,
               size_t *consume) {
  switch (q->kind) {
    case RQ_SOME:
      if (len == 0) return eof ? RM_NIL : RM_NEED;
      *take = *consume = q->n < len ? q->n : len;
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
    default:                                  /* RQ_LINE, _LINEKEEP, _UNTIL */
      return match_sep(q, p, len, eof, take, consume);
  }
}


size_t rreq_need(const rreq *q, size_t len) {
  if (q->kind == RQ_EXACT && q->n > len) return q->n - len;
  return 1;
}
