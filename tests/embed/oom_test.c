/*
** oom_test.c -- out of memory while I/O runs: the Lua allocator refuses
** the Nth call (once, or from then on) of a script that serves and
** connects TCP, reads files, sleeps, spawns a process, resolves a name,
** runs an executor job, does a UDP round trip, waits for a signal and
** watches a directory, for every N over the run (densely over the I/O).  Each run must
** return an exit code (never abort or hang), and corio_free must leave
** nothing behind (valgrind and ASan check the leaks).
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"


typedef struct budget {
  long calls;                  /* growing allocations so far */
  long fail_at;                /* the first one refused */
  int once;                    /* refuse only that one */
  long mark;                   /* calls when the script's I/O began */
  long refused;
} budget;

static void *limited_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  budget *b = ud;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  if (nsize > osize || p == NULL) {          /* growing: may fail */
    long c = ++b->calls;
    if (c == b->fail_at || (!b->once && c > b->fail_at)) {
      b->refused++;
      return NULL;
    }
  }
  return realloc(p, nsize);
}


/* mark(): the script's set-up is done; its I/O starts. */
static int l_mark(lua_State *L) {
  budget *b = lua_touserdata(L, lua_upvalueindex(1));
  b->mark = b->calls;
  return 0;
}


static int nreports;
static void quiet_report(void *ud, corio_runtime *rt, corio_report_kind kind,
                         const char *msg, const char *traceback) {
  (void)ud; (void)rt; (void)kind; (void)msg; (void)traceback;
  nreports++;
}


/* Every step is a task; the main task awaits them all and fails if any
** did, so a clean run exits 0 and a run short of memory exits 1. */
static const char *const script =
  "local path, dir = ...\n"
  "local corio = require 'corio'\n"
  "local net = require 'corio.net'\n"
  "local fs = require 'corio.fs'\n"
  "local process = require 'corio.process'\n"
  "local executor = require 'corio.executor'\n"
  "local signal = require 'corio.signal'\n"
  "mark()\n"
  "local server = net.serve('127.0.0.1', 0, function(s)\n"
  "  for data in s:lines(65536) do s:write(data) end\n"
  "end)\n"
  "local _, port = server:address()\n"
  "local steps = {\n"
  "  function()\n"
  "    local s = net.connect('127.0.0.1', port)\n"
  "    for i = 1, 3 do\n"
  "      s:write('line ' .. i .. '\\n')\n"
  "      assert(s:readuntil('\\n') == 'line ' .. i .. '\\n')\n"
  "    end\n"
  "    s:close()\n"
  "  end,\n"
  "  function() assert(#fs.read_file(path) == 3000) end,\n"
  "  function()\n"
  "    local f <close> = fs.open(path)\n"
  "    assert(#f:read(100) == 100)\n"
  "    assert(f:stat().size == 3000)\n"
  "  end,\n"
  "  function() corio.sleep(0.001) corio.sleep(0.002) end,\n"
  "  function()\n"
  "    local r = process.exec({'/bin/sh', '-c', 'echo hi'})\n"
  "    assert(r.code == 0 and r.stdout == 'hi\\n')\n"
  "  end,\n"
  "  function() assert(#net.resolve('localhost') > 0) end,\n"
  "  function()\n"
  "    local ex <close> = executor.thread_pool(1)\n"
  "    assert(ex:run(function(a) return a + 1 end, 41) == 42)\n"
  "  end,\n"
  "  function()\n"
  "    local a <close> = net.udp({host = '127.0.0.1', port = 0})\n"
  "    local b <close> = net.udp()\n"
  "    local _, p = a:sockname()\n"
  "    b:sendto('ping', '127.0.0.1', p)\n"
  "    local data, h, fp = a:recvfrom()\n"
  "    assert(data == 'ping')\n"
  "    a:sendto('pong', h, fp)\n"
  "    assert(b:recvfrom() == 'pong')\n"
  "  end,\n"
  /* SIGWINCH: ignored by default, so a handler that could not be
  ** installed leaves the process alive. */
  "  function()\n"
  "    local t = corio.spawn(signal.wait, 'SIGWINCH')\n"
  "    corio.yield()\n"
  "    if not t:done() then process.kill(process.pid, 'SIGWINCH') end\n"
  "    assert(t:await() == 'SIGWINCH')\n"
  "  end,\n"
  "  function()\n"
  "    local got = corio.future()\n"
  "    local w <close> = fs.watch(dir, function(name)\n"
  "      if name == 'new' and not got:done() then got:set_result(1) end\n"
  "    end)\n"
  "    fs.write_file(dir .. '/new', 'x')\n"
  "    got:await()\n"
  "  end,\n"
  "}\n"
  "local tasks = {}\n"
  "for i, f in ipairs(steps) do tasks[i] = corio.spawn(f) end\n"
  "local failed\n"
  "for _, t in ipairs(tasks) do\n"
  "  local ok, err = pcall(t.await, t)\n"
  "  if not ok then failed = failed or err end\n"
  "end\n"
  "server:close()\n"
  "if failed then error(failed, 0) end\n";


static const char *file_path, *dir_path;
static char hung_msg[80];      /* the alarm's message: which run */
static int tty = -1;           /* stderr before the sweep silenced it */

