/*
** pipe.c -- unix domain sockets: connect_unix and listening sockets.
**
** A server path left behind by a dead process (a "stale" socket: the file
** is there, nobody accepts on it) is removed and bound again; a path where
** someone still listens, or that is not a socket at all, is never removed.
** The listener unlinks its path on close, if the path is still its own.
*/
#include <errno.h>        /* errno */
#include <stdlib.h>       /* free */
#include <string.h>       /* memcpy, strlen */
#include <sys/socket.h>   /* socket, bind, connect, listen */
#include <sys/stat.h>     /* lstat, S_ISSOCK */
#include <sys/un.h>       /* struct sockaddr_un */
#include <unistd.h>       /* close, unlink */

#include "net.h"


/* Checks a socket path: a string, no NUL, fits in sun_path. */
static const char *check_path(lua_State *L, int idx) {
  size_t len;
  const char *path = luaL_checklstring(L, idx, &len);
  if (len == 0 || strlen(path) != len)
    corio__argerror(L, idx, "not a valid socket path");
  if (len >= sizeof(((struct sockaddr_un *)0)->sun_path))
    corio__uverror(L, UV_ENAMETOOLONG, "unix", path);
  return path;
}


/* connect_unix(path [, opts]) -> Stream */
static int l_unix_connect(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = check_path(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  corio_task *t = corio__check_await(L, rt, "connect");
  stream *s = net__stream_new(L, rt, SK_PIPE);
  int si = lua_gettop(L);
  net__stream_setopts(L, s, lua_istable(L, 2) ? 2 : 0);
  int r = uv_pipe_init(rt->loop, &s->u.pipe, 0);
  if (r != 0) {
    s->ud->s = NULL;
    net__stream_discard(s);
    return corio__uverror(L, r, "connect", path);
  }
  net__stream_opened(s);
  corio__track_site(rt, L, &s->u.h, "Stream", NULL);
  net_creq *c = net__creq_new(L, t, path, -1);
  if (c == NULL) {
    net__stream_abort(s);
    return luaL_error(L, "not enough memory");
  }
  uv_pipe_connect(&c->req, &s->u.pipe, path, net__connect_cb);
  return net__connect_wait(L, rt, s, si, c);
}


/* True if path is a socket nobody listens on any more. */
static int is_stale(const struct sockaddr_un *sa) {
  struct stat st;
  if (lstat(sa->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int stale = connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 &&
              errno == ECONNREFUSED;
  close(fd);
  return stale;
}


/* unix_listen(path, cb, opts) -> Listener */
static int l_unix_listen(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = check_path(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "backlog");
  int backlog = (int)luaL_optinteger(L, -1, 511);
  lua_pop(L, 1);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return corio__uverror(L, uv_translate_sys_error(errno), "listen", path);
  int r = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    r = uv_translate_sys_error(errno);
    if (r == UV_EADDRINUSE && is_stale(&sa) && unlink(path) == 0)
      r = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0
          ? 0 : uv_translate_sys_error(errno);
  }
  if (r == 0 && listen(fd, backlog) != 0) r = uv_translate_sys_error(errno);
  if (r != 0) {
    close(fd);
    return corio__uverror(L, r, "listen", path);
  }
  return net__listener_new(L, rt, fd, AF_UNIX, path, 2, 3);
}


void net__open_pipe(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"unix_connect", l_unix_connect},
    {"unix_listen", l_unix_listen},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}
