/*
** serve.c -- corio._http: the server's keep-alive loop, in C.
**
** The common request of an HTTP/1.1 server -- a head already read whole,
** no body, a handler that returns `status, {map}, "body"` without
** suspending -- costs here what the work costs: the head found and
** parsed in the Stream's own read buffer, the Request and the Response
** made (Parser:take's code), the handler called, the answer built on the
** C stack and written, and the next head looked for, with Lua entered
** only for the handler.  Everything else -- a body, a head not yet
** whole or malformed, a handler that suspends or answers through `res`,
** errors, backpressure, shutdown -- goes back to scripts/_http_server.lua,
** whose `one()` is the reference for what this loop does: this file only
** does the part of it that needs no decision Lua makes.  The connection's
** state stays in its Lua table (the deadline, keep, the running request)
** so that both halves see one state.
**
**   serve(P, stream, conn, Request, Response, handler, reasons, srv,
**         armed, arm_at, idle_timeout, request_timeout, DoneResponse,
**         lazy) -> how, ...
**   armed: the server's list of armed connections (armed.c)
**   DoneResponse: the metatable a Response answered here gets (the
**   Response's methods, headers_sent and finished true): one call
**   instead of two new fields
**   lazy: true when the handler takes one parameter (req): it is called
**   without a Response, which is made only if req._res is read
**   how:
**     "slow"   nothing taken: one() serves the next request
**     "stop"   the wait for a request failed (EOF came as a wait error,
**              a reset, a cancel): one()'s read failed the same way
**     "fired"  a phase's deadline fired while the wait succeeded: the
**              caller takes the cancel back (phase_end) and goes on
**     "run", req, res, keep, framing, length
**              a head taken (consumed) whose body the Lua path reads
**     "after", req, res, hok, herr, headers, body
**              the handler returned (or raised) and the Lua path answers
**     "drain", req, res    the answer is queued past WRITE_HWM
**     "finish", req, res, hok, herr    the answer went out (or failed)
**     "close"  answered; the connection closes (conn.linger set)
**   The Lua side calls serve again after each of these, unless the
**   connection ends.
*/
#include <string.h>
#include "shared.h"   /* corio__stream_*, corio__now */
#include "http.h"

#define WRITE_HWM 65536   /* as _http_server.lua: past it the Lua path waits */
#define OUTBUF 4096       /* a response that fits is built on the C stack */

enum {                    /* the arguments */
  A_P = 1, A_S, A_CONN, A_REQMT, A_RESMT, A_HANDLER, A_REASONS, A_SRV, A_ARMED,
  A_ARM_AT, A_IDLE, A_REQUEST, A_DONEMT, A_LAZY,
  A_REQ, A_RES            /* the running request, above the arguments */
};

/* the interned key k of the table at t: get (pushes, returns the type), set */
static int get(lua_State *L, int t, int k) {
  lua_pushvalue(L, k);
  return lua_rawget(L, t);
}
#define SET(t, k, push) (lua_pushvalue(L, HTTP_KEY(k)), (push), lua_rawset(L, (t)))

static int how(lua_State *L, const char *what) {
  lua_pushstring(L, what);
  return 1;
}

/* Pushes what, req and res, then the values at [from, from + n). */
static int hand_over(lua_State *L, const char *what, int from, int n) {
  if (lua_isnil(L, A_RES)) {                /* the Lua path needs it: made */
    lua_getfield(L, A_REQ, "_res");
    lua_replace(L, A_RES);
  }
  lua_pushstring(L, what);
  lua_pushvalue(L, A_REQ);
  lua_pushvalue(L, A_RES);
  for (int i = 0; i < n; i++) lua_pushvalue(L, from + i);
  return 3 + n;
}

/* The phases a connection's deadline times, by name */
static const char *const phases[] = { "idle", "header", "request", "drain", NULL };
enum { PH_IDLE, PH_HEADER, PH_REQUEST, PH_DRAIN };

/* Entering a phase: its due time stored; the due time the connection's
** one timer must be re-armed for, or 0 when it will fire early enough. */
static double enter(http_deadline *d, int phase, double seconds) {
  double due = corio__now() + seconds;
  d->phase = (unsigned char)phase;
  d->due = due;
  d->has_due = 1;
  return d->armed && d->timer_at <= due ? 0 : due;
}

