/*
** fs.c -- corio._fs: file-system calls on libuv's thread pool.
**
** Each Lua function here checks its arguments, makes one request
** (fsreq.h), hands it to libuv and suspends the calling task; on_fs()
** turns the request's result into Lua values and wakes the task.  Only
** the calling task waits: the loop goes on serving the others.  The
** friendly API (File objects, mkdir -p, exists...) is scripts/fs.lua.
**
** Paths are kept in the request so that every error carries `path`;
** fd-based calls take the file's path as an extra argument for the same
** reason.
*/
#include <errno.h>    /* errno */
#include <fcntl.h>    /* O_* */
#include <math.h>     /* isnan */
#include <stdlib.h>   /* malloc, free */
#include <string.h>   /* strlen, memcpy, memchr */
#include <unistd.h>   /* close */

#include "shared.h"    /* the core, and what modules offer each other */
#include "fsreq.h"


/* Every path argument of corio.fs goes through here.  The kernel reads
** a path up to its first zero byte, so "a\0b" would silently name "a"
** (open would create it): refuse it, as Python does. */
const char *corio__check_path(lua_State *L, int idx) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  luaL_argcheck(L, memchr(s, '\0', n) == NULL, idx,
                "path contains a zero byte");
  return s;
}


/* {====================================================================
** Requests: allocation, the wait map, cancellation
** ===================================================================== */

/* Registry key of the table task -> request of the pending waits. */
static const char waits_key = 0;


corio_fsreq *corio__fsreq_new(lua_State *L, corio_rt *rt, const char *op,
                              const char *path, const char *path2) {
  size_t n1 = path ? strlen(path) : 0;
  size_t n2 = path2 ? strlen(path2) + 1 : 0;
  corio_fsreq *r = calloc(1, sizeof *r + n1 + n2);
  if (r == NULL) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  r->rt = rt;
  r->op = op;
  corio__req_start(rt);         /* until corio__fsreq_free */
  if (path) memcpy(r->path, path, n1 + 1);
  if (path2) {
    char *p2 = r->path + n1 + 1;
    memcpy(p2, path2, n2);
    r->path2 = p2;
  }
  return r;
}


static void push_waits(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &waits_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &waits_key);
  }
}


/* Records (r non-NULL) or forgets t's request.  Forgetting never
** allocates: a missing table has nothing to forget, and setting a key to
** nil never grows a table. */
static void waits_set(lua_State *L, corio_task *t, corio_fsreq *r) {
  if (r == NULL) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &waits_key) == LUA_TTABLE) {
      lua_pushnil(L);
      lua_rawsetp(L, -2, t);
    }
    lua_pop(L, 1);
    return;
  }
  push_waits(L);
  lua_pushlightuserdata(L, r);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
}


/* [t, r] -> (): waits_set, under lua_pcall in corio__fsreq_wait. */
static int waits_set_lua(lua_State *L) {
  corio_task *t = lua_touserdata(L, 1);
  corio_fsreq *r = lua_touserdata(L, 2);
  waits_set(L, t, r);
  return 0;
}


/* Undo hook: the task no longer waits.  Drop its result; try to take the
** request back from the thread pool if no thread has started it. */
static void fsreq_undo(corio_rt *rt, corio_task *t) {
  lua_State *L = rt->L;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &waits_key) != LUA_TTABLE) {
    lua_pop(L, 1);                            /* nothing recorded */
    return;
  }
  lua_rawgetp(L, -1, t);
  corio_fsreq *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  if (r == NULL || r->task != t) return;
  r->task = NULL;
  if (uv_cancel((uv_req_t *)&r->u) != 0) {   /* already running */
    r->orphan = 1;
    corio__orphan(rt, 1);
  } else {
    corio__borrow_end(rt, &r->lent);          /* it will never run */
  }
}


/* The request was sent already: if recording it runs out of memory, its
** result is dropped (as when its task is cancelled) and the task raises. */
int corio__fsreq_wait(lua_State *L, corio_rt *rt, corio_task *t,
                      corio_fsreq *r) {
  lua_pushcfunction(L, waits_set_lua);
  lua_pushlightuserdata(L, t);
  lua_pushlightuserdata(L, r);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    if (uv_cancel((uv_req_t *)&r->u) != 0) {  /* already running */
      r->orphan = 1;
      corio__orphan(rt, 1);
    }
    return lua_error(L);
  }
  r->task = t;
  return corio__suspend(L, rt, t, fsreq_undo);
}


