/*
** sync.h -- private glue shared by bindings/sync.c (wait lists, Lock,
** Semaphore) and bindings/queue.c (Queue, LifoQueue, PriorityQueue), the
** C half of corio.sync (the Lua half is scripts/sync.lua).
**
** A wait list is a corio_fut used only for its intrusive FIFO of suspended
** tasks (whead/wtail, linked through task->wnext/wprev).  A waiter points
** task->awaiting at the list, so when the core cancels it the undo hook
** unlinks it in O(1): a cancelled waiter is gone from the list before
** anyone could hand it a lock, a permit or an item.  The list's type is
** TYPE_WAITLIST, neither a future nor a task, so the core never mistakes
** it for something it could cancel or chain through.
*/
#ifndef CORIO_SYNC_H
#define CORIO_SYNC_H

#include "internal.h"

#define TYPE_WAITLIST 0

/* Metatable names. */
#define CORIO_WAITLIST_MT "corio.WaitList"
#define CORIO_LOCK_MT     "corio.Lock"
#define CORIO_SEM_MT      "corio.Semaphore"
#define CORIO_QUEUE_MT    "corio.Queue"

void sync__wl_init(corio_fut *wl);
int sync__wl_wait(lua_State *L, corio_rt *rt, corio_task *t, corio_fut *wl);
  /* links t at the tail of wl and suspends it; use as `return` */
corio_task *sync__wl_pop(corio_fut *wl);      /* unlinks the head, or NULL */
int sync__wl_throw_all(corio_rt *rt, lua_State *L, corio_fut *wl, int eidx);
  /* raises a copy of the value at eidx in every waiter; returns how many */
int sync__wl_wake_all(corio_rt *rt, lua_State *L, corio_fut *wl, int first,
                      int n);
  /* wakes every waiter with copies of the n values at first..; count */

void *sync__check(lua_State *L, int idx);
  /* the userdata at idx if its metatable is upvalue 2, else a type error
     naming that metatable's __name (cheaper than luaL_checkudata) */
void sync__setfuncs(lua_State *L, corio_rt *rt, const luaL_Reg *l);
  /* registers l into the table at -1 with upvalues (rt, metatable at -2) */
void sync__newclass(lua_State *L, corio_rt *rt, const char *name,
                    const luaL_Reg *methods, lua_CFunction tostring);
  /* creates metatable `name` with __index = methods (also __close if
     methods has "release"); leaves __index table on the stack [-0,+1] */

void corio__open_queue(lua_State *L, corio_rt *rt);  /* adds constructors
                                                        to the table at -1 */

#endif
