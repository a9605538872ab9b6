/*
** wsstream.c -- a WebSocket on a corio Stream: frames read in place from
** the Stream's buffer and written through its write path, and the C
** receive/send standing in front of the Lua methods (scripts/_ws.lua).
**
** conn:pull(stream) reads as the Stream's reader: a whole fast-path frame
** at the front of the buffer is unmasked there and becomes the message
** string (the one copy); anything else is fed to the framing (wsconn.c).
** conn:write(stream, op, data) sends a data frame through the Stream
** (its filter, backpressure and errors).  Neither holds a Stream pointer
** across a wait: the Stream is fetched again from its userdata after
** every resume, since a wait may end with it closed.
*/
#include <stdint.h>   /* uintptr_t */
#include <string.h>   /* memcmp */

#include "ws.h"        /* the Conn, shared with ws.c */

#define STREAM_NAME "corio.Stream"


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


/* Pushes a message's kind: with names (receive's upvalue index of
** "text", "binary" after it) and nothing more to return, the name
** receive returns; else the opcode conn:pull returns. */
static void push_kind(lua_State *L, const ws_conn *c, int op, int names) {
  if (names && c->outlen == 0)
    lua_pushvalue(L, lua_upvalueindex(names + (op == WSLAY_BINARY_FRAME)));
  else
    lua_pushinteger(L, op);
}


/* The loop of conn:pull ([conn, stream] on the stack) and of receive
** ([self, conn]; see pull_resume).  A whole
** fast-path frame at the front of the Stream's buffer is unmasked there
** and becomes the message string: the one copy.  Anything else is fed
** to the framing (which keeps what it needs), and the Stream waited on
** only once the frames to answer (pongs, the reply to a close) were
** handed back to be written. */
static int pull(lua_State *L, corio_rt *rt, ws_conn *c, struct stream *s,
                lua_KFunction k, int names) {
  for (;;) {
    ws_msg *m = c->head;
    if (m) {
      lua_pushlstring(L, m->data, m->len);    /* may raise: m stays */
      push_kind(L, c, m->opcode, names);
      ws__pop(c);
      return 2 + corio__ws_push_out(L, c);
    }
    if (c->failed || c->rd_off) {
      lua_pushnil(L);
      lua_pushboolean(L, 0);
      return 2 + corio__ws_push_out(L, c);
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
        push_kind(L, c, p[0] & 0x0f, names);
        return 2 + corio__ws_push_out(L, c);
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
      return 2 + corio__ws_push_out(L, c);
    }
    if (eof) return 0;
    /* lua_yieldk does not return to a C function (outside hooks): the
    ** wait goes on in pull_k, and only a wait that cannot begin returns */
    c->pulling = 1;
    corio__stream_wait(L, rt, s, "receive", k);
    c->pulling = 0;
    return pull_error(L);
  }
}


/* The Stream conn:bind gave c, if it is open (the Conn's user value
** keeps its userdata alive). */
static struct stream *bound(const ws_conn *c) {
  return c->bound ? corio__stream_of(c->bound) : NULL;
}


/* After a wait in pull: the Conn at b again, its Stream at b + 1 or, with
** names (receive), the bound one; k goes on as the continuation of any
** further wait (names as for pull). */
static int pull_resume(lua_State *L, lua_KContext ctx, lua_KFunction k,
                       int b, int names) {
  ws_conn *c = lua_touserdata(L, b);
  struct stream *s = names ? bound(c) : corio__stream_get(L, b + 1);
  corio_rt *rt = s ? corio__stream_rt(s) : RT_UPVALUE(L);
  c->pulling = 0;
  if (corio__stream_waited(L, rt, ctx) < 0) return pull_error(L);
  if (c->ctx == NULL) return 0;               /* freed meanwhile */
  if (s == NULL) {
    corio__push_error(L, "CLOSED", "receive", "stream is closed");
    return pull_error(L);
  }
  return pull(L, rt, c, s, k, names);
}