corio_task *corio__fsreq_take(corio_fsreq *r) {
  corio_task *t = r->task;
  if (t == NULL || r->rt->closing) return NULL;
  r->task = NULL;
  waits_set(r->rt->L, t, NULL);
  return t;
}


/* [r, string] -> (): the anchor, which may run out of memory. */
static int hold_lua(lua_State *L) {
  corio_fsreq *r = lua_touserdata(L, 1);
  r->anchor = corio__anchor(r->rt, L, 2);
  return 0;
}


void corio__fsreq_hold(lua_State *L, corio_fsreq *r, int idx) {
  r->data = lua_tolstring(L, idx, &r->dlen);
  lua_pushcfunction(L, hold_lua);             /* no allocation: a light */
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    corio__fsreq_free(r);                     /* not sent yet */
    lua_error(L);
  }
  corio__borrow(r->rt, &r->lent);
}


void corio__fsreq_free(corio_fsreq *r) {
  corio__borrow_end(r->rt, &r->lent);         /* a job that never ran */
  corio__req_end(r->rt);
  if (r->orphan) corio__orphan(r->rt, -1);
  if (r->anchor && !r->rt->closing) corio__unanchor(r->rt, r->rt->L,
                                                    r->anchor);
  free(r->buf);
  free(r);
}


/* [r] -> error of r->status */
static int push_fs_error(lua_State *L) {
  corio_fsreq *r = lua_touserdata(L, 1);
  corio__push_uverror(L, r->status, r->op, r->path[0] ? r->path : NULL);
  if (r->path2) {
    lua_pushstring(L, r->path2);
    lua_setfield(L, -2, "dest");
  }
  return 1;
}


void corio__fsreq_raise(corio_fsreq *r, corio_task *t, int status) {
  r->status = status;
  corio__wake_with(r->rt, t, push_fs_error, r, WAKE_RAISE);
}

/* }==================================================================== */


/* {====================================================================
** Results
** ===================================================================== */

enum {
  K_NONE = 0,   /* nothing */
  K_OPEN,       /* a new fd: closed again if the result is dropped */
  K_READ,       /* r->buf[0..result] as a string ("" at EOF) */
  K_STAT,       /* a stat table */
  K_EXISTS,     /* true; ENOENT / ENOTDIR give false */
  K_DIR,        /* list of {name=, type=} */
  K_PATH,       /* req->path (mkdtemp's result) */
  K_PTR         /* req->ptr as a string (realpath, readlink) */
};


static const char *type_name(uint64_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "unknown";
  }
}


static const char *dirent_name(uv_dirent_type_t t) {
  switch (t) {
    case UV_DIRENT_FILE: return "file";
    case UV_DIRENT_DIR: return "directory";
    case UV_DIRENT_LINK: return "link";
    case UV_DIRENT_FIFO: return "fifo";
    case UV_DIRENT_SOCKET: return "socket";
    case UV_DIRENT_CHAR: return "char";
    case UV_DIRENT_BLOCK: return "block";
    default: return "unknown";
  }
}


static void set_time(lua_State *L, const char *k, uv_timespec_t ts) {
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  lua_setfield(L, -2, k);
}


static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}


/* Pushes the stat table of s. [-0,+1] */
static void push_stat(lua_State *L, const uv_stat_t *s) {
  lua_createtable(L, 0, 16);
  set_int(L, "size", s->st_size);
  lua_pushstring(L, type_name(s->st_mode));
  lua_setfield(L, -2, "type");
  set_int(L, "mode", s->st_mode & 07777);
  set_time(L, "mtime", s->st_mtim);
  set_time(L, "atime", s->st_atim);
  set_time(L, "ctime", s->st_ctim);
  set_time(L, "birthtime", s->st_birthtim);
  set_int(L, "ino", s->st_ino);
  set_int(L, "dev", s->st_dev);
  set_int(L, "nlink", s->st_nlink);
  set_int(L, "uid", s->st_uid);
  set_int(L, "gid", s->st_gid);
  set_int(L, "rdev", s->st_rdev);
  set_int(L, "blksize", s->st_blksize);
  set_int(L, "blocks", s->st_blocks);
}


/* Pushes the entries of a finished scandir request. [-0,+1] */
static void push_dir(lua_State *L, uv_fs_t *req) {
  uv_dirent_t ent;
  lua_Integer i = 0;
  lua_createtable(L, req->result > 0 ? (int)req->result : 0, 0);
  while (uv_fs_scandir_next(req, &ent) != UV_EOF) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ent.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, dirent_name(ent.type));
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, ++i);
  }
}


