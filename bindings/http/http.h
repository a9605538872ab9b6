/* http.h -- the parts of corio._http (bindings/http/) */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H
#include <lua.h>
#include <stddef.h>

/* head.c: RFC 9110 tchar (field names, methods, tokens) and an ASCII
** case-insensitive compare with a lowercase literal */
extern const unsigned char corio__http_tchar[256];
#define tchar corio__http_tchar
int corio__http_ieq(const char *a, const char *lower, size_t n);
/* ieq(a, n, "literal"): the lengths compared first, inline, since most
** names tried against a literal differ in length (no strlen, no call).
** ("" lit) makes anything but a string literal a compile error, where
** sizeof would silently measure a pointer. */
#define ieq(a, n, lit) \
  ((n) == sizeof("" lit) - 1 && corio__http_ieq((a), (lit), sizeof("" lit) - 1))

int corio__http_inflater(lua_State *L);   /* inflate.c */
int corio__http_respond(lua_State *L);    /* respond.c: a response in one buffer */
struct corio_rt;
void corio__ws_handshake_funcs(lua_State *L, struct corio_rt *rt);
  /* wshand.c: sets the WebSocket handshake functions (parse_head,
     check_upgrade, response, accept_key...) into the table on top */
int corio__http_reply(lua_State *L);      /* respond.c: a handler's returned answer */

/* Field names of the server's Request and Response, interned once: the
** upvalues of Parser:take and reply from HTTP_UP_KEYS on (upvalue 1: the
** Parser metatable; 2: the method names by http_parser's number). */
#define HTTP_KEYS(X) X(method) X(minor) X(_b) X(_p) \
  X(_continue) X(_res) X(_c) X(_req) X(headers_sent) X(finished) X(_status) X(keep) \
  X(req) X(fired) X(linger) X(_shutting)
#define HTTP_KEY_ENUM(k) HK_##k,
enum { HTTP_KEYS(HTTP_KEY_ENUM) HK_COUNT };
#define HTTP_UP_KEYS 3
#define HTTP_KEY(k) lua_upvalueindex(HTTP_UP_KEYS + HK_##k)

size_t corio__http_head_end(const char *s, size_t n);
  /* head.c: the end of a head in s[0, n): the byte after its blank line,
     or 0 */

/* A server connection's deadline (serve.c): one phase at a time is timed
** (see "The connection's deadline" in _http_server.lua); the Lua side
** owns the timer, this records its due time and what it is armed for. */
typedef struct http_deadline {
  double due, timer_at;
  unsigned char has_due, armed, phase;
} http_deadline;

/* head.c: a connection's parser (the userdata of corio._http's parser()) */
typedef struct Parser Parser;
#define CORIO_HTTP_PARSER_MT "corio.http.Parser"

/* armed.c: the server's connections whose handler may be suspended (for
** the disconnect watcher), linked through their Parsers */
typedef struct http_armed http_armed;
#define CORIO_HTTP_ARMED_MT "corio._http.armed"
typedef struct http_arm {
  struct http_arm *prev, *next;   /* linked (next not NULL): armed */
  http_armed *list;               /* the list that numbered it, or NULL */
  lua_Integer slot;               /* its connection's number in that list */
} http_arm;
http_arm *corio__http_parser_arm(Parser *P);    /* head.c: P's place */
int corio__http_armed(lua_State *L);            /* armed(call_soon, start) -> list */
int corio__http_arm(lua_State *L, int listidx, http_arm *a, int pidx, int connidx);
  /* arms the connection at connidx, whose Parser (at pidx) has a; the
     list at listidx; schedules the turn's callback (may raise) */
void corio__http_unarm(http_arm *a);            /* no-op when not armed */
http_deadline *corio__http_deadline(Parser *P);   /* the connection's */
Parser *corio__http_check_parser(lua_State *L, int idx);
  /* the Parser at idx, in a function with take's upvalues; raises */
lua_Integer corio__http_max_size(const Parser *P);   /* limits()'s max_size */
struct corio_rt **corio__http_rt_slot(Parser *P);    /* for serve.c, NULL at first */
int corio__http_minor(const Parser *P);              /* of the head parsed last */
int corio__http_is_head(const Parser *P);            /* its method is HEAD */
int corio__http_take_at(lua_State *L, Parser *P, int bidx, lua_Integer pos, lua_Integer max,
                        int reqmt, int resmt, int connidx);
  /* Parser:take on the string at bidx (in a function with take's
     upvalues); pushes take's results and returns their count.  resmt 0:
     no Response (nil in its place; the Request gets _c instead of _res,
     and makes its Response when req._res is first read) */

/* respond.c: a response in one buffer */
enum { R_NOBODY = 1, R_NOLEN = 2, R_CLOSE = 4, R_KEEP = 8 };
int corio__http_build(lua_State *L, int mapidx, lua_Integer status, const char *reason,
                      size_t rl, const char *body, size_t bl, int flags, char *out,
                      size_t cap, size_t *outlen, int *closing);
  /* the response to status, the map at mapidx and body (flags R_*): into
     out (*outlen bytes, 0 returned) when it fits in cap bytes, else as a
     new string on the stack (1 returned); -1 when the map is not for the
     C path (respond()'s rules), nothing pushed.  Needs stack room for
     the map's fields.  *closing: the map's Connection field lists "close"
     (the connection must end after this response; with R_KEEP the
     answer says close instead) */

int corio__http_serve(lua_State *L);      /* serve.c: the keep-alive loop */
void corio__http_deadline_methods(lua_State *L);
  /* serve.c: the deadline's methods into the Parser metatable on top */
#endif
