/*
 * fsync_rate.c - the raw limit a durable metadata log works against: how many
 * small write+fdatasync pairs per second the disk under DIR takes, from 1
 * and from 16 threads (separate files).
 *
 *   bench_fsync DIR [seconds]
 */
#include "cmn_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct arg {
  const char *dir;
  int id;
  double secs;
  long ops;
};

static void *run(void *p) {
  struct arg *a = p;
  char path[512];
  snprintf(path, sizeof path, "%s/fsync-%d", a->dir, a->id);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return NULL;
  char buf[128];
  memset(buf, 'x', sizeof buf);
  int64_t end = cmn_mono_ns() + (int64_t)(a->secs * 1e9);
  while (cmn_mono_ns() < end) {
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) break;
    a->ops++;
  }
  close(fd);
  unlink(path);
  return NULL;
}

static double rate(const char *dir, int threads, double secs) {
  pthread_t th[16];
  struct arg a[16];
  for (int i = 0; i < threads; i++) {
    a[i] = (struct arg){dir, i, secs, 0};
    pthread_create(&th[i], NULL, run, &a[i]);
  }
  long total = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    total += a[i].ops;
  }
  return (double)total / secs;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_fsync DIR [seconds]\n");
    return 2;
  }
  double secs = argc > 2 ? atof(argv[2]) : 2.0;
  printf("raw_fsync_per_s_1_thread %.0f\n", rate(argv[1], 1, secs));
  printf("raw_fsync_per_s_16_threads %.0f\n", rate(argv[1], 16, secs));
  return 0;
}