/* enter() for the loop: arm_at(conn, due) called when needed */
static void set_phase(lua_State *L, http_deadline *d, int phase, double seconds) {
  double due = enter(d, phase, seconds);
  if (due == 0) return;
  lua_pushvalue(L, A_ARM_AT);
  lua_pushvalue(L, A_CONN);
  lua_pushnumber(L, due);
  lua_call(L, 2, 0);
}

/* The disconnect watcher's arming, as arm() in _http_server.lua: the
** connection on the server's armed list (armed.c), whose callback the
** first of a turn schedules; unarmed again when the handler answers
** without suspending. */
static void arm(lua_State *L, Parser *P) {
  corio__http_arm(L, A_ARMED, corio__http_parser_arm(P), A_P, A_CONN);
}

static int idle_k(lua_State *L, int status, lua_KContext ctx);
static int handler_k(lua_State *L, int status, lua_KContext ctx);

/* The Response at A_RES (made first, when the handler took req alone and
** the Lua path is to see it) is marked answered: headers_sent and
** finished, by its metatable. */
static void answered_res(lua_State *L) {
  if (lua_isnil(L, A_RES)) {
    lua_getfield(L, A_REQ, "_res");
    lua_replace(L, A_RES);
  }
  lua_pushvalue(L, A_DONEMT);
  lua_setmetatable(L, A_RES);
}

/* ctx of the handler's call: what the answer's framing needs */
enum { C_HEAD = 1, C_HTTP10 = 2 };

/* The handler returned without suspending (status: lua_pcallk's): its
** answer, when it is the common one, made and written here.  Returns the
** count of results to return, or NEXT when the loop goes on. */
#define NEXT (-1)
static int answered(lua_State *L, int status, int ctx) {
  enum { HERR = A_RES + 1, HEADERS, BODY };
  if (status != LUA_OK) {                   /* raised: the Lua path reports */
    lua_settop(L, HERR);
    lua_pushboolean(L, 0);
    lua_insert(L, HERR);
    lua_settop(L, BODY + 1);
    return hand_over(L, "after", HERR, 4);
  }
  lua_settop(L, BODY);
  lua_pushboolean(L, 1);
  lua_insert(L, HERR);                      /* hok, herr, headers, body */
  int hok = HERR, st = HERR + 1, hd = HERR + 2, bd = HERR + 3;
  int bt = lua_type(L, bd);
  struct stream *s = corio__stream_get(L, A_S);
  if (!lua_isinteger(L, st) || (bt != LUA_TNIL && bt != LUA_TSTRING) || s == NULL)
    return hand_over(L, "after", hok, 4);
  lua_Integer code = lua_tointeger(L, st);
  if (code < 200 || code > 999) return hand_over(L, "after", hok, 4);   /* 1xx: refused there */
  if (lua_isnil(L, A_RES)) {                /* the handler took req alone */
    lua_pushvalue(L, HTTP_KEY(_res));
    if (lua_rawget(L, A_REQ) != LUA_TNIL) lua_replace(L, A_RES);   /* made */
    else lua_pop(L, 1);
  }
  int nores = lua_isnil(L, A_RES);
  if (!nores && (get(L, A_RES, HTTP_KEY(finished)) != LUA_TNIL ||
      get(L, A_RES, HTTP_KEY(headers_sent)) != LUA_TNIL ||
      get(L, A_RES, HTTP_KEY(_status)) != LUA_TNIL))
    return hand_over(L, "after", hok, 4);   /* res was used: the Lua path */
  lua_settop(L, bd);
  int flags = 0;
  if ((ctx & C_HEAD) || code == 204 || code == 304 || code < 200)
    flags = (ctx & C_HEAD) ? R_NOBODY : R_NOBODY | R_NOLEN;
  get(L, A_CONN, HTTP_KEY(keep));
  int keep = lua_toboolean(L, -1);
  if (!keep) flags |= R_CLOSE;
  else if (ctx & C_HTTP10) flags |= R_KEEP;
  size_t rl = 7, bl = 0, outlen = 0;
  const char *reason = "Unknown";
  if (lua_rawgeti(L, A_REASONS, code) == LUA_TSTRING) reason = lua_tolstring(L, -1, &rl);
  const char *body = bt == LUA_TSTRING ? lua_tolstring(L, bd, &bl) : "";
  char out[OUTBUF];
  luaL_checkstack(L, 80, "serve");
  int closing = 0;
  int r = corio__http_build(L, hd, code, reason, rl, body, bl, flags, out, sizeof out, &outlen,
                            &closing);
  if (r < 0) {
    lua_settop(L, bd);
    return hand_over(L, "after", hok, 4);
  }
  uv_buf_t b = uv_buf_init(out, (unsigned int)outlen);
  if (r == 1) {                             /* too big for out: a string */
    size_t l;
    b.base = (char *)(uintptr_t)lua_tolstring(L, -1, &l);
    b.len = l;
  }
  if (!nores) answered_res(L);
  if (corio__stream_try_send(L, s, &b, 1, "write") < 0) {
    if (nores) answered_res(L);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);                      /* false, err */
    return hand_over(L, "finish", lua_gettop(L) - 1, 2);
  }
  if (corio__stream_queued(s) > WRITE_HWM) {
    if (nores) answered_res(L);
    return hand_over(L, "drain", 0, 0);
  }
  /* the request is done: what one() does after a handler answered */
  corio__http_deadline(lua_touserdata(L, A_P))->has_due = 0;
  if (get(L, A_CONN, HTTP_KEY(fired)) != LUA_TNIL && lua_toboolean(L, -1)) {
    if (nores) answered_res(L);
    lua_pushboolean(L, 1);
    lua_pushnil(L);
    return hand_over(L, "finish", lua_gettop(L) - 1, 2);
  }
  SET(A_CONN, req, lua_pushboolean(L, 0));
  corio__http_unarm(corio__http_parser_arm(lua_touserdata(L, A_P)));
  if (closing) {                            /* the handler said close */
    SET(A_CONN, keep, lua_pushboolean(L, 0));
    keep = 0;
  }
  if (!keep) {
    SET(A_CONN, linger, lua_pushboolean(L, 1));
    return how(L, "close");
  }
  lua_settop(L, A_LAZY);
  return NEXT;
}

