/*
** ws.c -- corio._wslay: WebSocket framing (RFC 6455) on Debian's libwslay,
** with the opening handshake's parsing, checks and cryptography in
** wshand.c.
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
**
** On a corio Stream, receive and send skip these buffers: wsstream.c reads
** frames in place and writes them through the Stream.
*/
#include <string.h>   /* memset */

#include "ws.h"        /* the Conn, shared with wsstream.c */
#include "tls/ossl.h"  /* tls__ossl_load: OpenSSL for wsconn.c, wshand.c */
#include "http.h"      /* the handshake functions (wshand.c) */


/* {====================================================================
** Conn
** ===================================================================== */

/* A userdata of exactly our size that starts with WS_MAGIC is a Conn
** (only this file makes them; Lua cannot write into a userdata): cheaper
** than luaL_checkudata's registry lookup, on every message. */
ws_conn *corio__ws_to(lua_State *L, int idx) {
  ws_conn *c = lua_touserdata(L, idx);
  if (c == NULL || lua_rawlen(L, idx) != sizeof(ws_conn) ||
      c->magic != WS_MAGIC || c->ctx == NULL)
    return NULL;
  return c;
}


ws_conn *corio__ws_check(lua_State *L) {
  ws_conn *c = corio__ws_to(L, 1);
  if (c != NULL) return c;
  c = luaL_checkudata(L, 1, CONN_MT);        /* raises if not a Conn */
  luaL_error(L, "WebSocket connection state was freed");
  return NULL;
}


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
  ws_conn *c = lua_newuserdatauv(L, sizeof(ws_conn), 1);  /* 1: stream */
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
  ws_conn *c = corio__ws_check(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (ws__feed(c, s, len) != 0) return luaL_error(L, "not enough memory");
  return 0;
}


/* conn:recv() -> data, "text"|"binary" | nil, reading: the next message,
** else whether more input is wanted (false: a close arrived or the peer
** broke the protocol; state() says which). */
static int c_recv(lua_State *L) {
  return push_next(L, corio__ws_check(L));
}


/* conn:input(data) -> as recv(), then the frames to write (pongs, the
** reply to a close) or nil: feed, recv and take in one call. */
static int c_input(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (ws__feed(c, s, len) != 0) return luaL_error(L, "not enough memory");
  push_next(L, c);
  return 2 + corio__ws_push_out(L, c);
}


/* conn:next() -> data, opcode | nil */
static int c_next(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
  ws_msg *m = c->head;
  if (m == NULL) return 0;
  lua_pushlstring(L, m->data, m->len);   /* may raise: m stays queued */
  lua_pushinteger(L, m->opcode);
  ws__pop(c);
  return 2;
}


int corio__ws_push_out(lua_State *L, ws_conn *c) {
  if (c->outlen == 0) return 0;
  lua_pushlstring(L, c->out, c->outlen);
  ws__out_taken(c);
  return 1;
}


/* conn:take() -> the frames to write, or nil */
static int c_take(lua_State *L) {
  return corio__ws_push_out(L, corio__ws_check(L));
}


/* conn:send(opcode, data) -> the bytes to write: one string, or two (the
** header, then data itself); nil when sending is over (a close was
** sent); false for text that is not UTF-8.  Opcodes other than text and
** binary (pings) go through wslay.  The caller checked the types. */
static int c_send(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
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
    corio__ws_push_out(L, c);
    if (!c->server || copy) return 1;
    lua_pushvalue(L, 3);
    return 2;
  }
  struct wslay_event_msg m = {(uint8_t)op, (const uint8_t *)s, len};
  int r = wslay_event_queue_msg(c->ctx, &m);
  if (r == WSLAY_ERR_NOMEM) return luaL_error(L, "not enough memory");
  if (r != 0) return 0;
  flush(L, c);
  return corio__ws_push_out(L, c);
}


/* conn:nofast() (tests): every frame through wslay from now on, as if
** the fast path did not exist; only before the first feed. */
static int c_nofast(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
  c->nofast = 1;
  return 0;
}


/* conn:close(code, reason) -> the frames to write, or nil if a close
** was already queued.  code 0: a close frame without a code. */
static int c_close(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
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
  ws_conn *c = corio__ws_check(L);
  lua_pushboolean(L, wslay_event_get_read_enabled(c->ctx));
  lua_pushboolean(L, wslay_event_get_close_received(c->ctx));
  lua_pushinteger(L, wslay_event_get_status_code_received(c->ctx));
  lua_pushinteger(L, c->failed ? c->failcode
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


int luaopen_corio__wslay(lua_State *L);

int luaopen_corio__wslay(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"feed", c_feed},
    {"next", c_next},
    {"recv", c_recv},
    {"input", c_input},
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
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  corio__newclass(L, rt, CONN_MT, methods, meta, NULL);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  corio__ws_stream_init(L, rt);       /* wsstream.c */
  corio__ws_handshake_funcs(L, rt);   /* wshand.c */
  lua_getfield(L, -2, "__index");
  lua_setfield(L, -2, "Conn");    /* the methods, to call as functions */
  lua_remove(L, -2);
  return 1;
}
