/*
 * client.c - the client library against a running cluster: sequential
 * write and read of a large random file, small files (create+write, stat,
 * read, delete) from 1 and 16 workers, and 4 KiB random-read latency; and
 * around the large write, the disk's raw limit at its size (raw.h), in
 * RAWDIR, which should be on the cluster's disk (default: $TMPDIR).
 * Prints one "name value" line per figure; bench/run.sh starts the cluster
 * and measures the cold-read limit.
 *
 *   CAIRN_MASTER=... CAIRN_SECRET_FILE=... bench_client [big_mib] [small_files] [RAWDIR]
 */
#include "cairn.h"
#include "raw.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void fill(uint8_t *buf, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
  }
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_client: %s: %s\n", what, cairn_strerror(rc));
  exit(1);
}

/* ---- large file ------------------------------------------------------------------- */

/* The raw limit at the size of the big write (raw.h), as MB/s. */
static double raw_rate(const char *dir, size_t bytes, int streams) {
  double s = bench_raw_fsync_s(dir, bytes, streams);
  if (s <= 0) die("raw fsync'd write", CAIRN_EIO);
  return (double)bytes * streams / (1024.0 * 1024.0) / s;
}

static void big_file(cairn_client *c, size_t mib, const char *raw_dir) {
  /* The file's bytes are made before the clock starts, and go in one call
   * (the library moves several chunks at once), so the figure is the
   * library's alone. The raw limit of the same size is measured right
   * before and right after it, so the disk's drift weighs on both alike.
   * Read back in pieces and compared. */
  size_t piece = 256u << 20, total = mib << 20;
  uint8_t *src = malloc(total), *buf = malloc(piece);
  if (!src || !buf) die("memory for the big file", CAIRN_ENOMEM);
  for (size_t off = 0; off < total; off += piece) fill(src + off, (total - off < piece ? total - off : piece), off);
  cairn_file *f;
  int rc = cairn_open(c, "/bench/big.bin", CAIRN_O_CREATE | CAIRN_O_WRITE | CAIRN_O_READ |
                                                CAIRN_O_PARENTS, &f);
  if (rc != 0) die("open big", rc);
  double raw3 = raw_rate(raw_dir, total, 3), raw1 = raw_rate(raw_dir, total, 1);
  int64_t t0 = now_ns();
  int64_t n = cairn_pwrite(f, src, total, 0);
  if (n != (int64_t)total) die("write big", (int)n);
  double ws = (double)(now_ns() - t0) / 1e9;
  /* The raw read limit's file, written right after the library's bytes so
   * that both are equally far back in any cache below ours (a virtual
   * machine's host keeps one). */
  char cold_path[4096];
  snprintf(cold_path, sizeof cold_path, "%s/raw-cold-read", raw_dir);
  if (bench_raw_write_file(cold_path, src, total) != 0) die("raw file for the read limit", CAIRN_EIO);
  raw1 = (raw1 + raw_rate(raw_dir, total, 1)) / 2;
  raw3 = (raw3 + raw_rate(raw_dir, total, 3)) / 2;
  printf("raw_fsync_1_stream_%zumib_mb_per_s %.1f\n", mib, raw1);
  printf("raw_fsync_3_streams_%zumib_mb_per_s %.1f\n", mib, raw3);
  printf("client_seq_write_%zumib_mb_per_s %.1f\n", mib, (double)mib / ws);
  fflush(stdout);
  /* Read cold, right after the raw limit of the same (needs root to drop
   * the caches; said when it could not be done). */
  int cold = bench_drop_caches();
  double raw_read = bench_raw_read_s(cold_path, total);
  unlink(cold_path);
  if (raw_read <= 0) die("raw read", CAIRN_EIO);
  printf("raw_cold_read_%zumib_mb_per_s %.1f\n", mib, (double)mib / raw_read);
  cold = bench_drop_caches() && cold;
  printf("client_seq_read_cold %d\n", cold);
  double rs = 0;
  for (size_t off = 0; off < total; off += piece) {
    size_t k = (total - off < piece ? total - off : piece);
    t0 = now_ns();
    n = cairn_pread(f, buf, k, off);
    rs += (double)(now_ns() - t0) / 1e9;
    if (n != (int64_t)k) die("read big", (int)n);
    if (memcmp(buf, src + off, k) != 0) die("read big: bytes differ from those written", CAIRN_EIO);
  }
  free(src);
  printf("client_seq_read_%zumib_mb_per_s %.1f\n", mib, (double)mib / rs);
  fflush(stdout);
  /* 4 KiB random reads. */
  int64_t lat[2000];
  uint64_t x = 12345;
  for (int i = 0; i < 2000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t off = (x >> 11) % (total - 4096);
    int64_t s = now_ns();
    if (cairn_pread(f, buf, 4096, off) != 4096) die("random read", -1);
    lat[i] = now_ns() - s;
  }
  qsort(lat, 2000, sizeof lat[0], cmp_i64);
  printf("client_read_4k_p50_ms %.3f\n", (double)lat[1000] / 1e6);
  printf("client_read_4k_p99_ms %.3f\n", (double)lat[1980] / 1e6);
  cairn_close(f);
  free(buf);
}

