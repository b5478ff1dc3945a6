/* Unit tests for checkpoint files (master/checkpoint.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "test_tmp.h"
#include "mst_checkpoint.h"
#include "mst_oplog.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *make_tmpdir(void) { return cairn_test_tmpdir("ckpt"); }
static void rm_rf(char *dir) { cairn_test_rm_rf(dir); }

static char *ckpt_path(const char *dir, uint64_t lsn) {
  return cmn_sprintf("%s/checkpoint.%016" PRIx64, dir, lsn);
}

static void slurp(const char *path, char **buf, size_t *len) {
  assert_int_equal(cmn_read_file(path, (size_t)1 << 30, buf, len), 0);
}

static void spit(const char *path, const void *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(cmn_write_all(fd, buf, len), 0);
  close(fd);
}

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

#define BIG_INDEX 1000
#define BIG_SIZE ((size_t)3 << 20) /* larger than the writer's buffer */

/* Record i of a seed: up to 3 KB, some empty; record BIG_INDEX is 3 MiB. */
static size_t rec_size(uint64_t seed, uint64_t i) {
  if (i == BIG_INDEX) return BIG_SIZE;
  uint64_t r = mix(seed * 7919u + i);
  return r % 10 == 0 ? 0 : (size_t)((r >> 8) % 3000);
}

static void rec_fill(uint64_t seed, uint64_t i, unsigned char *buf, size_t n) {
  uint64_t s = mix(seed ^ (i << 24));
  for (size_t j = 0; j < n; j++) {
    if (j % 8 == 0) s = mix(s);
    buf[j] = (unsigned char)(s >> (8 * (j % 8)));
  }
}

/* Write checkpoint `lsn` holding records 0..n-1 of `seed`; returns commit's code. */
static int write_ckpt(const char *dir, uint64_t lsn, uint64_t seed, uint64_t n) {
  mst_ckpt_writer *w;
  int rc = mst_ckpt_writer_open(dir, lsn, &w);
  if (rc != 0) return rc;
  unsigned char *buf = malloc(BIG_SIZE);
  for (uint64_t i = 0; i < n; i++) {
    size_t len = rec_size(seed, i);
    rec_fill(seed, i, buf, len);
    if ((rc = mst_ckpt_write(w, buf, len)) != 0) break;
  }
  free(buf);
  if (rc != 0) {
    mst_ckpt_abort(w);
    return rc;
  }
  return mst_ckpt_commit(w);
}

typedef struct loaded {
  uint64_t seed, count;
  int bad;
  unsigned char *tmp;
} loaded;

static int check_rec(void *arg, const void *data, size_t len) {
  loaded *l = arg;
  size_t n = rec_size(l->seed, l->count);
  if (len != n) {
    l->bad++;
  } else {
    rec_fill(l->seed, l->count, l->tmp, n);
    if (n && memcmp(data, l->tmp, n) != 0) l->bad++;
  }
  l->count++;
  return 0;
}

/* Load the newest checkpoint; expect `rc`, and on success LSN `lsn` with n
 * intact records of `seed`. */
static void expect_load(const char *dir, int rc, uint64_t lsn, uint64_t seed, uint64_t n) {
  loaded l = {seed, 0, 0, malloc(BIG_SIZE)};
  uint64_t got = 99;
  char err[512];
  assert_int_equal(mst_ckpt_load_newest(dir, check_rec, &l, &got, err, sizeof err), rc);
  if (rc == 0) {
    assert_int_equal(got, lsn);
    assert_int_equal(l.count, n);
    assert_int_equal(l.bad, 0);
  } else {
    print_message("%s\n", err);
  }
  free(l.tmp);
}

static size_t count_tmp(const char *dir) {
  size_t n = 0;
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) n += strstr(de->d_name, ".tmp") != NULL;
  closedir(d);
  return n;
}

/* ---- cases ---- */