static void close_cb(uv_fs_t *req) {
  corio__req_end((corio_rt *)req->data);
  uv_fs_req_cleanup(req);
  free(req);
}


/* Closes an fd whose opener went away, without blocking the loop. */
static void close_quietly(corio_rt *rt, int fd) {
  uv_fs_t *req = malloc(sizeof *req);
  if (req) req->data = rt;
  if (rt->closing || req == NULL ||
      uv_fs_close(rt->loop, req, fd, close_cb) != 0) {
    free(req);
    close(fd);
  } else {
    corio__req_start(rt);
  }
}


/* [r] -> the result of r's request */
static int push_fs_result(lua_State *L) {
  corio_fsreq *r = lua_touserdata(L, 1);
  uv_fs_t *req = &r->u.fs;
  ssize_t res = req->result;
  switch (r->kind) {
    case K_NONE: return 0;
    case K_OPEN: lua_pushinteger(L, (lua_Integer)res); break;
    case K_READ: lua_pushlstring(L, r->buf, (size_t)res); break;
    case K_STAT: push_stat(L, &req->statbuf); break;
    case K_EXISTS: lua_pushboolean(L, res >= 0); break;
    case K_DIR: push_dir(L, req); break;
    case K_PATH: lua_pushstring(L, req->path); break;
    default: lua_pushstring(L, req->ptr); break;
  }
  return 1;
}


static void on_fs(uv_fs_t *req) {
  corio_fsreq *r = container_of(req, corio_fsreq, u.fs);
  corio_rt *rt = r->rt;
  ssize_t res = req->result;
  corio_task *t = corio__fsreq_take(r);
  if (t == NULL) {                       /* dropped */
    if (r->kind == K_OPEN && res >= 0) close_quietly(rt, (int)res);
  } else if (res < 0 && !(r->kind == K_EXISTS &&
                          (res == UV_ENOENT || res == UV_ENOTDIR))) {
    corio__fsreq_raise(r, t, (int)res);
  } else if (corio__wake_with(rt, t, push_fs_result, r, WAKE_VALUES)
             != LUA_OK && r->kind == K_OPEN) {
    close_quietly(rt, (int)res);         /* the task got ENOMEM instead */
  }
  uv_fs_req_cleanup(req);
  corio__fsreq_free(r);
}


/* Sends r (status of the uv_fs_* call) and suspends, or raises. */
static int sent(lua_State *L, corio_rt *rt, corio_task *t, corio_fsreq *r,
                int status) {
  if (status < 0) {
    uv_fs_req_cleanup(&r->u.fs);
    corio__push_uverror(L, status, r->op, r->path[0] ? r->path : NULL);
    corio__fsreq_free(r);
    return lua_error(L);
  }
  return corio__fsreq_wait(L, rt, t, r);
}


/* Common prologue: await check, then the request. */
static corio_fsreq *prep(lua_State *L, corio_rt *rt, corio_task **t,
                         const char *op, int kind, const char *path,
                         const char *path2) {
  *t = corio__check_await(L, rt, op);
  corio_fsreq *r = corio__fsreq_new(L, rt, op, path, path2);
  r->kind = kind;
  return r;
}

/* }==================================================================== */


/* {====================================================================
** Calls on paths
** ===================================================================== */

#define PATH_CALL(name, kind, call)                                      \
  static int fs_##name(lua_State *L) {                                   \
    corio_rt *rt = RT_UPVALUE(L);                                        \
    const char *path = corio__check_path(L, 1);                          \
    corio_task *t;                                                       \
    corio_fsreq *r = prep(L, rt, &t, #name, kind, path, NULL);           \
    return sent(L, rt, t, r, call(rt->loop, &r->u.fs, path, on_fs));     \
  }

PATH_CALL(stat, K_STAT, uv_fs_stat)
PATH_CALL(lstat, K_STAT, uv_fs_lstat)
PATH_CALL(exists, K_EXISTS, uv_fs_stat)
PATH_CALL(rmdir, K_NONE, uv_fs_rmdir)
PATH_CALL(unlink, K_NONE, uv_fs_unlink)
PATH_CALL(realpath, K_PTR, uv_fs_realpath)
PATH_CALL(readlink, K_PTR, uv_fs_readlink)
PATH_CALL(mkdtemp, K_PATH, uv_fs_mkdtemp)


