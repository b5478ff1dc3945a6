/* Unit tests for the operation log (master/oplog.c, master/oplog_recover.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "test_tmp.h"
#include "mst_oplog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers: temp dirs, files, deterministic records ---- */

static char *make_tmpdir(void) { return cairn_test_tmpdir("oplog"); }
static void rm_rf(char *dir) { cairn_test_rm_rf(dir); }

static char *seg_path(const char *dir, uint64_t first) {
  return cmn_sprintf("%s/oplog.%016" PRIx64, dir, first);
}

static size_t count_files(const char *dir, const char *prefix) {
  size_t n = 0;
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
  closedir(d);
  return n;
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

static uint64_t file_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Size of record `lsn` for a seed: mostly under 2 KB, 1% up to 100 KB, some 0. */
static size_t rec_size(uint64_t seed, uint64_t lsn) {
  uint64_t r = mix(seed * 1000003u + lsn);
  if (r % 100 == 0) return (size_t)((r >> 8) % 100000);
  return (size_t)((r >> 8) % 2000);
}

static void rec_fill(uint64_t seed, uint64_t lsn, unsigned char *buf, size_t n) {
  uint64_t s = mix(seed ^ (lsn << 20));
  for (size_t j = 0; j < n; j++) {
    if (j % 8 == 0) s = mix(s);
    buf[j] = (unsigned char)(s >> (8 * (j % 8)));
  }
}

/* Replay checker: records must arrive as lsn next, next + 1, ... with the
 * content rec_fill(seed, lsn) of size rec_size(seed, lsn). */
typedef struct expect {
  uint64_t seed, next, count;
  int bad;
  unsigned char *tmp;
} expect;

static int check_replay(void *arg, uint64_t lsn, const void *data, size_t len) {
  expect *e = arg;
  if (lsn != e->next) e->bad++;
  size_t n = rec_size(e->seed, lsn);
  if (len != n) {
    e->bad++;
  } else {
    rec_fill(e->seed, lsn, e->tmp, n);
    if (n && memcmp(data, e->tmp, n) != 0) e->bad++;
  }
  e->next = lsn + 1;
  e->count++;
  return 0;
}

static void expect_init(expect *e, uint64_t seed, uint64_t first) {
  memset(e, 0, sizeof *e);
  e->seed = seed;
  e->next = first;
  e->tmp = cmn_malloc(100000);
}

/* Append records first..last (content by seed) asynchronously, then close. */
static void write_log(const char *dir, uint64_t seed, uint64_t first, uint64_t last) {
  mst_oplog *log;
  unsigned char *buf = cmn_malloc(100000);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  for (uint64_t l = first; l <= last; l++) {
    size_t n = rec_size(seed, l);
    uint64_t got;
    rec_fill(seed, l, buf, n);
    assert_int_equal(mst_oplog_append(log, buf, n, NULL, NULL, &got), 0);
    assert_int_equal(got, l);
  }
  assert_int_equal(mst_oplog_close(log), 0);
  free(buf);
}

/* Open with replay from after_lsn; expect rc; on success check records
 * after_lsn + 1 .. want_last arrived intact, then close. */
static int reopen_check(const char *dir, uint64_t seed, uint64_t after_lsn, uint64_t want_last,
                        char *err, size_t errlen) {
  mst_oplog *log = NULL;
  expect e;
  expect_init(&e, seed, after_lsn + 1);
  int rc = mst_oplog_open(dir, NULL, after_lsn, check_replay, &e, &log, err, errlen);
  if (rc == 0) {
    assert_int_equal(e.bad, 0);
    assert_int_equal(e.count, want_last - after_lsn);
    mst_oplog_stats st;
    mst_oplog_stats_get(log, &st);
    assert_int_equal(st.last_lsn, CMN_MAX(want_last, after_lsn));
    assert_int_equal(mst_oplog_close(log), 0);
  } else {
    assert_null(log);
  }
  free(e.tmp);
  return rc;
}

/* Hand-built on-disk pieces, written independently of the module so the
 * tests pin the format. */
static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_header(cmn_buf *b, uint64_t first) {
  unsigned char h[32] = {0};
  memcpy(h, "CAIRNLOG", 8);
  le32(h + 8, 1);
  le64(h + 16, first);
  le32(h + 24, cmn_crc32c(0, h, 24));
  cmn_buf_append(b, h, sizeof h);
}

static void put_record(cmn_buf *b, uint64_t lsn, const void *data, uint32_t len) {
  unsigned char f[16];
  le32(f, len);
  le64(f + 8, lsn);
  uint32_t crc = cmn_crc32c(cmn_crc32c(0, f + 8, 8), data, len);
  le32(f + 4, crc);
  cmn_buf_append(b, f, sizeof f);
  cmn_buf_append(b, data, len);
}

/* Byte offset of record `lsn` in a module-written segment starting at first. */
static uint64_t record_offset(uint64_t seed, uint64_t first, uint64_t lsn) {
  uint64_t off = 32;
  for (uint64_t l = first; l < lsn; l++) off += 16 + rec_size(seed, l);
  return off;
}

/* ---- cases ---- */

static void round_trip_10000(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  write_log(dir, 42, 1, 10000);
  char err[256];
  assert_int_equal(reopen_check(dir, 42, 0, 10000, err, sizeof err), 0);
  assert_int_equal(count_files(dir, "oplog."), 1);
  rm_rf(dir);
}

static void reopen_continues_lsn(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  write_log(dir, 7, 1, 5);
  write_log(dir, 7, 6, 9); /* write_log checks the LSNs continue at 6 */
  assert_int_equal(reopen_check(dir, 7, 0, 9, NULL, 0), 0);
  assert_int_equal(reopen_check(dir, 7, 4, 9, NULL, 0), 0);
  assert_int_equal(reopen_check(dir, 7, 9, 9, NULL, 0), 0);
  rm_rf(dir);
}

/* Cut the file at every byte inside the last record: the record is dropped,
 * the file is truncated at its start, and appending continues with its LSN. */
static void torn_tail_every_position(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  const uint64_t seed = 3, n = 20;
  write_log(dir, seed, 1, n);
  char *path = seg_path(dir, 1), *orig;
  size_t orig_len;
  slurp(path, &orig, &orig_len);
  uint64_t start = record_offset(seed, 1, n);
  assert_int_equal(start + 16 + rec_size(seed, n), orig_len);
  cmn_log_set_level(CMN_LOG_ERROR); /* one warning per cut otherwise */
  for (uint64_t cut = start; cut < orig_len; cut++) {
    spit(path, orig, cut);
    assert_int_equal(reopen_check(dir, seed, 0, n - 1, NULL, 0), 0);
    assert_int_equal(file_size(path), start);
  }
  cmn_log_set_level(CMN_LOG_INFO);
  /* After a cut, appending reuses the LSN of the dropped record. */
  write_log(dir, seed, n, n);
  assert_int_equal(reopen_check(dir, seed, 0, n, NULL, 0), 0);
  assert_int_equal(file_size(path), orig_len);
  free(orig);
  free(path);
  rm_rf(dir);
}

static void garbage_after_last_record_cut(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  write_log(dir, 5, 1, 50);
  char *path = seg_path(dir, 1);
  uint64_t good = file_size(path);
  unsigned char junk[3000];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)mix(i);
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(cmn_write_all(fd, junk, sizeof junk), 0);
  close(fd);
  assert_int_equal(reopen_check(dir, 5, 0, 50, NULL, 0), 0);
  assert_int_equal(file_size(path), good);
  /* Zeros, as a file system may leave after a crash past the last fsync. */
  memset(junk, 0, sizeof junk);
  fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(cmn_write_all(fd, junk, sizeof junk), 0);
  close(fd);
  assert_int_equal(reopen_check(dir, 5, 0, 50, NULL, 0), 0);
  assert_int_equal(file_size(path), good);
  write_log(dir, 5, 51, 60);
  assert_int_equal(reopen_check(dir, 5, 0, 60, NULL, 0), 0);
  free(path);
  rm_rf(dir);
}

