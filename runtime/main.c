/*
** main.c -- the corio binary: `corio [options] [script [args]]`.
**
** Like lua.c, it parses the command line, builds the global `arg` table
** and runs everything inside one protected task: the main task, so the
** top level of a script can await.  SIGINT cancels the main task (its
** cleanup runs, exit code 130), or once the main task has finished, ends
** whatever keeps the loop alive; a second SIGINT exits 130 at once
** (interrupt.c, which also reaches a step that never yields).
*/
#include <errno.h>    /* EPIPE */
#include <stdio.h>    /* fprintf */
#include <stdlib.h>   /* EXIT_FAILURE */
#include <string.h>   /* strcmp */
#include <unistd.h>   /* isatty */

#include "internal.h"

static const char *progname = "corio";
int luaopen_corio_edit(lua_State *L);         /* edit.c: the REPL's editor */
int corio__push_bundle(lua_State *L);         /* bundle.c: payload or 0 */
static corio_rt *the_rt;


static void usage(FILE *out) {
  fprintf(out,
    "usage: %s [options] [script [args]]\n"
    "       %s test [options] [paths]   run busted specs (--help for more)\n"
    "       %s bundle script.lua [-o name]   one standalone executable\n"
    "With no script, a REPL on a terminal (every line may await), else\n"
    "the script is read from stdin.  Available options are:\n"
    "  -e stat   execute string 'stat' (in the main task: it may await)\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -i        enter interactive mode after running the script\n"
    "  -v        show version information\n"
    "  --debug   warn when a step blocks the loop over 100 ms, report\n"
    "            futures never awaited, locks held at task exit and\n"
    "            handles left open, dump every task's stack on SIGQUIT\n"
    "            (also CORIO_DEBUG=1)\n"
    "  -h, --help  show this help\n"
    "  --        stop handling options\n"
    "  -         execute stdin and stop handling options\n"
    "In scripts, -e code and the REPL, `corio` is a global (require\n"
    "\"corio\" gives the same table).  Ctrl-C cancels the main task (its\n"
    "cleanup runs) and exits 130; a second Ctrl-C exits at once.\n",
    progname, progname, progname);
}


static void print_version(void) {
  printf("corio %s (%s, libuv %s)\n", CORIO_VERSION, LUA_RELEASE,
         uv_version_string());
}


/* Adds {kind=, [field]=value} to the actions list at -1. */
static void add_action(lua_State *L, const char *kind, const char *field,
                       const char *value) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (field) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, field);
  }
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}


/* Builds `arg` as lua.c does: arg[0] is the script, negative indices the
** interpreter and options, positive ones the script's arguments.  Pushes
** the script's arguments as a list {n=} for its `...`. [-0,+1] */
static void create_arg(lua_State *L, char **argv, int argc, int script) {
  if (script == argc) script = 0;             /* no script name */
  lua_createtable(L, argc - script, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  int n = argc - script - 1;
  lua_createtable(L, n, 1);
  for (int i = 1; i <= n; i++) {
    lua_pushstring(L, argv[script + i]);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
}


/* print, as Lua's (each line flushed), except that a stdout whose reader
** went away (EPIPE: SIGPIPE is ignored) ends the binary quietly, as a
** SIGPIPE would end lua5.4, instead of printing into the void. */
static int l_print(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', stdout);
    fwrite(s, 1, len, stdout);
    lua_pop(L, 1);
  }
  fputc('\n', stdout);
  if (fflush(stdout) != 0 && errno == EPIPE) {
    fflush(stderr);
    _exit(EXIT_SUCCESS);
  }
  return 0;
}


static int interrupted;

/* Calls the handler core.on_interrupt set (the REPL's), with whether the
** interrupt hook already raised in a running step; 0 if there is none. */
static int call_custom(corio_rt *rt, int delivered) {
  lua_State *L = rt->L;
  if (lua_getfield(L, LUA_REGISTRYINDEX, "corio.on_interrupt") !=
      LUA_TFUNCTION) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushboolean(L, delivered);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "%s: interrupt handler: %s\n", progname,
            luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
  }
  return 1;
}


/* The loop side of SIGINT (interrupt.c's handler ran first: a step that
** was running got CANCELLED "interrupted" from the hook).  The watcher
** stays on: stopping it would give SIGINT its default action back and
** drop interrupt.c's handler, which exits 130 on the second one. */
static void on_sigint(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  corio_rt *rt = the_rt;
  int delivered = corio__interrupt_seen();
  if (call_custom(rt, delivered)) return;
  interrupted = 1;
  rt->sigint_quiet = 1;                   /* one line, not a traceback */
  if (rt->main_task && rt->main_task->state != T_DONE)
    corio__task_cancel(rt, rt->main_task, rt->L, "interrupted");
  else                            /* only servers, watchers... are left */
    corio__stop_all(rt, "interrupted");
}


static void on_sigquit(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  if (corio__dump_pending()) corio__dump_tasks(the_rt, the_rt->L);
}


