/*
** tcp.c -- TCP: connect, listening sockets, addresses and socket options.
**
** The C half takes numeric addresses only; scripts/net.lua resolves names
** first (dns.c) and tries each address in turn.  A connect keeps the new
** Stream anchored while it waits, and a cancel closes it, so nothing is
** left half-open.
*/
#include <errno.h>        /* errno */
#include <netinet/in.h>   /* IPPROTO_IPV6, IPV6_V6ONLY */
#include <stdio.h>        /* snprintf */
#include <stdlib.h>       /* malloc, free */
#include <string.h>       /* strlen, memcpy */
#include <sys/socket.h>   /* socket, bind, listen, setsockopt */
#include <sys/un.h>       /* struct sockaddr_un */
#include <unistd.h>       /* close */

#include "net.h"


/* {====================================================================
** Addresses
** ===================================================================== */

int net__parse_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}


int net__push_addr(lua_State *L, const struct sockaddr *sa) {
  char host[INET6_ADDRSTRLEN + 1];
  switch (sa->sa_family) {
    case AF_INET: {
      const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
      uv_ip4_name(in, host, sizeof host);
      lua_pushstring(L, host);
      lua_pushinteger(L, ntohs(in->sin_port));
      return 2;
    }
    case AF_INET6: {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
      uv_ip6_name(in6, host, sizeof host);
      lua_pushstring(L, host);
      lua_pushinteger(L, ntohs(in6->sin6_port));
      return 2;
    }
    default:
      lua_pushnil(L);
      lua_pushnil(L);
      return 2;
  }
}


int net__check_port(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port out of range");
  return (int)port;
}


static int name_of(lua_State *L, int peer) {
  const char *op = peer ? "peername" : "sockname";
  stream *s = net__check_stream(L, 1, op);
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  if (s->kind == SK_TCP) {
    r = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &len)
             : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&ss, &len);
    if (r != 0) return corio__uverror(L, r, op, NULL);
    return net__push_addr(L, (struct sockaddr *)&ss);
  }
  if (s->kind == SK_PIPE) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    size_t n = sizeof path;
    r = peer ? uv_pipe_getpeername(&s->u.pipe, path, &n)
             : uv_pipe_getsockname(&s->u.pipe, path, &n);
    if (r != 0) return corio__uverror(L, r, op, NULL);
    lua_pushlstring(L, path, n);
    return 1;
  }
  return corio__uverror(L, UV_ENOTSUP, op, NULL);
}


int net__peername(lua_State *L) { return name_of(L, 1); }
int net__sockname(lua_State *L) { return name_of(L, 0); }


int net__set_nodelay(lua_State *L) {
  stream *s = net__check_stream(L, 1, "set_nodelay");
  int on = lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2);
  if (s->kind != SK_TCP) return 0;            /* meaningless elsewhere */
  int r = uv_tcp_nodelay(&s->u.tcp, on);
  if (r != 0) return corio__uverror(L, r, "set_nodelay", NULL);
  return 0;
}


int net__set_keepalive(lua_State *L) {
  stream *s = net__check_stream(L, 1, "set_keepalive");
  int on = lua_toboolean(L, 2);
  lua_Number delay = luaL_optnumber(L, 3, 60);
  luaL_argcheck(L, delay >= 1 && delay <= 1e6, 3, "delay out of range");
  if (s->kind != SK_TCP) return 0;
  int r = uv_tcp_keepalive(&s->u.tcp, on, (unsigned int)delay);
  if (r != 0) return corio__uverror(L, r, "set_keepalive", NULL);
  return 0;
}

/* }==================================================================== */


/* {====================================================================
** Connect
** ===================================================================== */

static void push_connect_error(lua_State *L, int status, const char *host,
                               int port) {
  corio__push_uverror(L, status, "connect", port < 0 ? host : NULL);
  if (port >= 0) {
    lua_pushstring(L, host);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
  }
}


static int push_connect_lua(lua_State *L) {
  net_creq *c = lua_touserdata(L, 1);
  push_connect_error(L, c->status, c->host, c->port);
  return 1;
}


static void connect_cb(uv_connect_t *req, int status) {
  net_creq *c = container_of(req, net_creq, req);
  stream *s = req->handle->data;
  corio_rt *rt = s->rt;
  s->nreq--;
  if (c->t && !rt->closing) {
    lua_State *L = rt->L;
    if (status == 0 && (s->flags & SF_CLOSED)) status = UV_ECANCELED;
    if (status < 0) {
      corio__unanchor(rt, L, c->anchor);
      net__stream_abort(s);
      c->status = status;
      corio__wake_with(rt, c->t, push_connect_lua, c, WAKE_RAISE);
    } else {
      corio__push_live(rt, L, c->anchor);     /* no allocation */
      corio__unanchor(rt, L, c->anchor);
      corio__wake(rt, c->t, L, 1, WAKE_VALUES);
      net__update_ref(s);
    }
  }
  free(c);
}


