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

#include "shared.h"    /* the core, and what modules offer each other */

#define TYPE_WAITLIST 0

/* A class of sync objects.  Every object starts with a pointer to its
** class, and every method gets its class as upvalue 2, so checking `self`
** is a size and a pointer comparison -- much cheaper, on the hot path of
** Queue(1) and Lock, than fetching and comparing metatables. */
typedef struct sync_class {
  const char *name;             /* metatable name, e.g. "corio.Queue" */
  size_t size;                  /* userdata size */
} sync_class;

#define SYNC_HEAD const sync_class *cls

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
  /* the object at idx if its class is upvalue 2, else a type error */
void *sync__checkclass(lua_State *L, int idx, const sync_class *cls);
  /* the same with the class given */
void *sync__new(lua_State *L, const sync_class *cls, int nuv);
  /* pushes a new object of class cls (memory zeroed) [-0,+1] */
void sync__newclass(lua_State *L, corio_rt *rt, sync_class *cls,
                    const luaL_Reg *methods, lua_CFunction tostring);
  /* creates metatable cls->name: __index holds the methods, "release"
     is also __close; leaves the __index table on the stack [-0,+1] */

void corio__open_queue(lua_State *L, corio_rt *rt);  /* adds constructors
                                                        to the table at -1 */

#endif
