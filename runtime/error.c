/*
** error.c -- corio.Error objects, the one path from a libuv status to a
** Lua error, and the report of errors nobody else will see.
**
** A corio.Error is a plain table {code=, message=, op=, ...} with a shared
** metatable, so scripts can read and extend it like any table while
** tostring() gives one readable line: "CODE: message (op path)".
*/
#include <stdarg.h>   /* va_list */
#include <stdio.h>    /* fputs */
#include <string.h>   /* strcmp */

#include "internal.h"


/* Pushes the Error metatable, creating it on first use. [-0,+1] */
static void push_mt(lua_State *L);


void corio__push_error(lua_State *L, const char *code, const char *op,
                       const char *msg) {
  lua_checkstack(L, 4);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, msg ? msg : code);
  lua_setfield(L, -2, "message");
  if (op) {
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
  }
  push_mt(L);
  lua_setmetatable(L, -2);
}


int corio__error(lua_State *L, const char *code, const char *op,
                 const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  corio__push_error(L, code, op, lua_tostring(L, -1));
  return lua_error(L);
}


void corio__push_uverror(lua_State *L, int status, const char *op,
                         const char *path) {
  corio__push_error(L, uv_err_name(status), op, uv_strerror(status));
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "errno");
  if (path) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
}


int corio__uverror(lua_State *L, int status, const char *op,
                   const char *path) {
  corio__push_uverror(L, status, op, path);
  return lua_error(L);
}


/* True if the value at idx is a corio.Error (with the given code). */
int corio__is_error(lua_State *L, int idx, const char *code) {
  int ok = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  push_mt(L);
  if (lua_rawequal(L, -1, -2)) {
    ok = 1;
    if (code) {
      lua_getfield(L, idx, "code");
      ok = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), code) == 0;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
  return ok;
}


/* {====================================================================
** Lua side: __tostring, corio.Error(...), is_cancelled, is_timeout
** ===================================================================== */

/* "CODE: message (op path host:port)".  The pieces are pushed and joined
** with one lua_concat: a luaL_Buffer cannot be used while fields are
** fetched onto the stack (a buffer that grows past its initial size keeps
** its box on the stack, and pushing above it made luaL_pushresult read
** freed memory once a field was long, e.g. a 1 KiB path). */
static int err_tostring(lua_State *L) {
  static const char *const where[] = {"op", "path", "host"};
  int n = 1, opened = 0, host = 0;
  lua_getfield(L, 1, "code");
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "ERROR");
  }
  lua_pushliteral(L, ": ");
  lua_getfield(L, 1, "message");
  if (lua_isstring(L, -1)) n += 2;
  else lua_pop(L, 2);
  for (int i = 0; i < 3; i++) {
    lua_pushstring(L, opened ? " " : " (");
    if (lua_getfield(L, 1, where[i]) != LUA_TSTRING) {
      lua_pop(L, 2);
      continue;
    }
    n += 2;
    opened = 1;
    host = (i == 2);
  }
  if (host && lua_getfield(L, 1, "port") != LUA_TNIL) {
    lua_pushliteral(L, ":");
    luaL_tolstring(L, -2, NULL);
    lua_remove(L, -3);
    n += 2;
  } else if (host) lua_pop(L, 1);
  if (opened) {
    lua_pushliteral(L, ")");
    n++;
  }
  lua_concat(L, n);
  return 1;
}


static const char *const kinds[] = { "CANCELLED", "TIMEOUT" };

static int err_is_kind(lua_State *L, int k) {
  lua_pushboolean(L, corio__is_error(L, 1, kinds[k]));
  return 1;
}

static int l_is_cancelled(lua_State *L) { return err_is_kind(L, 0); }
static int l_is_timeout(lua_State *L) { return err_is_kind(L, 1); }


/* corio.Error(code, message [, fields]) -> a new Error (not raised). */
static int err_new(lua_State *L) {
  lua_remove(L, 1);             /* the Error table (__call's self), so that
                                   argument errors count from the user's 1 */
  const char *code = luaL_checkstring(L, 1);
  const char *msg = luaL_optstring(L, 2, code);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  corio__push_error(L, code, NULL, msg);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}


