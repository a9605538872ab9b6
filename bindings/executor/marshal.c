/*
** marshal.c -- copying values between Lua states.
**
** Two lua_States never touch each other here: the caller encodes its
** values into a malloc'ed message (xbuf), which a worker thread, or a
** worker process at the other end of a pipe, decodes into its own state.
** One format serves both, so a thread pool and a process pool accept
** exactly the same jobs.
**
** The encoding (all numbers native-endian: both ends are this machine):
**   T_NIL | T_FALSE | T_TRUE
**   T_INT   i64            integers and floats stay apart (3 vs 3.0)
**   T_FLT   f64
**   T_STR   varint len, bytes        (embedded zeros are fine)
**   T_TAB   u32 narr, u32 nhash, narr values, nhash key/value pairs
**   T_REF   varint k       the k-th table of this message, again
** Tables are numbered in the order they start.  A table met a second time
** is sent as a T_REF, so shared subtables stay shared and a DAG does not
** blow up; a table met again while it is still being written is a cycle,
** which the contract refuses ("cycle in table").  Metatables are not sent
** (like a JSON encoder, we copy raw contents).  Functions, userdata and
** threads cannot be copied.
*/
#include <stdint.h>     /* uint32_t, int64_t */
#include <stdlib.h>     /* realloc, free */
#include <string.h>     /* memcpy, strcmp */

#include "executor.h"

enum { T_NIL = 0, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TAB, T_REF };

#define F_REFS 0x01                /* message flag: it holds T_REFs */

/* Registry key of the caller's cache: fn -> bytecode (weak keys). */
#define FNCACHE_KEY  "corio.executor.bytecode"


/* {====================================================================
** Byte buffers
** ===================================================================== */

int xbuf_reserve(xbuf *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t need = b->len + extra;
  if (need < b->len) return -1;               /* overflow */
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (p == NULL) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}


void xbuf_free(xbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}


static int put(xbuf *b, const void *p, size_t n) {
  if (xbuf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}


static int put_byte(xbuf *b, int c) {
  unsigned char u = (unsigned char)c;
  return put(b, &u, 1);
}


static int put_varint(xbuf *b, uint64_t v) {
  unsigned char tmp[10];
  int n = 0;
  do {
    tmp[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  return put(b, tmp, (size_t)n);
}

/* }==================================================================== */


/* {====================================================================
** Encoding
** ===================================================================== */

#define NOMEM "not enough memory"

void xenc_init(xenc *e, lua_State *L, xbuf *b) {
  e->L = L;
  e->b = b;
  e->visited = 0;
  e->ntables = 0;
  e->refs = 0;
  e->depth = 0;
}


int xenc_header(xenc *e, int kind, int n) {
  if (put_byte(e->b, kind) || put_byte(e->b, 0)) return -1;
  return put_varint(e->b, (uint64_t)n);
}


void xenc_finish(xenc *e) {
  if (e->refs) e->b->p[1] |= F_REFS;
  if (e->visited) {
    lua_remove(e->L, e->visited);
    e->visited = 0;
  }
}


static const char *enc_table(xenc *e, int idx) {
  lua_State *L = e->L;
  if (e->depth >= XMAX_DEPTH || !lua_checkstack(L, 8))
    return "table nested too deep";
  if (e->visited == 0) {                      /* first table: make the set */
    lua_newtable(L);
    e->visited = lua_gettop(L);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->visited) != LUA_TNIL) {
    lua_Integer k = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (k < 0) return "cycle in table";
    e->refs = 1;
    if (put_byte(e->b, T_REF) || put_varint(e->b, (uint64_t)k)) return NOMEM;
    return NULL;
  }
  lua_pop(L, 1);
  lua_Integer self = ++e->ntables;
  lua_pushvalue(L, idx);
  lua_pushinteger(L, -self);                  /* in progress */
  lua_rawset(L, e->visited);
  lua_Unsigned narr = lua_rawlen(L, idx);
  if (narr > UINT32_MAX) return "table too large";
  uint32_t u = (uint32_t)narr, nhash = 0;
  if (put_byte(e->b, T_TAB) || put(e->b, &u, 4)) return NOMEM;
  size_t hpos = e->b->len;
  if (put(e->b, &nhash, 4)) return NOMEM;
  e->depth++;
  for (lua_Unsigned i = 1; i <= narr; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    const char *err = xenc_value(e, -1);
    lua_pop(L, 1);
    if (err) return err;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_isinteger(L, -2)) {               /* sent with the array part */
      lua_Integer k = lua_tointeger(L, -2);
      if (k >= 1 && (lua_Unsigned)k <= narr) {
        lua_pop(L, 1);
        continue;
      }
    }
    const char *err = xenc_value(e, -2);
    if (err == NULL) err = xenc_value(e, -1);
    lua_pop(L, 1);
    if (err) {
      lua_pop(L, 1);
      return err;
    }
    nhash++;
  }
  e->depth--;
  memcpy(e->b->p + hpos, &nhash, 4);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, self);                   /* done: later uses are refs */
  lua_rawset(L, e->visited);
  return NULL;
}


