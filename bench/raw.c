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

static void *stream_main(void *arg) {
  struct stream *s = arg;
  int fd = open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    s->err = errno;
    return NULL;
  }
  for (size_t done = 0; done < s->bytes && !s->err;) {
    size_t n = s->bytes - done < RAW_BLOCK ? s->bytes - done : RAW_BLOCK;
    ssize_t w = write(fd, zeros, n);
    if (w <= 0) s->err = w < 0 ? errno : EIO;
    else done += (size_t)w;
  }
  if (!s->err && fsync(fd) != 0) s->err = errno;
  close(fd);
  return NULL;
}

int bench_raw_write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  const char *p = data;
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, p + done, n - done);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)w;
  }
  int rc = fsync(fd);
  close(fd);
  return rc == 0 ? 0 : -1;
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
