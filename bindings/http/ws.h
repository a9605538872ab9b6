/*
** ws.h -- what the two Lua faces of a WebSocket Conn share: ws.c (the
** Conn userdata, its buffer methods and corio._wslay) and wsstream.c
** (reading and writing frames on a corio Stream, and the C receive/send
** in front of the Lua methods).  The framing state itself, without Lua,
** is wsconn.h's.
*/
#ifndef CORIO_WS_H
#define CORIO_WS_H

#include "shared.h"    /* the core: corio_rt, Lua */
#include "wsconn.h"    /* ws_conn */

#define CONN_MT "corio.WebSocketConn"

/* Data frames up to this size are sent as one buffer (header and payload
** copied together: one iovec for the kernel); larger ones as the header,
** then the caller's own string (a server's frames are not masked): no
** copy of the payload. */
#define SEND_COPY 1024

ws_conn *corio__ws_check(lua_State *L);
  /* the Conn at index 1, not freed; raises otherwise */
ws_conn *corio__ws_to(lua_State *L, int idx);
  /* the Conn at idx if it is one and is not freed, else NULL; no raise */
int corio__ws_push_out(lua_State *L, ws_conn *c);
  /* pushes the frames to write and empties the buffer: 1; none: 0 */
void corio__ws_stream_init(lua_State *L, corio_rt *rt);
  /* wsstream.c: adds pull, pulling, bind and write to the Conn class at
     -2 and sets fast_methods and is_stream into the table at -1 */

#endif
