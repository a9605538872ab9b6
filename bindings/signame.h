/*
** signame.h -- signal names, shared by signal.c and process.c.
*/
#ifndef CORIO_SIGNAME_H
#define CORIO_SIGNAME_H

#include "shared.h"    /* the core, and what modules offer each other */

/* The signal number at idx: a name ("SIGTERM" or "TERM") or a number.
** Raises `bad argument` for anything else. */
int corio__check_signum(lua_State *L, int idx);

/* Like corio__check_signum but returns 0 instead of raising. */
int corio__to_signum(lua_State *L, int idx);

/* "SIGTERM" for 15; NULL for a number without a name. */
const char *corio__signame(int signum);

#endif
