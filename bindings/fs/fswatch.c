/*
** fswatch.c -- corio._fswatch: fs.watch(path, fn [, {recursive=,
** max_watches=}]) -> Watcher, on uv_fs_event_t (inotify).
**
** fn(filename, event) runs as a plain loop callback (like call_soon: it
** may not await; spawn a task for that), once per event kind, with event
** "change" or "rename"; an error of the watcher gives fn(nil, "error",
** err).  A watcher is a subscription: it stays alive, anchored, until
** close() -- dropping the last reference does not silently stop it (as
** with Node's fs.watch).  It keeps the loop alive while open.
**
** Recursion.  libuv's inotify backend ignores UV_FS_EVENT_RECURSIVE, so a
** recursive Watcher is a tree of nodes, one uv_fs_event_t per directory,
** each knowing its path under the root; an event in a node is reported
** with that path in front of the name ("sub/dir/file", as Node 20 does).
** A "rename" of a name in a node may be a directory appearing or going,
** so the node looks (lstat) and
**   - closes the subtree it has under that name if the name is gone, is
**     no longer a directory, or is another directory (another inode): a
**     directory moved out of the tree is no longer watched;
**   - adds a subtree if a directory it does not watch is there: a watch
**     on it first, then a scan of it whose entries are reported as
**     "rename" (they may have been made before the watch was in place;
**     one made between the two is reported twice), and so on down.
** A node's events about itself (IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED,
** its own IN_ATTRIB) are dropped below the root: its parent reports them
** by name.  libuv names such an event with the basename of the path the
** inode's watch was started with, a pointer into that string (h->path),
** where a child's name points into its read buffer: that is how the two
** are told apart (with another libuv the test fails safe: such an event
** would be reported once more, under "dir/dir", and change nothing).
** Symbolic links below the root are not followed (no cycles).  The scans
** run on the loop thread (readdir and lstat of local directories), and
** fs.watch scans the whole tree before it returns: whatever happens after
** it returns is seen.
**
** Bounds: at most opts.max_watches (8192) directories, the root included.
** fs.watch raises LIMIT past it; a directory that appears later past it
** gives fn(nil, "error", err) (LIMIT, err.path) and is not watched, the
** others still are.  inotify's own limit (fs.inotify.max_user_watches)
** gives ENOSPC the same two ways, with a message that names it.  Other
** failures below the root (EACCES) give an error event and leave that
** directory out; a directory that went away meanwhile is skipped.
**
** Lifecycle: open (anchored) -> close(): unanchor, uv_close every node ->
** free_cb frees each, the last one the watcher.  A node taken out of the
** tree is closed alone.  The userdata only points at the watcher.  After
** close, path() raises CLOSED (as a File's methods do).
*/
#include <stdint.h>   /* uintptr_t, uint64_t */
#include <stdio.h>    /* fopen: the inotify limit, for its error */
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* memcpy, strlen */
#include <sys/stat.h> /* S_ISDIR */

#include "shared.h"    /* the core, and what modules offer each other */

#define WATCHER_MT "corio.Watcher"
#define MAX_WATCHES 8192       /* opts.max_watches by default */
#define E_LIMIT 1              /* past max_watches (UV_ codes are < 0) */
#define INOTIFY_MAX "/proc/sys/fs/inotify/max_user_watches"

typedef struct watcher watcher;
typedef struct wnode wnode;

struct wnode {
  uv_fs_event_t h;
  watcher *w;
  wnode *parent, *child, *sibling;   /* the tree (parent NULL: the root) */
  wnode *prev, *next;          /* every node not yet freed (w->all) */
  wnode *scan;                 /* the next node to scan (grow) */
  uint64_t dev, ino;           /* what the node watches */
  int closing;
  size_t rlen;
  char rel[];                  /* path under the root, "" for the root */
};

struct watcher {
  corio_rt *rt;
  int anchor;                  /* live slot of the userdata while open */
  int recursive;
  int closed;                  /* the userdata let go of it */
  int fatal;                   /* fs.watch: a failure that must raise */
  int errs;                    /* fs.watch: stack index of its error
                                  list (0 after it returned) */
  unsigned nodes, max;         /* nodes in the tree, max_watches */
  wnode *root, *all;
  size_t plen;
  char path[];                 /* the root, less trailing slashes */
};

