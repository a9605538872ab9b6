/*
** shared.h -- what one binding offers the others.
**
** The core (runtime/internal.h) knows nothing of the modules built on it;
** the few helpers that cross from one module to another are declared
** here: process pipes are corio.net Streams, and every module checks a
** path argument the way corio.fs does.  Only files under bindings/ may
** include this header (the Makefile gives -Ibindings to them alone).
*/
#ifndef CORIO_BINDINGS_SHARED_H
#define CORIO_BINDINGS_SHARED_H

#include "internal.h"  /* the core: corio_rt, Lua, libuv */

/* fs/fs.c */
const char *corio__check_path(lua_State *L, int idx);
  /* the path string at idx; raises `bad argument` for a non-string and
     for a zero byte inside (the kernel would stop the path there) */

/* net/stream.c: Streams for other modules (process pipes).
** A Stream is corio.net's byte stream (see docs/API-net.md). */
uv_pipe_t *corio__stream_new_pipe(lua_State *L, corio_rt *rt);
  /* pushes a new Stream wrapping a freshly initialised uv_pipe_t (ipc 0)
     and returns that pipe, e.g. for uv_spawn's stdio container
     (UV_CREATE_PIPE); once the child is spawned the Stream reads and
     writes it.  Raises on failure [-0,+1] */
void corio__stream_close(lua_State *L, int idx);
  /* closes (aborts) the Stream at idx at once, e.g. when uv_spawn failed;
     any other value is ignored; idempotent [-0,+0] */
uv_stream_t *corio__stream_handle(lua_State *L, int idx);
  /* the libuv stream of the open Stream at idx, or NULL (not a Stream,
     closed, or a Stream on a plain fd: see corio__stream_fd) */
int corio__stream_fd(lua_State *L, int idx);
  /* the OS fd under the open Stream at idx (for UV_INHERIT_FD), or -1 */

#endif
