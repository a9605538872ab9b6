/*
** ws.c -- corio._wslay: WebSocket framing (RFC 6455) on Debian's libwslay,
** and the handshake's two bits of cryptography on OpenSSL's libcrypto.
**
** Pull model, no I/O here.  A Conn (the ws_conn of wsconn.c, which holds
** everything that does not need Lua) is one wslay event context whose
** callbacks never touch a socket: the recv callback reads from the bytes
** the caller hands to conn:feed(data) (a Lua string, borrowed for that
** call only), the send callback appends to an output buffer the caller
** empties with conn:take() and writes to its Stream (scripts/_ws.lua), so
** write backpressure is the Stream's.  wslay checks masking (a server
** gets only masked frames, a client only unmasked ones), reserved bits
** and opcodes, control frame sizes, UTF-8 in text and close frames, close
** codes and the message size limit; it joins fragments and queues the
** pong for every ping and the reply to a close.
**
** wslay never calls into Lua: a complete message is copied into a C queue
** (conn:next() pops it), so no Lua error can unwind through the library.
** feed() gives wslay a whole read at once and wslay consumes all of it, so
** at most one read's worth of messages is queued; the Lua side feeds
** again only once the queue is empty.
**
** Ownership: the wslay context, the queue and the output buffer belong to
** the userdata and are freed by conn:free() or __gc, whichever comes
** first; every method raises on a freed Conn.
*/
#include <stdint.h>   /* uintptr_t */
#include <stdlib.h>   /* free */
#include <string.h>   /* memset */

#include <openssl/evp.h>        /* SHA-1, base64 */
#include <openssl/rand.h>       /* handshake keys */

#include "shared.h"    /* the core: corio_rt, Lua */
#include "wsconn.h"    /* the framing state, without Lua */
#include "tls/ossl.h"  /* OpenSSL, loaded on first use */

#define CONN_MT "corio.WebSocketConn"
#define STREAM_NAME "corio.Stream"

/* The handshake's fixed suffix (RFC 6455 section 1.3). */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


/* {====================================================================
** Conn
** ===================================================================== */

/* A userdata of exactly our size that starts with WS_MAGIC is a Conn
** (only this file makes them; Lua cannot write into a userdata): cheaper
** than luaL_checkudata's registry lookup, on every message. */
static ws_conn *check_conn(lua_State *L) {
  ws_conn *c = lua_touserdata(L, 1);
  if (c == NULL || lua_rawlen(L, 1) != sizeof(ws_conn) ||
      c->magic != WS_MAGIC)
    c = luaL_checkudata(L, 1, CONN_MT);      /* raises */
  if (c->ctx == NULL) luaL_error(L, "WebSocket connection state was freed");
  return c;
}


static int push_out(lua_State *L, ws_conn *c);

static const char *const KIND[] = {NULL, "text", "binary"};

/* Pushes the oldest queued message (data, kind) and drops it: 2; or, with
** none queued, nil and whether wslay still reads: 2. */
static int push_next(lua_State *L, ws_conn *c) {
  ws_msg *m = c->head;
  if (m == NULL) {
    lua_pushnil(L);
    lua_pushboolean(L, !c->failed && wslay_event_get_read_enabled(c->ctx));
    return 2;
  }
  lua_pushlstring(L, m->data, m->len);   /* may raise: m stays queued */
  lua_pushstring(L, KIND[m->opcode]);
  ws__pop(c);
  return 2;
}


static void flush(lua_State *L, ws_conn *c) {
  if (ws__flush(c) != 0) luaL_error(L, "not enough memory");
}


