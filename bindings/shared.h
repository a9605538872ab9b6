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

/* net/stream_read.c, stream_write.c: a parser on a Stream without a Lua
** string per chunk (corio._wslay).  It reads the bytes the Stream has
** buffered in place, consumes what it used, and when it needs more waits
** as the Stream's reader; it writes through the Stream's own write path
** (its filter, backpressure and errors). */
struct stream;
int corio__is_stream(lua_State *L, int idx);  /* a Stream, open or not */
struct stream *corio__stream_check(lua_State *L, int idx, const char *op);
  /* the open Stream at idx; raises CLOSED, or bad argument */
struct stream *corio__stream_get(lua_State *L, int idx);
  /* the open Stream at idx, or NULL (closed, or not a Stream) */
struct stream *corio__stream_of(void *ud);
  /* the open Stream of ud (lua_touserdata of a value corio__is_stream
     accepted, kept alive by the caller), or NULL once closed: no API
     call */
corio_rt *corio__stream_rt(struct stream *s);
  /* the runtime of s: cheaper than RT_UPVALUE (no API call) */
char *corio__stream_peek(struct stream *s, size_t *len, int *eof);
  /* the buffered bytes (*len of them; the caller may change them in
     place) and whether the peer has sent EOF; valid until the next wait
     or consume */
void corio__stream_consume(struct stream *s, size_t n);  /* n <= *len */
int corio__stream_wait(lua_State *L, corio_rt *rt, struct stream *s,
                       const char *op, lua_KFunction k);
  /* suspends the task (raises outside one) as the Stream's only reader
     until more is buffered, EOF or an error, then resumes in k, which
     calls corio__stream_waited first.  Use as return.  Returns -1 with
     the error pushed when the wait cannot begin: BUSY (another reader),
     the Stream's error, a pending CANCELLED */
int corio__stream_waited(lua_State *L, corio_rt *rt, lua_KContext ctx);
  /* in k: the stack back as it was at the wait, 0; or -1 with the error
     that ended the wait pushed above it (the Stream's error, CLOSED,
     CANCELLED: what read() would raise) */
void corio__stream_send(lua_State *L, struct stream *s, uv_buf_t *bufs,
                        int n, const char *op);
  /* writes the n bufs (which it may change) as Stream:write does: what
     cannot go out now is copied; raises as write does */
int corio__stream_try_send(lua_State *L, struct stream *s, uv_buf_t *bufs,
                           int n, const char *op);
  /* corio__stream_send that does not raise: 0, or -1 with the error it
     would raise pushed */
size_t corio__stream_queued(struct stream *s);
  /* bytes written and not yet gone out (the high-water mark's measure) */
int corio__stream_write_wait(lua_State *L, corio_rt *rt, struct stream *s,
                             const char *op);
  /* then, as write does: above the high-water mark, waits (in a task)
     until the queue is below the low-water mark.  Returns no values; use
     as return */

#endif