/* corio.Error.is(v [, code]) */
static int err_is(lua_State *L) {
  lua_pushboolean(L, corio__is_error(L, 1, luaL_optstring(L, 2, NULL)));
  return 1;
}


static void push_mt(lua_State *L) {
  if (luaL_newmetatable(L, CORIO_ERROR_MT)) {
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
  }
}


void corio__open_error(lua_State *L) {
  lua_createtable(L, 0, 1);                   /* corio.Error */
  lua_pushcfunction(L, err_is);
  lua_setfield(L, -2, "is");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, err_new);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "Error");
  lua_pushcfunction(L, l_is_cancelled);
  lua_setfield(L, -2, "is_cancelled");
  lua_pushcfunction(L, l_is_timeout);
  lua_setfield(L, -2, "is_timeout");
}

/* }==================================================================== */


/* {====================================================================
** Tracebacks and reports
** ===================================================================== */

/* tostring() that never raises: a failing __tostring gives a fixed text. */
static int tostring_p(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

void corio__tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, tostring_p);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
}


/* A traceback like luaL_traceback's, without its search of
** package.loaded for a global name of every function (which made each
** uncaught error in a task cost tens of microseconds with many modules
** loaded).  Function names come from the calling instruction. [-0,+1] */
void corio__traceback(lua_State *L, lua_State *L1, const char *msg,
                      int level) {
  enum { FIRST = 10, LAST = 11 };
  luaL_Buffer b;
  lua_Debug ar;
  int last = level;
  while (lua_getstack(L1, last + 1, &ar)) last++;   /* deepest level */
  luaL_buffinit(L, &b);
  if (msg) {
    luaL_addstring(&b, msg);
    luaL_addchar(&b, '\n');
  }
  luaL_addstring(&b, "stack traceback:");
  for (; lua_getstack(L1, level, &ar); level++) {
    if (level - 1 == FIRST && last - level > LAST) {  /* skip the middle */
      lua_pushfstring(L, "\n\t...\t(skipping %d levels)",
                      last - level - LAST + 1);
      luaL_addvalue(&b);
      level = last - LAST;
      continue;
    }
    lua_getinfo(L1, "Slnt", &ar);
    if (ar.currentline <= 0)
      lua_pushfstring(L, "\n\t%s: in ", ar.short_src);
    else
      lua_pushfstring(L, "\n\t%s:%d: in ", ar.short_src, ar.currentline);
    luaL_addvalue(&b);
    if (*ar.namewhat != '\0')
      lua_pushfstring(L, "%s '%s'", ar.namewhat, ar.name);
    else if (*ar.what == 'm')
      lua_pushliteral(L, "main chunk");
    else if (*ar.what != 'C')
      lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
    else
      lua_pushliteral(L, "?");
    luaL_addvalue(&b);
    if (ar.istailcall) luaL_addstring(&b, "\n\t(...tail calls...)");
  }
  luaL_pushresult(&b);
}


/* Message handler for protected calls: keeps the error value unchanged
** and stores the traceback beside it -- in the running task's extras when
** the error comes from a task body, else in the registry for the caller
** of lua_pcall to pick up. */
int corio__msgh(lua_State *L) {
  corio_rt *rt = corio__rt_or_null(L);
  lua_settop(L, 1);
  if (!lua_isstring(L, 1) || lua_isnumber(L, 1)) corio__tostring(L, 1);
  else lua_pushvalue(L, 1);
  corio__traceback(L, L, lua_tostring(L, -1), 1);
  lua_remove(L, 2);                           /* error, traceback */
  corio_task *t = rt ? rt->current : NULL;
  if (t && t->co == L) {
    corio__push_task(rt, L, t);
    corio__fut_extra(L, lua_gettop(L));
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "traceback");
    lua_pop(L, 2);
  } else {
    lua_setfield(L, LUA_REGISTRYINDEX, "corio.traceback");
  }
  lua_settop(L, 1);
  return 1;
}


