/* Unit tests for the push buffer (chunkserver/pushbuf.c): budget, length
 * and CRC checks, cancel, references, expiry, concurrent pushes. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_util.h"
#include "cs_pushbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void make_id(uint8_t id[CS_DATA_ID_LEN], uint32_t n) {
  memset(id, 0, CS_DATA_ID_LEN);
  memcpy(id, &n, sizeof n);
  id[15] = 0xa5;
}

static void fill(uint8_t *buf, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
}

/* A whole push of `n` bytes in pieces of `piece`; returns finish's code. */
static int push_all(cs_pushbuf *pb, uint32_t idn, const uint8_t *data, size_t n, size_t piece) {
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, idn);
  cs_push *p = NULL;
  int rc = cs_pushbuf_begin(pb, id, n, cmn_crc32c(0, data, n), &p);
  if (rc < 0) return rc;
  for (size_t off = 0; off < n; off += piece) {
    rc = cs_pushbuf_append(p, data + off, CMN_MIN(piece, n - off));
    assert_int_equal(rc, 0);
  }
  return cs_pushbuf_finish(p);
}

static cs_pushbuf_stats stats(cs_pushbuf *pb) {
  cs_pushbuf_stats s;
  cs_pushbuf_get_stats(pb, &s);
  return s;
}

static void bad_arguments(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(0, 1000, &pb), CAIRN_EINVAL);
  assert_int_equal(cs_pushbuf_new(1024, 0, &pb), CAIRN_EINVAL);
  assert_int_equal(cs_pushbuf_new(1024, 1000, NULL), CAIRN_EINVAL);
  assert_int_equal(cs_pushbuf_new(4096, 1000, &pb), 0);
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, 1);
  cs_push *p = NULL;
  assert_int_equal(cs_pushbuf_begin(pb, id, 0, 0, &p), CAIRN_EINVAL);
  assert_int_equal(cs_pushbuf_begin(pb, id, (1ull << 30) + 1, 0, &p), CAIRN_EINVAL);
  assert_int_equal(stats(pb).reserved, 0);
  cs_pushbuf_free(pb);
  cs_pushbuf_free(NULL);
}

static void budget_refusal_and_recovery(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(100000, 60000, &pb), 0);
  uint8_t a[60000], b[50000];
  fill(a, sizeof a, 1);
  fill(b, sizeof b, 2);
  assert_int_equal(push_all(pb, 1, a, sizeof a, 7000), 0);
  assert_int_equal(stats(pb).reserved, sizeof a);
  /* 60000 + 50000 > 100000: refused, nothing reserved for it */
  assert_int_equal(push_all(pb, 2, b, sizeof b, 7000), CAIRN_EBUSY);
  cs_pushbuf_stats s = stats(pb);
  assert_int_equal(s.reserved, sizeof a);
  assert_int_equal(s.pushes, 1);
  assert_int_equal(s.refused, 1);
  assert_int_equal(s.budget, 100000);
  /* the same id again is EEXIST, not a second reservation */
  assert_int_equal(push_all(pb, 1, a, 10, 10), CAIRN_EEXIST);
  /* once the first push is dropped the second fits */
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, 1);
  cs_pushbuf_drop(pb, id);
  assert_int_equal(stats(pb).reserved, 0);
  assert_int_equal(push_all(pb, 2, b, sizeof b, 50000), 0);
  const void *data;
  uint64_t len;
  uint32_t crc;
  make_id(id, 2);
  assert_int_equal(cs_pushbuf_get(pb, id, &data, &len, &crc), 0);
  assert_int_equal(len, sizeof b);
  assert_int_equal(crc, cmn_crc32c(0, b, sizeof b));
  assert_memory_equal(data, b, sizeof b);
  cs_pushbuf_put(pb, id);
  cs_pushbuf_free(pb);
}

