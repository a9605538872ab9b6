/*
** sync.c -- corio._sync, the C half of corio.sync: wait lists, Lock,
** Semaphore and BoundedSemaphore (the queues are in queue.c; Event,
** Condition and Barrier are built in scripts/sync.lua on WaitList).
**
** Everything here runs on the loop thread, between two resumes, so no
** locking is needed: "waiting" means a task suspended in a wait list.
** Hand-off rules that make the primitives fair and cancellation-safe:
**   - Waiters are served FIFO.  Releasing a lock or a permit that someone
**     waits for hands it straight to the first waiter (the count does not
**     go up), so a newcomer can never barge ahead of a waiter.
**   - A waiter cancelled while suspended is unlinked by the undo hook
**     before anything can be handed to it, so a cancelled waiter never
**     swallows a wake-up meant for another.
**   - A waiter that was handed the lock and is cancelled before it runs
**     still returns from acquire() holding it (the core delivers the
**     CANCELLED at its next await), so nothing is lost or duplicated;
**     `with`, `<close>` or pcall cleanup releases it.
*/
#include <string.h>   /* memset */

#include "sync.h"


/* {====================================================================
** Wait lists
** ===================================================================== */

void sync__wl_init(corio_fut *wl) {
  wl->type = TYPE_WAITLIST;
  wl->state = FUT_PENDING;
  wl->observed = 0;
  wl->nres = 0;
  wl->whead = wl->wtail = NULL;
}


/* Undo hook: the core cancels (or throws into) a waiter. */
static void wl_undo(corio_rt *rt, corio_task *t) {
  (void)rt;
  if (t->awaiting) corio__fut_unlink(t->awaiting, t);
  t->awaiting = NULL;
}


int sync__wl_wait(lua_State *L, corio_rt *rt, corio_task *t, corio_fut *wl) {
  t->wnext = NULL;
  t->wprev = wl->wtail;
  if (wl->wtail) wl->wtail->wnext = t;
  else wl->whead = t;
  wl->wtail = t;
  t->awaiting = wl;
  return corio__suspend(L, rt, t, wl_undo);
}


corio_task *sync__wl_pop(corio_fut *wl) {
  corio_task *t = wl->whead;
  if (t) corio__fut_unlink(wl, t);
  return t;
}


int sync__wl_throw_all(corio_rt *rt, lua_State *L, corio_fut *wl, int eidx) {
  int n = 0;
  corio_task *t;
  eidx = lua_absindex(L, eidx);
  while ((t = sync__wl_pop(wl)) != NULL) {
    lua_pushvalue(L, eidx);
    corio__wake(rt, t, L, 1, WAKE_RAISE);
    n++;
  }
  return n;
}


int sync__wl_wake_all(corio_rt *rt, lua_State *L, corio_fut *wl, int first,
                      int n) {
  int count = 0;
  corio_task *t;
  first = lua_absindex(L, first);
  luaL_checkstack(L, n, "too many values");
  while ((t = sync__wl_pop(wl)) != NULL) {
    for (int i = 0; i < n; i++) lua_pushvalue(L, first + i);
    corio__wake(rt, t, L, n, WAKE_VALUES);
    count++;
  }
  return count;
}


static int wl_count(corio_fut *wl) {
  int n = 0;
  for (corio_task *t = wl->whead; t; t = t->wnext) n++;
  return n;
}

/* }==================================================================== */


/* {====================================================================
** Classes: fast self checks, method registration
** ===================================================================== */

void *sync__check(lua_State *L, int idx) {
  return sync__checkclass(L, idx, lua_touserdata(L, lua_upvalueindex(2)));
}


void *sync__checkclass(lua_State *L, int idx, const sync_class *cls) {
  void *p = lua_touserdata(L, idx);
  /* The size first: only then may the class pointer be read.  Light
  ** userdata have size 0. */
  if (p && lua_rawlen(L, idx) == cls->size &&
      *(const sync_class *const *)p == cls)
    return p;
  luaL_typeerror(L, idx, cls->name);
  return NULL;
}