/* Parses options into the actions table at -1; returns the index of the
** script in argv (argc if none), or -1 after printing usage. */
static int parse(lua_State *L, int argc, char **argv, int *has_e,
                 int *interactive) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') return i;
    if (strcmp(a, "-") == 0) return i;
    if (strcmp(a, "--") == 0) return i + 1;
    if (strcmp(a, "--debug") == 0) {
      the_rt->debug = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return -2;
    }
    if (strcmp(a, "-v") == 0) {
      print_version();
      continue;
    }
    if (strcmp(a, "-i") == 0) {
      *interactive = 1;
      continue;
    }
    if (a[1] == 'e' || a[1] == 'l') {
      const char *v = a[2] ? a + 2 : argv[++i];
      if (i >= argc || v == NULL) {
        fprintf(stderr, "%s: '%s' needs argument\n", progname, a);
        usage(stderr);
        return -1;
      }
      if (a[1] == 'e') {
        add_action(L, "e", "code", v);
        *has_e = 1;
      } else {
        add_action(L, "l", "module", v);
      }
      continue;
    }
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
    usage(stderr);
    return -1;
  }
  return i;
}


/* Adds the script action (path NULL: read stdin). */
static void add_script(lua_State *L, const char *path) {
  add_action(L, "script", NULL, NULL);
  if (path && strcmp(path, "-") != 0) {
    lua_rawgeti(L, -1, (lua_Integer)lua_rawlen(L, -1));
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
  }
}


/* --debug: what the script opened and never closed, still open now that
** the program ends (corio_free will close it), by kind and creation
** site (scripts/debug.lua). */
static void report_leaks(corio_rt *rt) {
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "corio.debug");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK &&
      lua_getfield(L, -1, "at_exit") == LUA_TFUNCTION &&
      lua_pcall(L, 0, 1, 0) == LUA_OK && lua_isstring(L, -1) &&
      lua_rawlen(L, -1) > 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fflush(stderr);
  }
  lua_settop(L, top);
}


int main(int argc, char **argv) {
  corio_rt *rt = corio_new();
  if (rt == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n",
            progname);
    return EXIT_FAILURE;
  }
  the_rt = rt;
  lua_State *L = corio_state(rt);
  rt->stdout_epipe_exit = 1;
  lua_register(L, "print", l_print);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_corio_edit);   /* only the binary has it */
  lua_setfield(L, -2, "corio.edit");
  lua_pop(L, 1);
  lua_getglobal(L, "require");                /* the main task's body */
  lua_pushliteral(L, "corio.cli");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    corio_free(rt);
    return EXIT_FAILURE;
  }
  lua_newtable(L);                            /* body, actions */
  int script;
  if (corio__push_bundle(L)) {                /* body, actions, payload */
    script = 0;                               /* every argument is the
                                                 script's */
    lua_createtable(L, 0, 2);                 /* ..., payload, action */
    lua_pushliteral(L, "bundled");
    lua_setfield(L, -2, "kind");
    lua_insert(L, -2);
    lua_setfield(L, -2, "payload");           /* body, actions, action */
    lua_rawseti(L, -2, 1);
  } else if (argc > 1 && strcmp(argv[1], "bundle") == 0) {
    script = 1;
    add_action(L, "bundle", NULL, NULL);
  } else if (argc > 1 && strcmp(argv[1], "test") == 0) {
    script = 1;
    add_action(L, "test", NULL, NULL);
  } else {
    int has_e = 0, interactive = 0;
    script = parse(L, argc, argv, &has_e, &interactive);
    if (script < 0) {
      corio_free(rt);
      return script == -2 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    if (script < argc) {
      add_script(L, argv[script]);
    } else if (!has_e && !interactive &&
               (argc == 1 || strcmp(argv[argc - 1], "-v") != 0)) {
      if (isatty(0)) interactive = 1;         /* as lua: a REPL on a tty */
      else add_script(L, NULL);               /* a script on stdin */
    }
    if (interactive) add_action(L, "i", NULL, NULL);
  }
  create_arg(L, argv, argc, script);          /* body, actions, args */

  uv_signal_t sigint, sigquit;
  uv_signal_init(corio_loop(rt), &sigint);
  uv_signal_start(&sigint, on_sigint, SIGINT);
  uv_unref((uv_handle_t *)&sigint);
  const char *dbg = getenv("CORIO_DEBUG");
  if (dbg && dbg[0] && strcmp(dbg, "0") != 0) rt->debug = 1;
  uv_signal_init(corio_loop(rt), &sigquit);
  if (rt->debug) {
    uv_signal_start(&sigquit, on_sigquit, SIGQUIT);
    uv_unref((uv_handle_t *)&sigquit);
  }

  corio__interrupt_install(rt);              /* in front of libuv's */

  int code = corio_run_main(rt, 2);
  if (interrupted || corio__interrupt_pending()) code = 130;
  if (rt->debug) report_leaks(rt);
  corio__interrupt_remove();
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigquit, NULL);
  corio_free(rt);
  if (corio__teardown_stuck) {
    /* exit() would run libuv's destructor, which joins its thread pool:
    ** forever, if a thread is blocked in a call that never returns. */
    fflush(NULL);
    _exit(code);
  }
  return code;
}
