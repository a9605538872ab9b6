/*
** threads_test.c -- the calls marked "any thread": ports under load and
** racing corio_free, C futures settled from threads, corio_stop from a
** thread, two runtimes on two threads.  Run under TSan too.
*/
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"

#define NPROD 8

/* {================================================================
** 8 producers x 125,000 posts: each runs once, in order per producer,
** at most 1,000 per loop turn.
** ================================================================ */

static long last_seq[NPROD], runs, out_of_order, this_turn, max_turn;

static void on_post(corio_runtime *rt, void *ud) {
  (void)rt;
  uintptr_t v = (uintptr_t)ud;
  int prod = (int)(v & 0xff);
  long seq = (long)(v >> 8);
  if (seq != last_seq[prod] + 1) out_of_order++;
  last_seq[prod] = seq;
  runs++;
  this_turn++;
}

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  if (this_turn > max_turn) max_turn = this_turn;
  this_turn = 0;
}

typedef struct producer {
  uv_thread_t th;
  corio_port *port;
  int id;
  long n, ok, full;
} producer;

static void produce(void *arg) {
  producer *p = arg;
  for (long i = 1; i <= p->n; i++) {
    int rc = corio_port_post(p->port, on_post,
                             (void *)(uintptr_t)((uintptr_t)i << 8 | p->id),
                             NULL);
    if (rc == CORIO_OK) p->ok++;
  }
  corio_port_close(p->port);
}

static void posts_million(void) {
  corio_runtime *rt = t_new();
  long per = t_scale(125000);
  memset(last_seq, 0, sizeof last_seq);
  runs = out_of_order = this_turn = max_turn = 0;
  uv_prepare_t prep;                          /* a host handle: counts */
  uv_prepare_init(corio_loop(rt), &prep);     /* the posts of a turn */
  uv_prepare_start(&prep, on_prepare);
  uv_unref((uv_handle_t *)&prep);
  corio_port *port = corio_port_open(rt);
  producer ps[NPROD];
  for (int i = 0; i < NPROD; i++) {
    ps[i] = (producer){.port = corio_port_dup(port), .id = i, .n = per};
    uv_thread_create(&ps[i].th, produce, &ps[i]);
  }
  corio_port_close(port);                     /* the threads hold theirs */
  double t0 = t_now();
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  double secs = t_now() - t0;
  long ok = 0;
  for (int i = 0; i < NPROD; i++) {
    uv_thread_join(&ps[i].th);
    ok += ps[i].ok;
  }
  CHECK_EQ(ok, per * NPROD);
  CHECK_EQ(runs, per * NPROD);
  CHECK_EQ(out_of_order, 0);
  CHECK(max_turn <= 1000);
  printf("  %ld posts in %.2f s (%.0f ns each), at most %ld per turn\n",
         runs, secs, secs * 1e9 / (double)runs, max_turn);
  uv_close((uv_handle_t *)&prep, NULL);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}

/* }================================================================ */


static long drops;
static uv_mutex_t drop_mu;

static void count_drop(void *ud) {
  (void)ud;
  uv_mutex_lock(&drop_mu);
  drops++;
  uv_mutex_unlock(&drop_mu);
}

static void count_run(corio_runtime *rt, void *ud) {
  (void)rt;
  (void)ud;
  runs++;
}


/* A bounded queue: the post past port_queue_max gives EFULL and drops. */
static void bounded_queue(void) {
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.port_queue_max = 10;
  corio_runtime *rt = corio_create(&cfg, NULL);
  corio_port *p = corio_port_open(rt), *other = corio_port_open(rt);
  runs = drops = 0;
  for (int i = 0; i < 10; i++)
    CHECK_EQ(corio_port_post(p, count_run, NULL, count_drop), CORIO_OK);
  CHECK_EQ(corio_port_post(p, count_run, NULL, count_drop), CORIO_EFULL);
  CHECK_EQ(drops, 1);
  /* The bound is per port. */
  CHECK_EQ(corio_port_post(other, count_run, NULL, count_drop), CORIO_OK);
  corio_port_close(p);
  corio_port_close(other);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);
  CHECK_EQ(runs, 11);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  CHECK_EQ(drops, 1);
}


