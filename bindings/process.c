/*
** process.c -- corio._process: child processes (uv_process_t) and facts
** about this process (pid, cwd, environment, exit).
**
** No zombie, ever.  libuv reaps a child (waitpid) the moment its
** SIGCHLD is handled and then calls on_exit; so the uv_process_t must
** stay open until then, whatever happens to the Lua object.  Hence:
**
**   running -- the uv handle lives in malloc'ed memory (struct proc); the
**              Lua userdata (struct pbox) is anchored (an anchor slot),
**              so a forgotten Process cannot be collected before its exit
**              and its on_exit callback still runs.
**   exited  -- on_exit records the status in the box, queues the Lua
**              callback, unanchors the box and closes the handle; close_cb
**              frees the memory.  box->p is NULL from then on, so kill()
**              can never signal a pid the kernel may have given to
**              another process.
** Only at runtime teardown can a box be collected while its child runs:
** its handle is then closed, so libuv forgets the pid, and the runtime
** ends and reaps the child itself (runtime/reap.c: SIGTERM, SIGKILL after
** a grace period; a detached child is left running).  Each proc is also
** on the runtime's backstop list (runtime/owned.c) while open, so the
** same happens if the box's __gc never ran.
**
** spawn makes everything it needs (the box, its anchor slot, the memory,
** stack room for the results) before uv_spawn: once the child exists,
** nothing is left that can fail, so an out-of-memory error can never
** leave a child nobody supervises.
**
** Children start with default signal dispositions and an empty signal
** mask: libuv resets both between fork and exec, so SIGPIPE ignored here
** is not ignored by `yes | head -1` in a child.
*/
#include <stddef.h>   /* offsetof */
#include <stdio.h>    /* fflush */
#include <stdlib.h>   /* malloc, free, exit */
#include <limits.h>   /* INT_MAX */
#include <string.h>   /* strcmp, strlen */
#include <unistd.h>   /* getuid */

#include "shared.h"    /* the core, and what modules offer each other */
#include "signame.h"

#define PROC_MT "corio.ProcessHandle"

typedef struct pbox pbox;

typedef struct proc {
  uv_process_t h;
  corio_rt *rt;
  corio_owned own;             /* on the backstop list until freed */
  pbox *box;                   /* NULL once exited or collected */
  int anchor;                  /* live slot of the box while running */
  int detached;                /* spawned detached: outlives teardown */
  int termsig;                 /* exit_cb's, for exit_lua */
  lua_Integer status;
} proc;

struct pbox {
  proc *p;                     /* NULL once exited */
  int pid;
  int exited;
  lua_Integer code;            /* exit status, or 128 + signal */
  int termsig;
};


/* {====================================================================
** Exit
** ===================================================================== */

static void free_cb(uv_handle_t *h) {
  proc *p = h->data;
  corio__untrack(p->rt, h);
  corio__disown(p->rt, &p->own);
  free(p);
}


/* Closes the handle of a child whose exit was not seen (teardown): libuv
** forgets the pid, so the runtime ends and reaps the child. */
static void abandon(corio_rt *rt, proc *p) {
  if (uv_is_closing((uv_handle_t *)&p->h)) return;
  corio__reap(rt, p->h.pid, p->detached);
  uv_close((uv_handle_t *)&p->h, free_cb);
}


/* The backstop (runtime/owned.c): the state is closed and this child's
** box was never finalized. */
static void backstop(corio_rt *rt, corio_owned *o) {
  proc *p = (proc *)(void *)((char *)o - offsetof(proc, own));
  if (p->box && !rt->lua_closed) p->box->p = NULL;  /* its memory is live */
  p->box = NULL;
  abandon(rt, p);
}


static void push_signame(lua_State *L, int sig) {
  const char *name = corio__signame(sig);
  if (name) lua_pushstring(L, name);
  else lua_pushfstring(L, "SIG%d", sig);
}


/* [p] -> (): queues on_exit(code, signal name) as a loop callback. */
static int exit_lua(lua_State *L) {
  proc *p = lua_touserdata(L, 1);
  corio_rt *rt = p->rt;
  corio__push_live(rt, L, p->anchor);         /* box */
  lua_getiuservalue(L, -1, 1);                /* box, on_exit */
  lua_remove(L, -2);
  if (lua_isfunction(L, -1)) {
    lua_pushinteger(L, p->termsig ? 128 + p->termsig : p->status);
    if (p->termsig) push_signame(L, p->termsig);
    else lua_pushnil(L);
    corio__soon(rt, L, 2);
  }
  return 0;
}