/* A damaged record followed by valid ones is corruption, never a tail cut:
 * payload, length and CRC fields each. The file must stay untouched. */
static void flipped_byte_in_middle_record(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  const uint64_t seed = 11;
  write_log(dir, seed, 1, 50);
  char *path = seg_path(dir, 1), *orig;
  size_t len;
  slurp(path, &orig, &len);
  uint64_t off = record_offset(seed, 1, 25);
  assert_true(rec_size(seed, 25) > 0);
  const uint64_t flips[] = {off + 16 + rec_size(seed, 25) / 2, off + 1, off + 5, off + 9};
  for (size_t i = 0; i < CMN_ARRAY_LEN(flips); i++) {
    char *bad = cmn_malloc(len);
    memcpy(bad, orig, len);
    bad[flips[i]] ^= 0x40;
    spit(path, bad, len);
    char err[512] = "";
    assert_int_equal(reopen_check(dir, seed, 0, 0, err, sizeof err), CAIRN_ECORRUPT);
    char *want = cmn_sprintf("offset=%" PRIu64, off);
    print_message("flip at %" PRIu64 ": %s\n", flips[i], err);
    assert_non_null(strstr(err, "oplog.0000000000000001"));
    assert_non_null(strstr(err, want));
    free(want);
    assert_int_equal(file_size(path), len);
    char *now;
    size_t now_len;
    slurp(path, &now, &now_len);
    assert_memory_equal(now, bad, len);
    free(now);
    free(bad);
  }
  free(orig);
  free(path);
  rm_rf(dir);
}