/* Posts racing corio_free: OK, EFULL or ECLOSED, and every post is
** consumed once (runs + drops = posts).  The queue is bounded: unbounded,
** four posting threads outrun a main thread slowed down by valgrind and
** queue items until the machine runs out of memory. */
typedef struct racer {
  uv_thread_t th;
  corio_port *port;
  long posts, ok, closed;
} racer;

static void race(void *arg) {
  racer *r = arg;
  for (;;) {
    int rc = corio_port_post(r->port, count_run, NULL, count_drop);
    r->posts++;
    if (rc == CORIO_OK) r->ok++;
    else if (rc == CORIO_EFULL) sched_yield();
    else if (rc == CORIO_ECLOSED) {
      if (++r->closed == 100) break;          /* it stays closed */
    } else CHECK(rc == CORIO_OK || rc == CORIO_ECLOSED);
  }
  corio_port_close(r->port);
}

static void posts_race_free(void) {
  runs = drops = 0;
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.port_queue_max = 4096;
  corio_runtime *rt = corio_create(&cfg, NULL);
  CHECK(rt != NULL);
  corio_port *port = corio_port_open(rt);
  racer rs[4];
  for (int i = 0; i < 4; i++) {
    rs[i] = (racer){.port = corio_port_dup(port)};
    uv_thread_create(&rs[i].th, race, &rs[i]);
  }
  corio_port_close(port);
  for (int i = 0; i < 20; i++) corio_loop_run(rt, CORIO_RUN_ONCE);
  CHECK_EQ(corio_free(rt), CORIO_OK);
  long posts = 0, ok = 0;
  for (int i = 0; i < 4; i++) {
    uv_thread_join(&rs[i].th);
    posts += rs[i].posts;
    ok += rs[i].ok;
  }
  CHECK(runs > 0);
  CHECK(runs <= ok);
  CHECK_EQ(runs + drops, posts);
}


/* {================================================================
** C futures settled from threads
** ================================================================ */

static int push_answer(lua_State *L, void *ud) {
  lua_pushinteger(L, (lua_Integer)(intptr_t)ud);
  return 1;
}

static void resolve_later(void *arg) {
  corio_future *f = arg;
  usleep(100 * 1000);
  CHECK_EQ(corio_future_resolve(f, push_answer, (void *)(intptr_t)42,
                                NULL), CORIO_OK);
  corio_future_release(f);
}

static int l_slow_answer(lua_State *L) {
  corio_future *f = corio_future_new(L);      /* pushed: the Future */
  uv_thread_t *th = lua_touserdata(L, lua_upvalueindex(1));
  uv_thread_create(th, resolve_later, f);
  return 1;
}

/* corio_run (which reports deadlocks) waits for a future a thread will
** settle in 100 ms: a pending C future is a wake source. */
static void cfuture_from_thread(void) {
  corio_runtime *rt = t_new();
  lua_State *L = corio_state(rt);
  uv_thread_t th;
  lua_pushlightuserdata(L, &th);
  lua_pushcclosure(L, l_slow_answer, 1);
  lua_setglobal(L, "slow_answer");
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "assert(slow_answer():await() == 42)"), 0);
  uv_thread_join(&th);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


static int nreports;
static void count_report(void *ud, corio_runtime *rt, corio_report_kind k,
                         const char *msg, const char *tb) {
  (void)ud; (void)rt; (void)k; (void)tb;
  fprintf(stderr, "report: %s\n", msg);
  nreports++;
}

typedef struct late { corio_future *f; uv_sem_t go; int rc; } late;

static void resolve_when_told(void *arg) {
  late *l = arg;
  uv_sem_wait(&l->go);
  l->rc = corio_future_resolve(l->f, push_answer, (void *)1, count_drop);
  corio_future_release(l->f);
}