/* Out of memory, on_exit cannot be queued and the tasks in wait() would
** wait forever: the failure is reported and the current run stops (as
** corio_stop; corio_run_main then cancels the tasks left). */
static void exit_cb(uv_process_t *h, int64_t status, int termsig) {
  proc *p = h->data;
  corio_rt *rt = p->rt;
  pbox *b = p->box;
  p->box = NULL;                 /* unanchored below: it may be collected */
  if (b) {
    b->p = NULL;
    b->exited = 1;
    b->termsig = termsig;
    b->code = termsig ? 128 + termsig : (lua_Integer)status;
  }
  if (!rt->closing && p->anchor) {
    p->status = (lua_Integer)status;
    p->termsig = termsig;
    if (corio__protect(rt, exit_lua, p, NULL, "a process's exit") != LUA_OK)
      corio__stop_now(rt);
    corio__unanchor(rt, rt->L, p->anchor);
    p->anchor = 0;
  }
  uv_close((uv_handle_t *)h, free_cb);
}

/* }==================================================================== */


/* {====================================================================
** spawn
** ===================================================================== */

/* A NULL-terminated array of the strings in the list at idx, in scratch
** memory owned by a userdata left on the stack. [-0,+1] */
/* The string at idx, refused if it holds a zero byte: the OS would read
** only the part before it (argv "ls\0-R" would run plain ls). */
static const char *c_string(lua_State *L, int idx, int arg, const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len)
    corio__argerror(L, arg, lua_pushfstring(L, "%s contains a zero byte", what));
  return s;
}


/* Option `k` of spawn's table at idx as a user or group id: an integer in
** [0, 2^32).  (A cast of anything else gave 0, which is root.) */
static uint32_t id_field(lua_State *L, const char *k) {
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || v < 0 || v > (lua_Integer)UINT32_MAX)
    corio__argerror(L, 2, lua_pushfstring(L, "field '%s' must be an integer "
                                          "from 0 to 4294967295", k));
  return (uint32_t)v;
}


static char **string_list(lua_State *L, int idx, int arg, const char *what) {
  lua_Integer n = luaL_len(L, idx);
  char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      corio__argerror(L, arg, lua_pushfstring(L, "%s[%d] is not a string",
                                            what, (int)i));
    char name[64];
    snprintf(name, sizeof name, "%s[%d]", what, (int)i);
    v[i - 1] = (char *)(uintptr_t)c_string(L, -1, arg, name);
    lua_pop(L, 1);           /* the list keeps the string alive */
  }
  v[n] = NULL;
  return v;
}


/* Fills stdio slot i from the value at -1: "inherit" | "null" | "pipe" |
** an fd | a Stream.  Pushes the new Stream for "pipe", else nil. [-0,+1] */
static void stdio_slot(lua_State *L, corio_rt *rt, uv_stdio_container_t *c,
                       int i) {
  int v = lua_gettop(L);
  const char *s = lua_type(L, v) == LUA_TSTRING ? lua_tostring(L, v) : NULL;
  if (lua_type(L, v) == LUA_TNUMBER) {
    int isint;
    lua_Integer fd = lua_tointegerx(L, v, &isint);
    if (!isint || fd < 0 || fd > INT_MAX)
      corio__argerror(L, 2, lua_pushfstring(L, "stdio[%d] is not a file "
                                            "descriptor", i + 1));
    c->flags = UV_INHERIT_FD;
    c->data.fd = (int)fd;
  } else if (s && strcmp(s, "null") == 0) {
    c->flags = UV_IGNORE;
  } else if (lua_isnil(L, v) || (s && strcmp(s, "inherit") == 0)) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = i;
  } else if (s && strcmp(s, "pipe") == 0) {
    uv_pipe_t *pipe = corio__stream_new_pipe(L, rt);
    c->flags = UV_CREATE_PIPE |
               (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
    c->data.stream = (uv_stream_t *)pipe;
    return;
  } else if (corio__stream_fd(L, v) >= 0) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = corio__stream_fd(L, v);
  } else if (corio__stream_handle(L, v) != NULL) {
    c->flags = UV_INHERIT_STREAM;
    c->data.stream = corio__stream_handle(L, v);
  } else {
    corio__argerror(L, 2, lua_pushfstring(L, "invalid stdio %d: %s", i,
                                          luaL_tolstring(L, v, NULL)));
  }
  lua_pushnil(L);
}


/* is_stream(v) -> true for an open Stream (usable as stdio). */
static int l_is_stream(lua_State *L) {
  lua_pushboolean(L, corio__stream_fd(L, 1) >= 0 ||
                     corio__stream_handle(L, 1) != NULL);
  return 1;
}


static int opt_field(lua_State *L, int idx, const char *k, int type) {
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL && t != type)
    return corio__argerror(L, 2, lua_pushfstring(L, "field '%s' is a %s", k,
                                                 luaL_typename(L, -1)));
  return t != LUA_TNIL;
}


