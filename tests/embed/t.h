/*
** t.h -- the little harness of the embedding tests (tests/embed/):
** CHECK records a failure and goes on; TEST registers a test by name;
** scale() shrinks the big counts under valgrind (CORIO_EMBED_SCALE).
*/
#ifndef CORIO_EMBED_T_H
#define CORIO_EMBED_T_H

#include <stdio.h>

#include <lua.h>
#include <lauxlib.h>

#include "corio.h"

extern int t_failures;

#define CHECK(cond) do { if (!(cond)) { \
  fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
  t_failures++; } } while (0)

#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), \
  b_ = (long long)(b); if (a_ != b_) { \
  fprintf(stderr, "%s:%d: check failed: %s == %s (%lld vs %lld)\n", \
          __FILE__, __LINE__, #a, #b, a_, b_); t_failures++; } } while (0)

typedef struct t_case { const char *name; void (*fn)(void); } t_case;

/* Each file lists its tests in a table ending with {NULL, NULL}. */
extern const t_case t_api[], t_threads[], t_stress[], t_oom[], t_teardown[];

long t_scale(long n);                  /* n, or n / CORIO_EMBED_SCALE */
double t_now(void);                    /* monotonic seconds */
corio_runtime *t_new(void);            /* corio_new, checked */
corio_runtime *t_new_on(uv_loop_t *loop);  /* NULL: its own; checked */
int t_count_fds(void);                 /* open fds of this process */
int t_count_threads(void);             /* its threads */
int t_wait_threads(int want);          /* the count, once at most want (2 s) */
int t_count_children(void);            /* its child processes, zombies too */
int t_dostring(corio_runtime *rt, const char *code);  /* LUA_OK or prints */
/* Runs code as the main task body (may await); returns the exit code. */
int t_run_main(corio_runtime *rt, const char *code);

#endif
