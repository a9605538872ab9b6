/*
** owned.c -- the backstop list: binding objects whose C side must be
** closed at teardown even if their Lua side never said so.
**
** The rule is that the __gc of every binding object closes its handle
** when the state closes.  A finalizer can still be skipped: Lua drops a
** __gc that finds no memory for its call, or a script removes the
** field from a metatable it can reach.  The tracked set (track.c) then
** closes the bare uv handle but cannot free the memory around it (it does
** not know the owner's layout), and if the set itself ran out of memory
** nothing closes it at all.  So a binding whose objects own something
** beyond a handle (a process's child, a UDP socket's queue) links each one
** here while it is open, and the runtime calls its close function once
** the state is closed: the object closes through its own close callback,
** which unlinks and frees it.  The links are intrusive: linking never
** allocates, so it cannot fail.
*/
#include "internal.h"


void corio__own(corio_rt *rt, corio_owned *o, corio_owned_fn close) {
  o->close = close;
  o->prev = NULL;
  o->next = rt->owned;
  if (o->next) o->next->prev = o;
  rt->owned = o;
}


void corio__disown(corio_rt *rt, corio_owned *o) {
  if (o->close == NULL) return;               /* not linked */
  if (o->prev) o->prev->next = o->next;
  else rt->owned = o->next;
  if (o->next) o->next->prev = o->prev;
  o->next = o->prev = NULL;
  o->close = NULL;
}


/* Each close function unlinks its object (now or in its close callback),
** so the head is taken afresh each time; one that stays linked is
** unlinked here so the walk ends. */
void corio__close_owned(corio_rt *rt) {
  while (rt->owned) {
    corio_owned *o = rt->owned;
    corio_owned_fn close = o->close;
    corio__disown(rt, o);
    close(rt, o);
  }
}
