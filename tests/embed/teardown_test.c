/*
** teardown_test.c -- what corio_free must end whatever state it finds:
** children still running (on the runtime's own loop and on a borrowed
** one: none may be left behind, running or as a zombie, once corio_free
** returns; a detached one is left running, as asked), objects whose __gc
** never ran (the backstop closes them), a system that refuses every
** allocation while the state closes (the teardown reserve), and a write
** whose thread still reads a Lua string (the state must outlive it).
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "t.h"


/* 1 if pid is gone: not running and not a zombie of ours. */
static int gone(int pid) {
  return kill(pid, 0) < 0 && errno == ESRCH;
}


/* Runs code (a chunk returning a task) until that task is done and
** returns its integer results in pids. */
static int run_pids(corio_runtime *rt, const char *code, int *pids, int n) {
  lua_State *L = corio_state(rt);
  int top = lua_gettop(L);
  CHECK(t_dostring(rt, code) == LUA_OK);
  int got = corio_run_until(rt, -1);
  CHECK_EQ(got, n);
  for (int i = 0; i < n && got == n; i++)
    pids[i] = (int)lua_tointeger(L, top + 2 + i);
  lua_settop(L, top);
  return got == n;
}


/* Three children still running at corio_free: one ends on SIGTERM, one
** ignores it (SIGKILL after the grace period), one is detached. */
static const char *const spawn3 =
  "local corio = require 'corio'\n"
  "local process = require 'corio.process'\n"
  "return corio.spawn(function()\n"
  "  local a = process.spawn({'sleep', '100'})\n"
  "  local b = process.spawn({'/bin/sh', '-c', 'trap \"\" TERM; exec sleep 100'})\n"
  "  local c = process.spawn({'sleep', '100'}, {detached = true})\n"
  "  corio.sleep(0.05)  -- the trap is set\n"
  "  return a.pid, b.pid, c.pid\n"
  "end)\n";

static void free_with_children(uv_loop_t *loop) {
  corio_runtime *rt = t_new_on(loop);
  if (rt == NULL) return;
  int pids[3] = {0, 0, 0};
  int ok = run_pids(rt, spawn3, pids, 3);
  double t0 = t_now();
  CHECK_EQ(corio_free(rt), CORIO_OK);
  double took = t_now() - t0;
  if (!ok) return;
  CHECK(gone(pids[0]));                       /* ended and reaped */
  CHECK(gone(pids[1]));
  CHECK(took < 10);                           /* the grace period: 2 s */
  CHECK(!gone(pids[2]));                      /* detached: left running */
  kill(pids[2], SIGKILL);
  CHECK_EQ(waitpid(pids[2], NULL, 0), pids[2]);
}

static void teardown_children(void) {
  free_with_children(NULL);
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  free_with_children(&loop);
  CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);  /* nothing of corio's left */
  CHECK_EQ(uv_loop_close(&loop), 0);
}


/* A script can reach no metatable of corio's, but a finalizer can still
** be skipped (Lua drops a __gc that finds no memory to run).  The host
** removes them here to stand for that: the runtime's backstop must still
** close the socket and end the child (valgrind and ASan see the socket's
** memory; the child is checked here). */
static void gc_backstop(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  int pid = 0;
  int ok = run_pids(rt,
    "local corio = require 'corio'\n"
    "local net = require 'corio.net'\n"
    "local process = require 'corio.process'\n"
    "return corio.spawn(function()\n"
    "  kept_udp = net.udp({host = '127.0.0.1', port = 0})\n"
    "  kept_proc = process.spawn({'sleep', '100'})\n"
    "  return kept_proc.pid\n"
    "end)\n", &pid, 1);
  const char *const classes[] = {"corio.ProcessHandle", "corio.UdpSocket"};
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(luaL_getmetatable(L, classes[i]), LUA_TTABLE);
    lua_pushnil(L);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
  }
  CHECK_EQ(corio_free(rt), CORIO_OK);
  if (ok) CHECK(gone(pid));
}


/* Tests only (runtime/alloc.c): the system refuses the default
** allocators while set. */
extern int corio__test_refuse_sys;

/* Objects whose __gc frees C resources Lua cannot see: an open file (an
** fd), an executor (its threads), a TCP server and both ends of a
** connection, a UDP socket. */
static const char *const holder =
  "local corio = require 'corio'\n"
  "local fs = require 'corio.fs'\n"
  "local net = require 'corio.net'\n"
  "local executor = require 'corio.executor'\n"
  "return corio.spawn(function()\n"
  "  kept = {}\n"
  "  kept.file = fs.open('/dev/null')\n"
  "  kept.pool = executor.thread_pool(2)\n"
  "  assert(kept.pool:run(function(a) return a + 1 end, 1) == 2)\n"
  "  kept.udp = net.udp({host = '127.0.0.1', port = 0})\n"
  "  kept.server = net.serve('127.0.0.1', 0, function(s)\n"
  "    kept.accepted = s\n"
  "    corio.sleep(100)\n"
  "  end)\n"
  "  local _, port = kept.server:address()\n"
  "  kept.client = net.connect('127.0.0.1', port)\n"
  "  kept.client:write('x')\n"
  "  while not kept.accepted do corio.sleep(0.001) end\n"
  "  return 1\n"
  "end)\n";