/* ---- small files ------------------------------------------------------------------- */

enum { SMALL_WRITE, SMALL_STAT, SMALL_READ, SMALL_DELETE, SMALL_OPS };
static const char *const small_names[] = {"create_write", "stat", "read", "delete"};

struct worker {
  cairn_client *c;
  int id, workers, files, op, failures;
};

static void *small_main(void *arg) {
  struct worker *w = arg;
  uint8_t buf[4096];
  fill(buf, sizeof buf, (uint64_t)w->id);
  char path[96];
  for (int i = w->id; i < w->files; i += w->workers) {
    snprintf(path, sizeof path, "/bench/small%d/f%05d", w->workers, i);
    int rc = 0;
    if (w->op == SMALL_WRITE) {
      cairn_file *f;
      rc = cairn_open(w->c, path, CAIRN_O_CREATE | CAIRN_O_EXCL | CAIRN_O_WRITE, &f);
      if (rc == 0) {
        rc = cairn_pwrite(f, buf, sizeof buf, 0) == (int64_t)sizeof buf ? 0 : -1;
        cairn_close(f);
      }
    } else if (w->op == SMALL_STAT) {
      cairn_stat st;
      rc = cairn_stat_path(w->c, path, &st);
    } else if (w->op == SMALL_READ) {
      cairn_file *f;
      rc = cairn_open(w->c, path, CAIRN_O_READ, &f);
      if (rc == 0) {
        rc = cairn_pread(f, buf, sizeof buf, 0) == (int64_t)sizeof buf ? 0 : -1;
        cairn_close(f);
      }
    } else {
      rc = cairn_remove(w->c, path, 0, NULL, 0);
    }
    if (rc != 0) w->failures++;
  }
  return NULL;
}

static void small_files(cairn_client *c, int files, int workers) {
  char dir[64];
  snprintf(dir, sizeof dir, "/bench/small%d", workers);
  cairn_mkdir(c, dir, 1);
  for (int op = 0; op < SMALL_OPS; op++) {
    pthread_t th[16];
    struct worker ws[16];
    int64_t t0 = now_ns();
    for (int i = 0; i < workers; i++) {
      ws[i] = (struct worker){c, i, workers, files, op, 0};
      pthread_create(&th[i], NULL, small_main, &ws[i]);
    }
    int failures = 0;
    for (int i = 0; i < workers; i++) {
      pthread_join(th[i], NULL);
      failures += ws[i].failures;
    }
    double s = (double)(now_ns() - t0) / 1e9;
    printf("client_small_%s_per_s_%d_workers %.0f\n", small_names[op], workers, files / s);
    if (failures) printf("client_small_%s_failures_%d_workers %d\n", small_names[op], workers, failures);
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  size_t big = argc > 1 ? (size_t)atol(argv[1]) : 1024;
  int small = argc > 2 ? atoi(argv[2]) : 5000;
  const char *raw_dir = argc > 3 ? argv[3] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  cairn_options o;
  cairn_options_init(&o);
  cairn_client *c;
  int rc = cairn_connect(&o, &c);
  if (rc != 0) die("connect", rc);
  big_file(c, big, raw_dir);
  small_files(c, small, 1);
  small_files(c, small, 16);
  cairn_disconnect(c);
  return 0;
}