/* Resolved by a thread after its awaiter was cancelled: ESTATE, the
** data dropped once, nothing reported. */
static void cfuture_late_resolve(void) {
  drops = 0;
  nreports = 0;
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.report = count_report;
  corio_runtime *rt = corio_create(&cfg, NULL);
  lua_State *L = corio_state(rt);
  late l;
  uv_sem_init(&l.go, 0);
  l.f = corio_future_new(L);
  lua_setglobal(L, "cf");
  uv_thread_t th;
  uv_thread_create(&th, resolve_when_told, &l);
  CHECK_EQ(t_run_main(rt, "local corio = require 'corio'\n"
                          "local ok, e = pcall(corio.wait_for, cf, 0.02)\n"
                          "assert(not ok and e.code == 'TIMEOUT')\n"
                          "assert(cf:cancelled())"), 0);
  uv_sem_post(&l.go);
  uv_thread_join(&th);
  CHECK_EQ(l.rc, CORIO_ESTATE);
  CHECK_EQ(drops, 1);
  CHECK_EQ(corio_loop_run(rt, CORIO_RUN_DEFAULT), 0);  /* the release */
  CHECK_EQ(corio_free(rt), CORIO_OK);
  CHECK_EQ(nreports, 0);
  uv_sem_destroy(&l.go);
}

/* }================================================================ */


/* corio_stop from another thread ends corio_run's wait. */
static void stop_later(void *arg) {
  usleep(50 * 1000);
  corio_stop(arg);
}

static void stop_from_thread(void) {
  corio_runtime *rt = t_new();
  CHECK(t_dostring(rt, "corio = require 'corio'\n"
                       "corio.spawn(function() corio.sleep(30) end)")
        == LUA_OK);
  uv_thread_t th;
  uv_thread_create(&th, stop_later, rt);
  double t0 = t_now();
  CHECK_EQ(corio_run(rt), 0);
  CHECK(t_now() - t0 < 10);
  uv_thread_join(&th);
  CHECK_EQ(corio_free(rt), CORIO_OK);
}


/* Two runtimes, each on its own thread, at the same time. */
static void run_one(void *arg) {
  int *rc = arg;
  corio_runtime *rt = corio_new();
  if (rt == NULL) {
    *rc = -1;
    return;
  }
  lua_State *L = corio_state(rt);
  luaL_loadstring(L,
    "local corio = require 'corio'\n"
    "local fs = require 'corio.fs'\n"
    "local q = require('corio.sync').Queue(4)\n"
    "local t = {}\n"
    "for i = 1, 50 do t[i] = corio.spawn(function() corio.sleep(0.001) "
    "q:put(i) return i end) end\n"
    "local sum = 0\n"
    "for i = 1, 50 do sum = sum + q:get() end\n"
    "assert(sum == 1275)\n"
    "assert(#fs.read_file('/etc/hostname') >= 0)\n"
    "assert(corio.to_thread(function(a) return a + 1 end, 1) == 2)\n");
  *rc = corio_run_main(rt, 0);
  corio_free(rt);
}

static void two_runtimes(void) {
  uv_thread_t a, b;
  int ra = -2, rb = -2;
  uv_thread_create(&a, run_one, &ra);
  uv_thread_create(&b, run_one, &rb);
  uv_thread_join(&a);
  uv_thread_join(&b);
  CHECK_EQ(ra, 0);
  CHECK_EQ(rb, 0);
}


static void init_mu(void) { uv_mutex_init(&drop_mu); }

static void setup(void) {
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, init_mu);
}

static void t_bounded(void) { setup(); bounded_queue(); }
static void t_race(void) { setup(); posts_race_free(); }
static void t_late(void) { setup(); cfuture_late_resolve(); }

const t_case t_threads[] = {
  {"posts_million", posts_million},
  {"bounded_queue", t_bounded},
  {"posts_race_free", t_race},
  {"cfuture_from_thread", cfuture_from_thread},
  {"cfuture_late_resolve", t_late},
  {"stop_from_thread", stop_from_thread},
  {"two_runtimes", two_runtimes},
  {NULL, NULL}
};
