/*
** listen.c -- the Listener: the accepting half of a Server (TCP or unix).
**
** We accept on our own (a uv_poll on the listening fd and accept4), not
** with uv_listen, for two reasons.  When the process runs out of fds,
** libuv's uv_listen drops the waiting clients (it accepts and closes them
** with a reserved fd) and, once that trick is spent, calls back with
** EMFILE in a tight loop; we instead stop polling and retry after a
** growing delay (10 ms .. 1 s), leaving the clients in the backlog.  And
** at max_connections we simply stop polling until a handler finishes.
**
** Each accepted fd becomes a Stream and goes to a Lua callback
** (scripts/net.lua), which spawns the handler task.  The Listener is
** anchored while open: a server is never closed by GC.
*/
#include <errno.h>        /* errno */
#include <stdlib.h>       /* calloc, free */
#include <string.h>       /* strdup */
#include <sys/socket.h>   /* accept4, getsockname */
#include <sys/stat.h>     /* stat */
#include <sys/un.h>       /* struct sockaddr_un */
#include <unistd.h>       /* close, unlink */

#include "net.h"

#define ACCEPT_BATCH 64        /* accepts per poll callback */
#define BACKOFF_MIN 10         /* ms */
#define BACKOFF_MAX 1000

typedef struct listener {
  uv_poll_t poll;
  uv_timer_t timer;            /* EMFILE backoff */
  corio_rt *rt;
  int fd, family;
  int cbref;                   /* the Lua callback(stream) */
  int anchor;                  /* the userdata, while open */
  int nconn, maxconn;          /* live connections (handlers) */
  int delay;                   /* last backoff delay (ms), 0: none */
  int waiting;                 /* the backoff timer is armed */
  int polling, nclosing;
  int closed;
  size_t limit, hwm;           /* for the accepted streams */
  int nodelay;
  char *path;                  /* unix: unlink on close if still ours */
  dev_t dev;
  ino_t ino;
} listener;

typedef struct listener_ud {
  listener *l;
} listener_ud;


static void on_poll(uv_poll_t *h, int status, int events);


static void poll_start(listener *l) {
  if (!l->polling && !l->closed && !l->waiting &&
      (l->maxconn == 0 || l->nconn < l->maxconn)) {
    if (uv_poll_start(&l->poll, UV_READABLE, on_poll) == 0) l->polling = 1;
  }
}


static void poll_stop(listener *l) {
  if (l->polling) {
    uv_poll_stop(&l->poll);
    l->polling = 0;
  }
}


static void on_backoff(uv_timer_t *h) {
  listener *l = h->data;
  l->waiting = 0;
  poll_start(l);
}


typedef struct conn_ctx { listener *l; int fd; } conn_ctx;

/* [ctx] -> (): a Stream for the new connection, then callback(stream).
** Run protected (new_conn); ctx->fd becomes -1 once the stream owns it or
** it was closed. */
static int new_conn_lua(lua_State *L) {
  conn_ctx *c = lua_touserdata(L, 1);
  listener *l = c->l;
  int fd = c->fd;
  corio_rt *rt = l->rt;
  int base = lua_gettop(L);
  lua_pushcfunction(L, corio__msgh);
  stream *s = net__stream_new(L, rt, l->family == AF_UNIX ? SK_PIPE
                                                          : SK_TCP);
  int r = l->family == AF_UNIX ? uv_pipe_init(rt->loop, &s->u.pipe, 0)
                               : uv_tcp_init(rt->loop, &s->u.tcp);
  if (r != 0) {
    s->ud->s = NULL;
    net__stream_discard(s);
    return 0;                                 /* new_conn closes fd */
  }
  net__stream_opened(s);
  if (rt->debug)                  /* where its server was made */
    corio__track_site(rt, L, &s->u.h, "Stream (accepted)",
                      corio__track_where(rt, (uv_handle_t *)&l->poll));
  r = l->family == AF_UNIX ? uv_pipe_open(&s->u.pipe, fd)
                           : uv_tcp_open(&s->u.tcp, fd);
  if (r != 0) {
    net__stream_abort(s);
    return 0;                                 /* new_conn closes fd */
  }
  c->fd = -1;                                 /* the stream's now */
  s->limit = l->limit;
  s->hwm = l->hwm;
  s->lwm = l->hwm / 2;
  if (l->nodelay && l->family != AF_UNIX) uv_tcp_nodelay(&s->u.tcp, 1);
  l->nconn++;
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->cbref);
  lua_insert(L, -2);                          /* msgh, cb, stream */
  if (lua_pcall(L, 1, 0, base + 1) != LUA_OK) {
    lua_getfield(L, LUA_REGISTRYINDEX, "corio.traceback");
    corio__report(rt, L, -2, "callback", lua_gettop(L));
  }
  lua_settop(L, base);
  return 0;
}


/* Hands a new connection to Lua.  Out of memory, the connection is
** closed (an accepted stream the script never saw is collected) and the
** failure reported. */
static void new_conn(listener *l, int fd) {
  conn_ctx c = {l, fd};
  corio__protect(l->rt, new_conn_lua, &c, NULL, "a server's accept");
  if (c.fd >= 0) close(c.fd);
}


