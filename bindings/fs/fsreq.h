/*
** fsreq.h -- the request shared by fs.c (uv_fs_* calls) and fsjob.c
** (read_file / write_file as one thread-pool job each).
**
** Life of a request:
**   new   -- malloc'ed with its path(s) inline; nothing libuv-side yet.
**   sent  -- libuv owns it until its callback; the waiting task is
**            recorded in the request and in a map task -> request, so the
**            task's undo hook can find it.
**   undo  -- the task was cancelled: the map entry goes, r->task becomes
**            NULL (the result will be dropped) and uv_cancel() is tried;
**            the request keeps its buffers and anchors until the callback.
**   done  -- the callback wakes r->task (if any) with the result or the
**            error, then frees the request.
** During runtime teardown (rt->closing) callbacks only free memory: the
** Lua state may already be gone.
*/
#ifndef CORIO_FSREQ_H
#define CORIO_FSREQ_H

#include <stddef.h>   /* size_t */
#include <stdint.h>   /* int64_t */

#include "shared.h"    /* the core, and what modules offer each other */

typedef struct corio_fsreq {
  union {
    uv_fs_t fs;
    uv_work_t work;
  } u;
  corio_rt *rt;
  corio_task *task;            /* waiting task; NULL once dropped */
  const char *op;              /* operation name for errors */
  const char *path2;           /* second path (rename...), inside path[] */
  char *buf;                   /* data read (owned) */
  size_t len, cap;             /* bytes in buf / its size */
  const char *data;            /* bytes to write: an anchored Lua string */
  size_t dlen;
  int anchor;                  /* live-table slot of that string, or 0 */
  atomic_int lent;             /* its borrow (corio__borrow) is out: the
                                  job's thread may still read it */
  int fd;                      /* write: the open file */
  int64_t off;                 /* write: file offset, -1 the position */
  int kind;                    /* what the result is (fs.c's K_*) */
  int err;                     /* a job's failure: negative errno */
  int status;                  /* the error corio__fsreq_raise pushes */
  int flags, mode;             /* job parameters */
  int orphan;                  /* its task gave up while it ran (counted
                                  in rt->orphans until it ends) */
  char path[1];                /* path for errors ("" for none), path2 */
} corio_fsreq;

/* Allocates a request for the running task t.  path may be NULL; path2
** is kept only when not NULL.  Raises on out of memory. */
corio_fsreq *corio__fsreq_new(lua_State *L, corio_rt *rt, const char *op,
                              const char *path, const char *path2);

/* Records r as the wait of t and suspends t; use as `return`. */
int corio__fsreq_wait(lua_State *L, corio_rt *rt, corio_task *t,
                      corio_fsreq *r);

/* In a callback: the task to wake (its wait entry is dropped), or NULL
** when the result must be dropped (cancelled, or teardown). */
corio_task *corio__fsreq_take(corio_fsreq *r);

/* Frees r, its buffer and its anchor (once libuv is done with it). */
void corio__fsreq_free(corio_fsreq *r);

/* Holds the Lua string at idx for r->data, and lends it to the job's
** thread, until corio__fsreq_free.  On out of memory frees r and raises. */
void corio__fsreq_hold(lua_State *L, corio_fsreq *r, int idx);

/* On the job's thread, once it is done with r->data. */
#define corio__fsreq_data_done(r) corio__borrow_end((r)->rt, &(r)->lent)

/* The fd argument at idx: an integer in [0, INT_MAX], else raises. */
int corio__fsreq_check_fd(lua_State *L, int idx);

/* Wakes t with the error for status (and r's paths) raised in it. */
void corio__fsreq_raise(corio_fsreq *r, corio_task *t, int status);

/* fsjob.c: adds read_file and write_file to the module at -1. */
void corio__open_fsjob(lua_State *L, corio_rt *rt);

#endif
