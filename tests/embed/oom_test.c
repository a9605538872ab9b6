/*
** oom_test.c -- out of memory while I/O runs: the Lua allocator refuses
** the Nth call (once, or from then on) of a script that serves and
** connects TCP, reads files, sleeps, spawns a process, resolves a name,
** runs an executor job, does a UDP round trip, waits for a signal and
** watches a directory, for every N over the run (densely over the I/O);
** and of a script that only starts and waits for child processes.  Each
** run must return an exit code (never abort or hang), leave no child the
** runtime lost track of, and corio_free must leave nothing behind
** (valgrind and ASan check the leaks).
**
** The runs spend most of their time waiting (children, timers, the
** thread pool), so they are spread over forked workers
** (CORIO_OOM_JOBS, default 8): each runs every jobs-th point, under the
** same valgrind or ASan as the parent, and reports its counts through a
** pipe; a worker whose leak check failed exits non-zero.
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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


/* [budget] -> (): the global mark(), set protected (interning its
** name allocates). */
static int set_mark(lua_State *L) {
  lua_pushcclosure(L, l_mark, 1);
  lua_setglobal(L, "mark");
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
#define RUN_STEPS \
  "local tasks = {}\n" \
  "for i, f in ipairs(steps) do tasks[i] = corio.spawn(f) end\n" \
  "local failed\n" \
  "for _, t in ipairs(tasks) do\n" \
  "  local ok, err = pcall(t.await, t)\n" \
  "  if not ok then failed = failed or err end\n" \
  "end\n"

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
  RUN_STEPS
  "server:close()\n"
  "if failed then error(failed, 0) end\n";


/* Children only: started with and without pipes, waited for, fed. */
static const char *const spawn_script =
  "local corio = require 'corio'\n"
  "local process = require 'corio.process'\n"
  "mark()\n"
  "local steps = {\n"
  "  function()\n"
  "    local r = process.exec({'/bin/sh', '-c', 'echo hi'})\n"
  "    assert(r.code == 0 and r.stdout == 'hi\\n')\n"
  "  end,\n"
  "  function()\n"
  "    local r = process.exec({'cat'}, {input = 'fed'})\n"
  "    assert(r.stdout == 'fed')\n"
  "  end,\n"
  "  function()\n"
  "    local p = process.spawn({'/bin/sh', '-c', 'exit 3'})\n"
  "    assert(p:wait() == 3)\n"
  "  end,\n"
  "  function()\n"
  "    local p = process.spawn({'true'}, {stdout = 'null'})\n"
  "    assert(p:wait() == 0)\n"
  "  end,\n"
  "}\n"
  RUN_STEPS
  "if failed then error(failed, 0) end\n";


static const char *file_path, *dir_path;
static char hung_msg[80];      /* the alarm's message: which run */
static int tty = -1;           /* stderr before the sweep silenced it */

static void on_alarm(int sig) {
  (void)sig;
  if (write(tty >= 0 ? tty : 2, hung_msg, strlen(hung_msg)) < 0) _exit(3);
  _exit(3);
}


/* A line on the real stderr while the sweep has silenced fd 2. */
static void note(const char *msg) {
  if (write(tty >= 0 ? tty : 2, msg, strlen(msg)) < 0) return;
}


static int push_args(lua_State *L) {
  lua_pushstring(L, file_path);
  lua_pushstring(L, dir_path);
  return 2;
}

/* One run of script failing at fail_at; returns the exit code (or -1:
** set-up failed), *out the allocations it made.  Once the runtime is
** freed every child the script started must have been reaped: one still
** there (running or a zombie) is a child the runtime lost track of.  (A
** run may end with children still running: out of memory, a lost exit
** callback stops the run, and teardown then ends them.) */
static int io_try(const char *script_text, long fail_at, int once,
                  budget *out) {
  budget b = {0, fail_at, once, 0, 0};
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.alloc = limited_alloc;
  cfg.alloc_ud = &b;
  cfg.report = quiet_report;
  int err = 0, code = -1;
  snprintf(hung_msg, sizeof hung_msg, "oom: the run failing at %ld%s "
           "hung\n", fail_at, once ? " (once)" : "");
  alarm(120);                      /* valgrind is slow; a hang fails */
  corio_runtime *rt = corio_create(&cfg, &err);
  if (rt == NULL) {
    CHECK_EQ(err, CORIO_ENOMEM);
  } else {
    lua_State *L = corio_state(rt);
    if (lua_checkstack(L, 4)) {               /* may fail: no mark() */
      lua_pushcfunction(L, set_mark);         /* no allocation: a light */
      lua_pushlightuserdata(L, &b);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
    }
    if (luaL_loadstring(L, script_text) == LUA_OK) {
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
    CHECK_EQ(t_count_children(), 0);
  }
  alarm(0);
  if (out) *out = b;
  return code;
}


#if defined(__SANITIZE_THREAD__)
#define NO_FORK 1
#elif defined(__SANITIZE_ADDRESS__)
#define LSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NO_FORK 1
#elif __has_feature(address_sanitizer)
#define LSAN 1
#endif
#endif
#ifdef LSAN
#include <stdint.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
/* The sweep silences fd 2; the sanitizers' reports of runs in this
** process go to the real one.  A worker writes them to a file of its own
** instead (LSan's check in a forked child warns about the parent's
** threads, which are not there), and the parent shows that file if the
** worker failed.  (Never both: setting the path in a child closes the fd
** it inherited as the report fd -- the worker's tty.) */
#define REPORTS "/tmp/corio-oom-reports"
#define report_to(fd) __sanitizer_set_report_fd((void *)(intptr_t)(fd))
#define reports_to_file() __sanitizer_set_report_path(REPORTS)

static void show_reports(pid_t pid, int failed);
#else
#define report_to(fd) ((void)(fd))
#define reports_to_file() ((void)0)
#define show_reports(pid, failed) ((void)(pid), (void)(failed))
#endif

/* Workers for the sweep: TSan kills a child of a threaded process that
** starts threads, so there the runs stay in this process. */
static int sweep_jobs(void) {
#ifdef NO_FORK
  return 1;
#else
  const char *j = getenv("CORIO_OOM_JOBS");
  int n = j ? atoi(j) : 8;
  return n < 1 ? 1 : n > 64 ? 64 : n;
#endif
}


typedef struct tally { int tried, codes[2], failures; } tally;

/* Runs every jobs-th point from the worker-th, both ways (once, and from
** then on). */
static void run_points(const char *script_text, const long *pts, int npts,
                       int worker, int jobs, tally *t) {
  for (int i = worker; i < npts; i += jobs) {
    for (int once = 0; once <= 1; once++) {
      int before = t_failures;
      int code = io_try(script_text, pts[i], once, NULL);
      if (code == 0 || code == 1) t->codes[code]++;
      t->tried++;
      if (t_failures != before) {
        char msg[96];
        snprintf(msg, sizeof msg, "oom: the run failing at %ld%s failed\n",
                 pts[i], once ? " (once)" : "");
        note(msg);
      }
    }
  }
  t->failures = t_failures;
}


/* Each worker gets a directory of its own (the script's fs.watch). */
static void worker_main(const char *script_text, const long *pts, int npts,
                        int worker, int jobs, int fd) {
  char wdir[96], newf[112];
  snprintf(wdir, sizeof wdir, "%s/w%d", dir_path, worker);
  snprintf(newf, sizeof newf, "%s/new", wdir);
  if (mkdir(wdir, 0700) == 0) dir_path = wdir;
  reports_to_file();
  tally t = {0, {0, 0}, 0};
  t_failures = 0;
  run_points(script_text, pts, npts, worker, jobs, &t);
  unlink(newf);
  rmdir(wdir);
  if (write(fd, &t, sizeof t) != (ssize_t)sizeof t) t.failures++;
  close(fd);
  /* _exit: exit() would run libuv's destructor, which joins the thread
  ** pool's threads -- the parent's, which a forked child does not have.
  ** The leak check runs all the same: valgrind's at any exit, LSan's on
  ** request (it exits non-zero if it finds one). */
#ifdef LSAN
  __lsan_do_leak_check();
#endif
  _exit(t.failures ? 1 : 0);
}


#ifdef LSAN
/* A worker's sanitizer reports: shown if it failed, removed anyway. */
static void show_reports(pid_t pid, int failed) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "%s.%d", REPORTS, (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  size_t n;
  while (failed && (n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
    buf[n] = '\0';
    note(buf);
  }
  fclose(f);
  unlink(path);
}
#endif


/* Runs the points on the workers and adds up what they report. */
static void run_parallel(const char *script_text, const long *pts, int npts,
                         tally *sum) {
  int jobs = sweep_jobs();
  if (jobs == 1) {
    report_to(tty);
    run_points(script_text, pts, npts, 0, 1, sum);
    report_to(2);
    return;
  }
  int fds[64];
  pid_t pids[64];
  fflush(NULL);
  for (int w = 0; w < jobs; w++) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pids[w] = fork();
    CHECK(pids[w] >= 0);
    if (pids[w] == 0) {
      close(p[0]);
      for (int k = 0; k < w; k++) close(fds[k]);
      worker_main(script_text, pts, npts, w, jobs, p[1]);
    }
    close(p[1]);
    fds[w] = p[0];
  }
  for (int w = 0; w < jobs; w++) {
    tally t = {0, {0, 0}, 1};
    if (read(fds[w], &t, sizeof t) != (ssize_t)sizeof t) t.failures = 1;
    close(fds[w]);
    int st = 0;
    CHECK_EQ(waitpid(pids[w], &st, 0), pids[w]);
    int failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (failed) {
      char msg[64];
      snprintf(msg, sizeof msg, "oom: worker %d ended with status %d\n", w,
               st);
      note(msg);
      t_failures++;
    }
    show_reports(pids[w], failed);
    sum->tried += t.tried;
    sum->codes[0] += t.codes[0];
    sum->codes[1] += t.codes[1];
    t_failures += t.failures;
  }
}


/* The points of a sweep: the set-up sparsely, at about nsetup points
** (the create/run/free sweep of stress_test.c covers it), the first 2,000 allocations of the I/O
** densely (every scale-th under valgrind), then 500 more points, so the
** time stays bounded if the script grows.  Returns how many; *pts is
** malloc'ed. */
static int sweep_points(long total, long mark, long nsetup, long **pts) {
  long setup_step = mark / t_scale(nsetup) + 1;
  long dense = total - mark < 2000 ? total - mark : 2000;
  long io_step = dense / t_scale(dense);
  if (io_step < 1) io_step = 1;
  long tail_step = (total - mark - dense) / 500 + 1;
  int n = 0, cap = 64;
  long *v = malloc((size_t)cap * sizeof *v);
  for (long at = 1; v && at <= total + 1;
       at += at < mark ? setup_step : at < mark + dense ? io_step
                                                        : tail_step) {
    if (n == cap) {
      long *w = realloc(v, (size_t)(cap *= 2) * sizeof *v);
      if (w == NULL) break;
      v = w;
    }
    v[n++] = at;
  }
  *pts = v;
  return v ? n : 0;
}


static void sweep(const char *label, const char *script_text, long nsetup) {
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
  const char *top_dir = dir_path;
  char newf[64];
  snprintf(newf, sizeof newf, "%s/new", dir_path);
  signal(SIGALRM, on_alarm);

  const char *at = getenv("CORIO_OOM_AT");     /* one run, to debug it */
  if (at) {
    budget b;
    int code = io_try(script_text, atol(at),
                      getenv("CORIO_OOM_ONCE") != NULL, &b);
    printf("  exit code %d (%ld allocations, I/O from %ld, %ld refused)\n",
           code, b.calls, b.mark, b.refused);
  } else {
    budget whole;
    nreports = 0;
    CHECK_EQ(io_try(script_text, 1L << 40, 0, &whole), 0);  /* it works */
    CHECK_EQ(nreports, 0);
    CHECK(whole.mark > 0);
    long *pts = NULL;
    int npts = sweep_points(whole.calls, whole.mark, nsetup, &pts);
    fflush(stderr);
    int saved = dup(2);                       /* reports are expected */
    tty = saved;
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), 2);
    tally sum = {0, {0, 0}, 0};
    run_parallel(script_text, pts, npts, &sum);
    dup2(saved, 2);
    close(saved);
    tty = -1;
    fclose(null);
    free(pts);
    printf("  %s: %d runs over %ld allocations (I/O from %ld) on %d "
           "workers: %d exit 0, %d exit 1\n", label, sum.tried, whole.calls,
           whole.mark, sweep_jobs(), sum.codes[0], sum.codes[1]);
  }
  signal(SIGALRM, SIG_DFL);
  unlink(newf);
  rmdir(top_dir);
  dir_path = NULL;
  unlink(tmpl);
}


static void oom_io_sweep(void) {
  sweep("I/O", script, 200);
}


/* A child started while memory runs out is always either not started or
** supervised: nothing that can fail comes after uv_spawn.  (The set-up is
** the I/O sweep's: a few points suffice here.) */
static void oom_spawn_sweep(void) {
  sweep("spawn", spawn_script, 10);
}


const t_case t_oom[] = {
  {"oom_io_sweep", oom_io_sweep},
  {"oom_spawn_sweep", oom_spawn_sweep},
  {NULL, NULL}
};