/* Damage at the end of a segment that is not the last is not a torn tail. */
static void bad_record_in_earlier_segment(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_oplog *log;
  uint64_t next, lsn;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  for (int i = 0; i < 10; i++) assert_int_equal(mst_oplog_append_wait(log, "abcdef", 6, &lsn), 0);
  assert_int_equal(mst_oplog_rotate(log, &next), 0);
  assert_int_equal(next, 11);
  for (int i = 0; i < 10; i++) assert_int_equal(mst_oplog_append_wait(log, "ghijkl", 6, &lsn), 0);
  assert_int_equal(lsn, 20);
  assert_int_equal(mst_oplog_close(log), 0);
  char *p1 = seg_path(dir, 1);
  char *buf;
  size_t len;
  slurp(p1, &buf, &len);
  buf[len - 2] ^= 1; /* inside record 10, the last of segment 1 */
  spit(p1, buf, len);
  char err[512];
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, err, sizeof err),
                   CAIRN_ECORRUPT);
  print_message("%s\n", err);
  assert_non_null(strstr(err, "oplog.0000000000000001"));
  char *want = cmn_sprintf("offset=%zu", len - 22);
  assert_non_null(strstr(err, want));
  assert_int_equal(file_size(p1), len);
  /* A checkpoint covering segment 1 makes its content irrelevant. */
  assert_int_equal(mst_oplog_open(dir, NULL, 10, NULL, NULL, &log, NULL, 0), 0);
  assert_int_equal(mst_oplog_close(log), 0);
  free(want);
  free(buf);
  free(p1);
  rm_rf(dir);
}

static void bad_segment_header_refused(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  write_log(dir, 1, 1, 3);
  char *path = seg_path(dir, 1), *orig;
  size_t len;
  slurp(path, &orig, &len);
  char err[512];
  mst_oplog *log = NULL;
  /* Each damage in turn: magic, version (crc recomputed), crc, truncation. */
  for (int k = 0; k < 4; k++) {
    cmn_buf b = {0};
    cmn_buf_append(&b, orig, len);
    unsigned char *h = (unsigned char *)b.data;
    if (k == 0) h[0] = 'X';
    if (k == 1) {
      le32(h + 8, 2);
      le32(h + 24, cmn_crc32c(0, h, 24));
    }
    if (k == 2) h[17] ^= 1;
    spit(path, b.data, k == 3 ? 20 : b.len);
    assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, err, sizeof err),
                     CAIRN_ECORRUPT);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "oplog.0000000000000001"));
    assert_null(log);
    cmn_buf_free(&b);
  }
  /* A valid header that does not match the file name. */
  cmn_buf b = {0};
  put_header(&b, 1);
  char *p2 = seg_path(dir, 2);
  unlink(path);
  spit(p2, b.data, b.len);
  assert_int_equal(mst_oplog_open(dir, NULL, 1, NULL, NULL, &log, err, sizeof err),
                   CAIRN_ECORRUPT);
  assert_non_null(strstr(err, "does not match"));
  cmn_buf_free(&b);
  free(p2);
  free(orig);
  free(path);
  rm_rf(dir);
}

