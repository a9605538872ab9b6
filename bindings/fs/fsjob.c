/*
** fsjob.c -- read_file and write_file, each ONE thread-pool job.
**
** Reading a whole file through uv_fs_* costs four round trips to the
** pool (open, fstat, read, close), each with a wake-up of the loop.
** Here a single uv_work_t does the four system calls on a pool thread
** and the loop is woken once, with the bytes.  write_file does the same
** for open/write/close, and with `atomic` for mkstemp/write/fsync/rename;
** copyfile for open/open/copy_file_range/close.  fs.write on an open
** file is a job of its own too (rather than uv_fs_write) so that it can
** say when its thread is done with the string it writes.
**
** A job only touches its own request (the path copy, its buffer, and an
** anchored Lua string that nothing can move or free), never the Lua
** state.  The string is lent (corio__borrow): the job ends the loan as
** soon as its thread no longer reads it, and teardown does not close the
** state while a loan is out.  Errors are kept as a negative errno and
** raised on the loop.
*/
#include <errno.h>    /* errno, EINTR */
#include <fcntl.h>    /* open, O_* */
#include <stdio.h>    /* FILE, snprintf */
#include <stdlib.h>   /* malloc, realloc, mkostemp */
#include <stdint.h>   /* INT64_MAX */
#include <string.h>   /* strlen, strncmp */
#include <sys/stat.h> /* fstat, fchmod, umask */
#include <sys/ioctl.h>    /* ioctl */
#include <sys/sendfile.h> /* sendfile */
#include <linux/fs.h>     /* FICLONE */
#include <unistd.h>   /* read, write, close, fsync, unlink, copy_file_range */

#include "shared.h"    /* the core, and what modules offer each other */
#include "fsreq.h"

enum { JOB_READ = 1, JOB_WRITE, JOB_PWRITE, JOB_COPY };
enum { WF_ATOMIC = 1, WF_APPEND = 2 };
enum { CF_EXCL = 1, CF_CLONE = 2 };

/* The process umask, read once: umask() itself cannot be read without
** changing it, which would race with files created on other threads. */
static mode_t the_umask = 022;


static void read_umask(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[128];
  if (f == NULL) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Umask:", 6) == 0) {
      the_umask = (mode_t)strtol(line + 6, NULL, 8);
      break;
    }
  }
  fclose(f);
}


/* {====================================================================
** On a pool thread
** ===================================================================== */

static int open_retry(const char *path, int flags, mode_t mode) {
  int fd;
  do fd = open(path, flags, mode); while (fd < 0 && errno == EINTR);
  return fd;
}


/* open, fstat, read until the size fstat gave (or EOF when the size is
** unknown, as in /proc), close. */
static void read_work(uv_work_t *w) {
  corio_fsreq *r = container_of(w, corio_fsreq, u.work);
  struct stat st;
  size_t want = 0;
  int fd = open_retry(r->path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    r->err = -errno;
    return;
  }
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      r->err = UV_EISDIR;
      close(fd);
      return;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) want = (size_t)st.st_size;
  }
  r->cap = want ? want : 16384;
  r->buf = malloc(r->cap);
  if (r->buf == NULL) r->err = UV_ENOMEM;
  while (r->err == 0) {
    if (r->len == r->cap) {
      if (want) break;                  /* all fstat promised */
      char *p = realloc(r->buf, r->cap * 2);
      if (p == NULL) {
        r->err = UV_ENOMEM;
        break;
      }
      r->buf = p;
      r->cap *= 2;
    }
    ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) r->err = -errno;
    if (n <= 0) break;
    r->len += (size_t)n;
  }
  close(fd);
}


static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}


/* Writes to a temp file beside the target, syncs it, renames it over
** the target: readers see the old content or the new, never a part. */
static int write_atomic(corio_fsreq *r) {
  size_t n = strlen(r->path);
  char *tmp = malloc(n + 8);
  struct stat st;
  int err = 0;
  if (tmp == NULL) return UV_ENOMEM;
  memcpy(tmp, r->path, n);
  tmp[n] = '.';                               /* mkostemp's template: */
  memset(tmp + n + 1, 'X', 6);                /* the path, a dot, six X */
  tmp[n + 7] = '\0';
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    err = -errno;
    free(tmp);
    return err;
  }
  mode_t mode = r->mode >= 0 ? (mode_t)r->mode & ~the_umask
              : stat(r->path, &st) == 0 ? st.st_mode & 07777
              : 0666 & ~the_umask;
  if (fchmod(fd, mode) < 0) err = -errno;
  if (err == 0) err = write_all(fd, r->data, r->dlen);
  corio__fsreq_data_done(r);                  /* before fsync: it may be slow */
  if (err == 0 && fsync(fd) < 0) err = -errno;
  if (close(fd) < 0 && err == 0) err = -errno;
  if (err == 0 && rename(tmp, r->path) < 0) err = -errno;
  if (err) unlink(tmp);
  free(tmp);
  return err;
}