void *sync__new(lua_State *L, const sync_class *cls, int nuv) {
  void *p = lua_newuserdatauv(L, cls->size, nuv);
  memset(p, 0, cls->size);
  *(const sync_class **)p = cls;
  luaL_setmetatable(L, cls->name);
  return p;
}


void sync__newclass(lua_State *L, corio_rt *rt, sync_class *cls,
                    const luaL_Reg *methods, lua_CFunction tostring) {
  const luaL_Reg meta[] = {{"__tostring", tostring}, {NULL, NULL}};
  /* The class descriptor is upvalue 2: sync__check's fast self check. */
  corio__newclass(L, rt, cls->name, methods, meta, cls);    /* mt */
  lua_getfield(L, -1, "__index");                           /* mt, index */
  lua_getfield(L, -1, "release");
  if (!lua_isnil(L, -1)) lua_setfield(L, -3, "__close");
  else lua_pop(L, 1);
  lua_remove(L, -2);                                        /* index */
}

/* }==================================================================== */


/* {====================================================================
** WaitList: a FIFO of suspended tasks, for the Lua half
**
**   wl:wait()          suspends; returns what the waker passes
**   wl:wake(...)       wakes the first waiter with ...; false if none
**   wl:wake_all(...)   wakes every waiter; returns how many
**   wl:throw(err)      raises err in the first waiter; false if none
**   wl:throw_all(err)  raises err in every waiter; returns how many
**   wl:count(), #wl    how many wait
** ===================================================================== */

typedef struct waitlist {
  SYNC_HEAD;
  corio_fut wl;
} waitlist;

static sync_class waitlist_class = {"corio.WaitList", sizeof(waitlist)};


static int waitlist_wait(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  waitlist *w = sync__check(L, 1);
  corio_task *t = corio__check_await(L, rt, "wait");
  lua_settop(L, 1);                           /* keeps w alive meanwhile */
  return sync__wl_wait(L, rt, t, &w->wl);
}


static int waitlist_wake(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  waitlist *w = sync__check(L, 1);
  corio_task *t = sync__wl_pop(&w->wl);
  if (t) corio__wake(rt, t, L, lua_gettop(L) - 1, WAKE_VALUES);
  lua_pushboolean(L, t != NULL);
  return 1;
}


static int waitlist_wake_all(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  waitlist *w = sync__check(L, 1);
  int n = lua_gettop(L) - 1;
  lua_pushinteger(L, sync__wl_wake_all(rt, L, &w->wl, 2, n));
  return 1;
}


