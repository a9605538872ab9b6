/*
** marshal.c -- copying values between Lua states, and the job engine.
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
**
** The engine (xeng_run) runs one request in a worker's lua_State: it loads
** the function from its bytecode (cached per worker state), calls it under
** a traceback handler and encodes the reply.  An interrupt (see
** executor.c) arms an instruction-count hook that raises inside the job.
*/
#include <stdatomic.h>  /* atomic flags shared with the loop thread */
#include <stdint.h>     /* uint32_t, int64_t */
#include <stdlib.h>     /* realloc, free */
#include <string.h>     /* memcpy, strcmp */

#include <lualib.h>     /* luaL_openlibs */

#include "executor.h"

enum { T_NIL = 0, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TAB, T_REF };

#define F_REFS 0x01                /* message flag: it holds T_REFs */

/* Registry keys of a state's caches. */
#define FNCACHE_KEY  "corio.executor.bytecode"  /* caller: fn -> bytecode */
#define JOBCACHE_KEY "corio.executor.jobs"      /* worker: bytecode -> fn */
#define TB_KEY       "corio.executor.traceback" /* worker: last traceback */
#define JOBCACHE_MAX 64


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
    if (lua_isnil(L, -1)) corrupt(d);
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


/* {====================================================================
** The job engine
** ===================================================================== */

_Thread_local xengine *xeng_current;


/* Raises at every hook call until the job has unwound: a job that catches
** the error with pcall in a loop is stopped again at once. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  luaL_error(L, "job interrupted");
}


static void arm(lua_State *L) {
  lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT,
              1);
}


/* Hooks are per lua_State: the job's main thread and every coroutine it
** is resuming.  (A coroutine made after this inherits the hook.) */
void xeng_on_signal(xengine *e) {
  if (e->L && atomic_load(&e->running) && atomic_load(&e->interrupt)) {
    e->hooked = 1;
    arm(e->L);
    for (int i = 0; i < e->ncos; i++) arm(e->cos[i]);
  }
}


/* coroutine.resume in a worker state: keeps the coroutine on the engine's
** list while it runs, so an interrupt reaches it. */
static int co_resume(lua_State *L) {
  xengine *e = xeng_current;
  lua_State *co = lua_tothread(L, 1);
  int listed = 0;
  if (e && co && e->ncos < XMAX_COS) {
    e->cos[e->ncos] = co;
    atomic_signal_fence(memory_order_seq_cst);  /* entry before count */
    e->ncos++;
    listed = 1;
    if (e->hooked) arm(co);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (listed) e->ncos--;
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}


/* coroutine.wrap on top of it, raising errors as the original does. */
static const char wrap_src[] =
  "local create, resume, close = ...\n"
  "local function ret(co, ok, ...)\n"
  "  if ok then return ... end\n"
  "  close(co)\n"
  "  local err = ...\n"
  "  if type(err) == 'string' then error(err, 2) end\n"
  "  error(err, 0)\n"
  "end\n"
  "return function(f)\n"
  "  local co = create(f)\n"
  "  return function(...) return ret(co, resume(co, ...)) end\n"
  "end\n";

static void wrap_coroutines(lua_State *L) {
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, co_resume, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "resume");              /* co, resume */
  if (luaL_loadbuffer(L, wrap_src, sizeof wrap_src - 1, "=coroutine.wrap")
      != LUA_OK)
    lua_error(L);
  lua_getfield(L, -3, "create");
  lua_pushvalue(L, -3);
  lua_getfield(L, -5, "close");
  lua_call(L, 3, 1);
  lua_setfield(L, -3, "wrap");
  lua_pop(L, 2);
}


