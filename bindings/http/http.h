/* http.h -- the parts of corio._http (bindings/http/) */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H
#include <lua.h>
int corio__http_inflater(lua_State *L);   /* inflate.c */
int corio__http_respond(lua_State *L);    /* respond.c: a response in one buffer */
struct corio_rt;
void corio__ws_handshake_funcs(lua_State *L, struct corio_rt *rt);
  /* wshand.c: sets the WebSocket handshake functions (parse_head,
     check_upgrade, response, accept_key...) into the table on top */
#endif
