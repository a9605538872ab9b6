/*
** edit.c -- `corio.edit`, the REPL's line editor: Debian's libedit
** (BSD licensed) through its readline-compatible callback interface.
**
** Only the binary links it (main.c registers the module): libcorio and
** corio.so stay free of libedit.  The editor reads stdin one key at a time
** from a uv_poll watcher, so the loop keeps running while a line is typed
** (a server started from the REPL keeps serving).  libedit's state is
** global, so is this module's: there is one terminal.
**
**   edit.open(history_path, max)   -- set up, load the history
**   edit.read(prompt, fn)          -- fn(line) once a line is entered
**                                     (fn(nil) on Ctrl-D at an empty line)
**   edit.abort()                   -- drop the line being typed (Ctrl-C);
**                                     returns its text (nil: none read)
**   edit.isatty(fd)                -- whether fd is a terminal
**   edit.add(line)                 -- append to the history and its file
**   edit.complete(fn)              -- fn(before_cursor, word) -> list of
**                                     words that may replace `word`
**   edit.close()                   -- put the terminal back, stop reading
*/
#include <stdio.h>    /* FILE, for readline.h */
#include <stdlib.h>   /* free */
#include <string.h>   /* strdup */
#include <unistd.h>   /* isatty */

#include <dlfcn.h>    /* dlopen: libedit is loaded by the REPL only */
#include <editline/readline.h>

#include "internal.h"

/* libedit and the four libraries it pulls in are opened when the REPL
** starts, not linked: linked, the dynamic loader's work on them cost every
** script 0.5 M instructions of start-up (a third of an empty script's).
** Each symbol is reached through a pointer of its own type, resolved
** once; the header only lends the types. */
#define EDIT_SYMBOLS(X) \
  X(rl_readline_name) X(rl_catch_signals) \
  X(rl_attempted_completion_function) X(rl_attempted_completion_over) \
  X(rl_completer_word_break_characters) X(rl_basic_word_break_characters) \
  X(rl_completion_append_character) X(rl_line_buffer) X(rl_initialize) \
  X(stifle_history) X(read_history) X(write_history) X(add_history) \
  X(history_truncate_file) X(rl_callback_handler_install) \
  X(rl_callback_handler_remove) X(rl_callback_read_char) \
  X(rl_deprep_terminal) X(rl_completion_matches)

#define DECLARE(name) static __typeof__(&name) p_##name;
EDIT_SYMBOLS(DECLARE)
#undef DECLARE