static int handler_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  /* the handler suspended: the watcher may be running, so the Lua path
     finishes this request (as one() does after its pcall) */
  int ok = status == LUA_OK || status == LUA_YIELD;
  if (ok) lua_settop(L, A_RES + 3);
  else lua_settop(L, A_RES + 1);
  lua_pushboolean(L, ok);
  lua_insert(L, A_RES + 1);
  lua_settop(L, A_RES + 4);
  return hand_over(L, "after", A_RES + 1, 4);
}

/* One request whose head [p, p + e) is buffered whole: the count of
** results to return, or NEXT. */
static int take(lua_State *L, struct stream *s, Parser *P, const char *p, size_t e) {
  lua_pushlstring(L, p, e);                 /* A_REQ: the head, req._b */
  int lazy = lua_toboolean(L, A_LAZY);
  int n = corio__http_take_at(L, P, A_REQ, 1, (lua_Integer)e, A_REQMT, lazy ? 0 : A_RESMT, A_CONN);
  if (n != 6) {                             /* a bad head: one() answers it */
    lua_settop(L, A_LAZY);
    return how(L, "slow");
  }
  corio__stream_consume(s, e);
  lua_remove(L, A_REQ);                     /* req res next keep framing length */
  const char *kind = lua_tostring(L, A_RES + 3);
  lua_Integer length = lua_tointeger(L, A_RES + 4);
  if (!(kind[0] == 'n' || (kind[0] == 'l' && length == 0)))   /* a body */
    return hand_over(L, "run", A_RES + 2, 3);
  SET(A_CONN, keep, lua_pushvalue(L, A_RES + 2));
  lua_settop(L, A_RES);
  SET(A_CONN, req, lua_pushvalue(L, A_REQ));
  arm(L, P);
  set_phase(L, corio__http_deadline(P), PH_REQUEST, lua_tonumber(L, A_REQUEST));
  int ctx = (corio__http_is_head(P) ? C_HEAD : 0) | (corio__http_minor(P) == 0 ? C_HTTP10 : 0);
  lua_pushvalue(L, A_HANDLER);
  lua_pushvalue(L, A_REQ);
  if (!lazy) lua_pushvalue(L, A_RES);
  return answered(L, lua_pcallk(L, lazy ? 1 : 2, 3, 0, ctx, handler_k), ctx);
}