static int pull_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return pull_resume(L, ctx, pull_k, 1, 0);
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
  ws_conn *c = corio__ws_check(L);
  struct stream *s = corio__stream_get(L, 2);
  lua_settop(L, 2);
  if (s == NULL) {
    if (!corio__is_stream(L, 2)) return luaL_typeerror(L, 2, STREAM_NAME);
    corio__push_error(L, "CLOSED", "receive", "stream is closed");
    return pull_error(L);
  }
  return pull(L, corio__stream_rt(s), c, s, pull_k, 0);
}


/* conn:bind(stream): the Stream the fast methods use (its user value). */
static int c_bind(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
  lua_settop(L, 2);
  c->bound = corio__is_stream(L, 2) ? lua_touserdata(L, 2) : NULL;
  lua_setiuservalue(L, 1, 1);
  return 0;
}


/* conn:pulling() -> whether a task waits in conn:pull (it will read the
** reply to a close). */
static int c_pulling(lua_State *L) {
  lua_pushboolean(L, corio__ws_check(L)->pulling);
  return 1;
}


/* A data frame of p out through s (see conn:write); returns what the
** Lua function returns (0), waiting on backpressure.  A small server
** frame goes out as one buffer (header and payload copied together: one
** iovec for the kernel), built on the C stack when no other frame is
** pending (the Stream copies what the kernel does not take at once); a
** big one as the header, then p itself. */
static int write_frame(lua_State *L, corio_rt *rt, ws_conn *c,
                       struct stream *s, int op, const char *p,
                       size_t len) {
  int copy = c->server && len <= SEND_COPY;
  if (copy && c->outlen == 0) {
    unsigned char f[4 + SEND_COPY];           /* at most a 4-byte header */
    size_t hlen = ws__header(c, op, len, f);
    if (hlen == 0) return 0;
    if (len) memcpy(f + hlen, p, len);
    uv_buf_t b = uv_buf_init((char *)f, (unsigned int)(hlen + len));
    corio__stream_send(L, s, &b, 1, "send");
    return corio__stream_write_wait(L, rt, s, "send");
  }
  int r = ws__send(c, op, p, len, copy);
  if (r < 0) return luaL_error(L, "not enough memory");
  if (r == 0) return 0;
  uv_buf_t b[2];
  b[0] = uv_buf_init(c->out, (unsigned int)c->outlen);
  b[1] = uv_buf_init((char *)(uintptr_t)p, (unsigned int)len);
  corio__stream_send(L, s, b, c->server && !copy && len > 0 ? 2 : 1,
                     "send");
  ws__out_taken(c);               /* what did not go out was copied */
  return corio__stream_write_wait(L, rt, s, "send");
}


/* conn:write(stream, opcode, data) -> nothing; false for text that is
** not UTF-8, "type" when data is not a string: send()'s step on a corio
** Stream.  A data frame goes out as
** its header and data itself (a server's frames are not masked; a
** client's are masked in the output buffer), with any frames still
** pending before it, then waits as Stream:write does.  Nothing is sent
** once a close was.  The caller checked the types. */
static int c_write(lua_State *L) {
  ws_conn *c = corio__ws_check(L);
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
  return write_frame(L, rt, c, s, (int)op, p, len);
}

/* }==================================================================== */


/* {====================================================================
** WebSocket:receive and :send on a corio Stream, without Lua frames
** =====================================================================
** fast_methods(pulled, receive, send) -> receive, send: C closures
** standing in front of the Lua methods.  When self[FAST] holds the Conn
** (a WebSocket on an open corio Stream, neither closing nor done) they
** do what the Lua methods' first lines do -- conn:pull, conn:write --
** with no Lua call in between; anything else (another stream, a closing
** WebSocket, a bad argument, a message with frames to answer) goes to
** the Lua function, which stays the one place of the policy.  FAST is an
** integer key: found without hashing a string or pushing a key.
** Upvalues: rt, the Lua method, and for receive `pulled`, "text" and
** "binary".  The Conn's user value is its Stream (conn:bind), which
** c->bound reaches without an API call. */

#define FAST 1                   /* self[FAST]: the Conn (C.FAST in Lua) */
#define RECV_NAMES 4             /* receive's upvalues "text", "binary" */

static int lua_rest(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}


/* Calls upvalue 2 (the Lua method) with the arguments at 1..top. */
static int slow_method(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, lua_rest);
  return lua_gettop(L);
}