typedef struct wbox {
  watcher *w;                  /* NULL once closed */
} wbox;


/* a "/" b, leaving out an empty part; malloc'd (NULL: no memory) */
static char *join(const char *a, size_t alen, const char *b, size_t blen) {
  char *s = malloc(alen + blen + 2);
  if (s == NULL) return NULL;
  memcpy(s, a, alen);
  size_t n = alen;
  if (blen) {
    if (alen && a[alen - 1] != '/') s[n++] = '/';
    memcpy(s + n, b, blen);
    n += blen;
  }
  s[n] = '\0';
  return s;
}


static void free_watcher(watcher *w) {
  free(w);
}


static void free_cb(uv_handle_t *h) {
  wnode *n = h->data;
  watcher *w = n->w;
  corio__untrack(w->rt, h);
  if (n->prev) n->prev->next = n->next;
  else w->all = n->next;
  if (n->next) n->next->prev = n->prev;
  free(n);
  if (w->closed && w->all == NULL) free_watcher(w);
}


/* {====================================================================
** Errors and reports
** ===================================================================== */

/* Pushes the error for failure e (E_LIMIT or a UV_ code) at path. */
static void push_failure(lua_State *L, watcher *w, int e, const char *path) {
  if (e == E_LIMIT) {
    lua_pushfstring(L, "more than %d directories to watch (max_watches)",
                    (int)w->max);
    corio__push_error(L, "LIMIT", "watch", lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    return;
  }
  corio__push_uverror(L, e, "watch", path);
  if (e == UV_ENOSPC) {        /* inotify_add_watch: the system's limit */
    long max = -1;
    FILE *f = fopen(INOTIFY_MAX, "r");
    if (f) {
      if (fscanf(f, "%ld", &max) != 1) max = -1;
      fclose(f);
    }
    if (max >= 0)
      lua_pushfstring(L, "the system's limit on inotify watches is reached "
                      "(fs.inotify.max_user_watches = %d, in %s)",
                      (int)max, INOTIFY_MAX);
    else
      lua_pushliteral(L, "the system's limit on inotify watches is reached "
                      "(fs.inotify.max_user_watches)");
    lua_setfield(L, -2, "message");
  }
}


/* Pushes the watcher's callback. [-0,+1] */
static void push_fn(corio_rt *rt, lua_State *L, watcher *w) {
  corio__push_live(rt, L, w->anchor);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
}


/* Queues fn(nil, "error", err) for the error at the top. [-1,+0] */
static void report_error(lua_State *L, watcher *w) {
  if (w->errs) {               /* fs.watch: after it has returned */
    lua_rawseti(L, w->errs, (lua_Integer)luaL_len(L, w->errs) + 1);
    return;
  }
  push_fn(w->rt, L, w);
  lua_pushnil(L);
  lua_pushliteral(L, "error");
  lua_rotate(L, -4, -1);       /* fn, nil, "error", err */
  corio__soon(w->rt, L, 3);
}


static void report(lua_State *L, watcher *w, const char *name,
                   const char *kind) {
  push_fn(w->rt, L, w);
  if (name) lua_pushstring(L, name);
  else lua_pushnil(L);
  lua_pushstring(L, kind);
  corio__soon(w->rt, L, 2);
}


/* A directory under the root could not be watched or read: e at rel. */
static void trouble(lua_State *L, watcher *w, int e, const char *rel) {
  if (e == UV_ENOENT || e == UV_ENOTDIR || e == UV_ELOOP) return;  /* gone */
  if (w->errs && (e == E_LIMIT || e == UV_ENOSPC || e == UV_ENOMEM)) {
    if (!w->fatal) w->fatal = e;
    return;
  }
  lua_checkstack(L, 8);
  char *full = join(w->path, w->plen, rel, strlen(rel));
  push_failure(L, w, e, full ? full : rel);
  free(full);
  report_error(L, w);
}

/* }==================================================================== */


/* {====================================================================
** The tree
** ===================================================================== */

static void on_event(uv_fs_event_t *h, const char *name, int events,
                     int status);


/* Opens a watch on rel (under the root) as a child of parent (NULL: the
** root).  st: the directory's lstat if known.  0 with *out, or E_LIMIT
** or a UV_ code. */
static int node_open(watcher *w, wnode *parent, const char *rel,
                     size_t rlen, const uv_stat_t *st, wnode **out) {
  if (w->nodes >= w->max) return E_LIMIT;
  wnode *n = malloc(sizeof *n + rlen + 1);
  if (n == NULL) return UV_ENOMEM;
  char *full = join(w->path, w->plen, rel, rlen);
  if (full == NULL) {
    free(n);
    return UV_ENOMEM;
  }
  memcpy(n->rel, rel, rlen);
  n->rel[rlen] = '\0';
  n->rlen = rlen;
  n->w = w;
  n->parent = n->child = n->sibling = n->scan = NULL;
  n->closing = 0;
  n->dev = n->ino = 0;
  uv_loop_t *loop = w->rt->loop;
  uv_fs_event_init(loop, &n->h);
  n->h.data = n;
  corio__track(w->rt, (uv_handle_t *)&n->h);
  corio__track_site(w->rt, NULL, (uv_handle_t *)&n->h, "Watcher", NULL);
  n->prev = NULL;
  n->next = w->all;
  if (w->all) w->all->prev = n;
  w->all = n;
  int e = uv_fs_event_start(&n->h, on_event, full, 0);
  if (e == 0 && st == NULL && w->recursive) {
    uv_fs_t req;                  /* the root's link is followed */
    if ((parent ? uv_fs_lstat : uv_fs_stat)(loop, &req, full, NULL) == 0) {
      n->dev = req.statbuf.st_dev;
      n->ino = req.statbuf.st_ino;
    }
    uv_fs_req_cleanup(&req);
  } else if (e == 0 && st) {
    n->dev = st->st_dev;
    n->ino = st->st_ino;
  }
  free(full);
  if (e < 0) {
    n->closing = 1;
    uv_close((uv_handle_t *)&n->h, free_cb);
    return e;
  }
  if (parent) {
    n->parent = parent;
    n->sibling = parent->child;
    parent->child = n;
  }
  w->nodes++;
  *out = n;
  return 0;
}


static void node_close(watcher *w, wnode *n) {
  n->closing = 1;
  n->parent = n->child = n->sibling = NULL;
  w->nodes--;
  uv_close((uv_handle_t *)&n->h, free_cb);
}


/* Closes top and every node under it. */
static void close_tree(watcher *w, wnode *top) {
  wnode *p = top->parent;
  if (p) {                                    /* out of its parent's list */
    wnode **pp = &p->child;
    while (*pp != top) pp = &(*pp)->sibling;
    *pp = top->sibling;
  }
  wnode *n = top;
  for (;;) {                  /* leaves first: each is its parent's first */
    while (n->child) n = n->child;
    wnode *up = n->parent;
    int last = n == top;
    if (!last) up->child = n->sibling;
    node_close(w, n);
    if (last) break;
    n = up;
  }
}


/* The child of n watching name, if any. */
static wnode *find_child(wnode *n, const char *name) {
  size_t skip = n->rlen ? n->rlen + 1 : 0;
  for (wnode *c = n->child; c; c = c->sibling)
    if (strcmp(c->rel + skip, name) == 0) return c;
  return NULL;
}


/* Watches the directories under top, breadth first, without recursion
** in C; with `tell`, reports each entry found as a "rename". */
static void grow(lua_State *L, watcher *w, wnode *top, int tell) {
  uv_loop_t *loop = w->rt->loop;
  wnode *q = top, *tail = top;
  top->scan = NULL;
  while (q && !w->fatal) {
    wnode *n = q;
    q = q->scan;
    if (n->closing) continue;
    char *full = join(w->path, w->plen, n->rel, n->rlen);
    if (full == NULL) {
      trouble(L, w, UV_ENOMEM, n->rel);
      continue;
    }
    uv_fs_t req;
    int e = uv_fs_scandir(loop, &req, full, 0, NULL);
    if (e < 0) {
      uv_fs_req_cleanup(&req);
      free(full);
      trouble(L, w, e, n->rel);
      continue;
    }
    uv_dirent_t ent;
    while (!w->fatal && uv_fs_scandir_next(&req, &ent) != UV_EOF) {
      char *rel = join(n->rel, n->rlen, ent.name, strlen(ent.name));
      if (rel == NULL) {
        trouble(L, w, UV_ENOMEM, n->rel);
        break;
      }
      if (tell) {
        lua_checkstack(L, 6);
        report(L, w, rel, "rename");
      }
      int dir = ent.type == UV_DIRENT_DIR;
      if (ent.type == UV_DIRENT_UNKNOWN) {
        char *path = join(w->path, w->plen, rel, strlen(rel));
        uv_fs_t sreq;
        if (path && uv_fs_lstat(loop, &sreq, path, NULL) == 0)
          dir = S_ISDIR(sreq.statbuf.st_mode);
        if (path) uv_fs_req_cleanup(&sreq);
        free(path);
      }
      if (dir) {
        wnode *c;
        e = node_open(w, n, rel, strlen(rel), NULL, &c);
        if (e == 0) {
          c->scan = NULL;
          tail->scan = c;
          tail = c;
          if (q == NULL) q = c;
        } else {
          trouble(L, w, e, rel);
        }
      }
      free(rel);
    }
    /* Left early: the rest still to free (libuv's cleanup misses the
    ** entry last returned when the list was read to its end). */
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {}
    uv_fs_req_cleanup(&req);
    free(full);
  }
}


/* A "rename" of name (rel under the root) in n: a directory may have
** come or gone. */
static void follow(lua_State *L, watcher *w, wnode *n, const char *name,
                   const char *rel) {
  wnode *c = find_child(n, name);
  char *full = join(w->path, w->plen, rel, strlen(rel));
  if (full == NULL) return;
  uv_fs_t req;
  int e = uv_fs_lstat(w->rt->loop, &req, full, NULL);
  int dir = e == 0 && S_ISDIR(req.statbuf.st_mode);
  if (c && (!dir || c->dev != req.statbuf.st_dev ||
            c->ino != req.statbuf.st_ino)) {
    close_tree(w, c);
    c = NULL;
  }
  if (c == NULL && dir) {
    e = node_open(w, n, rel, strlen(rel), &req.statbuf, &c);
    if (e == 0) grow(L, w, c, 1);
    else trouble(L, w, e, rel);
  }
  uv_fs_req_cleanup(&req);
  free(full);
}


/* An event about the watched inode itself (see the top). */
static int about_itself(const uv_fs_event_t *h, const char *name) {
  if (name == NULL || h->path == NULL) return 0;
  uintptr_t p = (uintptr_t)name, s = (uintptr_t)h->path;
  return p >= s && p <= s + strlen(h->path);
}


typedef struct event_ctx {
  wnode *n;
  const char *name, *rel;
  int events, status, itself;
} event_ctx;

/* [event_ctx] -> (): the Lua part of on_event, run protected (out of
** memory, the event is lost and reported: corio__protect). */
static int event_lua(lua_State *L) {
  static const int kinds[] = {UV_CHANGE, UV_RENAME};
  static const char *const knames[] = {"change", "rename"};
  event_ctx *c = lua_touserdata(L, 1);
  watcher *w = c->n->w;
  luaL_checkstack(L, 8, NULL);
  if (c->status < 0) {
    push_failure(L, w, c->status, NULL);
    report_error(L, w);
    return 0;
  }
  const char *path = c->rel ? c->rel : c->name;
  for (int i = 0; i < 2; i++)
    if (c->events & kinds[i]) report(L, w, path, knames[i]);
  if (w->recursive && c->name && !c->itself && (c->events & UV_RENAME))
    follow(L, w, c->n, c->name, path);
  return 0;
}


static void on_event(uv_fs_event_t *h, const char *name, int events,
                     int status) {
  wnode *n = h->data;
  watcher *w = n->w;
  corio_rt *rt = w->rt;
  event_ctx c = {n, name, NULL, events, status, 0};
  char *rel = NULL;
  if (rt->closing || w->anchor == 0 || n->closing) return;
  if (status >= 0) {
    c.itself = about_itself(h, name);
    if (c.itself && n != w->root) return;     /* its parent tells */
    if (name && n->rlen) {
      rel = join(n->rel, n->rlen, name, strlen(name));
      if (rel == NULL) return;
      c.rel = rel;
    }
  }
  /* A lost event may have been the only wake of a task: the run stops,
  ** as after corio_stop (and as a process's lost exit). */
  if (corio__protect(rt, event_lua, &c, NULL, "a file watcher's event")
      != LUA_OK)
    corio__stop_now(rt);
  free(rel);
}

/* }==================================================================== */


static wbox *check_box(lua_State *L) {
  return luaL_checkudata(L, 1, WATCHER_MT);
}


/* Stops and closes; idempotent.  From __gc during teardown the loop may
** already be gone (then libuv is done with the memory). */
static void wclose(lua_State *L, wbox *b) {
  watcher *w = b->w;
  if (w == NULL) return;
  b->w = NULL;
  w->closed = 1;
  corio_rt *rt = corio__rt_or_null(L);
  if (rt == NULL) {
    while (w->all) {
      wnode *n = w->all;
      w->all = n->next;
      free(n);
    }
    free_watcher(w);
    return;
  }
  if (w->anchor) {
    corio__unanchor(rt, L, w->anchor);
    w->anchor = 0;
  }
  if (w->root) close_tree(w, w->root);
  w->root = NULL;
  if (w->all == NULL) free_watcher(w);
}


static int l_watch(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int recursive = 0;
  lua_Integer max = MAX_WATCHES;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "recursive");
    recursive = lua_toboolean(L, -1);
    lua_getfield(L, 3, "max_watches");
    if (!lua_isnil(L, -1)) {
      int ok;
      max = lua_tointegerx(L, -1, &ok);
      if (!ok || max < 1 || max > 0x7fffffff)
        return corio__argerror(L, 3, "max_watches must be a positive "
                               "integer");
    }
    lua_pop(L, 2);
  }
  lua_settop(L, 3);
  lua_newtable(L);                            /* 4: errors while starting */
  wbox *b = lua_newuserdatauv(L, sizeof *b, 2);
  b->w = NULL;                                /* born closed */
  luaL_setmetatable(L, WATCHER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 2);
  size_t plen = strlen(path);
  while (plen > 1 && path[plen - 1] == '/') plen--;
  watcher *w = malloc(sizeof *w + plen + 1);
  if (w == NULL) return luaL_error(L, "not enough memory");
  memcpy(w->path, path, plen);
  w->path[plen] = '\0';
  w->plen = plen;
  w->rt = rt;
  w->anchor = 0;
  w->recursive = recursive;
  w->closed = 0;
  w->fatal = 0;
  w->errs = 4;
  w->nodes = 0;
  w->max = recursive ? (unsigned)max : 1;
  w->root = NULL;
  w->all = NULL;
  b->w = w;                                   /* __gc frees it from now */
  wnode *root;
  int e = node_open(w, NULL, "", 0, NULL, &root);
  if (e == 0) {
    w->root = root;
    if (recursive) grow(L, w, root, 0);
    e = w->fatal;
  }
  if (e != 0) {
    push_failure(L, w, e, path);
    wclose(L, b);
    return lua_error(L);
  }
  w->errs = 0;
  w->anchor = corio__anchor(rt, L, -1);
  for (lua_Integer i = 1; lua_rawgeti(L, 4, i) != LUA_TNIL; i++)
    report_error(L, w);                       /* EACCES below the root */
  lua_pop(L, 1);
  return 1;
}


