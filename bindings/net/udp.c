/*
** udp.c -- UdpSocket: datagrams over uv_udp_t.
**
** Once someone has called recvfrom, the socket keeps receiving; datagrams
** nobody waits for are queued, up to UDP_QMAX, then receiving stops and
** the kernel's buffer (and then the network) drops the rest, as UDP does.
** The handle keeps the loop alive only while a task waits on it.
** A send first tries the socket directly; only when it is full is the
** datagram copied into a request, and the sender waits for it to go.
** An open socket is on the runtime's backstop list (runtime/owned.c), so
** teardown closes and frees it even if its __gc never ran.
*/
#include <stddef.h>       /* offsetof */
#include <stdint.h>       /* uintptr_t */
#include <stdlib.h>       /* calloc, malloc, free */
#include <string.h>       /* memcpy */

#include "net.h"

#define UDP_QMAX 256           /* datagrams queued for recvfrom */

typedef struct dgram {
  struct dgram *next;
  size_t len;
  struct sockaddr_storage from;
  char data[];
} dgram;

typedef struct udpsock {
  uv_udp_t h;
  corio_rt *rt;
  corio_owned own;             /* on the backstop list until freed */
  netstate *ns;
  struct udp_ud *ud;
  corio_task *reader;          /* the task in recvfrom, or NULL */
  dgram *q, *qtail;
  int nq;
  int rerr;                    /* error to raise at the next recvfrom */
  int nsend;                   /* send requests in flight */
  int receiving, ref, closed;
} udpsock;

typedef struct udp_ud {
  udpsock *u;
} udp_ud;

typedef struct sendreq {
  uv_udp_send_t req;
  corio_task *t;               /* the waiting task, NULL once cancelled */
  uv_buf_t buf;
  char data[];
} sendreq;


/* {====================================================================
** Life
** ===================================================================== */

static void update_ref(udpsock *u) {
  int want = !u->closed && (u->reader || u->nsend > 0);
  if (want != u->ref) {
    if (want) uv_ref((uv_handle_t *)&u->h);
    else uv_unref((uv_handle_t *)&u->h);
    u->ref = want;
  }
}


static void close_cb(uv_handle_t *h) {
  udpsock *u = h->data;
  corio__untrack(u->rt, h);
  corio__disown(u->rt, &u->own);
  while (u->q) {
    dgram *d = u->q;
    u->q = d->next;
    free(d);
  }
  if (u->ud && !u->rt->lua_closed) u->ud->u = NULL;  /* see stream.c */
  net__state_unref(u->ns);
  free(u);
}


/* [op] -> the CLOSED error of a socket closed under a waiter */
static int push_closed(lua_State *L) {
  const char *op = lua_touserdata(L, 1);
  corio__push_error(L, "CLOSED", op, "socket is closed");
  return 1;
}


static void udp_close(udpsock *u) {
  if (u->closed) return;
  u->closed = 1;
  if (u->reader && !u->rt->closing) {
    corio_task *t = u->reader;
    u->reader = NULL;
    corio__wake_with(u->rt, t, push_closed, (void *)"recvfrom", WAKE_RAISE);
  }
  u->reader = NULL;
  uv_close((uv_handle_t *)&u->h, close_cb);
}


static udpsock *check_udp(lua_State *L, const char *op) {
  udp_ud *ud = luaL_checkudata(L, 1, UDP_MT);
  if (ud->u == NULL || ud->u->closed)
    corio__error(L, "CLOSED", op, "socket is closed");
  return ud->u;
}


static int udp_m_close(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, UDP_MT);
  if (ud->u) udp_close(ud->u);
  return 0;
}


/* The backstop: the state is closed and this socket's __gc never ran. */
static void udp_backstop(corio_rt *rt, corio_owned *o) {
  udpsock *u = (udpsock *)(void *)((char *)o - offsetof(udpsock, own));
  if (u->ud && !rt->lua_closed) u->ud->u = NULL;  /* its memory is live */
  u->ud = NULL;
  udp_close(u);
}


static int udp_gc(lua_State *L) {
  udp_ud *ud = lua_touserdata(L, 1);
  if (ud->u) {
    ud->u->ud = NULL;
    udp_close(ud->u);
    ud->u = NULL;
  }
  return 0;
}


