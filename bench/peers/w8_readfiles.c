/*
** W8 in C on libuv: read 10,000 files of 1 KiB, 64 in flight, each read
** as four thread-pool requests (open, fstat, read, close).
** Build: cc -O2 -o w8_readfiles w8_readfiles.c -luv
** Prints time=<s> check=<total bytes>.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <uv.h>

#define N 10000
#define FLIGHT 64
#define SIZE 1024

static char paths[N][64];
static int next_i;
static long total;
static uv_loop_t *loop;

typedef struct job {
  uv_fs_t req;
  uv_file fd;
  char *buf;
  uv_buf_t b;
} job;

static void start(job *j);

static void on_close(uv_fs_t *r) {
  job *j = r->data;
  uv_fs_req_cleanup(r);
  free(j->buf);
  start(j);
}

static void on_read(uv_fs_t *r) {
  job *j = r->data;
  if (r->result < 0) { fprintf(stderr, "read: %s\n", uv_strerror(r->result)); exit(1); }
  total += r->result;
  uv_fs_req_cleanup(r);
  uv_fs_close(loop, &j->req, j->fd, on_close);
}

static void on_stat(uv_fs_t *r) {
  job *j = r->data;
  size_t size = r->statbuf.st_size;
  uv_fs_req_cleanup(r);
  j->buf = malloc(size ? size : 1);
  j->b = uv_buf_init(j->buf, size);
  uv_fs_read(loop, &j->req, j->fd, &j->b, 1, -1, on_read);
}

static void on_open(uv_fs_t *r) {
  job *j = r->data;
  if (r->result < 0) { fprintf(stderr, "open: %s\n", uv_strerror(r->result)); exit(1); }
  j->fd = r->result;
  uv_fs_req_cleanup(r);
  uv_fs_fstat(loop, &j->req, j->fd, on_stat);
}

static void start(job *j) {
  if (next_i >= N) return;
  j->req.data = j;
  uv_fs_open(loop, &j->req, paths[next_i++], O_RDONLY, 0, on_open);
  j->req.data = j;
}

int main(void) {
  char dir[] = "/tmp/c-w8-XXXXXX";
  static char block[SIZE];
  static job jobs[FLIGHT];
  loop = uv_default_loop();
  if (!mkdtemp(dir)) return 1;
  memset(block, 'x', sizeof block);
  for (int i = 0; i < N; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/f%d", dir, i + 1);
    int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, block, SIZE) != SIZE) return 1;
    close(fd);
  }
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < FLIGHT; i++) start(&jobs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  double t = (uv_hrtime() - t0) / 1e9;
  for (int i = 0; i < N; i++) unlink(paths[i]);
  rmdir(dir);
  printf("time=%.4f check=%ld\n", t, total);
  return 0;
}