static void write_commit_load_round_trip(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  assert_int_equal(write_ckpt(dir, 1234, 1, 2000), 0);
  assert_int_equal(count_tmp(dir), 0);
  expect_load(dir, 0, 1234, 1, 2000);
  uint64_t *lsns;
  size_t n;
  assert_int_equal(mst_ckpt_list(dir, &lsns, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(lsns[0], 1234);
  free(lsns);
  /* A newer, empty checkpoint is the one loaded. */
  assert_int_equal(write_ckpt(dir, 1300, 2, 0), 0);
  expect_load(dir, 0, 1300, 2, 0);
  rm_rf(dir);
}

static void no_checkpoint_means_fresh(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  expect_load(dir, 0, 0, 0, 0);
  char *missing = cmn_sprintf("%s/nope", dir);
  uint64_t lsn;
  assert_int_equal(mst_ckpt_load_newest(missing, check_rec, NULL, &lsn, NULL, 0), CAIRN_ENOENT);
  assert_int_equal(mst_ckpt_load_newest(dir, check_rec, NULL, NULL, NULL, 0), CAIRN_EINVAL);
  mst_ckpt_writer *w = NULL;
  assert_int_equal(mst_ckpt_writer_open(missing, 1, &w), CAIRN_ENOENT);
  assert_null(w);
  assert_int_equal(mst_ckpt_writer_open(NULL, 1, &w), CAIRN_EINVAL);
  free(missing);
  rm_rf(dir);
}

/* Damage the newest checkpoint in several ways: each time the previous one is
 * loaded; with every checkpoint damaged, the load refuses (no fresh start). */
static void damaged_newest_falls_back(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  assert_int_equal(write_ckpt(dir, 100, 1, 50), 0);
  assert_int_equal(write_ckpt(dir, 200, 2, 60), 0);
  expect_load(dir, 0, 200, 2, 60);
  char *p100 = ckpt_path(dir, 100), *p200 = ckpt_path(dir, 200), *orig;
  size_t len;
  slurp(p200, &orig, &len);
  const size_t flips[] = {3, len / 2, len - 40, len - 10, len - 1};
  for (size_t i = 0; i < CMN_ARRAY_LEN(flips); i++) {
    orig[flips[i]] ^= 0x10;
    spit(p200, orig, len);
    orig[flips[i]] ^= 0x10;
    expect_load(dir, 0, 100, 1, 50);
  }
  spit(p200, orig, len / 2); /* incomplete file */
  expect_load(dir, 0, 100, 1, 50);
  spit(p200, orig, 10);
  expect_load(dir, 0, 100, 1, 50);
  /* A file renamed to another LSN does not pass for it. */
  spit(p200, orig, len);
  char *p300 = ckpt_path(dir, 300);
  assert_int_equal(rename(p200, p300), 0);
  expect_load(dir, 0, 100, 1, 50);
  /* Every checkpoint damaged: refuse, naming the newest. */
  char *b100;
  size_t len100;
  slurp(p100, &b100, &len100);
  b100[len100 / 2] ^= 1;
  spit(p100, b100, len100);
  uint64_t lsn;
  char err[512];
  assert_int_equal(mst_ckpt_load_newest(dir, check_rec, NULL, &lsn, err, sizeof err),
                   CAIRN_ECORRUPT);
  print_message("%s\n", err);
  assert_non_null(strstr(err, "checkpoint.000000000000012c"));
  assert_non_null(strstr(err, "offset="));
  free(b100);
  free(orig);
  free(p100);
  free(p200);
  free(p300);
  rm_rf(dir);
}

static void leftover_tmp_removed(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  assert_int_equal(write_ckpt(dir, 10, 3, 20), 0);
  /* A writer that gave up leaves nothing. */
  mst_ckpt_writer *w;
  assert_int_equal(mst_ckpt_writer_open(dir, 20, &w), 0);
  assert_int_equal(mst_ckpt_write(w, "abc", 3), 0);
  assert_int_equal(count_tmp(dir), 1);
  mst_ckpt_abort(w);
  assert_int_equal(count_tmp(dir), 0);
  /* A child that died mid-write leaves a temp file: load removes it. */
  char *tmp = cmn_sprintf("%s/checkpoint.%016x.tmp", dir, 30u);
  spit(tmp, "half a checkpoint", 17);
  char *other = cmn_sprintf("%s/oplog.0000000000000001", dir);
  spit(other, "not mine", 8);
  expect_load(dir, 0, 10, 3, 20);
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(access(other, F_OK), 0);
  assert_int_equal(count_tmp(dir), 0);
  free(tmp);
  free(other);
  rm_rf(dir);
}

static void writer_errors(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_ckpt_writer *w;
  assert_int_equal(mst_ckpt_writer_open(dir, 5, &w), 0);
  unsigned char *big = calloc(1, MST_CKPT_MAX_RECORD + 1);
  assert_int_equal(mst_ckpt_write(w, big, MST_CKPT_MAX_RECORD + 1), CAIRN_ETOOBIG);
  assert_int_equal(mst_ckpt_write(w, NULL, 1), CAIRN_EINVAL);
  assert_int_equal(mst_ckpt_write(w, NULL, 0), 0);
  assert_int_equal(mst_ckpt_write(w, big, MST_CKPT_MAX_RECORD), 0); /* the largest allowed */
  assert_int_equal(mst_ckpt_commit(w), 0);
  free(big);
  uint64_t lsn;
  assert_int_equal(mst_ckpt_load_newest(dir, NULL, NULL, &lsn, NULL, 0), 0);
  assert_int_equal(lsn, 5);
  assert_int_equal(mst_ckpt_commit(NULL), CAIRN_EINVAL);
  mst_ckpt_abort(NULL);
  rm_rf(dir);
}

/* The load stops with the callback's error, without falling back. */
static int stop_at_3(void *arg, const void *data, size_t len) {
  int *n = arg;
  (void)data;
  (void)len;
  return ++*n == 3 ? CAIRN_EPROTO : 0;
}

static void callback_error_stops_load(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  assert_int_equal(write_ckpt(dir, 1, 4, 10), 0);
  assert_int_equal(write_ckpt(dir, 2, 4, 10), 0);
  int n = 0;
  uint64_t lsn;
  assert_int_equal(mst_ckpt_load_newest(dir, stop_at_3, &n, &lsn, NULL, 0), CAIRN_EPROTO);
  assert_int_equal(n, 3);
  rm_rf(dir);
}

static void prune_keeps_newest(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  for (uint64_t l = 10; l <= 50; l += 10) assert_int_equal(write_ckpt(dir, l, l, 3), 0);
  uint64_t oldest = 0;
  assert_int_equal(mst_ckpt_prune(dir, 0, &oldest), CAIRN_EINVAL);
  assert_int_equal(mst_ckpt_prune(dir, 2, &oldest), 3);
  assert_int_equal(oldest, 40);
  uint64_t *lsns;
  size_t n;
  assert_int_equal(mst_ckpt_list(dir, &lsns, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(lsns[0], 40);
  assert_int_equal(lsns[1], 50);
  free(lsns);
  assert_int_equal(mst_ckpt_prune(dir, 2, &oldest), 0);
  assert_int_equal(oldest, 40);
  expect_load(dir, 0, 50, 50, 3);
  rm_rf(dir);
}

/* ---- fork: the master writes checkpoints from a child process ---- */

typedef struct busy {
  mst_oplog *log;
  atomic_int stop;
  int failures;
  uint64_t appended;
} busy;

static void *busy_appender(void *p) {
  busy *b = p;
  while (!atomic_load(&b->stop)) {
    if (mst_oplog_append_wait(b->log, "mutation", 8, NULL) != 0) b->failures++;
    b->appended++;
  }
  return NULL;
}

/* A multi-threaded parent (oplog flusher + an appending thread) forks; the
 * child writes a checkpoint with plain system calls and exits; the parent,
 * still appending meanwhile, loads what the child wrote. */
static void forked_child_writes_checkpoint(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char *logdir = cmn_sprintf("%s/log", dir);
  busy b = {0};
  assert_int_equal(mst_oplog_open(logdir, NULL, 0, NULL, NULL, &b.log, NULL, 0), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, busy_appender, &b), 0);
  uint64_t cut;
  usleep(5000);
  assert_int_equal(mst_oplog_rotate(b.log, &cut), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int rc = write_ckpt(dir, cut - 1, 77, 1500);
    _exit(rc == 0 ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  atomic_store(&b.stop, 1);
  pthread_join(th, NULL);
  assert_int_equal(b.failures, 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  expect_load(dir, 0, cut - 1, 77, 1500);
  print_message("checkpoint at lsn %" PRIu64 " while %" PRIu64 " records were appended\n",
                cut - 1, b.appended);
  assert_int_equal(mst_oplog_close(b.log), 0);
  rm_rf(logdir);
  rm_rf(dir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(write_commit_load_round_trip),
                cmocka_unit_test(no_checkpoint_means_fresh),
                cmocka_unit_test(damaged_newest_falls_back),
                cmocka_unit_test(leftover_tmp_removed), cmocka_unit_test(writer_errors),
                cmocka_unit_test(callback_error_stops_load), cmocka_unit_test(prune_keeps_newest),
                cmocka_unit_test(forked_child_writes_checkpoint))