static void on_poll(uv_poll_t *h, int status, int events) {
  listener *l = h->data;
  (void)events;
  if (status < 0 || l->rt->closing) return;
  for (int i = 0; i < ACCEPT_BATCH && !l->closed; i++) {
    if (l->maxconn && l->nconn >= l->maxconn) {
      poll_stop(l);
      return;
    }
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM)
        continue;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* Out of fds: leave the clients queued and retry later. */
        l->delay = l->delay ? l->delay * 2 : BACKOFF_MIN;
        if (l->delay > BACKOFF_MAX) l->delay = BACKOFF_MAX;
        l->waiting = 1;
        poll_stop(l);
        uv_timer_start(&l->timer, on_backoff, (uint64_t)l->delay, 0);
      }
      return;                                 /* EAGAIN and the rest */
    }
    l->delay = 0;
    new_conn(l, fd);
  }
}


static void close_cb(uv_handle_t *h) {
  listener *l = h->data;
  corio__untrack(l->rt, h);
  if (--l->nclosing == 0) {
    free(l->path);
    free(l);
  }
}


static void listener_close(lua_State *L, listener_ud *ud) {
  listener *l = ud->l;
  if (l == NULL) return;
  ud->l = NULL;
  l->closed = 1;
  poll_stop(l);               /* also drops the fd from epoll at once, */
  close(l->fd);               /* so it can close now: no more clients */
  l->fd = -1;
  if (l->path) {                              /* unlink if still ours */
    struct stat st;
    if (stat(l->path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino)
      unlink(l->path);
  }
  if (!l->rt->closing && L) {
    luaL_unref(L, LUA_REGISTRYINDEX, l->cbref);
    corio__unanchor(l->rt, L, l->anchor);
  }
  l->cbref = LUA_NOREF;
  l->anchor = 0;
  l->nclosing = 2;
  uv_close((uv_handle_t *)&l->poll, close_cb);
  uv_close((uv_handle_t *)&l->timer, close_cb);
}


static listener *check_listener(lua_State *L, const char *op) {
  listener_ud *ud = luaL_checkudata(L, 1, LISTENER_MT);
  if (ud->l == NULL) corio__error(L, "CLOSED", op, "server is closed");
  return ud->l;
}


static int l_close(lua_State *L) {
  listener_close(L, luaL_checkudata(L, 1, LISTENER_MT));
  return 0;
}


static int l_gc(lua_State *L) {
  listener_close(L, lua_touserdata(L, 1));
  return 0;
}


/* address() -> host, port (or the path of a unix socket) */
static int l_address(lua_State *L) {
  listener *l = check_listener(L, "address");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (l->path) {
    lua_pushstring(L, l->path);
    return 1;
  }
  if (getsockname(l->fd, (struct sockaddr *)&ss, &len) != 0)
    return corio__uverror(L, uv_translate_sys_error(errno), "address",
                          NULL);
  return net__push_addr(L, (struct sockaddr *)&ss);
}


/* conn_done(): a handler finished; accept again if we were at the max. */
static int l_conn_done(lua_State *L) {
  listener_ud *ud = luaL_checkudata(L, 1, LISTENER_MT);
  listener *l = ud->l;
  if (l == NULL) return 0;
  if (l->nconn > 0) l->nconn--;
  poll_start(l);
  return 0;
}


static int l_connections(lua_State *L) {
  listener *l = check_listener(L, "connections");
  lua_pushinteger(L, l->nconn);
  return 1;
}


static int l_closed(lua_State *L) {
  listener_ud *ud = luaL_checkudata(L, 1, LISTENER_MT);
  lua_pushboolean(L, ud->l == NULL);
  return 1;
}


int net__listener_new(lua_State *L, corio_rt *rt, int fd, int family,
                      const char *path, int cbidx, int oidx) {
  listener_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->l = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  int ui = lua_gettop(L);
  listener *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(fd);
    return luaL_error(L, "not enough memory");
  }
  l->rt = rt;
  l->fd = fd;
  l->family = family;
  l->limit = NET_LIMIT;
  l->hwm = NET_HWM;
  l->nodelay = 1;
  l->cbref = LUA_NOREF;
  if (path) {
    struct stat st;
    l->path = strdup(path);
    if (stat(path, &st) == 0) {
      l->dev = st.st_dev;
      l->ino = st.st_ino;
    }
  }
  int r = uv_poll_init(rt->loop, &l->poll, fd);
  if (r != 0) {
    close(fd);
    free(l->path);
    free(l);
    return corio__uverror(L, r, "listen", NULL);
  }
  uv_timer_init(rt->loop, &l->timer);
  l->poll.data = l->timer.data = l;
  corio__track(rt, (uv_handle_t *)&l->poll);
  corio__track(rt, (uv_handle_t *)&l->timer);
  corio__track_site(rt, L, (uv_handle_t *)&l->poll, "Server", NULL);
  ud->l = l;
  if (lua_istable(L, oidx)) {
    lua_getfield(L, oidx, "max_connections");
    l->maxconn = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, oidx, "limit");
    l->limit = (size_t)luaL_optinteger(L, -1, NET_LIMIT);
    lua_getfield(L, oidx, "high_water");
    l->hwm = (size_t)luaL_optinteger(L, -1, NET_HWM);
    if (lua_getfield(L, oidx, "nodelay") != LUA_TNIL)
      l->nodelay = lua_toboolean(L, -1);
    lua_pop(L, 4);
  }
  lua_pushvalue(L, cbidx);
  l->cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  l->anchor = corio__anchor(rt, L, ui);
  poll_start(l);
  lua_settop(L, ui);
  return 1;
}


void net__open_listen(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"close", l_close},
    {"address", l_address},
    {"conn_done", l_conn_done},
    {"connections", l_connections},
    {"closed", l_closed},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", l_gc},
    {NULL, NULL}
  };
  corio__newclass(L, rt, LISTENER_MT, methods, meta, NULL);
  lua_pop(L, 1);
}