static int waitlist_throw(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  waitlist *w = sync__check(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  corio_task *t = sync__wl_pop(&w->wl);
  if (t) corio__wake(rt, t, L, 1, WAKE_RAISE);
  lua_pushboolean(L, t != NULL);
  return 1;
}


static int waitlist_throw_all(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  waitlist *w = sync__check(L, 1);
  luaL_checkany(L, 2);
  lua_pushinteger(L, sync__wl_throw_all(rt, L, &w->wl, 2));
  return 1;
}


static int waitlist_count(lua_State *L) {
  waitlist *w = sync__check(L, 1);
  lua_pushinteger(L, wl_count(&w->wl));
  return 1;
}


static int waitlist_tostring(lua_State *L) {
  waitlist *w = sync__check(L, 1);
  lua_pushfstring(L, "corio.WaitList (%d waiting): %p", wl_count(&w->wl),
                  (void *)w);
  return 1;
}


static int l_waitlist(lua_State *L) {
  waitlist *w = sync__new(L, &waitlist_class, 0);
  sync__wl_init(&w->wl);
  return 1;
}

/* }==================================================================== */


/* {====================================================================
** Lock, Semaphore, BoundedSemaphore
**
** One structure: `value` permits are free; a Lock is a semaphore of one
** permit that refuses to be released while unlocked, a BoundedSemaphore
** one that refuses to go above its initial value.  acquire() returns the
** object itself, whose __close releases it:
**     local _ <close> = lock:acquire()
** ===================================================================== */

enum { SEM_LOCK = 0, SEM_PLAIN, SEM_BOUNDED };

typedef struct sem {
  SYNC_HEAD;
  corio_fut waiters;
  lua_Integer value;            /* free permits */
  lua_Integer bound;            /* SEM_LOCK / SEM_BOUNDED: the maximum */
  unsigned char kind;
  unsigned char dbg;            /* made under --debug: holders are kept */
} sem;

static sync_class lock_class = {"corio.Lock", sizeof(sem)};
static sync_class sem_class = {"corio.Semaphore", sizeof(sem)};


/* {--------------------------------------------------------------------
** --debug: who holds a Lock or a BoundedSemaphore (a plain Semaphore is
** often a signal, acquired by one task and released by another, so it
** is not followed).  A Lock made under --debug has one user value:
**     {kind=, created=, held={[task]={n=, at=, seq=}}}
** and a task that acquires one gets {[lock]=true} in its extras' `held`
** and the flag TF_HOLDS, so that finish() reports (debug.c) whatever it
** still holds when it ends.  A release by a task that holds nothing
** (asyncio allows it) takes the oldest hold.  None of this runs when the
** object was made without --debug: the one test is s->dbg.
** --------------------------------------------------------------------- */

/* Kept out of line (and out of the hot paths' registers): a plain run
** pays one test of s->dbg in acquire and release, nothing more. */
#if defined(__GNUC__)
#define DBG_COLD __attribute__((cold, noinline))
#else
#define DBG_COLD
#endif

DBG_COLD static void dbg_new(lua_State *L, sem *s, int si) {
  char where[256];
  lua_createtable(L, 0, 3);
  lua_pushstring(L, s->kind == SEM_LOCK ? "Lock" : "BoundedSemaphore");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, corio__where(L, 0, where, sizeof where) ? where : "?");
  lua_setfield(L, -2, "created");
  lua_newtable(L);
  lua_setfield(L, -2, "held");
  lua_setiuservalue(L, si, 1);
}


/* The task at ti took one permit of the object at si, in coroutine co. */
DBG_COLD static void dbg_acquired(lua_State *L, corio_rt *rt, int si,
                                  int ti, lua_State *co) {
  static _Thread_local lua_Integer seq;     /* per thread: runtimes may share the process */
  char where[256];
  int top = lua_gettop(L);
  corio_task *t = lua_touserdata(L, ti);
  if (lua_getiuservalue(L, si, 1) != LUA_TTABLE ||
      lua_getfield(L, -1, "held") != LUA_TTABLE) {
    lua_settop(L, top);
    return;
  }
  lua_pushvalue(L, ti);
  if (lua_rawget(L, -2) != LUA_TTABLE) {      /* d, held, nil */
    lua_pop(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, co && corio__where(co, 0, where, sizeof where)
                          ? where : "?");
    lua_setfield(L, -2, "at");
    lua_pushinteger(L, ++seq);
    lua_setfield(L, -2, "seq");
    lua_pushvalue(L, ti);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_getfield(L, -1, "n");
  lua_pushinteger(L, lua_tointeger(L, -1) + 1);
  lua_setfield(L, -3, "n");
  corio__fut_extra(L, ti);                    /* ..., extras */
  if (lua_getfield(L, -1, "held") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "held");
  }
  lua_pushvalue(L, si);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  t->flags |= TF_HOLDS;
  (void)rt;
  lua_settop(L, top);
}


/* The running task took a permit of the object at 1 without waiting. */
DBG_COLD static void dbg_acquired_here(lua_State *L, corio_rt *rt) {
  if (rt->current && rt->current->co == L) {
    corio__push_task(rt, L, rt->current);
    dbg_acquired(L, rt, 1, lua_gettop(L), L);
    lua_pop(L, 1);
  }
}