/* udp(family) -> UdpSocket; family "inet" (default) or "inet6" */
static int l_udp(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  /* checked, not peeked at: fam[4] of a short string reads past it */
  static const char *const families[] = {"inet", "inet6", NULL};
  int af = luaL_checkoption(L, 1, "inet", families) ? AF_INET6 : AF_INET;
  udp_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->u = NULL;
  luaL_setmetatable(L, UDP_MT);
  netstate *ns = net__state(L);               /* may raise: first */
  udpsock *u = calloc(1, sizeof *u);
  if (u == NULL) {
    net__state_unref(ns);
    return luaL_error(L, "not enough memory");
  }
  int r = uv_udp_init_ex(rt->loop, &u->h, (unsigned int)af);
  if (r != 0) {
    free(u);
    net__state_unref(ns);
    return corio__uverror(L, r, "udp", NULL);
  }
  /* From here nothing raises: the socket is whole before anyone sees it. */
  u->h.data = u;
  u->rt = rt;
  u->ns = ns;
  corio__own(rt, &u->own, udp_backstop);
  corio__track(rt, (uv_handle_t *)&u->h);
  corio__track_site(rt, L, (uv_handle_t *)&u->h, "UDP socket", NULL);
  u->ud = ud;
  u->ref = 1;
  ud->u = u;
  update_ref(u);
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Addresses and options
** ===================================================================== */

static void check_addr(lua_State *L, int idx, struct sockaddr_storage *ss) {
  const char *ip = luaL_checkstring(L, idx);
  int port = net__check_port(L, idx + 1);
  if (net__parse_addr(ip, port, ss) != 0)
    corio__argerror(L, idx, "not a numeric IP address");
}


/* bind(ip, port [, reuseaddr]) */
static int udp_bind(lua_State *L) {
  udpsock *u = check_udp(L, "bind");
  struct sockaddr_storage ss;
  check_addr(L, 2, &ss);
  unsigned flags = lua_toboolean(L, 4) ? UV_UDP_REUSEADDR : 0;
  int r = uv_udp_bind(&u->h, (struct sockaddr *)&ss, flags);
  if (r != 0) return corio__uverror(L, r, "bind", NULL);
  return 0;
}


/* connect(ip, port): the default destination; only its datagrams come */
static int udp_connect(lua_State *L) {
  udpsock *u = check_udp(L, "connect");
  struct sockaddr_storage ss;
  check_addr(L, 2, &ss);
  int r = uv_udp_connect(&u->h, (struct sockaddr *)&ss);
  if (r == UV_EISCONN) {
    uv_udp_connect(&u->h, NULL);
    r = uv_udp_connect(&u->h, (struct sockaddr *)&ss);
  }
  if (r != 0) return corio__uverror(L, r, "connect", NULL);
  return 0;
}


static int udp_name(lua_State *L, int peer) {
  const char *op = peer ? "peername" : "sockname";
  udpsock *u = check_udp(L, op);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int r = peer ? uv_udp_getpeername(&u->h, (struct sockaddr *)&ss, &len)
               : uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len);
  if (r != 0) return corio__uverror(L, r, op, NULL);
  return net__push_addr(L, (struct sockaddr *)&ss);
}

static int udp_sockname(lua_State *L) { return udp_name(L, 0); }
static int udp_peername(lua_State *L) { return udp_name(L, 1); }


static int opt_result(lua_State *L, int r, const char *op) {
  if (r != 0) return corio__uverror(L, r, op, NULL);
  return 0;
}


static int udp_set_broadcast(lua_State *L) {
  udpsock *u = check_udp(L, "set_broadcast");
  return opt_result(L, uv_udp_set_broadcast(&u->h, lua_toboolean(L, 2)),
                    "set_broadcast");
}


static int udp_set_ttl(lua_State *L) {
  udpsock *u = check_udp(L, "set_ttl");
  int ttl = (int)luaL_checkinteger(L, 2);
  return opt_result(L, uv_udp_set_ttl(&u->h, ttl), "set_ttl");
}


static int udp_set_multicast_ttl(lua_State *L) {
  udpsock *u = check_udp(L, "set_multicast_ttl");
  int ttl = (int)luaL_checkinteger(L, 2);
  return opt_result(L, uv_udp_set_multicast_ttl(&u->h, ttl),
                    "set_multicast_ttl");
}


static int udp_set_multicast_loop(lua_State *L) {
  udpsock *u = check_udp(L, "set_multicast_loop");
  return opt_result(L, uv_udp_set_multicast_loop(&u->h,
                                                 lua_toboolean(L, 2)),
                    "set_multicast_loop");
}


static int udp_set_multicast_interface(lua_State *L) {
  udpsock *u = check_udp(L, "set_multicast_interface");
  const char *iface = luaL_optstring(L, 2, NULL);
  return opt_result(L, uv_udp_set_multicast_interface(&u->h, iface),
                    "set_multicast_interface");
}