/* Resolves every symbol; NULL on success, else what failed. */
static const char *load_libedit(void) {
  static int loaded;
  if (loaded) return NULL;
  void *h = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) h = dlopen("libedit.so", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return dlerror();
#define RESOLVE(name) \
  if ((*(void **)&p_##name = dlsym(h, #name)) == NULL) return #name;
  EDIT_SYMBOLS(RESOLVE)
#undef RESOLVE
  loaded = 1;
  return NULL;
}

/* The rest of the file uses libedit's names. */
#define rl_readline_name (*p_rl_readline_name)
#define rl_catch_signals (*p_rl_catch_signals)
#define rl_attempted_completion_function (*p_rl_attempted_completion_function)
#define rl_attempted_completion_over (*p_rl_attempted_completion_over)
#define rl_completer_word_break_characters \
  (*p_rl_completer_word_break_characters)
#define rl_basic_word_break_characters (*p_rl_basic_word_break_characters)
#define rl_completion_append_character (*p_rl_completion_append_character)
#define rl_line_buffer (*p_rl_line_buffer)
#define rl_initialize (*p_rl_initialize)
#define stifle_history (*p_stifle_history)
#define read_history (*p_read_history)
#define write_history (*p_write_history)
#define add_history (*p_add_history)
#define history_truncate_file (*p_history_truncate_file)
#define rl_callback_handler_install (*p_rl_callback_handler_install)
#define rl_callback_handler_remove (*p_rl_callback_handler_remove)
#define rl_callback_read_char (*p_rl_callback_read_char)
#define rl_deprep_terminal (*p_rl_deprep_terminal)
#define rl_completion_matches (*p_rl_completion_matches)

int luaopen_corio_edit(lua_State *L);

static struct {
  corio_rt *rt;
  uv_poll_t poll;
  int poll_init;       /* poll is initialised (closed by edit.close) */
  int reading;         /* a line is being typed */
  int typed;           /* a key was read since edit.read */
  int line_ref;        /* fn of edit.read */
  int comp_ref;        /* fn of edit.complete */
  char *history;       /* history file, or NULL */
  int max;             /* entries kept in it */
  char **cand;         /* completion candidates of the current Tab */
  int ncand, next;
} E = {.line_ref = LUA_NOREF, .comp_ref = LUA_NOREF};


static void stop_reading(void) {
  if (!E.reading) return;
  E.reading = 0;
  uv_poll_stop(&E.poll);
  rl_callback_handler_remove();
}


/* libedit's line handler: line is NULL at end of input. */
static void on_line(char *line) {
  lua_State *L = E.rt->L;
  stop_reading();
  lua_rawgeti(L, LUA_REGISTRYINDEX, E.line_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, E.line_ref);
  E.line_ref = LUA_NOREF;
  if (line) lua_pushstring(L, line);
  else lua_pushnil(L);
  free(line);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {       /* the REPL's own code */
    fprintf(stderr, "corio: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}


static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {                            /* stdin went away */
    if (E.reading) on_line(NULL);
    return;
  }
  rl_callback_read_char();
  E.typed = 1;
}


/* {====================================================================
** Completion: the Lua completer picks the words, libedit shows them.
** ===================================================================== */

static void free_cand(void) {
  for (int i = E.next; i < E.ncand; i++) free(E.cand[i]);
  free(E.cand);
  E.cand = NULL;
  E.ncand = E.next = 0;
}


/* Hands libedit the candidates one by one (it frees them). */
static char *next_cand(const char *text, int state) {
  (void)text;
  (void)state;
  if (E.next < E.ncand) return E.cand[E.next++];
  return NULL;
}


/* Asks the Lua completer for the words that may replace `text`. */
static char **complete(const char *text, int start, int end) {
  lua_State *L = E.rt->L;
  (void)end;
  rl_attempted_completion_over = 1;          /* never file names */
  free_cand();
  if (E.comp_ref == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, E.comp_ref);
  lua_pushlstring(L, rl_line_buffer, (size_t)start);
  lua_pushstring(L, text);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  int n = (int)lua_rawlen(L, -1);
  E.cand = n > 0 ? calloc((size_t)n, sizeof *E.cand) : NULL;
  for (int i = 1; E.cand && i <= n; i++) {
    if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
      char *s = strdup(lua_tostring(L, -1));
      if (s) E.cand[E.ncand++] = s;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (E.ncand == 0) return NULL;
  /* A single match that ends a name gets no space after it: the user
  ** likely goes on with `.`, `:` or `(`. */
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, next_cand);
}

/* }==================================================================== */


static int l_open(lua_State *L) {
  const char *path = luaL_optstring(L, 1, NULL);
  int max = (int)luaL_optinteger(L, 2, 1000);
  E.rt = corio__rt(L);
  rl_readline_name = "corio";
  rl_catch_signals = 0;                     /* the loop owns SIGINT */
  rl_attempted_completion_function = complete;
  /* `.` and `:` end a word, so Tab completes the field after them. */
  static char breaks[] = " \t\n\"'`<>=;|&{}()[],+-*/%^~#.:";
  rl_completer_word_break_characters = breaks;
  rl_basic_word_break_characters = breaks;   /* the one libedit reads */
  rl_initialize();
  free(E.history);
  E.history = path ? strdup(path) : NULL;
  E.max = max > 0 ? max : 1;
  stifle_history(E.max);
  if (E.history) read_history(E.history);
  if (!E.poll_init) {
    int rc = uv_poll_init(E.rt->loop, &E.poll, 0);
    if (rc < 0) return corio__uverror(L, rc, "edit", NULL);
    E.poll_init = 1;
  }
  return 0;
}


static int l_read(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!E.poll_init) return luaL_error(L, "edit.read before edit.open");
  if (E.reading) return luaL_error(L, "edit.read: already reading");
  lua_settop(L, 2);
  E.line_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rl_callback_handler_install(prompt, on_line);
  uv_poll_start(&E.poll, UV_READABLE, on_readable);
  E.reading = 1;
  E.typed = 0;
  return 0;
}


static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}


/* Returns the text that was being typed, or nil if no line was read. */
static int l_abort(lua_State *L) {
  int was = E.reading;
  /* libedit updates rl_line_buffer at each key: before the first one it
  ** still holds the previous line. */
  if (was) lua_pushstring(L, E.typed && rl_line_buffer ? rl_line_buffer : "");
  else lua_pushnil(L);
  if (was) {
    stop_reading();
    luaL_unref(L, LUA_REGISTRYINDEX, E.line_ref);
    E.line_ref = LUA_NOREF;
    rl_deprep_terminal();                   /* cooked mode again */
  }
  return 1;
}


static int l_add(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  add_history(line);
  if (E.history) {
    write_history(E.history);
    history_truncate_file(E.history, E.max);
  }
  return 0;
}


static int l_complete(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, E.comp_ref);
  E.comp_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}


static int l_close(lua_State *L) {
  lua_pushcfunction(L, l_abort);
  lua_call(L, 0, 1);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, E.comp_ref);
  E.comp_ref = LUA_NOREF;
  free_cand();
  if (E.poll_init) {
    uv_close((uv_handle_t *)&E.poll, NULL);  /* static: nothing to free */
    E.poll_init = 0;
  }
  free(E.history);
  E.history = NULL;
  return 0;
}


int luaopen_corio_edit(lua_State *L) {
  const char *err = load_libedit();
  if (err) return luaL_error(L, "corio.edit: cannot load libedit: %s", err);
  static const luaL_Reg fns[] = {
    {"open", l_open}, {"read", l_read}, {"abort", l_abort},
    {"add", l_add}, {"complete", l_complete}, {"close", l_close},
    {"isatty", l_isatty},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