static void lsn_gap_refused(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char err[512];
  mst_oplog *log = NULL;
  /* Inside a segment: 1, 2, 3, 5. */
  cmn_buf b = {0};
  put_header(&b, 1);
  put_record(&b, 1, "one", 3);
  put_record(&b, 2, "two", 3);
  put_record(&b, 3, "three", 5);
  size_t off5 = b.len;
  put_record(&b, 5, "five", 4);
  char *p1 = seg_path(dir, 1);
  spit(p1, b.data, b.len);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, err, sizeof err),
                   CAIRN_ECORRUPT);
  print_message("%s\n", err);
  char *want = cmn_sprintf("offset=%zu", off5);
  assert_non_null(strstr(err, want));
  free(want);
  /* Between segments: 1..3, then a segment starting at 5. */
  b.len = off5;
  spit(p1, b.data, b.len);
  cmn_buf c = {0};
  put_header(&c, 5);
  put_record(&c, 5, "five", 4);
  put_record(&c, 6, "six", 3);
  char *p5 = seg_path(dir, 5);
  spit(p5, c.data, c.len);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, err, sizeof err),
                   CAIRN_ECORRUPT);
  print_message("%s\n", err);
  assert_non_null(strstr(err, "oplog.0000000000000005"));
  /* The log starting after the checkpoint: records 1..4 are missing. */
  unlink(p1);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, err, sizeof err),
                   CAIRN_ECORRUPT);
  print_message("%s\n", err);
  /* ... but fine when a checkpoint covers 1..4. */
  assert_int_equal(mst_oplog_open(dir, NULL, 4, NULL, NULL, &log, err, sizeof err), 0);
  uint64_t lsn;
  assert_int_equal(mst_oplog_append_wait(log, "seven", 5, &lsn), 0);
  assert_int_equal(lsn, 7);
  assert_int_equal(mst_oplog_close(log), 0);
  cmn_buf_free(&b);
  cmn_buf_free(&c);
  free(p1);
  free(p5);
  rm_rf(dir);
}

/* ---- concurrency ---- */

enum { GC_THREADS = 16, GC_PER_THREAD = 500 };

typedef struct gc_arg {
  mst_oplog *log;
  int t;
  int failures;
} gc_arg;

static void *gc_worker(void *p) {
  gc_arg *a = p;
  for (int i = 0; i < GC_PER_THREAD; i++) {
    char rec[64];
    int n = snprintf(rec, sizeof rec, "t=%d i=%d", a->t, i);
    uint64_t lsn;
    if (mst_oplog_append_wait(a->log, rec, (size_t)n, &lsn) != 0 || lsn == 0) a->failures++;
  }
  return NULL;
}

typedef struct gc_seen {
  unsigned char seen[GC_THREADS][GC_PER_THREAD];
  uint64_t next;
  int bad;
} gc_seen;

static int gc_replay(void *arg, uint64_t lsn, const void *data, size_t len) {
  gc_seen *s = arg;
  char rec[64];
  int t, i;
  if (lsn != s->next++ || len >= sizeof rec) return s->bad++, 0;
  memcpy(rec, data, len);
  rec[len] = '\0';
  if (sscanf(rec, "t=%d i=%d", &t, &i) != 2 || t < 0 || t >= GC_THREADS || i < 0 ||
      i >= GC_PER_THREAD)
    return s->bad++, 0;
  s->seen[t][i]++;
  return 0;
}

static void group_commit_16_threads(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_oplog *log;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  mst_oplog_stats before;
  mst_oplog_stats_get(log, &before);
  pthread_t th[GC_THREADS];
  gc_arg args[GC_THREADS];
  for (int t = 0; t < GC_THREADS; t++) {
    args[t] = (gc_arg){log, t, 0};
    assert_int_equal(pthread_create(&th[t], NULL, gc_worker, &args[t]), 0);
  }
  for (int t = 0; t < GC_THREADS; t++) {
    pthread_join(th[t], NULL);
    assert_int_equal(args[t].failures, 0);
  }
  mst_oplog_stats st;
  mst_oplog_stats_get(log, &st);
  uint64_t records = GC_THREADS * GC_PER_THREAD, fsyncs = st.fsyncs - before.fsyncs;
  print_message("group commit: %" PRIu64 " records, %" PRIu64 " fsyncs, %" PRIu64
                " batches, %.1f records per fsync, largest batch %" PRIu64 "\n",
                records, fsyncs, st.batches, (double)records / (double)fsyncs,
                st.max_batch_records);
  assert_int_equal(st.records_durable, records);
  assert_int_equal(st.durable_lsn, records);
  assert_int_equal(st.pending_bytes, 0);
  assert_true(fsyncs < records);
  assert_int_equal(mst_oplog_close(log), 0);

  gc_seen *s = cmn_calloc(1, sizeof *s);
  s->next = 1;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, gc_replay, s, &log, NULL, 0), 0);
  assert_int_equal(mst_oplog_close(log), 0);
  assert_int_equal(s->bad, 0);
  assert_int_equal(s->next, records + 1);
  for (int t = 0; t < GC_THREADS; t++)
    for (int i = 0; i < GC_PER_THREAD; i++) assert_int_equal(s->seen[t][i], 1);
  free(s);
  rm_rf(dir);
}