static int write_plain(corio_fsreq *r) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC |
              ((r->flags & WF_APPEND) ? O_APPEND : O_TRUNC);
  int fd = open_retry(r->path, flags, r->mode >= 0 ? (mode_t)r->mode : 0666);
  if (fd < 0) return -errno;
  int err = write_all(fd, r->data, r->dlen);
  if (close(fd) < 0 && err == 0) err = -errno;
  return err;
}


static void write_work(uv_work_t *w) {
  corio_fsreq *r = container_of(w, corio_fsreq, u.work);
  r->err = (r->flags & WF_ATOMIC) ? write_atomic(r) : write_plain(r);
  corio__fsreq_data_done(r);                  /* on every path */
}


/* fs.write: one write (or pwrite at r->off) to an open fd; r->len the
** bytes it took, which may be fewer than asked. */
static void pwrite_work(uv_work_t *w) {
  corio_fsreq *r = container_of(w, corio_fsreq, u.work);
  ssize_t n;
  do n = r->off >= 0 ? pwrite(r->fd, r->data, r->dlen, (off_t)r->off)
                     : write(r->fd, r->data, r->dlen);
  while (n < 0 && errno == EINTR);
  corio__fsreq_data_done(r);
  if (n < 0) r->err = -errno;
  else r->len = (size_t)n;
}

/* Copies n bytes in the kernel: copy_file_range, else sendfile, else
** read/write.  Returns 0 or a negative errno. */
static int copy_data(int in, int out, off_t n) {
  int mode = 0;                       /* 0 copy_file_range, 1 sendfile */
  char *buf = NULL;
  while (n > 0) {
    size_t chunk = n > (off_t)1 << 30 ? (size_t)1 << 30 : (size_t)n;
    ssize_t k;
    if (mode == 0) k = copy_file_range(in, NULL, out, NULL, chunk, 0);
    else if (mode == 1) k = sendfile(out, in, NULL, chunk);
    else {
      if (buf == NULL && (buf = malloc(1 << 16)) == NULL) return UV_ENOMEM;
      k = read(in, buf, chunk < (1 << 16) ? chunk : (1 << 16));
      if (k > 0) {
        int err = write_all(out, buf, (size_t)k);
        if (err) { free(buf); return err; }
      }
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && mode < 2 && (errno == EXDEV || errno == ENOSYS ||
                              errno == EINVAL || errno == EOPNOTSUPP)) {
      mode++;                         /* not for these files: fall back */
      continue;
    }
    if (k < 0) { free(buf); return -errno; }
    if (k == 0) break;                /* the source shrank */
    n -= k;
  }
  free(buf);
  return 0;
}


/* copyfile as `cp` does it: a new (or truncated) destination with the
** source's permission bits, the bytes copied in the kernel.  libuv's
** uv_fs_copyfile ftruncate()s the new file, which on ext4 makes close()
** flush the whole file (auto_da_alloc): twice as slow for big files. */
static void copy_work(uv_work_t *w) {
  corio_fsreq *r = container_of(w, corio_fsreq, u.work);
  struct stat st;
  int in = open_retry(r->path, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0) {
    r->err = -errno;
    return;
  }
  if (fstat(in, &st) < 0 || S_ISDIR(st.st_mode)) {
    r->err = S_ISDIR(st.st_mode) ? UV_EISDIR : -errno;
    close(in);
    return;
  }
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
              ((r->flags & CF_EXCL) ? O_EXCL : 0);
  int out = open_retry(r->path2, flags, st.st_mode & 07777);
  if (out < 0) {
    r->err = -errno;
    close(in);
    return;
  }
  int err = 0;
  if (!((r->flags & CF_CLONE) && ioctl(out, FICLONE, in) == 0))
    /* Size 0 may mean "unknown" (/proc): then copy until EOF. */
    err = copy_data(in, out, st.st_size > 0 ? st.st_size : INT64_MAX);
  if (err == 0 && fchmod(out, st.st_mode & 07777) < 0) err = -errno;
  if (close(out) < 0 && err == 0) err = -errno;
  close(in);
  if (err) unlink(r->path2);
  r->err = err;
}

/* }==================================================================== */


/* {====================================================================
** On the loop
** ===================================================================== */

static int push_read(lua_State *L) {
  corio_fsreq *r = lua_touserdata(L, 1);
  lua_pushlstring(L, r->buf ? r->buf : "", r->len);
  return 1;
}


static int push_count(lua_State *L) {
  corio_fsreq *r = lua_touserdata(L, 1);
  lua_pushinteger(L, (lua_Integer)r->len);
  return 1;
}


