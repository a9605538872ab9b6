/*
** dns.c -- asynchronous name resolution: getaddrinfo and getnameinfo on
** libuv's thread pool.
**
** The request outlives a cancelled task: the undo hook only forgets the
** task (and asks libuv to cancel a request that has not started); the
** callback frees the request and the result either way.
*/
#include <netdb.h>        /* struct addrinfo, NI_MAXHOST */
#include <stdlib.h>       /* malloc, free */
#include <string.h>       /* memset */

#include "net.h"

typedef struct dnsreq {
  union {
    uv_req_t req;
    uv_getaddrinfo_t ai;
    uv_getnameinfo_t ni;
  } u;
  corio_rt *rt;
  corio_task *t;               /* NULL once cancelled */
  const char *op;              /* "resolve" or "reverse" */
  int status;                  /* the callback's, for the push functions */
  struct addrinfo *res;
  const char *hostname, *service;
  char host[];
} dnsreq;


static void dns_undo(corio_rt *rt, corio_task *t) {
  dnsreq *d = net__wait_obj(t);
  (void)rt;
  d->t = NULL;
  uv_cancel(&d->u.req);
}


/* Pushes the error of a failed lookup: the EAI_ code is the name. */
static void push_dns_error(lua_State *L, int status, const char *op,
                           const char *host) {
  corio__push_uverror(L, status, op, NULL);
  lua_pushstring(L, host);
  lua_setfield(L, -2, "host");
}


/* [d] -> error of the failed lookup */
static int push_lookup_error(lua_State *L) {
  dnsreq *d = lua_touserdata(L, 1);
  push_dns_error(L, d->status, d->op, d->host);
  return 1;
}


/* The end of both lookups, on the loop thread: wakes the task, if it
** still waits, with the values push_ok makes from d (or the error), made
** under protection (corio__wake_with); then frees the request. */
static void dns_done(dnsreq *d, int status, lua_CFunction push_ok) {
  corio_rt *rt = d->rt;
  corio__req_end(rt);
  if (d->t && !rt->closing) {
    d->status = status;
    if (status < 0)
      corio__wake_with(rt, d->t, push_lookup_error, d, WAKE_RAISE);
    else
      corio__wake_with(rt, d->t, push_ok, d, WAKE_VALUES);
  }
  free(d);
}


/* A request for the task running L, holding a copy of host.  Raises only
** before anything was allocated or submitted. */
static dnsreq *dns_new(lua_State *L, corio_rt *rt, const char *host,
                       size_t len, const char *op) {
  corio_task *t = corio__check_await(L, rt, op);
  dnsreq *d = malloc(sizeof *d + len + 1);
  if (d == NULL) luaL_error(L, "not enough memory");
  memcpy(d->host, host, len + 1);
  d->rt = rt;
  d->t = t;
  d->op = op;
  d->res = NULL;
  return d;
}


/* r: what libuv said to the submission.  Suspends the task until
** dns_done, or raises the lookup's error (d is freed first: making the
** error may raise; the host is argument 1 of both lookups). */
static int dns_wait(lua_State *L, corio_rt *rt, dnsreq *d, int r) {
  if (r != 0) {
    const char *op = d->op;
    free(d);
    push_dns_error(L, r, op, lua_tostring(L, 1));
    return lua_error(L);
  }
  corio__req_start(rt);
  return net__suspend(L, rt, d->t, d, dns_undo);
}


/* [d] -> list of {addr=, family=, port=} */
static int push_addrinfo(lua_State *L) {
  dnsreq *d = lua_touserdata(L, 1);
  char ip[INET6_ADDRSTRLEN + 1];
  int n = 0;
  lua_newtable(L);
  for (struct addrinfo *a = d->res; a; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    lua_createtable(L, 0, 3);
    if (a->ai_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
    else
      uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
    lua_pushstring(L, ip);
    lua_setfield(L, -2, "addr");
    lua_pushstring(L, a->ai_family == AF_INET ? "inet" : "inet6");
    lua_setfield(L, -2, "family");
    net__push_addr(L, a->ai_addr);
    if (lua_tointeger(L, -1) != 0) lua_setfield(L, -3, "port");
    else lua_pop(L, 1);
    lua_pop(L, 1);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}


static void addrinfo_cb(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  dnsreq *d = container_of(req, dnsreq, u.ai);
  d->res = res;
  dns_done(d, status, push_addrinfo);
  uv_freeaddrinfo(res);
}


/* getaddrinfo(host, family|nil, service|nil) -> list */
static int l_getaddrinfo(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  const char *family = luaL_optstring(L, 2, NULL);
  const char *service = luaL_optstring(L, 3, NULL);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family == NULL ? AF_UNSPEC
                  : family[4] == '6' ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;            /* one entry per address */
  hints.ai_flags = AI_ADDRCONFIG;
  dnsreq *d = dns_new(L, rt, host, len, "resolve");
  return dns_wait(L, rt, d, uv_getaddrinfo(rt->loop, &d->u.ai, addrinfo_cb,
                                           d->host, service, &hints));
}


static int push_nameinfo(lua_State *L) {
  dnsreq *d = lua_touserdata(L, 1);
  lua_pushstring(L, d->hostname);
  lua_pushstring(L, d->service);
  return 2;
}


static void nameinfo_cb(uv_getnameinfo_t *req, int status,
                        const char *hostname, const char *service) {
  dnsreq *d = container_of(req, dnsreq, u.ni);
  d->hostname = hostname;
  d->service = service;
  dns_done(d, status, push_nameinfo);
}


/* getnameinfo(ip, port) -> hostname, service */
static int l_getnameinfo(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  size_t len;
  const char *ip = luaL_checklstring(L, 1, &len);
  int port = net__check_port(L, 2);
  struct sockaddr_storage ss;
  if (net__parse_addr(ip, port, &ss) != 0)
    return corio__argerror(L, 1, "not a numeric IP address");
  dnsreq *d = dns_new(L, rt, ip, len, "reverse");
  return dns_wait(L, rt, d, uv_getnameinfo(rt->loop, &d->u.ni, nameinfo_cb,
                                           (struct sockaddr *)&ss, 0));
}


void net__open_dns(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"getaddrinfo", l_getaddrinfo},
    {"getnameinfo", l_getnameinfo},
    {NULL, NULL}
  };
  corio__setfuncs(L, rt, funcs);
}