static void on_alarm(int sig) {
  (void)sig;
  if (write(tty >= 0 ? tty : 2, hung_msg, strlen(hung_msg)) < 0) _exit(3);
  _exit(3);
}


static int push_args(lua_State *L) {
  lua_pushstring(L, file_path);
  lua_pushstring(L, dir_path);
  return 2;
}

/* One run failing at fail_at; returns the exit code (or -1: set-up
** failed), *calls the allocations it made. */
static int io_try(long fail_at, int once, budget *out) {
  budget b = {0, fail_at, once, 0, 0};
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.alloc = limited_alloc;
  cfg.alloc_ud = &b;
  cfg.report = quiet_report;
  int err = 0, code = -1;
  snprintf(hung_msg, sizeof hung_msg, "oom_io: the run failing at %ld%s "
           "hung\n", fail_at, once ? " (once)" : "");
  alarm(120);                      /* valgrind is slow; a hang fails */
  corio_runtime *rt = corio_create(&cfg, &err);
  if (rt == NULL) {
    CHECK_EQ(err, CORIO_ENOMEM);
  } else {
    lua_State *L = corio_state(rt);
    if (lua_checkstack(L, 4)) {
      lua_pushlightuserdata(L, &b);
      lua_pushcclosure(L, l_mark, 1);         /* no allocation: a light */
      lua_setglobal(L, "mark");               /* may fail: no mark() */
    }
    if (luaL_loadstring(L, script) == LUA_OK) {
      /* a host's own pushes can fail too: made protected, as any host
         running out of memory must */
      lua_pushcfunction(L, push_args);        /* no allocation: a light */
      if (lua_pcall(L, 0, 2, 0) == LUA_OK) {
        code = corio_run_main(rt, 2);
        CHECK(code == 0 || code == 1);
      } else {
        lua_pop(L, 2);                        /* the chunk, the error */
      }
    } else {
      lua_pop(L, 1);
    }
    CHECK_EQ(corio_free(rt), CORIO_OK);
  }
  alarm(0);
  if (out) *out = b;
  return code;
}


static void oom_io_sweep(void) {
  char tmpl[] = "/tmp/corio-oom-XXXXXX";
  int fd = mkstemp(tmpl);
  CHECK(fd >= 0);
  if (fd < 0) return;
  char data[3000];
  memset(data, 'x', sizeof data);
  CHECK_EQ(write(fd, data, sizeof data), (long)sizeof data);
  close(fd);
  file_path = tmpl;
  char dtmpl[] = "/tmp/corio-oom-dir-XXXXXX";
  dir_path = mkdtemp(dtmpl);
  CHECK(dir_path != NULL);
  if (dir_path == NULL) return;
  char newf[64];
  snprintf(newf, sizeof newf, "%s/new", dir_path);
  signal(SIGALRM, on_alarm);

  const char *at = getenv("CORIO_OOM_AT");     /* one run, to debug it */
  if (at) {
    budget b;
    int code = io_try(atol(at), getenv("CORIO_OOM_ONCE") != NULL, &b);
    printf("  exit code %d (%ld allocations, I/O from %ld, %ld refused)\n",
           code, b.calls, b.mark, b.refused);
    unlink(newf);
    rmdir(dir_path);
    unlink(tmpl);
    return;
  }
  budget whole;
  nreports = 0;
  CHECK_EQ(io_try(1L << 40, 0, &whole), 0);   /* the script works */
  CHECK_EQ(nreports, 0);
  CHECK(whole.mark > 0);
  long total = whole.calls, mark = whole.mark;

  fflush(stderr);
  int saved = dup(2);                         /* reports are expected */
  tty = saved;
  FILE *null = fopen("/dev/null", "w");
  dup2(fileno(null), 2);
  /* Set-up (loading the modules) is swept sparsely: the create/run/free
  ** sweep of stress_test.c covers it.  The I/O part, densely: every
  ** allocation of its first 2,000 (every scale-th under valgrind), then
  ** 500 more points, so the time stays bounded if the script grows. */
  long setup_step = mark / t_scale(200) + 1;
  long dense = total - mark < 2000 ? total - mark : 2000;
  long io_step = dense / t_scale(dense);
  if (io_step < 1) io_step = 1;
  long tail_step = (total - mark - dense) / 500 + 1;
  int tried = 0, codes[2] = {0, 0};
  for (long n = 1; n <= total + 1;
       n += n < mark ? setup_step : n < mark + dense ? io_step : tail_step) {
    for (int once = 0; once <= 1; once++) {
      budget b;
      int code = io_try(n, once, &b);
      if (code == 0 || code == 1) codes[code]++;
      tried++;
    }
  }
  dup2(saved, 2);
  close(saved);
  tty = -1;
  fclose(null);
  signal(SIGALRM, SIG_DFL);
  unlink(newf);
  rmdir(dir_path);
  unlink(tmpl);
  printf("  %d runs over %ld allocations (I/O from %ld): %d exit 0, "
         "%d exit 1\n", tried, total, mark, codes[0], codes[1]);
}


const t_case t_oom[] = {
  {"oom_io_sweep", oom_io_sweep},
  {NULL, NULL}
};