/* release() at 1 hands a permit to the waiter t (suspended in acquire). */
DBG_COLD static void dbg_handed(lua_State *L, corio_rt *rt,
                                corio_task *t) {
  corio__push_task(rt, L, t);
  dbg_acquired(L, rt, 1, lua_gettop(L), t->co);
  lua_pop(L, 1);
}


/* A permit of the object at si goes back, released by the task running
** L (if any). */
DBG_COLD static void dbg_released(lua_State *L, int si) {
  corio_rt *rt = RT_UPVALUE(L);
  int top = lua_gettop(L);
  if (lua_getiuservalue(L, si, 1) != LUA_TTABLE ||
      lua_getfield(L, -1, "held") != LUA_TTABLE) {
    lua_settop(L, top);
    return;
  }
  int held = lua_gettop(L);
  int found = 0;
  if (rt->current && rt->current->co == L) {  /* the releaser's own hold */
    corio__push_task(rt, L, rt->current);
    lua_pushvalue(L, -1);
    found = lua_rawget(L, held) == LUA_TTABLE; /* task, hold */
    if (!found) lua_pop(L, 2);
  }
  if (!found) {                               /* else the oldest */
    lua_Integer best = 0;
    lua_pushnil(L);
    lua_pushnil(L);
    int bt = lua_gettop(L) - 1;               /* task, hold: the best */
    lua_pushnil(L);
    while (lua_next(L, held)) {               /* ..., key, hold */
      lua_getfield(L, -1, "seq");
      lua_Integer q = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (!found || q < best) {
        found = 1;
        best = q;
        lua_copy(L, -2, bt);
        lua_copy(L, -1, bt + 1);
      }
      lua_pop(L, 1);
    }
  }
  if (found) {                                /* task, hold */
    lua_getfield(L, -1, "n");
    lua_Integer n = lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
    if (n > 0) {
      lua_pushinteger(L, n);
      lua_setfield(L, -2, "n");
    } else {                                  /* the task holds it no more */
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, held);
      if (corio__get_extra(L, -1) == LUA_TTABLE &&
          lua_getfield(L, -1, "held") == LUA_TTABLE) {
        lua_pushvalue(L, si);
        lua_pushnil(L);
        lua_rawset(L, -3);
      }
    }
  }
  lua_settop(L, top);
}

/* }-------------------------------------------------------------------- */


static int sem_acquire(lua_State *L) {
  sem *s = sync__check(L, 1);
  if (s->value > 0) {                         /* free: no waiter can exist */
    s->value--;
    if (s->dbg) dbg_acquired_here(L, RT_UPVALUE(L));
    lua_pushvalue(L, 1);
    return 1;
  }
  corio_rt *rt = RT_UPVALUE(L);
  corio_task *t = corio__check_await(L, rt, "acquire");
  lua_settop(L, 1);
  return sync__wl_wait(L, rt, t, &s->waiters);
}


/* Hands one permit to the first waiter, or puts it back. */
static int sem_release1(lua_State *L, corio_rt *rt, sem *s) {
  corio_task *t = sync__wl_pop(&s->waiters);
  if (t) {
    if (s->dbg) dbg_handed(L, rt, t);
    lua_pushvalue(L, 1);                      /* acquire() returns self */
    corio__wake(rt, t, L, 1, WAKE_VALUES);
    return 1;
  }
  if (s->kind != SEM_PLAIN && s->value >= s->bound)
    return 0;
  s->value++;
  return 1;
}


static int sem_release(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  sem *s = sync__check(L, 1);
  if (s->dbg) dbg_released(L, 1);
  if (!sem_release1(L, rt, s)) {
    if (s->kind == SEM_LOCK)
      return corio__error(L, "INVALID_STATE", "release",
                          "release of an unlocked Lock");
    return corio__error(L, "INVALID_STATE", "release",
                        "BoundedSemaphore released too many times (its "
                        "value would exceed %I)", s->bound);
  }
  return 0;
}


