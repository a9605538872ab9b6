/*
** main.c -- runs the embedding tests: every one, or those whose name
** contains argv[1].  Exit status 1 if any check failed.
*/
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

int t_failures;


long t_scale(long n) {
  const char *s = getenv("CORIO_EMBED_SCALE");
  long d = s ? atol(s) : 1;
  return d > 1 ? (n / d > 0 ? n / d : 1) : n;
}


double t_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


/* Entries of a /proc directory (with . and ..), -1 if unreadable. */
static int count_entries(const char *dir) {
  int n = 0;
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

int t_count_fds(void) { return count_entries("/proc/self/fd"); }
int t_count_threads(void) { return count_entries("/proc/self/task"); }


/* A joined thread can still be listed for a moment: pthread_join returns
** when the kernel clears the thread's id, a little before it releases
** the task and its /proc/self/task entry.  So a count after a teardown
** waits (2 s at most) for the threads to be at most `want`. */
int t_wait_threads(int want) {
  int n = t_count_threads();
  for (int i = 0; i < 200 && n > want; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    n = t_count_threads();
  }
  return n;
}


int t_count_children(void) {
  int n = 0, self = (int)getpid();
  DIR *d = opendir("/proc");
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;                  /* gone meanwhile */
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *close = strrchr(buf, ')');   /* the name may hold spaces */
    int ppid = 0;
    char state;
    if (close && sscanf(close + 1, " %c %d", &state, &ppid) == 2 &&
        ppid == self)
      n++;
  }
  closedir(d);
  return n;
}


corio_runtime *t_new(void) {
  corio_runtime *rt = corio_new();
  if (rt == NULL) {
    fprintf(stderr, "corio_new failed\n");
    exit(2);
  }
  return rt;
}


corio_runtime *t_new_on(uv_loop_t *loop) {
  corio_config cfg;
  corio_config_init(&cfg);
  cfg.loop = loop;
  corio_runtime *rt = corio_create(&cfg, NULL);
  CHECK(rt != NULL);
  return rt;
}


int t_dostring(corio_runtime *rt, const char *code) {
  lua_State *L = corio_state(rt);
  int st = luaL_dostring(L, code);
  if (st != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return st;
}


int t_run_main(corio_runtime *rt, const char *code) {
  lua_State *L = corio_state(rt);
  if (luaL_loadstring(L, code) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -100;
  }
  return corio_run_main(rt, 0);
}


int main(int argc, char **argv) {
  const t_case *const groups[] = {t_api, t_threads, t_stress, t_teardown,
                                  t_oom};
  int passed = 0, failed = 0;
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    for (const t_case *c = groups[g]; c->name; c++) {
      if (argc > 1 && strstr(c->name, argv[1]) == NULL) continue;
      int before = t_failures;
      double t0 = t_now();
      c->fn();
      int ok = t_failures == before;
      printf("%s %s (%.0f ms)\n", ok ? "ok  " : "FAIL", c->name,
             (t_now() - t0) * 1000);
      fflush(stdout);
      if (ok) passed++;
      else failed++;
    }
  }
  printf("embedding: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
