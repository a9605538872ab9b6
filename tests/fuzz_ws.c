/*
** fuzz_ws.c -- libFuzzer on WebSocket frame decoding (bindings/http/wsconn.c
** over libwslay): random bytes, fed in random chunks to a server or a
** client connection, must never crash, leak or break these invariants:
** every message is at most max_message_size, every text message is valid
** UTF-8, and once the connection failed nothing more is decoded.
**
** The same bytes also go, whole, to a connection without the fast path
** (nofast: wslay alone): both must give the same messages, and a fast
** connection that failed means wslay alone failed too (wslay alone may
** fail earlier: it checks UTF-8 before a frame is complete), unless it
** failed on corio's own limit of fragments per message (1009).
**
** Input: byte 0 picks the side (bit 0) and max_message_size (bits 1-7:
** 1 << (n % 20) bytes); then a run of (chunk length byte, chunk bytes).
*/
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsconn.h"

/* RFC 3629 UTF-8, without surrogates or overlongs. */
static int utf8_ok(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t k;
    unsigned min, cp;
    if (c < 0x80) { i++; continue; }
    else if ((c & 0xe0) == 0xc0) { k = 1; min = 0x80; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { k = 2; min = 0x800; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { k = 3; min = 0x10000; cp = c & 0x07; }
    else return 0;
    for (size_t j = 1; j <= k; j++) {
      if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += k + 1;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  ws_conn c;
  memset(&c, 0, sizeof c);
  uint64_t max = (uint64_t)1 << ((data[0] >> 1) % 20);
  if (ws__init(&c, data[0] & 1, max) != 0) return 0;
  ws_conn ref;
  memset(&ref, 0, sizeof ref);
  if (ws__init(&ref, data[0] & 1, max) != 0) { ws__free(&c); return 0; }
  ref.nofast = 1;
  size_t i = 1;
  /* the payload bytes only, in order, for wslay alone */
  uint8_t *all = malloc(size);
  size_t alln = 0;
  assert(all != NULL);
  while (i < size) {
    size_t n = data[i++];
    if (n > size - i) n = size - i;
    memcpy(all + alln, data + i, n);
    alln += n;
    i += n;
  }
  assert(ws__feed(&ref, (const char *)all, alln) == 0);
  free(all);
  ws_msg *expect = ref.head;
  i = 1;
  while (i < size) {
    size_t n = data[i++];
    if (n > size - i) n = size - i;
    int failed = c.failed;
    size_t before = c.outlen;
    assert(ws__feed(&c, (const char *)data + i, n) == 0);
    if (failed) assert(c.outlen == before && c.head == NULL);
    i += n;
    while (c.head) {
      assert(c.head->len <= max);
      if (c.head->opcode == WSLAY_TEXT_FRAME)
        assert(utf8_ok((const unsigned char *)c.head->data, c.head->len));
      else
        assert(c.head->opcode == WSLAY_BINARY_FRAME);
      assert(expect != NULL && expect->len == c.head->len &&
             expect->opcode == c.head->opcode &&
             memcmp(expect->data, c.head->data, c.head->len) == 0);
      expect = expect->next;
      ws__pop(&c);
    }
    c.outlen = 0;                 /* as take() does */
  }
  /* (the fragment count of WS_PIECE_COST is corio's, not wslay's) */
  if (c.failed && c.failcode != 1009)
    assert(ref.failed || !wslay_event_get_read_enabled(ref.ctx));
  if (!c.failed && !ref.failed && c.heldlen == 0 && c.slow_left == 0)
    assert(expect == NULL);           /* no message wslay alone got more */
  ws__free(&c);
  ws__free(&ref);
  return 0;
}