const char *xenc_value(xenc *e, int idx) {
  lua_State *L = e->L;
  xbuf *b = e->b;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return put_byte(b, T_NIL) ? NOMEM : NULL;
    case LUA_TBOOLEAN:
      return put_byte(b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE) ? NOMEM
                                                                  : NULL;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        int64_t i = (int64_t)lua_tointeger(L, idx);
        return put_byte(b, T_INT) || put(b, &i, 8) ? NOMEM : NULL;
      } else {
        double d = (double)lua_tonumber(L, idx);
        return put_byte(b, T_FLT) || put(b, &d, 8) ? NOMEM : NULL;
      }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return put_byte(b, T_STR) || put_varint(b, n) || put(b, s, n) ? NOMEM
                                                                   : NULL;
    }
    case LUA_TTABLE:
      return enc_table(e, idx);
    case LUA_TFUNCTION:
      return "cannot copy a function";
    case LUA_TTHREAD:
      return "cannot copy a thread";
    default:
      return "cannot copy a userdata";
  }
}


/* lua_dump writer into a luaL_Buffer started on first use, as
** string.dump does: lua_dump wants the function on top when it starts. */
typedef struct dumpst {
  int init;
  luaL_Buffer b;
} dumpst;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  dumpst *d = ud;
  if (!d->init) {
    d->init = 1;
    luaL_buffinit(L, &d->b);
  }
  luaL_addlstring(&d->b, p, sz);
  return 0;
}


const char *xenc_function(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_iscfunction(L, idx)) {
    lua_pushliteral(L, "cannot send a C function to a worker");
    return lua_tostring(L, -1);
  }
  if (lua_getfield(L, LUA_REGISTRYINDEX, FNCACHE_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);                          /* weak keys: fn -> bytecode */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, FNCACHE_KEY);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TSTRING) {     /* cache, bytecode */
    lua_remove(L, -2);
    return NULL;
  }
  lua_pop(L, 1);
  const char *name;
  for (int i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") != 0) {
      lua_pop(L, 1);
      lua_pushfstring(L, "function has upvalue '%s' (a job may only use "
                      "globals, its arguments and its own locals)", name);
      return lua_tostring(L, -1);
    }
  }
  dumpst d;
  d.init = 0;
  lua_pushvalue(L, idx);                      /* cache, fn */
  lua_dump(L, dump_writer, &d, 0);            /* keep line numbers */
  if (!d.init) luaL_buffinit(L, &d.b);
  luaL_pushresult(&d.b);                      /* cache, fn, bytecode */
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);                          /* cache[fn] = bytecode */
  lua_remove(L, -2);
  return NULL;
}

/* }==================================================================== */


/* {====================================================================
** Decoding (raises on malformed input: run it under a protected call)
** ===================================================================== */

typedef struct xdec {
  lua_State *L;
  const char *p, *lim;
  int refs;                    /* stack index of the table list, or 0 */
  lua_Integer ntables;
  int depth;
} xdec;


static void corrupt(xdec *d) __attribute__((noreturn));

