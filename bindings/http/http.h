/* http.h -- the parts of corio._http (bindings/http/) */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H
#include <lua.h>
int corio__http_inflater(lua_State *L);   /* inflate.c */
int corio__http_respond(lua_State *L);    /* respond.c: a response in one buffer */
int corio__http_reply(lua_State *L);      /* respond.c: a handler's returned answer */
#endif
