/* http.h -- the parts of corio._http (bindings/http/) */
#ifndef CORIO_HTTP_H
#define CORIO_HTTP_H
#include <lua.h>
int corio__http_inflater(lua_State *L);   /* inflate.c */
#endif
