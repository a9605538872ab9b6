/* http.h -- the parts of corio._http (bindings/http/) */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H
#include <lua.h>
#include <stddef.h>

/* head.c: RFC 9110 tchar (field names, methods, tokens) and an ASCII
** case-insensitive compare with a lowercase literal */
extern const unsigned char corio__http_tchar[256];
#define tchar corio__http_tchar
int corio__http_ieq(const char *a, size_t n, const char *lower);
#define ieq corio__http_ieq

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
#define HTTP_KEYS(X) X(method) X(target) X(path) X(minor) X(_b) X(_hf) X(_q) \
  X(_continue) X(_res) X(_c) X(_req) X(headers_sent) X(finished) X(_status) X(keep)
#define HTTP_KEY_ENUM(k) HK_##k,
enum { HTTP_KEYS(HTTP_KEY_ENUM) HK_COUNT };
#define HTTP_UP_KEYS 3
#define HTTP_KEY(k) lua_upvalueindex(HTTP_UP_KEYS + HK_##k)
#endif