/* spawn(argv, {cwd=, env=, stdio={3}, detached=, uid=, gid=, on_exit=})
** -> handle, pid, stdin, stdout, stderr (Streams for "pipe", else nil).
** env is a list of "NAME=value" strings.  The pid comes back here so the
** caller needs no call (which could fail) once the child runs. */
static int l_spawn(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  memset(&o, 0, sizeof o);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  o.args = string_list(L, 1, 1, "argv");
  luaL_argcheck(L, o.args[0] != NULL, 1, "argv is empty");
  o.file = o.args[0];
  if (opt_field(L, 2, "cwd", LUA_TSTRING)) o.cwd = c_string(L, -1, 2, "cwd");
  if (opt_field(L, 2, "env", LUA_TTABLE))
    o.env = string_list(L, lua_gettop(L), 2, "env");
  if (opt_field(L, 2, "uid", LUA_TNUMBER)) {
    o.flags |= UV_PROCESS_SETUID;
    o.uid = (uv_uid_t)id_field(L, "uid");
  }
  if (opt_field(L, 2, "gid", LUA_TNUMBER)) {
    o.flags |= UV_PROCESS_SETGID;
    o.gid = (uv_gid_t)id_field(L, "gid");
  }
  lua_getfield(L, 2, "detached");
  if (lua_toboolean(L, -1)) o.flags |= UV_PROCESS_DETACHED;
  int st = opt_field(L, 2, "stdio", LUA_TTABLE);
  int sidx = lua_gettop(L);
  for (int i = 0; i < 3; i++) {              /* pushes 3 Streams or nils */
    if (st) lua_rawgeti(L, sidx, i + 1);
    else lua_pushnil(L);
    stdio_slot(L, rt, &stdio[i], i);
    lua_remove(L, -2);
  }
  int pidx = sidx + 1;                        /* the first of the three */
  o.stdio = stdio;
  o.stdio_count = 3;
  o.exit_cb = exit_cb;
  opt_field(L, 2, "on_exit", LUA_TFUNCTION);
  int fidx = lua_gettop(L);

  pbox *b = lua_newuserdatauv(L, sizeof *b, 1);
  int bidx = lua_gettop(L);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, PROC_MT);
  lua_pushvalue(L, fidx);
  lua_setiuservalue(L, bidx, 1);
  /* Everything that can fail comes before uv_spawn (see the top). */
  luaL_checkstack(L, 5, "spawn");             /* the results */
  int anchor = corio__anchor(rt, L, bidx);    /* born closed: b->p NULL */
  proc *p = malloc(sizeof *p);
  if (p == NULL) {
    corio__unanchor(rt, L, anchor);
    return luaL_error(L, "not enough memory");
  }
  memset(p, 0, sizeof *p);
  p->rt = rt;
  p->detached = (o.flags & UV_PROCESS_DETACHED) != 0;
  p->h.data = p;
  int err = uv_spawn(rt->loop, &p->h, &o);
  corio__track(rt, (uv_handle_t *)&p->h);   /* closed even if it failed */
  corio__track_site(rt, L, (uv_handle_t *)&p->h, "Process", NULL);
  if (err < 0) {
    uv_close((uv_handle_t *)&p->h, free_cb);  /* libuv wants it closed */
    corio__unanchor(rt, L, anchor);
    for (int i = 0; i < 3; i++) corio__stream_close(L, pidx + i);
    return corio__uverror(L, err, "spawn", o.file);
  }
  /* The child runs: from here on nothing allocates or raises. */
  corio__own(rt, &p->own, backstop);
  p->anchor = anchor;
  p->box = b;
  b->p = p;
  b->pid = p->h.pid;
  lua_pushvalue(L, bidx);                     /* room checked above */
  lua_pushinteger(L, p->h.pid);
  for (int i = 0; i < 3; i++) lua_pushvalue(L, pidx + i);
  return 5;
}

/* }==================================================================== */


/* {====================================================================
** Handle methods
** ===================================================================== */

static pbox *check_box(lua_State *L) {
  return luaL_checkudata(L, 1, PROC_MT);
}