static int fs_scandir(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "readdir", K_DIR, path, NULL);
  return sent(L, rt, t, r, uv_fs_scandir(rt->loop, &r->u.fs, path, 0,
                                         on_fs));
}


/* Permission bits: an integer, or a string of octal digits ("755"). */
static int check_mode(lua_State *L, int idx, int def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    char *end;
    long m = strtol(s, &end, 8);
    /* end at the string's end, not at a zero byte inside ("7\0x") */
    if (!(n > 0 && end == s + n && m >= 0 && m <= 07777))
      corio__argerror(L, idx, "invalid mode");
    return (int)m;
  }
  /* fs.open and fs.mkdir reach this through scripts/fs.lua: the checks
  ** name the user's line (corio__argerror), not the wrapper's. */
  int isint;
  lua_Integer m = lua_tointegerx(L, idx, &isint);
  if (!isint || m < 0 || m > 07777)
    corio__argerror(L, idx, lua_type(L, idx) == LUA_TNUMBER ? "invalid mode"
      : lua_pushfstring(L, "mode expected, got %s", luaL_typename(L, idx)));
  return (int)m;
}


static int fs_mkdir(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  int mode = check_mode(L, 2, 0777);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "mkdir", K_NONE, path, NULL);
  return sent(L, rt, t, r, uv_fs_mkdir(rt->loop, &r->u.fs, path, mode,
                                       on_fs));
}


static int fs_chmod(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  int mode;
  luaL_checkany(L, 2);
  mode = check_mode(L, 2, 0);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "chmod", K_NONE, path, NULL);
  return sent(L, rt, t, r, uv_fs_chmod(rt->loop, &r->u.fs, path, mode,
                                       on_fs));
}


static double check_time(lua_State *L, int idx) {
  double v = luaL_checknumber(L, idx);
  luaL_argcheck(L, !isnan(v), idx, "not a number");
  return v;
}


static int fs_utime(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  double at = check_time(L, 2), mt = check_time(L, 3);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "utime", K_NONE, path, NULL);
  return sent(L, rt, t, r, uv_fs_utime(rt->loop, &r->u.fs, path, at, mt,
                                       on_fs));
}


static int fs_rename(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *from = corio__check_path(L, 1);
  const char *to = corio__check_path(L, 2);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "rename", K_NONE, from, to);
  return sent(L, rt, t, r, uv_fs_rename(rt->loop, &r->u.fs, from, to,
                                        on_fs));
}


/* symlink(target, linkpath): errors name the link as `path`. */
static int fs_symlink(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *target = corio__check_path(L, 1);
  const char *link = corio__check_path(L, 2);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "symlink", K_NONE, link, target);
  return sent(L, rt, t, r, uv_fs_symlink(rt->loop, &r->u.fs, target, link,
                                         0, on_fs));
}

/* }==================================================================== */


/* {====================================================================
** Calls on file descriptors (File in scripts/fs.lua)
** ===================================================================== */

/* Lua's io.open modes: r w a r+ w+ a+, with b (ignored) and x
** (exclusive create) anywhere after the first letter. */
static int check_flags(lua_State *L, int idx) {
  size_t n;
  const char *m = luaL_optlstring(L, idx, "r", &n);
  const char *end = m + n;     /* a zero byte inside must not end it */
  int flags;
  switch (*m++) {
    case 'r': flags = 0; break;
    case 'w': flags = O_CREAT | O_TRUNC; break;
    case 'a': flags = O_CREAT | O_APPEND; break;
    default: return corio__argerror(L, idx, "invalid mode");
  }
  int plus = 0;
  for (; m < end; m++) {
    if (*m == '+' && !plus) plus = 1;
    else if (*m == 'x' && (flags & O_CREAT) && !(flags & O_APPEND))
      flags |= O_EXCL;
    else if (*m != 'b') return corio__argerror(L, idx, "invalid mode");
  }
  if (plus) flags |= O_RDWR;
  else flags |= (flags & O_CREAT) ? O_WRONLY : O_RDONLY;
  return flags | O_CLOEXEC;
}


/* open(path, mode, perm) -> fd */
static int fs_open(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  int flags = check_flags(L, 2);
  int perm = check_mode(L, 3, 0666);
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "open", K_OPEN, path, NULL);
  return sent(L, rt, t, r, uv_fs_open(rt->loop, &r->u.fs, path, flags, perm,
                                      on_fs));
}