static int w_close(lua_State *L) {
  wclose(L, check_box(L));
  return 0;
}


/* Like a File's methods, path() raises CLOSED after close (with the path,
** so the error still says which watcher it was); __tostring works. */
static int w_path(lua_State *L) {
  wbox *b = check_box(L);
  lua_getiuservalue(L, 1, 2);
  if (b->w == NULL) {
    corio__push_error(L, "CLOSED", "path", "attempt to use a closed watcher");
    lua_insert(L, -2);
    lua_setfield(L, -2, "path");
    return lua_error(L);
  }
  return 1;
}


static int w_gc(lua_State *L) {
  wclose(L, lua_touserdata(L, 1));
  return 0;
}


static int w_tostring(lua_State *L) {
  wbox *b = check_box(L);
  lua_getiuservalue(L, 1, 2);
  lua_pushfstring(L, "corio.Watcher (%s%s)", lua_tostring(L, -1),
                  b->w ? "" : ", closed");
  return 1;
}


int luaopen_corio__fswatch(lua_State *L);

int luaopen_corio__fswatch(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", w_close},
    {"path", w_path},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"watch", l_watch},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  static const luaL_Reg meta[] = {
    {"__gc", w_gc},
    {"__close", w_close},
    {"__tostring", w_tostring},
    {NULL, NULL}
  };
  corio__newclass(L, rt, WATCHER_MT, methods, meta, NULL);
  lua_pop(L, 1);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  return 1;
}