static void job_done(uv_work_t *w, int status) {
  corio_fsreq *r = container_of(w, corio_fsreq, u.work);
  corio_task *t = corio__fsreq_take(r);
  if (t != NULL) {
    if (status < 0 || r->err < 0) {
      corio__fsreq_raise(r, t, status < 0 ? status : r->err);
    } else if (r->kind == JOB_READ) {
      corio__wake_with(r->rt, t, push_read, r, WAKE_VALUES);
    } else if (r->kind == JOB_PWRITE) {
      corio__wake_with(r->rt, t, push_count, r, WAKE_VALUES);
    } else {
      corio__wake(r->rt, t, r->rt->L, 0, WAKE_VALUES);
    }
  }
  corio__fsreq_free(r);
}


static int queue(lua_State *L, corio_rt *rt, corio_task *t, corio_fsreq *r,
                 uv_work_cb work) {
  int st = uv_queue_work(rt->loop, &r->u.work, work, job_done);
  if (st < 0) {
    corio__push_uverror(L, st, r->op, r->path[0] ? r->path : NULL);
    corio__fsreq_free(r);
    return lua_error(L);
  }
  return corio__fsreq_wait(L, rt, t, r);
}


/* read_file(path) -> the whole content as a string. */
static int l_read_file(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  corio_task *t = corio__check_await(L, rt, "read_file");
  corio_fsreq *r = corio__fsreq_new(L, rt, "read_file", path, NULL);
  r->kind = JOB_READ;
  return queue(L, rt, t, r, read_work);
}


static int opt_flag(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}


/* write_file(path, data [, {atomic=, append=, mode=}]) */
static int l_write_file(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *path = corio__check_path(L, 1);
  int flags = 0, mode = -1;
  if (lua_type(L, 2) == LUA_TNUMBER) lua_tostring(L, 2);
  luaL_checktype(L, 2, LUA_TSTRING);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (opt_flag(L, 3, "atomic")) flags |= WF_ATOMIC;
    if (opt_flag(L, 3, "append")) flags |= WF_APPEND;
    luaL_argcheck(L, flags != (WF_ATOMIC | WF_APPEND), 3,
                  "atomic and append exclude each other");
    if (lua_getfield(L, 3, "mode") != LUA_TNIL) {
      lua_Integer m = lua_tointeger(L, -1);
      luaL_argcheck(L, lua_isinteger(L, -1) && m >= 0 && m <= 07777, 3,
                    "mode must be an integer permission");
      mode = (int)m;
    }
    lua_pop(L, 1);
  }
  corio_task *t = corio__check_await(L, rt, "write_file");
  corio_fsreq *r = corio__fsreq_new(L, rt, "write_file", path, NULL);
  r->kind = JOB_WRITE;
  r->flags = flags;
  r->mode = mode;
  corio__fsreq_hold(L, r, 2);
  return queue(L, rt, t, r, write_work);
}

/* write(fd, data [, offset [, path]]) -> bytes written (may be short);
** offset -1 or none: at the file's position.  path names errors. */
static int l_write(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  int fd = corio__fsreq_check_fd(L, 1);
  luaL_checktype(L, 2, LUA_TSTRING);
  lua_Integer off = luaL_optinteger(L, 3, -1);
  const char *path = luaL_optstring(L, 4, NULL);
  corio_task *t = corio__check_await(L, rt, "write");
  corio_fsreq *r = corio__fsreq_new(L, rt, "write", path, NULL);
  r->kind = JOB_PWRITE;
  r->fd = fd;
  r->off = off < 0 ? -1 : (int64_t)off;
  corio__fsreq_hold(L, r, 2);
  return queue(L, rt, t, r, pwrite_work);
}


/* copyfile(from, to [, flags]) with CF_* flags (scripts/fs.lua). */
static int l_copyfile(lua_State *L) {
  corio_rt *rt = RT_UPVALUE(L);
  const char *from = corio__check_path(L, 1);
  const char *to = corio__check_path(L, 2);
  int flags = (int)luaL_optinteger(L, 3, 0);
  corio_task *t = corio__check_await(L, rt, "copyfile");
  corio_fsreq *r = corio__fsreq_new(L, rt, "copyfile", from, to);
  r->kind = JOB_COPY;
  r->flags = flags;
  return queue(L, rt, t, r, copy_work);
}

/* }==================================================================== */


void corio__open_fsjob(lua_State *L, corio_rt *rt) {
  static const luaL_Reg funcs[] = {
    {"read_file", l_read_file},
    {"write_file", l_write_file},
    {"write", l_write},
    {"copyfile", l_copyfile},
    {NULL, NULL}
  };
  static uv_once_t umask_once = UV_ONCE_INIT;  /* runtimes on several */
  uv_once(&umask_once, read_umask);            /* threads share it */
  corio__setfuncs(L, rt, funcs);
  lua_pushinteger(L, CF_EXCL);
  lua_setfield(L, -2, "COPYFILE_EXCL");
  lua_pushinteger(L, CF_CLONE);
  lua_setfield(L, -2, "COPYFILE_FICLONE");
}
