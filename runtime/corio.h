/*
** corio.h -- the public C API of corio: asyncio for Lua 5.4 on libuv.
**
** A host creates a runtime (one libuv loop, one Lua state), loads code,
** spawns tasks and runs the loop.  All functions must be called from the
** thread that owns the runtime.
*/
#ifndef CORIO_H
#define CORIO_H

#include <lua.h>
#include <uv.h>

#define CORIO_API __attribute__((visibility("default")))

typedef struct corio_rt corio_runtime;

/* Creates a runtime with a new Lua state (standard libraries and the corio
** modules preloaded) and a loop of its own.  NULL when out of memory.  The
** state uses corio's slab allocator; once it holds more than 8 MiB, a
** helper thread keeps two 1 MiB arenas populated ahead (joined by
** corio_free).  corio_attach keeps the state's own allocator. */
CORIO_API corio_runtime *corio_new(void);

/* Installs a runtime into an existing Lua state, driving `loop` (NULL: a
** loop of its own).  The runtime lives until the state is closed.  This is
** what `require "corio"` does in a stock lua5.4. */
CORIO_API corio_runtime *corio_attach(lua_State *L, uv_loop_t *loop);

CORIO_API lua_State *corio_state(corio_runtime *rt);
CORIO_API uv_loop_t *corio_loop(corio_runtime *rt);

/* Pops a function and its nargs arguments and pushes a new Task that runs
** it on a later loop turn.  Returns 0, or raises a Lua error on misuse. */
CORIO_API int corio_spawn(corio_runtime *rt, int nargs);

/* Runs the loop until every task has finished and no handle keeps it
** alive, as the corio binary does.  Returns the process exit code the
** binary would use: 0, 1 after an unhandled error, 130 after SIGINT. */
CORIO_API int corio_run(corio_runtime *rt);

/* Pops a function and its nargs arguments and runs it as the main task,
** as the binary runs a script: a failure of the main task is reported
** ("corio: msg" and a traceback) and ends the run, cancelling the rest;
** otherwise the loop runs until every task has finished.  Returns the
** exit code, as corio_run. */
CORIO_API int corio_run_main(corio_runtime *rt, int nargs);

/* Cancels what is left, closes every handle, runs the loop until it is
** empty, closes the Lua state (if corio_new made it) and frees it all.
** One exception: a request still running on libuv's thread pool a second
** after everything else closed (a cancelled fs.open blocked on a FIFO) may
** never finish; the loop and the runtime's small record are then left
** allocated for it instead of being freed under it. */
CORIO_API void corio_free(corio_runtime *rt);

/* The `corio` module for stock lua5.4 (`require "corio"`). */
CORIO_API int luaopen_corio(lua_State *L);

#endif