/* add_membership(group [, iface]) / drop_membership(group [, iface]) */
static int membership(lua_State *L, uv_membership m, const char *op) {
  udpsock *u = check_udp(L, op);
  const char *group = luaL_checkstring(L, 2);
  const char *iface = luaL_optstring(L, 3, NULL);
  return opt_result(L, uv_udp_set_membership(&u->h, group, iface, m), op);
}

static int udp_add_membership(lua_State *L) {
  return membership(L, UV_JOIN_GROUP, "add_membership");
}

static int udp_drop_membership(lua_State *L) {
  return membership(L, UV_LEAVE_GROUP, "drop_membership");
}

/* }==================================================================== */


/* {====================================================================
** Sending
** ===================================================================== */

/* [&status] -> the error of a failed send (or a recvfrom's) */
static int push_send_error(lua_State *L) {
  int status = *(int *)lua_touserdata(L, 1);
  corio__push_uverror(L, status, "send", NULL);
  return 1;
}

static int push_recv_error(lua_State *L) {
  int status = *(int *)lua_touserdata(L, 1);
  corio__push_uverror(L, status, "recvfrom", NULL);
  return 1;
}

/* The task's wake is made under protection (corio__wake_with): out of
** memory, it raises ENOMEM. */
static void send_cb(uv_udp_send_t *req, int status) {
  sendreq *s = container_of(req, sendreq, req);
  udpsock *u = req->handle->data;
  u->nsend--;
  if (s->t && !u->rt->closing) {
    if (status == UV_ECANCELED)
      corio__wake_with(u->rt, s->t, push_closed, (void *)"send", WAKE_RAISE);
    else if (status < 0)
      corio__wake_with(u->rt, s->t, push_send_error, &status, WAKE_RAISE);
    else
      corio__wake(u->rt, s->t, u->rt->L, 0, WAKE_VALUES);  /* no values */
  }
  free(s);
  if (!u->closed) update_ref(u);
}


static void send_undo(corio_rt *rt, corio_task *t) {
  sendreq *s = net__wait_obj(t);
  (void)rt;
  s->t = NULL;
}


/* Sends data at 2 to addr (NULL: the connected peer). */
static int do_send(lua_State *L, udpsock *u, const struct sockaddr *addr,
                   const char *op) {
  corio_rt *rt = u->rt;
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  uv_buf_t b;
  b.base = (char *)(uintptr_t)p;
  b.len = len;
  int r = uv_udp_try_send(&u->h, &b, 1, addr);
  if (r >= 0) return 0;
  if (r != UV_EAGAIN) return corio__uverror(L, r, op, NULL);
  corio_task *t = net__can_wait(L, rt) ? corio__check_await(L, rt, op)
                                       : NULL;
  sendreq *s = malloc(sizeof *s + len);
  if (s == NULL) return luaL_error(L, "not enough memory");
  memcpy(s->data, p, len);
  s->buf = uv_buf_init(s->data, (unsigned int)len);
  s->t = t;
  r = uv_udp_send(&s->req, &u->h, &s->buf, 1, addr, send_cb);
  if (r != 0) {
    free(s);
    return corio__uverror(L, r, op, NULL);
  }
  u->nsend++;
  update_ref(u);
  if (t == NULL) return 0;
  return net__suspend(L, rt, t, s, send_undo);
}


/* sendto(data, ip, port) */
static int udp_sendto(lua_State *L) {
  udpsock *u = check_udp(L, "sendto");
  struct sockaddr_storage ss;
  luaL_checkstring(L, 2);
  check_addr(L, 3, &ss);
  lua_settop(L, 2);
  return do_send(L, u, (struct sockaddr *)&ss, "sendto");
}


/* send(data): to the connected peer */
static int udp_send(lua_State *L) {
  udpsock *u = check_udp(L, "send");
  lua_settop(L, 2);
  return do_send(L, u, NULL, "send");
}

/* }==================================================================== */


/* {====================================================================
** Receiving
** ===================================================================== */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  udpsock *u = h->data;
  (void)hint;
  buf->base = u->ns->buf;
  buf->len = NET_RDBUF;
}


static void recv_stop(udpsock *u) {
  if (u->receiving) {
    uv_udp_recv_stop(&u->h);
    u->receiving = 0;
  }
}


/* Pushes data, host, port [-0,+3] */
static void push_dgram(lua_State *L, const char *p, size_t n,
                       const struct sockaddr *from) {
  lua_pushlstring(L, p, n);
  net__push_addr(L, from);
}


