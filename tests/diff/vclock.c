/* A virtual monotonic clock for the differential test (LD_PRELOAD).
**
** CLOCK_MONOTONIC* reads a counter that only moves when the loop would
** sleep: an epoll wait with a timeout that finds nothing ready returns at
** once and advances the counter by the timeout.  Timers then fire in
** deadline order at exactly their deadlines, however loaded the machine,
** and a run of virtual hours takes milliseconds.  A wait without timeout
** (-1) is passed through: it blocks for real. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t vnow = 1000000000000ull;    /* 1000 s, in ns */

static int is_mono(clockid_t id) {
  return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE ||
         id == CLOCK_MONOTONIC_RAW || id == CLOCK_BOOTTIME;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  static int (*real)(clockid_t, struct timespec *);
  if (is_mono(id)) {
    ts->tv_sec = (time_t)(vnow / 1000000000ull);
    ts->tv_nsec = (long)(vnow % 1000000000ull);
    return 0;
  }
  if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
  return real(id, ts);
}

int clock_getres(clockid_t id, struct timespec *ts) {
  static int (*real)(clockid_t, struct timespec *);
  if (is_mono(id)) {                        /* a fine clock: libuv uses it */
    if (ts) { ts->tv_sec = 0; ts->tv_nsec = 1; }
    return 0;
  }
  if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_getres");
  return real(id, ts);
}

/* libuv keeps the monotonic time in nanoseconds in a uint64_t: past
** 2^64 ns (584 years) it wraps, the loop's time goes back and no timer
** is ever due again (the runner spun at 100 % with a 0 timeout: the
** "hang" of a 20,000-scenario run).  Each scenario moves the clock by
** 4.2 million seconds or more, so tests/diff/diff.py runs at most a few
** hundred scenarios per process; past 2^62 ns (146 years) this stops
** the process with a message instead of letting time wrap. */
#define VNOW_LIMIT (1ull << 62)

static int advance(int n, int timeout) {
  if (n == 0 && timeout > 0) {
    vnow += (uint64_t)timeout * 1000000ull;
    if (vnow > VNOW_LIMIT) {
      static const char msg[] = "vclock: the virtual clock passed 2^62 ns; "
        "run fewer scenarios per process\n";
      (void)!write(2, msg, sizeof msg - 1);
      abort();
    }
  }
  return n;
}

int epoll_wait(int fd, struct epoll_event *ev, int max, int timeout) {
  static int (*real)(int, struct epoll_event *, int, int);
  if (!real) real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
  if (timeout < 0) return real(fd, ev, max, timeout);
  return advance(real(fd, ev, max, 0), timeout);
}

int epoll_pwait(int fd, struct epoll_event *ev, int max, int timeout,
                const sigset_t *mask) {
  static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
  if (!real) real = (int (*)(int, struct epoll_event *, int, int, const sigset_t *))dlsym(RTLD_NEXT, "epoll_pwait");
  if (timeout < 0) return real(fd, ev, max, timeout, mask);
  return advance(real(fd, ev, max, 0, mask), timeout);
}
