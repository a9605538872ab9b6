/*
** ossl.c -- loads OpenSSL when a script first needs it (see ossl.h).
**
** Once per process, under pthread_once: hosts may run corio states in
** several threads, and the table is only read after it is filled.  The
** library stays loaded for the life of the process (OpenSSL 3 cleans up
** at exit through its own atexit handler; unloading it is not supported).
*/
#include <dlfcn.h>     /* dlopen, dlsym, dlerror */
#include <pthread.h>   /* pthread_once */
#include <stdio.h>     /* snprintf */

#define CORIO_OSSL_LOADER      /* the table by OpenSSL's own names */
#include "shared.h"    /* lua_State, corio__error */
#include "tls/ossl.h"

#ifndef CORIO_OSSL_LINKED

tls__ossl_api tls__ossl;

/* The soname of the OpenSSL corio was compiled against: its ABI. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define LIBSSL "libssl.so." STR(OPENSSL_VERSION_MAJOR)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];       /* empty when loaded */


static void load(void) {
  void *h = dlopen(LIBSSL, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    const char *e = dlerror();
    snprintf(failure, sizeof failure, "cannot load OpenSSL: %s",
             e ? e : LIBSSL);
    return;
  }
  /* dlsym through libssl's handle searches its dependencies too (the
  ** libcrypto it was linked with). */
#define X(f)                                                        \
  if ((*(void **)&tls__ossl.f = dlsym(h, #f)) == NULL) {            \
    snprintf(failure, sizeof failure,                               \
             "cannot load OpenSSL: %s has no %s", LIBSSL, #f);      \
    return;                                                         \
  }
  OSSL_SSL_FUNCS(X)
  OSSL_CRYPTO_FUNCS(X)
#undef X
}


void tls__ossl_load(lua_State *L) {
  pthread_once(&once, load);
  if (failure[0]) corio__error(L, "TLS", "require", "%s", failure);
}

#else

void tls__ossl_load(lua_State *L) {
  (void)L;
}

#endif