typedef struct dgram_in { const char *p; size_t n;
                          const struct sockaddr *from; } dgram_in;

/* [dgram_in] -> data, host, port */
static int push_dgram_lua(lua_State *L) {
  dgram_in *d = lua_touserdata(L, 1);
  push_dgram(L, d->p, d->n, d->from);
  return 3;
}


/* A waiting reader is woken with the datagram, made under protection
** (corio__wake_with: out of memory, it raises ENOMEM and the datagram is
** dropped, as UDP may). */
static void recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  udpsock *u = h->data;
  (void)flags;
  if (u->rt->closing || (n == 0 && addr == NULL)) return;
  if (n < 0) {
    if (u->reader) {
      corio_task *t = u->reader;
      int status = (int)n;
      u->reader = NULL;
      corio__wake_with(u->rt, t, push_recv_error, &status, WAKE_RAISE);
    } else {
      u->rerr = (int)n;
    }
  } else if (u->reader) {
    corio_task *t = u->reader;
    dgram_in d = {buf->base, (size_t)n, addr};
    u->reader = NULL;
    corio__wake_with(u->rt, t, push_dgram_lua, &d, WAKE_VALUES);
  } else {
    dgram *d = malloc(sizeof *d + (size_t)n);
    if (d == NULL) return;                    /* dropped, as UDP may */
    d->next = NULL;
    d->len = (size_t)n;
    memcpy(&d->from, addr, addr->sa_family == AF_INET6
           ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    memcpy(d->data, buf->base, (size_t)n);
    if (u->qtail) u->qtail->next = d;
    else u->q = d;
    u->qtail = d;
    if (++u->nq >= UDP_QMAX) recv_stop(u);
  }
  update_ref(u);
}


static void recv_undo(corio_rt *rt, corio_task *t) {
  udpsock *u = net__wait_obj(t);
  (void)rt;
  if (u->reader == t) u->reader = NULL;
  update_ref(u);
}


/* recvfrom() -> data, host, port */
static int udp_recvfrom(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  udpsock *u = check_udp(L, "recvfrom");
  if (u->reader)
    return corio__error(L, "BUSY", "recvfrom", "another task is receiving "
                        "on this socket");
  if (u->q) {
    dgram *d = u->q;
    u->q = d->next;
    if (u->q == NULL) u->qtail = NULL;
    u->nq--;
    push_dgram(L, d->data, d->len, (struct sockaddr *)&d->from);
    free(d);
    if (!u->receiving && u->nq < UDP_QMAX / 2 &&
        uv_udp_recv_start(&u->h, alloc_cb, recv_cb) == 0)
      u->receiving = 1;
    return 3;
  }
  if (u->rerr) {
    int e = u->rerr;
    u->rerr = 0;
    return corio__uverror(L, e, "recvfrom", NULL);
  }
  corio_task *t = corio__check_await(L, rt, "recvfrom");
  if (!u->receiving) {
    int r = uv_udp_recv_start(&u->h, alloc_cb, recv_cb);
    if (r != 0) return corio__uverror(L, r, "recvfrom", NULL);
    u->receiving = 1;
  }
  u->reader = t;
  update_ref(u);
  return net__suspend(L, rt, t, u, recv_undo);
}

/* }==================================================================== */


static int udp_tostring(lua_State *L) {
  udp_ud *ud = luaL_checkudata(L, 1, UDP_MT);
  lua_pushfstring(L, "corio.UdpSocket (%s): %p",
                  ud->u && !ud->u->closed ? "open" : "closed", (void *)ud);
  return 1;
}


void net__open_udp(lua_State *L, corio_rt *rt) {
  static const luaL_Reg methods[] = {
    {"bind", udp_bind},
    {"connect", udp_connect},
    {"sockname", udp_sockname},
    {"peername", udp_peername},
    {"sendto", udp_sendto},
    {"send", udp_send},
    {"recvfrom", udp_recvfrom},
    {"close", udp_m_close},
    {"set_broadcast", udp_set_broadcast},
    {"set_ttl", udp_set_ttl},
    {"set_multicast_ttl", udp_set_multicast_ttl},
    {"set_multicast_loop", udp_set_multicast_loop},
    {"set_multicast_interface", udp_set_multicast_interface},
    {"add_membership", udp_add_membership},
    {"drop_membership", udp_drop_membership},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"udp", l_udp},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", udp_gc},
    {"__close", udp_m_close},
    {"__tostring", udp_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, UDP_MT, methods, meta, NULL);
  lua_pop(L, 1);
  corio__setfuncs(L, rt, funcs);
}