static int loop(lua_State *L) {
  Parser *P = lua_touserdata(L, A_P);
  for (;;) {
    struct stream *s = corio__stream_get(L, A_S);   /* a handler may close it */
    if (s == NULL) return how(L, "slow");
    size_t len, e;
    int eof;
    char *p = corio__stream_peek(s, &len, &eof);
    if (len == 0) {
      if (eof) return how(L, "slow");
      /* idle: wait quietly for the next request's first byte */
      set_phase(L, corio__http_deadline(P), PH_IDLE, lua_tonumber(L, A_IDLE));
      corio__stream_wait(L, *corio__http_rt_slot(P), s, "read", idle_k);
      /* (a wait that could not begin: its error is on top) */
      corio__http_deadline(P)->has_due = 0;
      return how(L, "stop");
    }
    if (get(L, A_SRV, HTTP_KEY(_shutting)) != LUA_TNIL && lua_toboolean(L, -1))
      return how(L, "slow");
    lua_pop(L, 1);
    lua_Integer max = corio__http_max_size(P);
    e = corio__http_head_end(p, max >= 0 && (lua_Unsigned)max < len ? (size_t)max : len);
    if (e == 0) return how(L, "slow");      /* not whole: read under header_timeout */
    int n = take(L, s, P, p, e);
    if (n != NEXT) return n;
  }
}

static int idle_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  Parser *P = lua_touserdata(L, A_P);
  int r = corio__stream_waited(L, *corio__http_rt_slot(P), ctx);
  corio__http_deadline(P)->has_due = 0;
  if (r < 0) return how(L, "stop");
  lua_settop(L, A_LAZY);
  if (get(L, A_CONN, HTTP_KEY(fired)) != LUA_TNIL && lua_toboolean(L, -1)) return how(L, "fired");
  lua_pop(L, 1);
  return loop(L);
}

int corio__http_serve(lua_State *L) {
  Parser *P = corio__http_check_parser(L, A_P);
  luaL_checktype(L, A_CONN, LUA_TTABLE);
  luaL_checkudata(L, A_ARMED, CORIO_HTTP_ARMED_MT);
  luaL_checknumber(L, A_IDLE);
  luaL_checknumber(L, A_REQUEST);
  luaL_checktype(L, A_DONEMT, LUA_TTABLE);
  lua_settop(L, A_LAZY);
  luaL_checkstack(L, 40, "serve");
  if (*corio__http_rt_slot(P) == NULL) *corio__http_rt_slot(P) = corio__rt(L);
  return loop(L);
}


/* {====================================================================
** The deadline's methods on a Parser (for _http_server.lua)
** ===================================================================== */

static http_deadline *check_deadline(lua_State *L) {
  return corio__http_deadline(corio__http_check_parser(L, 1));
}

/* p:phase(name, seconds) -> due or nil: enters the phase; due when the
** timer must be armed for it */
static int dl_phase(lua_State *L) {
  http_deadline *d = check_deadline(L);
  int ph = luaL_checkoption(L, 2, NULL, phases);
  double due = enter(d, ph, luaL_checknumber(L, 3));
  if (due == 0) return 0;
  lua_pushnumber(L, due);
  return 1;
}

/* p:armed(due or nil): the timer is armed for due now (or not at all) */
static int dl_armed(lua_State *L) {
  http_deadline *d = check_deadline(L);
  d->armed = !lua_isnoneornil(L, 2);
  if (d->armed) d->timer_at = luaL_checknumber(L, 2);
  return 0;
}

/* p:due() -> due, phase name; or nothing when no phase is timed */
static int dl_due(lua_State *L) {
  http_deadline *d = check_deadline(L);
  if (!d->has_due) return 0;
  lua_pushnumber(L, d->due);
  lua_pushstring(L, phases[d->phase]);
  return 2;
}

/* p:clear(): the phase is over (no due time) */
static int dl_clear(lua_State *L) {
  check_deadline(L)->has_due = 0;
  return 0;
}

void corio__http_deadline_methods(lua_State *L) {
  static const luaL_Reg meths[] = {
    { "phase", dl_phase }, { "armed", dl_armed }, { "due", dl_due }, { "clear", dl_clear },
    { NULL, NULL }
  };
  lua_pushvalue(L, -1);                     /* upvalue 1: the metatable */
  luaL_setfuncs(L, meths, 1);
}

/* }==================================================================== */