/* Message handler: keeps the traceback aside, the error value unchanged. */
static int job_msgh(lua_State *L) {
  luaL_traceback(L, L, NULL, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
  lua_settop(L, 1);
  return 1;
}


typedef struct runctx {
  xengine *e;
  const char *in;
  size_t len;
  xbuf *out;
} runctx;


/* Encodes the values at [first, top] as the reply; a value that cannot be
** copied turns the reply into an error. */
static void reply_values(lua_State *L, xbuf *out, int status, int first) {
  int n = lua_gettop(L) - first + 1;
  xenc e;
  out->len = 0;
  xenc_init(&e, L, out);
  if (xenc_header(&e, status, n)) luaL_error(L, NOMEM);
  for (int i = 0; i < n; i++) {
    const char *err = xenc_value(&e, first + i);
    if (err) {
      xenc_finish(&e);
      if (status == REP_ERROR && i == 0) {    /* an uncopyable error value */
        luaL_tolstring(L, first, NULL);
        lua_replace(L, first);
        reply_values(L, out, status, first);
        return;
      }
      lua_settop(L, 0);
      lua_pushfstring(L, "bad result #%d from job (%s)", i + 1, err);
      lua_pushliteral(L, "");
      reply_values(L, out, REP_ERROR, 1);
      return;
    }
  }
  xenc_finish(&e);
}


/* Pushes the job's function from its bytecode at idx (cached). */
static void load_job(lua_State *L, xengine *e, int idx) {
  lua_getfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TFUNCTION) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  size_t n;
  const char *bc = lua_tolstring(L, idx, &n);
  if (bc == NULL || luaL_loadbufferx(L, bc, n, "=job", "b") != LUA_OK)
    luaL_error(L, "cannot load the job's function: %s",
               bc ? lua_tostring(L, -1) : "no bytecode");
  lua_Integer count = (lua_Integer)luaL_len(L, -2);
  (void)e;
  if (lua_getfield(L, -2, "n") == LUA_TNUMBER) count = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (count >= JOBCACHE_MAX) {                /* keep the cache small */
    lua_newtable(L);
    lua_replace(L, -3);
    lua_pushvalue(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
    count = 0;
  }
  lua_pushinteger(L, count + 1);
  lua_setfield(L, -3, "n");
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);                          /* fn */
}


static int run_protected(lua_State *L) {
  runctx *c = lua_touserdata(L, 1);
  xengine *e = c->e;
  int kind, flags, n;
  lua_settop(L, 0);
  const char *p = xdec_header(c->in, c->len, &kind, &flags, &n);
  if (p == NULL || kind != MSG_JOB || n < 1)
    return luaL_error(L, "corrupt executor message");
  lua_pushcfunction(L, job_msgh);             /* 1: msgh */
  xdec_values(L, p, c->in + c->len, flags, n);  /* 2: bytecode, args */
  load_job(L, e, 2);
  lua_replace(L, 2);                          /* msgh, fn, args */
  int st = LUA_OK;
  if (!atomic_load(&e->interrupt)) {
    atomic_store(&e->running, 1);
    st = lua_pcall(L, n - 1, LUA_MULTRET, 1);
    atomic_store(&e->running, 0);
  }
  if (atomic_load(&e->interrupt) || e->hooked) {
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, 0);
    c->out->len = 0;
    xenc enc;
    xenc_init(&enc, L, c->out);
    if (xenc_header(&enc, REP_INTERRUPTED, 0)) return luaL_error(L, NOMEM);
    return 0;
  }
  if (st == LUA_OK) {
    reply_values(L, c->out, REP_OK, 2);
  } else {                                    /* msgh, err */
    lua_getfield(L, LUA_REGISTRYINDEX, TB_KEY);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    }
    reply_values(L, c->out, REP_ERROR, 2);
  }
  return 0;
}


static int open_state(lua_State *L) {
  luaL_openlibs(L);
  wrap_coroutines(L);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, JOBCACHE_KEY);
  return 0;
}


static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  lua_pushcfunction(L, open_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return NULL;
  }
  return L;
}


void xeng_close(xengine *e) {
  if (e->L) {
    lua_sethook(e->L, NULL, 0, 0);
    lua_close(e->L);
    e->L = NULL;
  }
}


int xeng_run(xengine *e, const char *in, size_t len, xbuf *out) {
  runctx c;
  int ok = 0;
  if (e->L == NULL && (e->L = new_state()) == NULL) return -1;
  lua_State *L = e->L;
  c.e = e;
  c.in = in;
  c.len = len;
  c.out = out;
  e->hooked = 0;
  e->ncos = 0;
  lua_settop(L, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {      /* out of memory, corrupt */
    lua_sethook(L, NULL, 0, 0);
    lua_pushliteral(L, "executor worker: ");
    luaL_tolstring(L, -2, NULL);              /* err, prefix, msg */
    lua_concat(L, 2);
    lua_pushliteral(L, "");                   /* err, msg, traceback */
    out->len = 0;
    xenc enc;
    xenc_init(&enc, L, out);
    if (xenc_header(&enc, REP_ERROR, 2) || xenc_value(&enc, -2) ||
        xenc_value(&enc, -1))
      ok = -1;
    xenc_finish(&enc);
  }
  if (e->hooked) {                            /* recycle: a fresh state */
    xeng_close(e);
  } else {
    lua_settop(L, 0);
    /* An idle worker does not allocate, so its GC would not run: give
    ** back what a big job left (a 10 MB string) now. */
    if (lua_gc(L, LUA_GCCOUNT, 0) > 8 * 1024) lua_gc(L, LUA_GCCOLLECT, 0);
  }
  return ok;
}

/* }==================================================================== */
