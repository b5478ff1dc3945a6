/*
 * raw.c - the disk's raw limits: fsync'd sequential writes from several
 * threads, and a sequential read after the caches are dropped (raw.h).
 */
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RAW_MAX_STREAMS 16
#define RAW_BLOCK (1u << 20)

struct stream {
  char path[4096];
  size_t bytes;
  int err; /* errno of the first failure */
};

static const unsigned char zeros[RAW_BLOCK];

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write `n` bytes to a new file at `path`, taking them from `data` in
 * writes of at most `block` (wrapping around `data` when it holds fewer
 * than `n`), then fsync. 0 or the errno of the first failure. */
static int write_file(const char *path, const void *data, size_t have, size_t n, size_t block) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t done = 0; done < n && !err;) {
    size_t at = done % have, k = n - done < block ? n - done : block;
    if (k > have - at) k = have - at;
    ssize_t w = write(fd, (const char *)data + at, k);
    if (w <= 0) err = w < 0 ? errno : EIO;
    else done += (size_t)w;
  }
  if (!err && fsync(fd) != 0) err = errno;
  close(fd);
  return err;
}

static void *stream_main(void *arg) {
  struct stream *s = arg;
  s->err = write_file(s->path, zeros, sizeof zeros, s->bytes, RAW_BLOCK);
  return NULL;
}

int bench_raw_write_file(const char *path, const void *data, size_t n) {
  int err = write_file(path, data, n, n, n);
  if (err) fprintf(stderr, "raw write %s: %s\n", path, strerror(err));
  return err ? -1 : 0;
}

int bench_drop_caches(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write(fd, "3\n", 2) == 2;
  if (fd >= 0) close(fd);
  return ok;
}

double bench_raw_read_s(const char *path, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char *buf = malloc(RAW_BLOCK);
  size_t got = 0;
  double t0 = mono_s();
  ssize_t r = 0;
  while (buf && got < n && (r = read(fd, buf, RAW_BLOCK)) > 0) got += (size_t)r;
  double s = mono_s() - t0;
  free(buf);
  close(fd);
  return got == n ? s : -1;
}

double bench_raw_fsync_s(const char *dir, size_t bytes, int streams) {
  if (streams < 1 || streams > RAW_MAX_STREAMS || bytes == 0) return -1;
  struct stream ss[RAW_MAX_STREAMS];
  pthread_t th[RAW_MAX_STREAMS];
  for (int i = 0; i < streams; i++) {
    ss[i] = (struct stream){.bytes = bytes};
    snprintf(ss[i].path, sizeof ss[i].path, "%s/raw-fsync.%d", dir, i);
  }
  double t0 = mono_s();
  int started = 0;
  for (; started < streams; started++)
    if (pthread_create(&th[started], NULL, stream_main, &ss[started]) != 0) break;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  double s = mono_s() - t0;
  int bad = started < streams;
  for (int i = 0; i < streams; i++) {
    if (ss[i].err) {
      fprintf(stderr, "raw fsync'd write %s: %s\n", ss[i].path, strerror(ss[i].err));
      bad = 1;
    }
    unlink(ss[i].path);
  }
  return bad ? -1 : s;
}