static void connect_undo(corio_rt *rt, corio_task *t) {
  net_creq *c = net__wait_obj(t);
  c->t = NULL;
  corio__unanchor(rt, rt->L, c->anchor);
  net__stream_abort(c->req.handle->data);     /* connect_cb: ECANCELED */
}


net_creq *net__creq_new(lua_State *L, corio_task *t, const char *host,
                        int port) {
  net_creq *c = malloc(sizeof *c);
  if (c == NULL) return NULL;
  c->t = t;
  c->port = port;
  c->anchor = 0;
  snprintf(c->host, sizeof c->host, "%s", host);
  (void)L;
  return c;
}


const uv_connect_cb net__connect_cb = connect_cb;


int net__connect_error(lua_State *L, int status, const char *host,
                       int port) {
  push_connect_error(L, status, host, port);
  return lua_error(L);
}


int net__connect_wait(lua_State *L, corio_rt *rt, stream *s, int si,
                      net_creq *c) {
  c->anchor = corio__anchor(rt, L, si);
  s->nreq++;
  net__update_ref(s);
  return net__suspend(L, rt, c->t, c, connect_undo);
}


/* tcp_connect(ip, port [, opts]) -> Stream.  opts: local_host,
** local_port, nodelay (default true), limit, high_water. */
static int l_tcp_connect(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = net__check_port(L, 2);
  struct sockaddr_storage ss, local;
  int has_local = 0, nodelay = 1, r;
  if (net__parse_addr(ip, port, &ss) != 0)
    return corio__argerror(L, 1, "not a numeric IP address");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "local_host") != LUA_TNIL) {
      const char *lh = lua_tostring(L, -1);
      lua_getfield(L, 3, "local_port");
      int lp = (int)luaL_optinteger(L, -1, 0);
      if (lh == NULL || net__parse_addr(lh, lp, &local) != 0)
        return luaL_error(L, "bad option 'local_host' (numeric IP "
                          "address expected)");
      has_local = 1;
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 3, "nodelay") != LUA_TNIL)
      nodelay = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  corio_task *t = corio__check_await(L, rt, "connect");
  stream *s = net__stream_new(L, rt, SK_TCP);
  int si = lua_gettop(L);
  net__stream_setopts(L, s, lua_istable(L, 3) ? 3 : 0);
  r = uv_tcp_init_ex(rt->loop, &s->u.tcp, ss.ss_family);
  if (r != 0) {
    s->ud->s = NULL;
    net__stream_discard(s);
    return corio__uverror(L, r, "connect", NULL);
  }
  net__stream_opened(s);
  corio__track_site(rt, L, &s->u.h, "Stream", NULL);
  if (has_local &&
      (r = uv_tcp_bind(&s->u.tcp, (struct sockaddr *)&local, 0)) != 0) {
    net__stream_abort(s);
    return corio__uverror(L, r, "bind", NULL);
  }
  if (nodelay) uv_tcp_nodelay(&s->u.tcp, 1);
  net_creq *c = net__creq_new(L, t, ip, port);
  if (c == NULL) {
    net__stream_abort(s);
    return luaL_error(L, "not enough memory");
  }
  r = uv_tcp_connect(&c->req, &s->u.tcp, (struct sockaddr *)&ss,
                     connect_cb);
  if (r != 0) {
    free(c);
    net__stream_abort(s);
    return net__connect_error(L, r, ip, port);
  }
  return net__connect_wait(L, rt, s, si, c);
}

/* }==================================================================== */


/* {====================================================================
** Listening sockets
** ===================================================================== */

static int sockerr(void) {
  return uv_translate_sys_error(errno);
}


/* tcp_listen(ip, port, cb, opts) -> Listener.  opts: backlog, reuseport,
** ipv6_only, and the accepted streams' limit, high_water, nodelay. */
static int l_tcp_listen(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = net__check_port(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TTABLE);
  struct sockaddr_storage ss;
  if (net__parse_addr(ip, port, &ss) != 0)
    return corio__argerror(L, 1, "not a numeric IP address");
  lua_getfield(L, 4, "backlog");
  int backlog = (int)luaL_optinteger(L, -1, 511);
  lua_getfield(L, 4, "reuseport");
  int reuseport = lua_toboolean(L, -1);
  lua_getfield(L, 4, "ipv6_only");
  int v6only = lua_toboolean(L, -1);
  lua_pop(L, 3);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) return corio__uverror(L, sockerr(), "listen", NULL);
  int on = 1, r = 0;
  socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) ||
      (ss.ss_family == AF_INET6 && v6only &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0))
    r = sockerr();
  if (r == 0 && bind(fd, (struct sockaddr *)&ss, len) != 0) r = sockerr();
  if (r == 0 && listen(fd, backlog) != 0) r = sockerr();
  if (r != 0) {
    close(fd);
    corio__push_uverror(L, r, "listen", NULL);
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
    return lua_error(L);
  }
  return net__listener_new(L, rt, fd, ss.ss_family, NULL, 3, 4);
}

/* }==================================================================== */


void net__open_tcp(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"tcp_connect", l_tcp_connect},
    {"tcp_listen", l_tcp_listen},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}