static void finish_checks_length_and_crc(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(1 << 20, 60000, &pb), 0);
  uint8_t d[5000];
  fill(d, sizeof d, 3);
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, 7);
  cs_push *p = NULL;
  const void *data;
  uint64_t len;
  uint32_t crc;

  /* short: EPROTO, dropped */
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof d, cmn_crc32c(0, d, sizeof d), &p), 0);
  assert_int_equal(cs_pushbuf_append(p, d, 4999), 0);
  assert_int_equal(cs_pushbuf_get(pb, id, &data, &len, &crc), CAIRN_ENOENT); /* still arriving */
  assert_int_equal(cs_pushbuf_finish(p), CAIRN_EPROTO);
  assert_int_equal(stats(pb).reserved, 0);
  assert_int_equal(stats(pb).pushes, 0);

  /* past the total: ERANGE, nothing appended */
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof d, cmn_crc32c(0, d, sizeof d), &p), 0);
  assert_int_equal(cs_pushbuf_append(p, d, 4000), 0);
  assert_int_equal(cs_pushbuf_append(p, d, 1001), CAIRN_ERANGE);
  assert_int_equal(cs_pushbuf_append(p, d + 4000, 1000), 0);
  assert_int_equal(cs_pushbuf_finish(p), 0);
  assert_int_equal(cs_pushbuf_get(pb, id, &data, &len, &crc), 0);
  assert_memory_equal(data, d, sizeof d);
  cs_pushbuf_put(pb, id);
  cs_pushbuf_drop(pb, id);

  /* a flipped byte: ECHECKSUM, dropped */
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof d, cmn_crc32c(0, d, sizeof d), &p), 0);
  d[2500] ^= 1;
  assert_int_equal(cs_pushbuf_append(p, d, sizeof d), 0);
  assert_int_equal(cs_pushbuf_finish(p), CAIRN_ECHECKSUM);
  assert_int_equal(cs_pushbuf_get(pb, id, &data, &len, &crc), CAIRN_ENOENT);
  assert_int_equal(stats(pb).reserved, 0);
  cs_pushbuf_free(pb);
}

static void cancel_frees_reservation(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(10000, 60000, &pb), 0);
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, 9);
  cs_push *p = NULL;
  uint8_t d[100] = {1, 2, 3};
  assert_int_equal(cs_pushbuf_begin(pb, id, 10000, 0, &p), 0);
  assert_int_equal(cs_pushbuf_append(p, d, sizeof d), 0);
  assert_int_equal(stats(pb).reserved, 10000);
  cs_push *q = NULL;
  uint8_t id2[CS_DATA_ID_LEN];
  make_id(id2, 10);
  assert_int_equal(cs_pushbuf_begin(pb, id2, 1, 0, &q), CAIRN_EBUSY);
  /* drop and expiry leave a push in progress alone */
  cs_pushbuf_drop(pb, id);
  assert_int_equal(cs_pushbuf_expire(pb, cmn_mono_ms() + 3600000), 0);
  assert_int_equal(stats(pb).pushes, 1);
  cs_pushbuf_cancel(p);
  assert_int_equal(stats(pb).reserved, 0);
  assert_int_equal(stats(pb).pushes, 0);
  /* the id is free again */
  assert_int_equal(cs_pushbuf_begin(pb, id, 10000, 0, &p), 0);
  cs_pushbuf_cancel(p);
  cs_pushbuf_free(pb);
}

static void references_and_drop(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(1 << 20, 60000, &pb), 0);
  uint8_t d[3000];
  fill(d, sizeof d, 4);
  assert_int_equal(push_all(pb, 1, d, sizeof d, 1000), 0);
  uint8_t id[CS_DATA_ID_LEN];
  make_id(id, 1);
  const void *d1, *d2;
  uint64_t len;
  uint32_t crc;
  assert_int_equal(cs_pushbuf_get(pb, id, &d1, &len, &crc), 0);
  assert_int_equal(cs_pushbuf_get(pb, id, &d2, &len, &crc), 0);
  assert_ptr_equal(d1, d2);
  /* drop while referenced: invisible at once, bytes kept until the last put */
  cs_pushbuf_drop(pb, id);
  const void *d3;
  assert_int_equal(cs_pushbuf_get(pb, id, &d3, &len, &crc), CAIRN_ENOENT);
  assert_int_equal(stats(pb).reserved, sizeof d);
  assert_memory_equal(d1, d, sizeof d);
  /* the id stays taken while the bytes live */
  cs_push *p = NULL;
  assert_int_equal(cs_pushbuf_begin(pb, id, 10, 0, &p), CAIRN_EEXIST);
  cs_pushbuf_put(pb, id);
  assert_int_equal(stats(pb).reserved, sizeof d);
  assert_memory_equal(d2, d, sizeof d);
  cs_pushbuf_put(pb, id);
  assert_int_equal(stats(pb).reserved, 0);
  assert_int_equal(stats(pb).pushes, 0);
  /* unknown ids are ignored */
  cs_pushbuf_put(pb, id);
  cs_pushbuf_drop(pb, id);
  cs_pushbuf_free(pb);
}