/* kill(sig) -> true if sent; false if the child has exited already. */
static int h_kill(lua_State *L) {
  pbox *b = check_box(L);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : corio__check_signum(L, 2);
  if (b->p == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int err = uv_process_kill(&b->p->h, sig);
  if (err == UV_ESRCH) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (err < 0) return corio__uverror(L, err, "kill", NULL);
  lua_pushboolean(L, 1);
  return 1;
}


static int h_pid(lua_State *L) {
  lua_pushinteger(L, check_box(L)->pid);
  return 1;
}


/* status() -> nil while running; code, signal name (or nil) after. */
static int h_status(lua_State *L) {
  pbox *b = check_box(L);
  if (!b->exited) return 0;
  lua_pushinteger(L, b->code);
  if (b->termsig) push_signame(L, b->termsig);
  else lua_pushnil(L);
  return 2;
}


/* __gc: only at teardown can a running child's box be collected. */
static int h_gc(lua_State *L) {
  pbox *b = lua_touserdata(L, 1);
  proc *p = b->p;
  if (p == NULL) return 0;
  b->p = NULL;
  p->box = NULL;
  abandon(p->rt, p);
  return 0;
}

/* }==================================================================== */


/* {====================================================================
** This process
** ===================================================================== */

/* kill(pid, sig) */
static int l_kill(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : corio__check_signum(L, 2);
  int err = uv_kill((int)pid, sig);
  if (err < 0) return corio__uverror(L, err, "kill", NULL);
  return 0;
}


static int l_pid(lua_State *L) {
  lua_pushinteger(L, uv_os_getpid());
  return 1;
}


static int l_ppid(lua_State *L) {
  lua_pushinteger(L, uv_os_getppid());
  return 1;
}


static int l_getuid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}


/* Calls a libuv getter that fills a buffer (cwd, exepath). */
static int push_buffered(lua_State *L, int (*fn)(char *, size_t *),
                         const char *op) {
  char small[1024];
  size_t n = sizeof small;
  int err = fn(small, &n);
  if (err == UV_ENOBUFS) {
    char *big = lua_newuserdatauv(L, n + 1, 0);
    n++;
    err = fn(big, &n);
    if (err == 0) lua_pushlstring(L, big, n);
  } else if (err == 0) {
    lua_pushlstring(L, small, n);
  }
  if (err < 0) return corio__uverror(L, err, op, NULL);
  return 1;
}


static int l_cwd(lua_State *L) {
  return push_buffered(L, uv_cwd, "cwd");
}


static int exepath(char *buf, size_t *n) {
  return uv_exepath(buf, n);
}


static int l_exepath(lua_State *L) {
  return push_buffered(L, exepath, "exepath");
}


static int l_chdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int err = uv_chdir(path);
  if (err < 0) return corio__uverror(L, err, "chdir", path);
  return 0;
}


/* environ() -> {NAME = value} */
static int l_environ(lua_State *L) {
  uv_env_item_t *items;
  int n;
  int err = uv_os_environ(&items, &n);
  if (err < 0) return corio__uverror(L, err, "environ", NULL);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, items[i].value);
    lua_setfield(L, -2, items[i].name);
  }
  uv_os_free_environ(items, n);
  return 1;
}


static int l_getenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  char small[256];
  size_t n = sizeof small;
  int err = uv_os_getenv(name, small, &n);
  if (err == UV_ENOBUFS) {
    char *big = lua_newuserdatauv(L, n, 0);
    err = uv_os_getenv(name, big, &n);
    if (err == 0) lua_pushlstring(L, big, n);
  } else if (err == 0) {
    lua_pushlstring(L, small, n);
  }
  if (err == UV_ENOENT) return 0;
  if (err < 0) return corio__uverror(L, err, "getenv", NULL);
  return 1;
}


/* setenv(name, value | nil) */
static int l_setenv(lua_State *L) {
  luaL_checkstring(L, 1);
  const char *name = c_string(L, 1, 1, "name");
  const char *value = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checkstring(L, 2);
    value = c_string(L, 2, 2, "value");
  }
  int err = value ? uv_os_setenv(name, value) : uv_os_unsetenv(name);
  if (err < 0) return corio__uverror(L, err, "setenv", NULL);
  return 0;
}


/* exit(code): flushes C stdio and ends the process now.  The Lua half
** (scripts/process.lua) lets the other tasks unwind first. */
/* _exit, not exit: exit() runs libuv's destructor, which joins its thread
** pool, and a pool thread blocked in a call that never returns (a cancelled
** fs.open on a FIFO with no writer) would hang process.exit forever.  The
** Lua side has already flushed and drained what it must. */
static int l_exit(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 0);
  fflush(NULL);
  _exit(code);
  return 0;
}

/* }==================================================================== */


int luaopen_corio__process(lua_State *L);

int luaopen_corio__process(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"kill", h_kill},
    {"pid", h_pid},
    {"status", h_status},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"spawn", l_spawn},
    {"is_stream", l_is_stream},
    {"kill", l_kill},
    {"pid", l_pid},
    {"ppid", l_ppid},
    {"getuid", l_getuid},
    {"cwd", l_cwd},
    {"exepath", l_exepath},
    {"chdir", l_chdir},
    {"environ", l_environ},
    {"getenv", l_getenv},
    {"setenv", l_setenv},
    {"exit", l_exit},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg meta[] = {
    {"__gc", h_gc},
    {NULL, NULL}
  };
  corio__newclass(L, rt, PROC_MT, methods, meta, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
