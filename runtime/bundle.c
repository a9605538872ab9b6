/*
** bundle.c -- finds the payload `corio bundle` appended to this binary
** (scripts/bundle.lua writes it and describes the format):
**
**   [binary][payload][payload size: u64 little endian][MAGIC: 16 bytes]
**
** Binary only.  The check costs one open, two reads and a close of
** /proc/self/exe at start-up, which keeps a bundle's start-up within a
** few percent of the plain binary running the same script.
*/
#include <fcntl.h>    /* open */
#include <string.h>   /* memcmp */
#include <unistd.h>   /* pread, close */

#include "internal.h"

#define MAGIC "corio-bundle-v1"   /* 15 characters and its NUL: 16 bytes */
#define TRAILER (8 + sizeof MAGIC)

int corio__push_bundle(lua_State *L);


/* Reads exactly n bytes at off; 0 on success. */
static int read_at(int fd, char *p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = pread(fd, p, n, off);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
    off += r;
  }
  return 0;
}


/* Pushes the payload and returns 1 if this executable is a bundle;
** returns 0 (nothing pushed) otherwise. [-0,+(0|1)] */
int corio__push_bundle(lua_State *L) {
  unsigned char tail[TRAILER];
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < (off_t)TRAILER ||
      read_at(fd, (char *)tail, TRAILER, end - (off_t)TRAILER) != 0 ||
      memcmp(tail + 8, MAGIC, sizeof MAGIC) != 0) {
    close(fd);
    return 0;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | tail[i];
  if (n > (uint64_t)(end - (off_t)TRAILER)) {
    close(fd);
    return 0;
  }
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  if (read_at(fd, p, (size_t)n, end - (off_t)TRAILER - (off_t)n) != 0) {
    close(fd);
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return 0;
  }
  close(fd);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}