enum { CB_THREADS = 4, CB_PER_THREAD = 1000 };

typedef struct cb_state {
  mst_oplog *log;
  atomic_int calls[CB_THREADS * CB_PER_THREAD];
  _Atomic uint64_t cb_lsn[CB_THREADS * CB_PER_THREAD];
  uint64_t got_lsn[CB_THREADS * CB_PER_THREAD];
  atomic_int not_durable, bad_status;
} cb_state;

typedef struct cb_slot {
  cb_state *s;
  int idx;
} cb_slot;

static cb_slot slots[CB_THREADS * CB_PER_THREAD];

static void on_done(void *arg, uint64_t lsn, int status) {
  cb_slot *slot = arg;
  cb_state *s = slot->s;
  mst_oplog_stats st;
  mst_oplog_stats_get(s->log, &st);
  if (st.durable_lsn < lsn) atomic_fetch_add(&s->not_durable, 1);
  if (status != 0) atomic_fetch_add(&s->bad_status, 1);
  atomic_store(&s->cb_lsn[slot->idx], lsn);
  atomic_fetch_add(&s->calls[slot->idx], 1);
}

typedef struct cb_worker_arg {
  cb_state *s;
  int t, failures;
} cb_worker_arg;

static void *cb_worker(void *p) {
  cb_worker_arg *a = p;
  for (int i = 0; i < CB_PER_THREAD; i++) {
    int idx = a->t * CB_PER_THREAD + i;
    slots[idx] = (cb_slot){a->s, idx};
    if (mst_oplog_append(a->s->log, &idx, sizeof idx, on_done, &slots[idx],
                         &a->s->got_lsn[idx]) != 0)
      a->failures++;
  }
  return NULL;
}

static void async_callbacks_once(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  cb_state *s = cmn_calloc(1, sizeof *s);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &s->log, NULL, 0), 0);
  pthread_t th[CB_THREADS];
  cb_worker_arg args[CB_THREADS];
  for (int t = 0; t < CB_THREADS; t++) {
    args[t] = (cb_worker_arg){s, t, 0};
    assert_int_equal(pthread_create(&th[t], NULL, cb_worker, &args[t]), 0);
  }
  for (int t = 0; t < CB_THREADS; t++) {
    pthread_join(th[t], NULL);
    assert_int_equal(args[t].failures, 0);
  }
  assert_int_equal(mst_oplog_close(s->log), 0); /* drains: every callback has run */
  for (int i = 0; i < CB_THREADS * CB_PER_THREAD; i++) {
    assert_int_equal(atomic_load(&s->calls[i]), 1);
    assert_int_equal(atomic_load(&s->cb_lsn[i]), s->got_lsn[i]);
  }
  assert_int_equal(atomic_load(&s->not_durable), 0);
  assert_int_equal(atomic_load(&s->bad_status), 0);
  free(s);
  rm_rf(dir);
}