/* Prints the default report: "corio: <error>" and the traceback. */
static void print_report(lua_State *L, int eidx, int tbidx) {
  corio__tostring(L, eidx);
  fputs("corio: ", stderr);
  fputs(lua_tostring(L, -1), stderr);
  fputs("\n", stderr);
  if (tbidx && lua_isstring(L, tbidx)) {
    /* The traceback starts with the message line; skip it. */
    const char *tb = lua_tostring(L, tbidx);
    const char *st = strstr(tb, "stack traceback:");
    fputs(st ? st : tb, stderr);
    fputs("\n", stderr);
  }
  fflush(stderr);
  lua_pop(L, 1);
}


/* Reports an error nobody else will see: the custom handler gets
** (err, info) where info = {kind=, traceback=}; without one (or if it
** fails) the error is printed and the exit code becomes 1. */
void corio__report(corio_rt *rt, lua_State *L, int eidx, const char *kind,
                   int tbidx) {
  eidx = lua_absindex(L, eidx);
  if (tbidx) tbidx = lua_absindex(L, tbidx);
  lua_checkstack(L, 8);
  if (rt->errh_ref != LUA_NOREF && !rt->closing) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->errh_ref);
    lua_pushvalue(L, eidx);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    if (tbidx) {
      lua_pushvalue(L, tbidx);
      lua_setfield(L, -2, "traceback");
    }
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
    print_report(L, lua_gettop(L), 0);        /* the handler failed */
    lua_pop(L, 1);
  }
  if (rt->report) {
    corio__tostring(L, eidx);
    const char *tb = tbidx && lua_isstring(L, tbidx) ? lua_tostring(L, tbidx)
                                                     : NULL;
    corio_report_kind k = strcmp(kind, "task") == 0 ||
                          strcmp(kind, "main") == 0
                          ? CORIO_REPORT_UNHANDLED : CORIO_REPORT_CALLBACK;
    rt->report(rt->report_ud, rt, k, lua_tostring(L, -1), tb);
    lua_pop(L, 1);
  } else {
    print_report(L, eidx, tbidx);
  }
  rt->exit_code = 1;
}


/* Reports queued by __gc (which must not call Lua code that may fail or
** yield) are delivered here, at a safe point of the loop. */
void corio__flush_reports(corio_rt *rt) {
  lua_State *L = rt->L;
  if (rt->nreports == 0) return;
  lua_checkstack(L, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->reports_ref);
  int q = lua_gettop(L);
  for (int i = 1; i <= rt->nreports; i++) {
    lua_rawgeti(L, q, i);                     /* {err, traceback, kind} */
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_rawgeti(L, -3, 3);
    corio__report(rt, L, -3, lua_tostring(L, -1), lua_gettop(L) - 1);
    lua_pop(L, 4);
    lua_pushnil(L);
    lua_rawseti(L, q, i);
  }
  rt->nreports = 0;
  lua_pop(L, 1);
}

/* }==================================================================== */


/* {====================================================================
** Misuse reported at the user's line
** ===================================================================== */

/* Is src the chunk name of one of corio's embedded scripts?  (The same
** rule as scripts/_args.lua's own(); tools/embed.c names them.) */
static int own_chunk(const char *src) {
  if (strcmp(src, "@corio.lua") == 0) return 1;
  if (strncmp(src, "@corio/", 7) != 0) return 0;
  const char *p = src + 7;
  while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9'))
    p++;
  return p > src + 7 && strcmp(p, ".lua") == 0;
}


int corio__argerror(lua_State *L, int arg, const char *msg) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar))
    return luaL_error(L, "bad argument #%d (%s)", arg, msg);
  lua_getinfo(L, "n", &ar);
  if (ar.name == NULL || strcmp(ar.namewhat, "method") == 0)
    return luaL_argerror(L, arg, msg);      /* its names for these cases */
  const char *name = ar.name;
  int lvl = 1;
  for (int i = 1; lua_getstack(L, i, &ar); i++) {
    lua_getinfo(L, "S", &ar);
    if (strcmp(ar.what, "C") != 0 && !own_chunk(ar.source)) {
      lvl = i;
      break;
    }
  }
  luaL_where(L, lvl);
  lua_pushfstring(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

/* }==================================================================== */