static void corrupt(xdec *d) {
  luaL_error(d->L, "corrupt executor message");
  abort();                     /* not reached */
}


static void get(xdec *d, void *out, size_t n) {
  if ((size_t)(d->lim - d->p) < n) corrupt(d);
  memcpy(out, d->p, n);
  d->p += n;
}


static uint64_t get_varint(xdec *d) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (d->p >= d->lim) break;
    unsigned char c = (unsigned char)*d->p++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
  }
  corrupt(d);
}


static void dec_value(xdec *d);

static int is_nan(lua_State *L, int i) {
  if (lua_type(L, i) != LUA_TNUMBER || lua_isinteger(L, i)) return 0;
  lua_Number n = lua_tonumber(L, i);
  return n != n;
}

static void dec_table(xdec *d) {
  lua_State *L = d->L;
  uint32_t narr, nhash;
  get(d, &narr, 4);
  get(d, &nhash, 4);
  size_t left = (size_t)(d->lim - d->p);      /* every value takes a byte */
  if (narr > left || nhash > left / 2 || ++d->depth > XMAX_DEPTH) corrupt(d);
  luaL_checkstack(L, 6, "table nested too deep");
  lua_createtable(L, (int)narr, (int)nhash);
  int t = lua_gettop(L);
  if (d->refs) {
    lua_pushvalue(L, t);
    lua_rawseti(L, d->refs, ++d->ntables);
  }
  for (uint32_t i = 1; i <= narr; i++) {
    dec_value(d);
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    else lua_rawseti(L, t, i);
  }
  for (uint32_t i = 0; i < nhash; i++) {
    dec_value(d);
    /* no encoder writes a nil or NaN key: lua_rawset would raise its own
       error ("table index is NaN"), not the decoder's */
    if (lua_isnil(L, -1) || is_nan(L, -1)) corrupt(d);
    dec_value(d);
    lua_rawset(L, t);
  }
  d->depth--;
}


static void dec_value(xdec *d) {
  lua_State *L = d->L;
  unsigned char tag;
  get(d, &tag, 1);
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_INT: {
      int64_t i;
      get(d, &i, 8);
      lua_pushinteger(L, (lua_Integer)i);
      break;
    }
    case T_FLT: {
      double x;
      get(d, &x, 8);
      lua_pushnumber(L, (lua_Number)x);
      break;
    }
    case T_STR: {
      uint64_t n = get_varint(d);
      if (n > (uint64_t)(d->lim - d->p)) corrupt(d);
      lua_pushlstring(L, d->p, (size_t)n);
      d->p += n;
      break;
    }
    case T_TAB:
      dec_table(d);
      break;
    case T_REF: {
      uint64_t k = get_varint(d);
      if (!d->refs || k == 0 || k > (uint64_t)d->ntables) corrupt(d);
      lua_rawgeti(L, d->refs, (lua_Integer)k);
      break;
    }
    default:
      corrupt(d);
  }
}


const char *xdec_header(const char *p, size_t len, int *kind, int *flags,
                        int *n) {
  if (len < 3) return NULL;
  *kind = (unsigned char)p[0];
  *flags = (unsigned char)p[1];
  uint64_t v = 0;
  const char *q = p + 2, *lim = p + len;
  for (int shift = 0; shift < 35; shift += 7) {
    if (q >= lim) return NULL;
    unsigned char c = (unsigned char)*q++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      if (v > 1000000) return NULL;          /* more than Lua's stack */
      *n = (int)v;
      return q;
    }
  }
  return NULL;
}


const char *xdec_values(lua_State *L, const char *p, const char *lim,
                        int flags, int n) {
  xdec d;
  d.L = L;
  d.p = p;
  d.lim = lim;
  d.refs = 0;
  d.ntables = 0;
  d.depth = 0;
  luaL_checkstack(L, n + 2, "too many values");
  if (flags & F_REFS) {
    lua_newtable(L);
    d.refs = lua_gettop(L);
  }
  for (int i = 0; i < n; i++) dec_value(&d);
  if (d.refs) lua_remove(L, d.refs);
  return d.p;
}

/* }==================================================================== */