/* Appends wait while more than max_pending bytes are not yet durable. */
static void backpressure_bounds_pending(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_oplog *log;
  mst_oplog_opts o = {.max_record = 4096, .max_pending = 8192};
  assert_int_equal(mst_oplog_open(dir, &o, 0, NULL, NULL, &log, NULL, 0), 0);
  unsigned char rec[3000] = {0};
  for (int i = 0; i < 300; i++) {
    assert_int_equal(mst_oplog_append(log, rec, sizeof rec, NULL, NULL, NULL), 0);
    mst_oplog_stats st;
    mst_oplog_stats_get(log, &st);
    assert_true(st.pending_bytes <= o.max_pending);
  }
  assert_int_equal(mst_oplog_append(log, rec, 4097, NULL, NULL, NULL), CAIRN_ETOOBIG);
  assert_int_equal(mst_oplog_append(log, NULL, 1, NULL, NULL, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_oplog_append(log, NULL, 0, NULL, NULL, NULL), 0); /* empty record */
  assert_int_equal(mst_oplog_close(log), 0);
  o.max_record = MST_OPLOG_LIMIT_MAX_RECORD + 1;
  assert_int_equal(mst_oplog_open(dir, &o, 0, NULL, NULL, &log, NULL, 0), CAIRN_EINVAL);
  rm_rf(dir);
}

/* Rotation, removal of covered segments, and replay from a checkpoint LSN. */
static void rotation_remove_before_replay(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  const uint64_t seed = 21;
  mst_oplog *log;
  unsigned char *buf = cmn_malloc(100000);
  uint64_t next, lsn;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  assert_int_equal(mst_oplog_rotate(log, &next), 0); /* empty segment: nothing to do */
  assert_int_equal(next, 1);
  assert_int_equal(count_files(dir, "oplog."), 1);
  for (uint64_t l = 1; l <= 250; l++) {
    size_t n = rec_size(seed, l);
    rec_fill(seed, l, buf, n);
    assert_int_equal(mst_oplog_append(log, buf, n, NULL, NULL, &lsn), 0);
    if (l == 100 || l == 200) {
      assert_int_equal(mst_oplog_rotate(log, &next), 0);
      assert_int_equal(next, l + 1);
    }
  }
  mst_oplog_stats st;
  mst_oplog_stats_get(log, &st);
  assert_int_equal(st.segments, 3);
  assert_int_equal(count_files(dir, "oplog."), 3);
  assert_int_equal(mst_oplog_remove_before(log, 100), 0); /* segment 1 holds lsn 100 */
  assert_int_equal(mst_oplog_remove_before(log, 101), 1);
  assert_int_equal(mst_oplog_remove_before(log, UINT64_MAX), 1); /* never the current one */
  assert_int_equal(count_files(dir, "oplog."), 1);
  assert_int_equal(mst_oplog_close(log), 0);
  assert_int_equal(reopen_check(dir, seed, 200, 250, NULL, 0), 0);
  assert_int_equal(reopen_check(dir, seed, 230, 250, NULL, 0), 0);
  char err[512];
  assert_int_equal(reopen_check(dir, seed, 100, 250, err, sizeof err), CAIRN_ECORRUPT);
  print_message("%s\n", err);
  /* A checkpoint beyond the end of the log: LSNs continue after it. */
  assert_int_equal(mst_oplog_open(dir, NULL, 300, NULL, NULL, &log, NULL, 0), 0);
  assert_int_equal(mst_oplog_append_wait(log, "x", 1, &lsn), 0);
  assert_int_equal(lsn, 301);
  assert_int_equal(mst_oplog_close(log), 0);
  assert_int_equal(mst_oplog_open(dir, NULL, 300, NULL, NULL, &log, NULL, 0), 0);
  mst_oplog_stats_get(log, &st);
  assert_int_equal(st.last_lsn, 301);
  assert_int_equal(mst_oplog_close(log), 0);
  free(buf);
  rm_rf(dir);
}

/* Records appended around a rotation land on the right side of the cut. */
typedef struct rot_arg {
  mst_oplog *log;
  atomic_int stop;
  int failures;
} rot_arg;

static void *rot_appender(void *p) {
  rot_arg *a = p;
  while (!atomic_load(&a->stop)) {
    uint64_t lsn;
    if (mst_oplog_append_wait(a->log, &lsn, sizeof lsn, &lsn) != 0) a->failures++;
  }
  return NULL;
}

static int seg_of_replay(void *arg, uint64_t lsn, const void *data, size_t len) {
  (void)data;
  uint64_t *count = arg;
  (void)lsn;
  (void)len;
  (*count)++;
  return 0;
}

static void rotate_under_concurrent_appends(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  rot_arg a = {0};
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &a.log, NULL, 0), 0);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, rot_appender, &a), 0);
  uint64_t cuts[20];
  for (int r = 0; r < 20; r++) {
    usleep(2000);
    assert_int_equal(mst_oplog_rotate(a.log, &cuts[r]), 0);
  }
  atomic_store(&a.stop, 1);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  assert_int_equal(a.failures, 0);
  assert_int_equal(mst_oplog_close(a.log), 0);
  /* Every cut names a segment file (or the unchanged empty one), and replay
   * from each cut sees exactly the records after it. */
  mst_oplog_stats st;
  mst_oplog *log;
  uint64_t total = 0;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, seg_of_replay, &total, &log, NULL, 0), 0);
  mst_oplog_stats_get(log, &st);
  assert_int_equal(mst_oplog_close(log), 0);
  assert_int_equal(total, st.last_lsn);
  for (int r = 0; r < 20; r++) {
    char *p = seg_path(dir, cuts[r]);
    assert_int_equal(access(p, F_OK), 0);
    free(p);
    uint64_t after = 0;
    assert_int_equal(mst_oplog_open(dir, NULL, cuts[r] - 1, seg_of_replay, &after, &log, NULL, 0),
                     0);
    assert_int_equal(mst_oplog_close(log), 0);
    assert_int_equal(after, total - (cuts[r] - 1));
  }
  rm_rf(dir);
}