static int sem_locked(lua_State *L) {
  sem *s = sync__check(L, 1);
  lua_pushboolean(L, s->value == 0);
  return 1;
}


static int sem_value(lua_State *L) {
  sem *s = sync__check(L, 1);
  lua_pushinteger(L, s->value);
  return 1;
}


static int sem_waiting(lua_State *L) {
  sem *s = sync__check(L, 1);
  lua_pushinteger(L, wl_count(&s->waiters));
  return 1;
}


static int sem_tostring(lua_State *L) {
  sem *s = sync__check(L, 1);
  static const char *const names[] = {"Lock", "Semaphore",
                                      "BoundedSemaphore"};
  if (s->kind == SEM_LOCK)
    lua_pushfstring(L, "corio.Lock (%s, %d waiting): %p",
                    s->value ? "unlocked" : "locked",
                    wl_count(&s->waiters), (void *)s);
  else
    lua_pushfstring(L, "corio.%s (value %I, %d waiting): %p",
                    names[s->kind], s->value, wl_count(&s->waiters),
                    (void *)s);
  return 1;
}


static sem *sem_new(lua_State *L, int kind, lua_Integer value,
                    const sync_class *cls) {
  int dbg = kind != SEM_PLAIN && RT_UPVALUE(L)->debug;
  sem *s = sync__new(L, cls, dbg);
  sync__wl_init(&s->waiters);
  s->kind = (unsigned char)kind;
  s->value = s->bound = value;
  if (dbg) {
    s->dbg = 1;
    dbg_new(L, s, lua_gettop(L));
  }
  return s;
}


static int l_lock(lua_State *L) {
  sem_new(L, SEM_LOCK, 1, &lock_class);
  return 1;
}


static lua_Integer check_permits(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, n >= 0, 1, "value must be >= 0");
  return n;
}


static int l_semaphore(lua_State *L) {
  sem_new(L, SEM_PLAIN, check_permits(L), &sem_class);
  return 1;
}


static int l_bounded_semaphore(lua_State *L) {
  sem_new(L, SEM_BOUNDED, check_permits(L), &sem_class);
  return 1;
}

/* }==================================================================== */


int luaopen_corio__sync(lua_State *L);

int luaopen_corio__sync(lua_State *L) {
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg wl_methods[] = {
    {"wait", waitlist_wait},
    {"wake", waitlist_wake},
    {"wake_all", waitlist_wake_all},
    {"throw", waitlist_throw},
    {"throw_all", waitlist_throw_all},
    {"count", waitlist_count},
    {NULL, NULL}
  };
  static const luaL_Reg lock_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"locked", sem_locked},
    {"waiting", sem_waiting},
    {NULL, NULL}
  };
  static const luaL_Reg sem_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"locked", sem_locked},
    {"value", sem_value},
    {"waiting", sem_waiting},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"waitlist", l_waitlist},
    {"Lock", l_lock},
    {"Semaphore", l_semaphore},
    {"BoundedSemaphore", l_bounded_semaphore},
    {NULL, NULL}
  };
  lua_newtable(L);                            /* the module */
  sync__newclass(L, rt, &waitlist_class, wl_methods, waitlist_tostring);
  luaL_getmetatable(L, waitlist_class.name);
  lua_getfield(L, -2, "count");
  lua_setfield(L, -2, "__len");
  lua_pop(L, 2);
  sync__newclass(L, rt, &lock_class, lock_methods, sem_tostring);
  lua_setfield(L, -2, "lock_methods");
  sync__newclass(L, rt, &sem_class, sem_methods, sem_tostring);
  lua_setfield(L, -2, "semaphore_methods");
  corio__open_queue(L, rt);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