static void expiry_skips_referenced(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(1 << 20, 1000, &pb), 0);
  uint8_t d[100];
  fill(d, sizeof d, 5);
  assert_int_equal(push_all(pb, 1, d, sizeof d, 100), 0);
  assert_int_equal(push_all(pb, 2, d, sizeof d, 100), 0);
  uint8_t id1[CS_DATA_ID_LEN], id2[CS_DATA_ID_LEN];
  make_id(id1, 1);
  make_id(id2, 2);
  const void *data;
  uint64_t len;
  uint32_t crc;
  assert_int_equal(cs_pushbuf_get(pb, id1, &data, &len, &crc), 0);
  int64_t now = cmn_mono_ms();
  assert_int_equal(cs_pushbuf_expire(pb, now), 0); /* not old yet */
  assert_int_equal(cs_pushbuf_expire(pb, now + 5000), 1);
  assert_int_equal(cs_pushbuf_get(pb, id2, &data, &len, &crc), CAIRN_ENOENT);
  cs_pushbuf_stats s = stats(pb);
  assert_int_equal(s.expired, 1);
  assert_int_equal(s.pushes, 1);
  assert_memory_equal(data, d, sizeof d); /* id1's bytes, still referenced */
  cs_pushbuf_put(pb, id1);
  /* put touched it: not expired until a TTL after the put */
  assert_int_equal(cs_pushbuf_expire(pb, cmn_mono_ms() + 10), 0);
  assert_int_equal(cs_pushbuf_expire(pb, cmn_mono_ms() + 5000), 1);
  assert_int_equal(stats(pb).reserved, 0);
  cs_pushbuf_free(pb);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NPUSH 200

typedef struct worker {
  cs_pushbuf *pb;
  uint32_t base;
  int failures;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  uint8_t buf[4096];
  for (uint32_t i = 0; i < NPUSH; i++) {
    uint32_t n = w->base + i;
    size_t len = 1 + (n * 37u) % sizeof buf;
    fill(buf, len, n);
    uint8_t id[CS_DATA_ID_LEN];
    make_id(id, n);
    cs_push *p = NULL;
    int rc = cs_pushbuf_begin(w->pb, id, len, cmn_crc32c(0, buf, len), &p);
    if (rc == CAIRN_EBUSY) continue; /* the budget is shared; refusals are fine */
    if (rc < 0) {
      w->failures++;
      continue;
    }
    for (size_t off = 0; off < len; off += 500) cs_pushbuf_append(p, buf + off, CMN_MIN(500, len - off));
    if (cs_pushbuf_finish(p) != 0) w->failures++;
    const void *data;
    uint64_t got;
    uint32_t crc;
    if (cs_pushbuf_get(w->pb, id, &data, &got, &crc) != 0 || got != len ||
        memcmp(data, buf, len) != 0)
      w->failures++;
    else
      cs_pushbuf_put(w->pb, id);
    if (i % 2 == 0) cs_pushbuf_drop(w->pb, id);
    if (i % 50 == 0) cs_pushbuf_expire(w->pb, cmn_mono_ms());
  }
  return NULL;
}