/* ---- failure ---- */

typedef struct fail_cb {
  atomic_int calls, eio;
} fail_cb;

static void on_fail_done(void *arg, uint64_t lsn, int status) {
  fail_cb *f = arg;
  (void)lsn;
  atomic_fetch_add(&f->calls, 1);
  if (status == CAIRN_EIO) atomic_fetch_add(&f->eio, 1);
}

/* A write that fails (file size limit here) fails the log for good: waiters
 * and callbacks get CAIRN_EIO, later appends are refused, close reports it,
 * and recovery afterwards keeps every record that was durable. */
static void write_failure_fails_log(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_oplog *log;
  uint64_t lsn;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  for (int i = 0; i < 10; i++) assert_int_equal(mst_oplog_append_wait(log, "ok", 2, &lsn), 0);
  char *path = seg_path(dir, 1);
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)file_size(path) + 100;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  static unsigned char big[4096];
  assert_int_equal(mst_oplog_append_wait(log, big, sizeof big, &lsn), CAIRN_EIO);
  assert_int_equal(lsn, 11);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  fail_cb f = {0};
  assert_int_equal(mst_oplog_append(log, "no", 2, on_fail_done, &f, NULL), CAIRN_EIO);
  assert_int_equal(mst_oplog_append_wait(log, "no", 2, NULL), CAIRN_EIO);
  uint64_t next;
  assert_int_equal(mst_oplog_rotate(log, &next), CAIRN_EIO);
  mst_oplog_stats st;
  mst_oplog_stats_get(log, &st);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.durable_lsn, 10);
  assert_int_equal(mst_oplog_close(log), CAIRN_EIO);
  assert_int_equal(atomic_load(&f.calls), 0); /* refused appends never call back */
  /* Restart: the partial write is a torn tail; records 1..10 survive. */
  uint64_t count = 0;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, seg_of_replay, &count, &log, NULL, 0), 0);
  assert_int_equal(count, 10);
  assert_int_equal(mst_oplog_append_wait(log, "again", 5, &lsn), 0);
  assert_int_equal(lsn, 11);
  assert_int_equal(mst_oplog_close(log), 0);
  free(path);
  rm_rf(dir);
}

/* Async records pending when the log fails get CAIRN_EIO exactly once. */
static void failure_reports_pending_callbacks(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  mst_oplog *log;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &log, NULL, 0), 0);
  char *path = seg_path(dir, 1);
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)file_size(path) + 1000;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  fail_cb f = {0};
  static unsigned char rec[100];
  int accepted = 0;
  for (int i = 0; i < 200; i++)
    if (mst_oplog_append(log, rec, sizeof rec, on_fail_done, &f, NULL) == 0) accepted++;
  int rc = mst_oplog_close(log);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  assert_int_equal(rc, CAIRN_EIO);
  assert_int_equal(atomic_load(&f.calls), accepted);
  assert_true(atomic_load(&f.eio) > 0);
  print_message("%d accepted, %d failed with EIO\n", accepted, atomic_load(&f.eio));
  free(path);
  rm_rf(dir);
}

