/*
 * store_test_util.h - helpers shared by the replica store's unit tests:
 * temp data dirs, opening stores with a small chunk size, deterministic
 * data, whole-file snapshots, raw access to replica files, fault hooks.
 */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "test_tmp.h"
#include "cs_store.h"
#include "store_internal.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_CHUNK (1u << 20) /* 16 blocks: small files, real geometry */
#define T_B CS_STORE_BLOCK_SIZE

static inline char *t_tmpdir(void) { return cairn_test_tmpdir("store"); }
static inline void t_rm_rf(char *dir) { cairn_test_rm_rf(dir); }

/* A fault hook: crash at the crash_at-th step (1-based) while armed, or
 * fail every step named err_step with err_code. Counts the steps seen. */
typedef struct t_fault {
  int armed;
  int count;
  int crash_at;
  const char *err_step;
  int err_code;
  int crashed;
} t_fault;

static inline int t_fault_fn(void *arg, const char *step) {
  t_fault *f = arg;
  if (!f->armed) return 0;
  f->count++;
  if (f->crash_at > 0 && f->count == f->crash_at) {
    f->crashed = 1;
    return CS_STORE_FAULT_CRASH;
  }
  if (f->err_step && strcmp(step, f->err_step) == 0) return f->err_code;
  return 0;
}

static inline cs_store_opts t_opts(t_fault *fault) {
  cs_store_opts o = {.chunk_size = T_CHUNK, .reserve_bytes = 4096};
  if (fault) {
    o.fault = t_fault_fn;
    o.fault_arg = fault;
  }
  return o;
}

static inline cs_store *t_open_n(char **dirs, size_t n, const cs_store_opts *o) {
  cs_store *s = NULL;
  int rc = cs_store_open((const char *const *)dirs, n, o, &s);
  if (rc != 0) fprintf(stderr, "cs_store_open: %s\n", cairn_err_name(rc));
  assert_int_equal(rc, 0);
  return s;
}

static inline cs_store *t_open(char *dir, t_fault *fault) {
  cs_store_opts o = t_opts(fault);
  return t_open_n(&dir, 1, &o);
}

/* Deterministic bytes for (seed, position). */
static inline unsigned char t_byte(uint32_t seed, uint64_t pos) {
  uint64_t x = (pos + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed << 32 | seed);
  x ^= x >> 29;
  return (unsigned char)(x * 0xbf58476d1ce4e5b9ULL >> 56);
}

static inline void t_fill(unsigned char *buf, size_t n, uint32_t seed, uint64_t pos) {
  for (size_t i = 0; i < n; i++) buf[i] = t_byte(seed, pos + i);
}

static inline char *t_chunk_path(const char *dir, uint64_t h, uint64_t v) {
  return cmn_sprintf("%s/%02x/%016" PRIx64 "_%" PRIu64 ".chunk", dir, (unsigned)(h & 0xff), h, v);
}

static inline char *t_side_path(const char *dir, uint64_t h, uint64_t v, uint64_t serial) {
  return cmn_sprintf("%s/%02x/%016" PRIx64 "_%" PRIu64 ".s%" PRIu64, dir, (unsigned)(h & 0xff), h,
                     v, serial);
}

static inline int t_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Whole file into a new buffer (caller frees); *len its size. */
static inline unsigned char *t_slurp(const char *path, size_t *len) {
  char *buf = NULL;
  int rc = cmn_read_file(path, 64u << 20, &buf, len);
  assert_int_equal(rc, 0);
  return (unsigned char *)buf;
}

static inline void t_assert_file_equals(const char *path, const unsigned char *want, size_t n) {
  size_t len;
  unsigned char *got = t_slurp(path, &len);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
  free(got);
}

/* Overwrite / read bytes of a file in place (to fake disk damage). */
static inline void t_poke(const char *path, uint64_t off, const void *data, size_t n) {
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, data, n, (off_t)off), (ssize_t)n);
  close(fd);
}

static inline void t_flip(const char *path, uint64_t off) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
  c ^= 0x5a;
  assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
  close(fd);
}

static inline void t_truncate(const char *path, uint64_t size) {
  assert_int_equal(truncate(path, (off_t)size), 0);
}

static inline uint64_t t_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static inline cs__geom t_geom(void) {
  cs__geom g;
  cs__geom_init(&g, T_CHUNK);
  return g;
}

/* Prepare + commit, asserting success. */
static inline void t_write(cs_store *s, uint64_t h, uint64_t v, uint64_t serial, uint64_t off,
                           const unsigned char *data, size_t n) {
  assert_int_equal(cs_store_prepare(s, h, v, serial, off, data, n, cmn_crc32c(0, data, n), 0), 0);
  assert_int_equal(cs_store_commit(s, h, v, serial), 0);
}

/* The whole committed content must equal want[0, n). */
static inline void t_assert_content(cs_store *s, uint64_t h, uint64_t v, const unsigned char *want,
                                    size_t n) {
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, h, &r), 0);
  assert_int_equal(r.version, v);
  assert_int_equal(r.length, n);
  unsigned char *got = cmn_malloc(T_CHUNK);
  assert_int_equal(cs_store_read(s, h, v, 0, got, T_CHUNK), (int64_t)n);
  if (n) assert_memory_equal(got, want, n);
  free(got);
}

/* Collect the pending intents. */
typedef struct t_intents {
  cs_store_intent v[16];
  size_t n;
} t_intents;

static inline int t_collect_intent(void *arg, const cs_store_intent *it) {
  t_intents *l = arg;
  if (l->n < 16) l->v[l->n++] = *it;
  return 0;
}

static inline t_intents t_pending(cs_store *s) {
  t_intents l = {.n = 0};
  assert_int_equal(cs_store_pending(s, t_collect_intent, &l), 0);
  return l;
}

/* Check that the CRC table of the current header slot matches CRCs computed
 * here over `content` (committed length n), block by block. */
static inline void t_assert_crc_table(const char *path, const unsigned char *content, size_t n) {
  cs__geom g = t_geom();
  size_t len;
  unsigned char *file = t_slurp(path, &len);
  cs__header ha, hb;
  int ra = cs__header_decode(&g, file, &ha);
  int rb = cs__header_decode(&g, file + g.slot_size, &hb);
  assert_true(ra == 0 || rb == 0);
  int cur = ra == 0 && (rb != 0 || !cs__seq_newer(hb.seq, ha.seq)) ? 0 : 1;
  const unsigned char *slot = file + cur * g.slot_size;
  cs__header h = cur ? hb : ha;
  assert_int_equal(h.committed, n);
  assert_int_equal(len, g.data_off + n);
  for (uint32_t b = 0; b < g.nblocks; b++) {
    uint64_t bs = (uint64_t)b * T_B;
    uint32_t want = 0;
    if (bs < n) want = cmn_crc32c(0, content + bs, (size_t)CMN_MIN((uint64_t)T_B, n - bs));
    assert_int_equal(cs__table_get(slot, b), want);
  }
  assert_memory_equal(file + g.data_off, content, n);
  free(file);
}

#endif /* STORE_TEST_UTIL_H */