static void concurrent_pushes(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  uint64_t budget = 2u << 20;
  assert_int_equal(cs_pushbuf_new(budget, 60000, &pb), 0);
  pthread_t th[NTHREADS];
  worker w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    w[i] = (worker){.pb = pb, .base = (uint32_t)(i * 100000 + 1)};
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  cs_pushbuf_stats s = stats(pb);
  assert_true(s.reserved <= budget);
  /* the odd pushes are still held, each with its exact bytes */
  uint64_t want = 0, count = 0;
  uint8_t buf[4096];
  for (int t = 0; t < NTHREADS; t++)
    for (uint32_t i = 1; i < NPUSH; i += 2) {
      uint32_t n = w[t].base + i;
      uint8_t id[CS_DATA_ID_LEN];
      make_id(id, n);
      const void *data;
      uint64_t len;
      uint32_t crc;
      if (cs_pushbuf_get(pb, id, &data, &len, &crc) != 0) continue; /* refused for budget */
      fill(buf, len, n);
      assert_memory_equal(data, buf, len);
      cs_pushbuf_put(pb, id);
      want += len;
      count++;
    }
  assert_true(count > 0);
  assert_int_equal(s.reserved, want);
  assert_int_equal(s.pushes, count);
  cs_pushbuf_free(pb);
}

/* A hold keeps the bytes of a push through cancel, a failed finish, drop
 * and expiry; its reservation is returned only when the hold ends. */
static void hold_outlives_the_push(void **state) {
  (void)state;
  cs_pushbuf *pb = NULL;
  assert_int_equal(cs_pushbuf_new(1u << 20, 1, &pb), 0);
  uint8_t data[4096];
  fill(data, sizeof data, 7);
  uint8_t id[CS_DATA_ID_LEN];

  /* cancelled while held */
  make_id(id, 1);
  cs_push *p = NULL;
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof data, cmn_crc32c(0, data, sizeof data), &p), 0);
  cs_pushbuf_hold(p);
  assert_int_equal(cs_pushbuf_append(p, data, 1000), 0);
  cs_pushbuf_cancel(p);
  assert_memory_equal(cs_pushbuf_bytes(p), data, 1000); /* still readable (ASan would tell) */
  assert_true(stats(pb).reserved == sizeof data);
  const void *got;
  uint64_t len;
  uint32_t crc;
  assert_int_equal(cs_pushbuf_get(pb, id, &got, &len, &crc), CAIRN_ENOENT);
  cs_pushbuf_unhold(p);
  assert_true(stats(pb).reserved == 0 && stats(pb).pushes == 0);

  /* a finish that fails its CRC while held */
  make_id(id, 2);
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof data, 12345, &p), 0);
  cs_pushbuf_hold(p);
  assert_int_equal(cs_pushbuf_append(p, data, sizeof data), 0);
  assert_int_equal(cs_pushbuf_finish(p), CAIRN_ECHECKSUM);
  assert_memory_equal(cs_pushbuf_bytes(p), data, sizeof data);
  assert_int_equal(cs_pushbuf_get(pb, id, &got, &len, &crc), CAIRN_ENOENT);
  cs_pushbuf_unhold(p);
  assert_true(stats(pb).reserved == 0);

  /* visible, held: expiry skips it, drop waits for the hold */
  make_id(id, 3);
  assert_int_equal(cs_pushbuf_begin(pb, id, sizeof data, cmn_crc32c(0, data, sizeof data), &p), 0);
  cs_pushbuf_hold(p);
  assert_int_equal(cs_pushbuf_append(p, data, sizeof data), 0);
  assert_int_equal(cs_pushbuf_finish(p), 0);
  assert_int_equal(cs_pushbuf_expire(pb, cmn_mono_ms() + 10000), 0);
  cs_pushbuf_drop(pb, id);
  assert_int_equal(cs_pushbuf_get(pb, id, &got, &len, &crc), CAIRN_ENOENT);
  assert_memory_equal(cs_pushbuf_bytes(p), data, sizeof data);
  assert_true(stats(pb).pushes == 1);
  cs_pushbuf_unhold(p);
  assert_true(stats(pb).pushes == 0 && stats(pb).reserved == 0);
  assert_int_equal(cs_pushbuf_ttl_ms(pb), 1);
  cs_pushbuf_free(pb);
}

CAIRN_TEST_MAIN(cmocka_unit_test(bad_arguments), cmocka_unit_test(hold_outlives_the_push), cmocka_unit_test(budget_refusal_and_recovery),
                cmocka_unit_test(finish_checks_length_and_crc),
                cmocka_unit_test(cancel_frees_reservation), cmocka_unit_test(references_and_drop),
                cmocka_unit_test(expiry_skips_referenced), cmocka_unit_test(concurrent_pushes))