/* Calls that would deadlock from a completion callback are refused. */
typedef struct reentry {
  mst_oplog *log;
  atomic_int wait_rc, rotate_rc, append_rc, close_rc, done;
} reentry;

static void on_reenter(void *arg, uint64_t lsn, int status) {
  reentry *r = arg;
  uint64_t next;
  (void)lsn;
  (void)status;
  atomic_store(&r->wait_rc, mst_oplog_append_wait(r->log, "w", 1, NULL));
  atomic_store(&r->rotate_rc, mst_oplog_rotate(r->log, &next));
  atomic_store(&r->append_rc, mst_oplog_append(r->log, "a", 1, NULL, NULL, NULL));
  atomic_store(&r->close_rc, mst_oplog_close(r->log));
  atomic_store(&r->done, 1);
}

static void callback_reentry_rules(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  reentry r;
  memset(&r, 0, sizeof r);
  assert_int_equal(mst_oplog_open(dir, NULL, 0, NULL, NULL, &r.log, NULL, 0), 0);
  assert_int_equal(mst_oplog_append(r.log, "x", 1, on_reenter, &r, NULL), 0);
  /* Let the callback run before close begins (appends are refused after). */
  for (int i = 0; i < 10000 && !atomic_load(&r.done); i++) usleep(1000);
  assert_int_equal(atomic_load(&r.done), 1);
  assert_int_equal(mst_oplog_close(r.log), 0);
  assert_int_equal(atomic_load(&r.wait_rc), CAIRN_EINVAL);
  assert_int_equal(atomic_load(&r.rotate_rc), CAIRN_EINVAL);
  assert_int_equal(atomic_load(&r.append_rc), 0);
  assert_int_equal(atomic_load(&r.close_rc), CAIRN_EINVAL);
  uint64_t count = 0;
  mst_oplog *log;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, seg_of_replay, &count, &log, NULL, 0), 0);
  assert_int_equal(count, 2);
  assert_int_equal(mst_oplog_close(log), 0);
  rm_rf(dir);
}

/* Leftover segment temp files go; unrelated files stay; replay errors stop open. */
static int stop_at_3(void *arg, uint64_t lsn, const void *data, size_t len) {
  (void)arg;
  (void)data;
  (void)len;
  return lsn == 3 ? CAIRN_EPROTO : 0;
}

static void open_housekeeping(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  write_log(dir, 9, 1, 5);
  char *tmp = cmn_sprintf("%s/oplog.0000000000000006.tmp", dir);
  char *other = cmn_sprintf("%s/checkpoint.0000000000000003", dir);
  spit(tmp, "junk", 4);
  spit(other, "keep", 4);
  mst_oplog *log = NULL;
  assert_int_equal(mst_oplog_open(dir, NULL, 0, stop_at_3, NULL, &log, NULL, 0), CAIRN_EPROTO);
  assert_null(log);
  assert_int_equal(reopen_check(dir, 9, 0, 5, NULL, 0), 0);
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(access(other, F_OK), 0);
  assert_int_equal(mst_oplog_open(NULL, NULL, 0, NULL, NULL, &log, NULL, 0), CAIRN_EINVAL);
  assert_int_equal(mst_oplog_close(NULL), 0);
  free(tmp);
  free(other);
  rm_rf(dir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(round_trip_10000), cmocka_unit_test(reopen_continues_lsn),
                cmocka_unit_test(torn_tail_every_position),
                cmocka_unit_test(garbage_after_last_record_cut),
                cmocka_unit_test(flipped_byte_in_middle_record),
                cmocka_unit_test(bad_record_in_earlier_segment),
                cmocka_unit_test(bad_segment_header_refused), cmocka_unit_test(lsn_gap_refused),
                cmocka_unit_test(group_commit_16_threads), cmocka_unit_test(async_callbacks_once),
                cmocka_unit_test(backpressure_bounds_pending),
                cmocka_unit_test(rotation_remove_before_replay),
                cmocka_unit_test(rotate_under_concurrent_appends),
                cmocka_unit_test(write_failure_fails_log),
                cmocka_unit_test(failure_reports_pending_callbacks),
                cmocka_unit_test(callback_reentry_rules), cmocka_unit_test(open_housekeeping))