static void free_refused(const char *plain) {
  const char *was = getenv("CORIO_PLAIN_ALLOC");
  char saved[8] = "";
  if (was) snprintf(saved, sizeof saved, "%s", was);
  setenv("CORIO_PLAIN_ALLOC", plain, 1);
  int fds0 = t_count_fds(), threads0 = t_count_threads();
  corio_runtime *rt = t_new();
  int one;
  run_pids(rt, holder, &one, 1);
  corio__test_refuse_sys = 1;                 /* from here malloc fails */
  CHECK_EQ(corio_free(rt), CORIO_OK);
  corio__test_refuse_sys = 0;
  CHECK_EQ(t_count_fds(), fds0);              /* every __gc ran */
  CHECK_EQ(t_wait_threads(threads0), threads0);   /* the pool's workers joined */
  if (was) setenv("CORIO_PLAIN_ALLOC", saved, 1);
  else unsetenv("CORIO_PLAIN_ALLOC");
}

/* corio_free completes and leaves nothing behind when the system refuses
** every allocation from the moment it is called: the default allocator
** serves lua_close from its reserve.  Both default allocators: the C
** library's (every block is the system's: without the reserve no
** finalizer could run) and the slabs. */
static void teardown_reserve(void) {
  corio_runtime *rt = t_new();                /* libuv's thread pool */
  CHECK_EQ(t_run_main(rt, "require('corio.fs').read_file('/dev/null')"), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  free_refused("1");
  free_refused("0");
}


/* {====================================================================
** A write still reading its string at corio_free
** ===================================================================== */

enum { LENT = 1 << 20 };         /* 16 times a pipe's buffer */

typedef struct drain {
  int fd;                        /* the FIFO's read end */
  atomic_long got;               /* bytes read so far */
  long bad;                      /* bytes that were not 'x' */
} drain;

/* pipe_filled() -> bytes waiting in the FIFO: the write is under way. */
static int l_pipe_filled(lua_State *L) {
  drain *d = lua_touserdata(L, lua_upvalueindex(1));
  int n = 0;
  if (ioctl(d->fd, FIONREAD, &n) < 0) n = -1;
  lua_pushinteger(L, n);
  return 1;
}

/* Reads the FIFO to its end, after a pause long enough for a corio_free
** that does not wait to have returned (and closed the state). */
static void drain_main(void *arg) {
  drain *d = arg;
  char buf[65536];
  uv_sleep(300);
  fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) & ~O_NONBLOCK);
  for (;;) {
    ssize_t n = read(d->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) d->bad += buf[i] != 'x';
    atomic_fetch_add(&d->got, (long)n);
  }
}

/* The task writing 1 MiB to a FIFO is cancelled while its thread is
** blocked in write(): the write goes on (no thread can be stopped), and
** corio_free must not free the string under it.  It returns once the
** thread is done; the reader gets every byte, intact. */
static void free_while_writing(const char *how) {
  char dir[] = "/tmp/corio-lent-XXXXXX", fifo[64], code[1024];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  CHECK_EQ(mkfifo(fifo, 0600), 0);
  drain d = {open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC), 0, 0};
  CHECK(d.fd >= 0);
  snprintf(code, sizeof code,
    "local corio = require 'corio'\n"
    "local fs = require 'corio.fs'\n"
    "local path = '%s'\n"
    "local data = string.rep('x', %d)\n"
    "local t = corio.spawn(function()\n"
    "  %s\n"
    "end)\n"
    "while pipe_filled() <= 0 do corio.sleep(0.005) end\n"
    "t:cancel()\n"
    "local ok, err = pcall(t.await, t)\n"
    "assert(not ok and corio.is_cancelled(err))\n", fifo, LENT, how);
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  lua_pushlightuserdata(L, &d);
  lua_pushcclosure(L, l_pipe_filled, 1);
  lua_setglobal(L, "pipe_filled");
  CHECK_EQ(t_run_main(rt, code), 0);
  uv_thread_t reader;
  CHECK_EQ(uv_thread_create(&reader, drain_main, &d), 0);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  long at_free = atomic_load(&d.got);
  uv_thread_join(&reader);
  /* write() had returned: what is left fits in the pipe's buffer, and
  ** the reader may hold one read it has not counted yet (seen under
  ** TSan, which widens that window); a corio_free that did not wait
  ** would find almost nothing read (the reader starts 300 ms late) */
  CHECK(at_free >= LENT - 2 * 65536);
  CHECK_EQ(atomic_load(&d.got), LENT);
  CHECK_EQ(d.bad, 0);
  close(d.fd);
  unlink(fifo);
  rmdir(dir);
}

static void teardown_lent_write(void) {
  free_while_writing("fs.write_file(path, data)");
  free_while_writing("local f <close> = fs.open(path, 'w') f:write(data)");
}

/* }==================================================================== */


const t_case t_teardown[] = {
  {"teardown_children", teardown_children},
  {"gc_backstop", gc_backstop},
  {"teardown_reserve", teardown_reserve},
  {"teardown_lent_write", teardown_lent_write},
  {NULL, NULL}
};