/* The Conn in self[FAST] (self at 1), pushed, or NULL (nothing pushed).
** Only a live Conn passes (corio__ws_to), so a table that merely has
** the field reaches at most a Conn's own methods, never freed memory. */
static ws_conn *fast_conn(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE) return NULL;
  ws_conn *c = lua_rawgeti(L, 1, FAST) == LUA_TUSERDATA
    ? corio__ws_to(L, -1) : NULL;
  if (c == NULL) lua_pop(L, 1);
  return c;
}


/* n results of pull on top of [self, conn]: a plain message (pull
** pushed its kind's name) is returned as data, kind; anything else goes
** to the Lua side, pulled(self, conn, stream, results...). */
static int recv_done(lua_State *L, int n) {
  if (n == 2 && lua_type(L, -2) == LUA_TSTRING) return 2;
  lua_checkstack(L, 4);
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_getiuservalue(L, 2, 1);
  lua_rotate(L, -(n + 4), 4);     /* pulled, self, conn, stream, results */
  lua_callk(L, n + 3, LUA_MULTRET, 2, lua_rest);
  return lua_gettop(L) - 2;
}


static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return recv_done(L, pull_resume(L, ctx, recv_k, 2, RECV_NAMES));
}


/* WebSocket:receive() */
static int ws_receive(lua_State *L) {
  lua_settop(L, 1);
  ws_conn *c = fast_conn(L);                       /* self conn */
  if (c == NULL) return slow_method(L);
  struct stream *s = bound(c);
  if (s == NULL) {
    lua_settop(L, 1);
    return slow_method(L);
  }
  return recv_done(L, pull(L, corio__stream_rt(s), c, s, recv_k,
                           RECV_NAMES));
}


/* WebSocket:send(data [, kind]) */
static int ws_send(lua_State *L) {
  int op = 0;
  lua_settop(L, 3);
  if (lua_type(L, 2) == LUA_TSTRING) {
    int t = lua_type(L, 3);
    if (t == LUA_TNIL) op = WSLAY_TEXT_FRAME;
    else if (t == LUA_TSTRING) {
      size_t n;
      const char *k = lua_tolstring(L, 3, &n);
      op = n == 4 && memcmp(k, "text", 4) == 0 ? WSLAY_TEXT_FRAME
         : n == 6 && memcmp(k, "binary", 6) == 0 ? WSLAY_BINARY_FRAME : 0;
    }
  }
  ws_conn *c = op ? fast_conn(L) : NULL;           /* self data kind conn */
  if (c == NULL) return slow_method(L);
  struct stream *s = bound(c);
  size_t len;
  const char *p = lua_tolstring(L, 2, &len);
  if (s == NULL || (op == WSLAY_TEXT_FRAME && !ws__utf8_ok(p, len))) {
    lua_settop(L, 3);               /* the Lua side says what is wrong */
    return slow_method(L);
  }
  return write_frame(L, corio__stream_rt(s), c, s, op, p, len);
}


static int l_fast_methods(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_pushlightuserdata(L, rt);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_pushliteral(L, "text");
  lua_pushliteral(L, "binary");
  lua_pushcclosure(L, ws_receive, 5);
  lua_pushlightuserdata(L, rt);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, ws_send, 2);
  return 2;
}

/* }==================================================================== */


/* is_stream(v) -> true for a corio Stream (open or not): WebSocket takes
** conn:pull and conn:write on it, else reads and writes through v's
** methods. */
static int l_is_stream(lua_State *L) {
  lua_pushboolean(L, corio__is_stream(L, 1));
  return 1;
}


void corio__ws_stream_init(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"pull", c_pull},
    {"pulling", c_pulling},
    {"bind", c_bind},
    {"write", c_write},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"is_stream", l_is_stream},
    {"fast_methods", l_fast_methods},
    {NULL, NULL}
  };
  lua_pushvalue(L, -2);
  corio__addmethods(L, rt, methods, NULL);
  lua_pop(L, 1);
  corio__setfuncs(L, rt, funcs);
  lua_pushinteger(L, FAST);
  lua_setfield(L, -2, "FAST");
}