/* new(server, max_message_size) -> Conn */
static int l_new(lua_State *L) {
  int server = lua_toboolean(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_argcheck(L, max > 0, 2, "positive size expected");
  ws_conn *c = lua_newuserdatauv(L, sizeof(ws_conn), 0);
  memset(c, 0, sizeof *c);
  c->magic = WS_MAGIC;
  luaL_setmetatable(L, CONN_MT);
  if (ws__init(c, server, (uint64_t)max) != 0)
    return luaL_error(L, "not enough memory");
  return 1;
}


/* conn:feed(data): runs wslay over data (all of it is consumed), queuing
** complete messages and the frames wslay answers with (pongs, close). */
static int c_feed(lua_State *L) {
  ws_conn *c = check_conn(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (ws__feed(c, s, len) != 0) return luaL_error(L, "not enough memory");
  return 0;
}


/* conn:recv() -> data, "text"|"binary" | nil, reading: the next message,
** else whether more input is wanted (false: a close arrived or the peer
** broke the protocol; state() says which). */
static int c_recv(lua_State *L) {
  return push_next(L, check_conn(L));
}


/* conn:input(data) -> as recv(), then the frames to write (pongs, the
** reply to a close) or nil: feed, recv and take in one call. */
static int c_input(lua_State *L) {
  ws_conn *c = check_conn(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (ws__feed(c, s, len) != 0) return luaL_error(L, "not enough memory");
  push_next(L, c);
  return 2 + push_out(L, c);
}


/* conn:next() -> data, opcode | nil */
static int c_next(lua_State *L) {
  ws_conn *c = check_conn(L);
  ws_msg *m = c->head;
  if (m == NULL) return 0;
  lua_pushlstring(L, m->data, m->len);   /* may raise: m stays queued */
  lua_pushinteger(L, m->opcode);
  ws__pop(c);
  return 2;
}


/* Pushes the frames to write and empties the buffer: 1; none: 0. */
static int push_out(lua_State *L, ws_conn *c) {
  if (c->outlen == 0) return 0;
  lua_pushlstring(L, c->out, c->outlen);
  c->outlen = 0;
  if (c->outcap > 65536) {   /* one big message must not pin its buffer */
    free(c->out);               /* the next frame reallocates */
    c->out = NULL;
    c->outcap = 0;
  }
  return 1;
}


/* conn:take() -> the frames to write, or nil */
static int c_take(lua_State *L) {
  return push_out(L, check_conn(L));
}


/* Data frames up to this size are sent as one string (header and
** payload copied together); larger ones as the header, then the caller's
** own string (a server's frames are not masked): no copy of the payload. */
#define SEND_COPY 1024

/* conn:send(opcode, data) -> the bytes to write: one string, or two (the
** header, then data itself); nil when sending is over (a close was
** sent); false for text that is not UTF-8.  Opcodes other than text and
** binary (pings) go through wslay.  The caller checked the types. */
static int c_send(lua_State *L) {
  ws_conn *c = check_conn(L);
  lua_Integer op = luaL_checkinteger(L, 2);
  size_t len;
  const char *s = luaL_checklstring(L, 3, &len);
  if (op == WSLAY_TEXT_FRAME || op == WSLAY_BINARY_FRAME) {
    if (op == WSLAY_TEXT_FRAME && !ws__utf8_ok(s, len)) {
      lua_pushboolean(L, 0);
      return 1;
    }
    int copy = len <= SEND_COPY;
    int r = ws__send(c, (int)op, s, len, copy);
    if (r < 0) return luaL_error(L, "not enough memory");
    if (r == 0) return 0;
    push_out(L, c);
    if (!c->server || copy) return 1;
    lua_pushvalue(L, 3);
    return 2;
  }
  struct wslay_event_msg m = {(uint8_t)op, (const uint8_t *)s, len};
  int r = wslay_event_queue_msg(c->ctx, &m);
  if (r == WSLAY_ERR_NOMEM) return luaL_error(L, "not enough memory");
  if (r != 0) return 0;
  flush(L, c);
  return push_out(L, c);
}


/* {====================================================================
** On a corio Stream: frames read in place, written straight out
** ===================================================================== */

static int pull_k(lua_State *L, int status, lua_KContext ctx);

/* nil, "error", err: what ended the wait (err on top) [-1,+3]. */
static int pull_error(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "error");
  lua_rotate(L, -3, 2);
  return 3;
}


/* The loop of conn:pull, with [conn, stream] on the stack.  A whole
** fast-path frame at the front of the Stream's buffer is unmasked there
** and becomes the message string: the one copy.  Anything else is fed
** to the framing (which keeps what it needs), and the Stream waited on
** only once the frames to answer (pongs, the reply to a close) were
** handed back to be written. */
static int pull(lua_State *L, corio_rt *rt, ws_conn *c, struct stream *s) {
  for (;;) {
    ws_msg *m = c->head;
    if (m) {
      lua_pushlstring(L, m->data, m->len);    /* may raise: m stays */
      lua_pushinteger(L, m->opcode);
      ws__pop(c);
      return 2 + push_out(L, c);
    }
    if (c->failed || !wslay_event_get_read_enabled(c->ctx)) {
      lua_pushnil(L);
      lua_pushboolean(L, 0);
      return 2 + push_out(L, c);
    }
    if (c->pulling)
      return corio__error(L, "BUSY", "receive", "another task is "
                          "receiving on this WebSocket");
    size_t len, hlen;
    uint64_t plen;
    int eof;
    char *p = corio__stream_peek(s, &len, &eof);
    if (len > 0) {
      int fr = ws__direct(c) ? ws__frame(c, p, len, &hlen, &plen)
                             : WS_FR_SLOW;
      if (fr == WS_FR_FAST && ws__take_fast(c, p, hlen, (size_t)plen)) {
        /* consumed first: should the string fail (memory), the buffer
        ** still holds only bytes not yet seen (p stays valid until the
        ** next wait) */
        corio__stream_consume(s, hlen + (size_t)plen);
        lua_pushlstring(L, p + hlen, (size_t)plen);
        lua_pushinteger(L, p[0] & 0x0f);
        return 2 + push_out(L, c);
      }
      if (fr != WS_FR_NEED || eof) {
        int r = ws__feed(c, p, len);
        corio__stream_consume(s, len);
        if (r != 0) return luaL_error(L, "not enough memory");
        continue;
      }
    }
    if (c->outlen > 0) {          /* to be written before waiting */
      lua_pushnil(L);
      lua_pushboolean(L, 1);
      return 2 + push_out(L, c);
    }
    if (eof) return 0;
    /* lua_yieldk does not return to a C function (outside hooks): the
    ** wait goes on in pull_k, and only a wait that cannot begin returns */
    c->pulling = 1;
    corio__stream_wait(L, rt, s, "receive", pull_k);
    c->pulling = 0;
    return pull_error(L);
  }
}


static int pull_k(lua_State *L, int status, lua_KContext ctx) {
  corio_rt *rt = RT_UPVALUE(L);
  ws_conn *c = lua_touserdata(L, 1);
  (void)status;
  c->pulling = 0;
  if (corio__stream_waited(L, rt, ctx) < 0) return pull_error(L);
  if (c->ctx == NULL) return 0;               /* freed meanwhile */
  struct stream *s = corio__stream_get(L, 2);
  if (s == NULL) {
    corio__push_error(L, "CLOSED", "receive", "stream is closed");
    return pull_error(L);
  }
  return pull(L, rt, c, s);
}


/* conn:pull(stream) -> receive()'s step on a corio Stream, waiting as
** the Stream's reader:
**   data, opcode [, out]            a message (1 text, 2 binary)
**   nil, true, out                  write out (pongs...), then pull again
**   nil, false [, out]              a close arrived or the peer broke the
**                                   protocol (state() says which)
**   nil                             EOF, or the state was freed meanwhile
**   nil, "error", err               what read() would raise: the Stream's
**                                   error, CLOSED, CANCELLED, BUSY
** out: the frames to write first.  Raises only for misuse (outside a
** task; BUSY: another task is pulling) and memory. */
static int c_pull(lua_State *L) {
  ws_conn *c = check_conn(L);
  struct stream *s = corio__stream_get(L, 2);
  lua_settop(L, 2);
  if (s == NULL) {
    if (!corio__is_stream(L, 2)) return luaL_typeerror(L, 2, STREAM_NAME);
    corio__push_error(L, "CLOSED", "receive", "stream is closed");
    return pull_error(L);
  }
  return pull(L, RT_UPVALUE(L), c, s);
}


/* conn:pulling() -> whether a task waits in conn:pull (it will read the
** reply to a close). */
static int c_pulling(lua_State *L) {
  lua_pushboolean(L, check_conn(L)->pulling);
  return 1;
}


/* conn:write(stream, opcode, data) -> nothing; false for text that is
** not UTF-8, "type" when data is not a string: send()'s step on a corio
** Stream.  A data frame goes out as
** its header and data itself (a server's frames are not masked; a
** client's are masked in the output buffer), with any frames still
** pending before it, then waits as Stream:write does.  Nothing is sent
** once a close was.  The caller checked the types. */
static int c_write(lua_State *L) {
  ws_conn *c = check_conn(L);
  corio_rt *rt = RT_UPVALUE(L);
  struct stream *s = corio__stream_check(L, 2, "send");
  lua_Integer op = luaL_checkinteger(L, 3);
  luaL_argcheck(L, op == WSLAY_TEXT_FRAME || op == WSLAY_BINARY_FRAME, 3,
                "text or binary opcode expected");
  if (lua_type(L, 4) != LUA_TSTRING) {
    lua_pushliteral(L, "type");
    return 1;
  }
  size_t len;
  const char *p = lua_tolstring(L, 4, &len);
  if (op == WSLAY_TEXT_FRAME && !ws__utf8_ok(p, len)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int r = ws__send(c, (int)op, p, len, 0);
  if (r < 0) return luaL_error(L, "not enough memory");
  if (r == 0) return 0;
  uv_buf_t b[2];
  b[0] = uv_buf_init(c->out, (unsigned int)c->outlen);
  b[1] = uv_buf_init((char *)(uintptr_t)p, (unsigned int)len);
  c->outlen = 0;
  corio__stream_send(L, s, b, c->server && len > 0 ? 2 : 1, "send");
  if (c->outcap > 65536) {        /* one big message must not pin it */
    free(c->out);
    c->out = NULL;
    c->outcap = 0;
  }
  return corio__stream_write_wait(L, rt, s, "send");
}

/* }==================================================================== */


/* conn:nofast() (tests): every frame through wslay from now on, as if
** the fast path did not exist; only before the first feed. */
static int c_nofast(lua_State *L) {
  ws_conn *c = check_conn(L);
  c->nofast = 1;
  return 0;
}


/* conn:close(code, reason) -> the frames to write, or nil if a close
** was already queued.  code 0: a close frame without a code. */
static int c_close(lua_State *L) {
  ws_conn *c = check_conn(L);
  lua_Integer code = luaL_checkinteger(L, 2);
  size_t len;
  const char *s = luaL_optlstring(L, 3, "", &len);
  int r = wslay_event_queue_close(c->ctx, (uint16_t)code,
                                  (const uint8_t *)s, len);
  if (r == WSLAY_ERR_NOMEM) return luaL_error(L, "not enough memory");
  if (r != 0) return 0;
  flush(L, c);
  return c_take(L);
}


/* conn:state() -> reading, close_received, code_received, code_sent,
** failed, reason.  Codes are wslay's: 1005 when a close carried no code, 0 when
** none was received or sent. */
static int c_state(lua_State *L) {
  ws_conn *c = check_conn(L);
  lua_pushboolean(L, wslay_event_get_read_enabled(c->ctx));
  lua_pushboolean(L, wslay_event_get_close_received(c->ctx));
  lua_pushinteger(L, wslay_event_get_status_code_received(c->ctx));
  lua_pushinteger(L, c->failed ? 1002
                     : wslay_event_get_status_code_sent(c->ctx));
  lua_pushboolean(L, c->failed);
  lua_pushlstring(L, c->reason, c->reasonlen);
  return 6;
}


static int c_free(lua_State *L) {
  ws__free(luaL_checkudata(L, 1, CONN_MT));
  return 0;
}

/* }==================================================================== */


/* {====================================================================
** Handshake helpers
** ===================================================================== */

/* accept_key(key) -> base64(SHA-1(key .. GUID)), RFC 6455 section 4.2.2 */
static int l_accept_key(lua_State *L) {
  size_t klen;
  const char *key = luaL_checklstring(L, 1, &klen);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx != NULL
    && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1
    && EVP_DigestUpdate(ctx, key, klen) == 1
    && EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) == 1
    && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return luaL_error(L, "SHA-1 failed");
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, md, (int)mdlen);
  lua_pushlstring(L, (const char *)b64, (size_t)n);
  return 1;
}


/* random_key() -> base64 of 16 random bytes (Sec-WebSocket-Key) */
static int l_random_key(lua_State *L) {
  unsigned char raw[16], b64[25];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return luaL_error(L, "no random bytes");
  int n = EVP_EncodeBlock(b64, raw, sizeof raw);
  lua_pushlstring(L, (const char *)b64, (size_t)n);
  return 1;
}


/* key_ok(key) -> true if key is base64 of exactly 16 bytes (section
** 4.2.1 item 5): 22 base64 characters and "==". */
static int l_key_ok(lua_State *L) {
  size_t len;
  const char *k = luaL_checklstring(L, 1, &len);
  unsigned char raw[24];
  int ok = len == 24 && k[22] == '=' && k[23] == '='
    && EVP_DecodeBlock(raw, (const unsigned char *)k, 24) == 18;
  lua_pushboolean(L, ok);
  return 1;
}

/* is_stream(v) -> true for a corio Stream (open or not): WebSocket takes
** conn:pull and conn:write on it, else reads and writes through v's
** methods. */
static int l_is_stream(lua_State *L) {
  lua_pushboolean(L, corio__is_stream(L, 1));
  return 1;
}

/* }==================================================================== */


int luaopen_corio__wslay(lua_State *L);

int luaopen_corio__wslay(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"feed", c_feed},
    {"next", c_next},
    {"recv", c_recv},
    {"input", c_input},
    {"pull", c_pull},
    {"pulling", c_pulling},
    {"write", c_write},
    {"nofast", c_nofast},
    {"take", c_take},
    {"send", c_send},
    {"close", c_close},
    {"state", c_state},
    {"free", c_free},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", c_free},
    {NULL, NULL}
  };
  tls__ossl_load(L);            /* SHA-1, base64 and masks: OpenSSL */
  static const luaL_Reg funcs[] = {
    {"new", l_new},
    {"accept_key", l_accept_key},
    {"random_key", l_random_key},
    {"key_ok", l_key_ok},
    {"is_stream", l_is_stream},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  corio__newclass(L, rt, CONN_MT, methods, meta, NULL);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  lua_getfield(L, -2, "__index");
  lua_setfield(L, -2, "Conn");    /* the methods, to call as functions */
  lua_remove(L, -2);
  return 1;
}