int corio__fsreq_check_fd(lua_State *L, int idx) {
  lua_Integer fd = luaL_checkinteger(L, idx);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, idx, "invalid fd");
  return (int)fd;
}


/* read(fd, n, offset, path) -> string ("" at EOF).  offset -1: the
** current position. */
static int fs_read(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int fd = corio__fsreq_check_fd(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_Integer off = luaL_optinteger(L, 3, -1);
  const char *path = luaL_optstring(L, 4, NULL);
  luaL_argcheck(L, n >= 0 && n <= 0x7fffffff, 2, "invalid size");
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "read", K_READ, path, NULL);
  r->buf = malloc(n > 0 ? (size_t)n : 1);
  if (r->buf == NULL) {
    corio__fsreq_free(r);
    return luaL_error(L, "not enough memory");
  }
  uv_buf_t b = uv_buf_init(r->buf, (unsigned)n);
  return sent(L, rt, t, r, uv_fs_read(rt->loop, &r->u.fs, fd, &b, 1, off,
                                      on_fs));
}


#define FD_CALL(name, kind, call)                                        \
  static int fs_##name(lua_State *L) {                                   \
    corio_rt *rt = RT_UPVALUE(L);                                        \
    int fd = corio__fsreq_check_fd(L, 1);                                \
    const char *path = luaL_optstring(L, 2, NULL);                       \
    corio_task *t;                                                       \
    corio_fsreq *r = prep(L, rt, &t, #name, kind, path, NULL);           \
    return sent(L, rt, t, r, call(rt->loop, &r->u.fs, fd, on_fs));       \
  }

FD_CALL(fstat, K_STAT, uv_fs_fstat)
FD_CALL(fsync, K_NONE, uv_fs_fsync)
FD_CALL(close, K_NONE, uv_fs_close)


static int fs_ftruncate(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int fd = corio__fsreq_check_fd(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  const char *path = luaL_optstring(L, 3, NULL);
  luaL_argcheck(L, size >= 0, 2, "invalid size");
  corio_task *t;
  corio_fsreq *r = prep(L, rt, &t, "truncate", K_NONE, path, NULL);
  return sent(L, rt, t, r, uv_fs_ftruncate(rt->loop, &r->u.fs, fd, size,
                                           on_fs));
}


/* lseek(fd, offset, whence) -> new offset.  Synchronous: lseek never
** waits for the disk. */
static int fs_lseek(lua_State *L) {
  static const char *const names[] = {"set", "cur", "end", NULL};
  static const int whence[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  int fd = corio__fsreq_check_fd(L, 1);
  lua_Integer off = luaL_checkinteger(L, 2);
  int w = luaL_checkoption(L, 3, "cur", names);
  off_t r = lseek(fd, (off_t)off, whence[w]);
  if (r < 0) return corio__uverror(L, uv_translate_sys_error(errno), "seek",
                                   luaL_optstring(L, 4, NULL));
  lua_pushinteger(L, (lua_Integer)r);
  return 1;
}


/* close_nowait(fd): for __gc, which cannot wait. */
static int fs_close_nowait(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  close_quietly(rt, corio__fsreq_check_fd(L, 1));
  return 0;
}

/* }==================================================================== */


int luaopen_corio__fs(lua_State *L);

int luaopen_corio__fs(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"stat", fs_stat},
    {"lstat", fs_lstat},
    {"exists", fs_exists},
    {"rmdir", fs_rmdir},
    {"unlink", fs_unlink},
    {"realpath", fs_realpath},
    {"readlink", fs_readlink},
    {"mkdtemp", fs_mkdtemp},
    {"scandir", fs_scandir},
    {"mkdir", fs_mkdir},
    {"chmod", fs_chmod},
    {"utime", fs_utime},
    {"rename", fs_rename},
    {"symlink", fs_symlink},
    {"open", fs_open},
    {"read", fs_read},
    {"fstat", fs_fstat},
    {"fsync", fs_fsync},
    {"close", fs_close},
    {"ftruncate", fs_ftruncate},
    {"close_nowait", fs_close_nowait},
    {"lseek", fs_lseek},
    {NULL, NULL}
  };
  corio_rt *rt = corio__rt(L);
  lua_newtable(L);
  corio__setfuncs(L, rt, funcs);
  corio__open_fsjob(L, rt);
  return 1;
}
