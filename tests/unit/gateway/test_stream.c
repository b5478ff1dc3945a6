/*
 * test_stream.c - the gateway's streaming pieces that need no server: the
 * buffer ring between two threads, Range header parsing, and the small
 * document cache.
 */
#include <pthread.h>
#include <stdlib.h>

#include "test_main.h"

#include "cairn_error.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_internal.h"
#include "gw_ring.h"

/* ---- ring ---- */

typedef struct prod_arg {
  gw_ring *ring;
  uint64_t total;
  int fail_at; /* close with an error after this many buffers (-1 never) */
} prod_arg;

static void *producer(void *p) {
  prod_arg *a = p;
  uint64_t off = 0;
  int n = 0;
  while (off < a->total) {
    if (a->fail_at >= 0 && n == a->fail_at) {
      gw_ring_close(a->ring, CAIRN_EIO);
      return NULL;
    }
    gw_ring_buf *b = gw_ring_get_empty(a->ring);
    if (b == NULL) {
      return NULL;
    }
    size_t k = gw_ring_size(a->ring);
    if (k > a->total - off) {
      k = (size_t)(a->total - off);
    }
    for (size_t i = 0; i < k; i++) {
      b->data[i] = (char)((off + i) * 7 + 3);
    }
    b->len = k;
    b->off = off;
    off += k;
    gw_ring_put_full(a->ring, b);
    n++;
  }
  gw_ring_close(a->ring, 0);
  return NULL;
}

/* Every byte arrives once, in order, across threads, and a normal close
 * still lets the consumer drain what was produced. */
static void ring_moves_every_byte_in_order(void **state) {
  (void)state;
  gw_ring *ring = gw_ring_new(3, 1000, NULL, 0);
  prod_arg a = {ring, 1000 * 50 + 123, -1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, producer, &a), 0);
  uint64_t got = 0;
  gw_ring_buf *b;
  while ((b = gw_ring_get_full(ring)) != NULL) {
    assert_int_equal(b->off, got);
    for (size_t i = 0; i < b->len; i++) {
      assert_int_equal((char)((got + i) * 7 + 3), b->data[i]);
    }
    got += b->len;
    gw_ring_put_empty(ring, b);
  }
  pthread_join(t, NULL);
  assert_int_equal(got, a.total);
  assert_int_equal(gw_ring_error(ring), 0);
  gw_ring_free(ring);
}

/* An error close stops the consumer at once, and the first error wins. */
static void ring_error_stops_both_sides(void **state) {
  (void)state;
  gw_ring *ring = gw_ring_new(2, 64, NULL, 0);
  prod_arg a = {ring, 64 * 100, 5};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, producer, &a), 0);
  int bufs = 0;
  gw_ring_buf *b;
  while ((b = gw_ring_get_full(ring)) != NULL) {
    bufs++;
    gw_ring_put_empty(ring, b);
  }
  pthread_join(t, NULL);
  assert_true(bufs <= 5);
  gw_ring_close(ring, CAIRN_ECANCELED);
  assert_int_equal(gw_ring_error(ring), CAIRN_EIO);
  assert_null(gw_ring_get_empty(ring));
  gw_ring_free(ring);
}

/* A consumer that goes away (close) releases a producer blocked on a full
 * ring. */
static void ring_close_wakes_blocked_producer(void **state) {
  (void)state;
  gw_ring *ring = gw_ring_new(1, 16, NULL, 0);
  prod_arg a = {ring, 16 * 10, -1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, producer, &a), 0);
  gw_ring_buf *b = gw_ring_get_full(ring);
  assert_non_null(b);
  gw_ring_put_empty(ring, b);
  gw_ring_close(ring, CAIRN_ECANCELED);
  pthread_join(t, NULL); /* would hang if the producer were not woken */
  gw_ring_free(ring);
}

/* The budget shrinks depth, then size, and refuses when nothing fits;
 * freeing gives the memory back. */
static void ring_budget_bounds_memory(void **state) {
  (void)state;
  gw_ring_budget b;
  gw_ring_budget_init(&b, 4 << 20);
  gw_ring *a = gw_ring_new(2, 2 << 20, &b, 0); /* takes all 4 MiB */
  assert_non_null(a);
  assert_int_equal(gw_ring_budget_left(&b), 0);
  assert_null(gw_ring_new(2, 1 << 20, &b, 50)); /* waits, then gives up */
  gw_ring_free(a);
  assert_int_equal(gw_ring_budget_left(&b), 4 << 20);
  gw_ring *c = gw_ring_new(1, 3 << 20, &b, 0);
  assert_non_null(c);
  gw_ring *d = gw_ring_new(2, 2 << 20, &b, 0); /* one smaller buffer fits */
  assert_non_null(d);
  assert_true(gw_ring_size(d) <= (1 << 20));
  assert_true(gw_ring_budget_left(&b) >= 0);
  gw_ring_free(c);
  gw_ring_free(d);
  assert_int_equal(gw_ring_budget_left(&b), 4 << 20);
  gw_ring_budget_destroy(&b);
}

/* ---- Range ---- */

static void range_forms(void **state) {
  (void)state;
  uint64_t s, l;
  assert_int_equal(gw_range_parse(NULL, 100, &s, &l), 0);
  assert_int_equal(gw_range_parse("bytes=0-9", 100, &s, &l), 1);
  assert_int_equal(s, 0);
  assert_int_equal(l, 10);
  assert_int_equal(gw_range_parse("bytes=90-", 100, &s, &l), 1); /* open-ended */
  assert_int_equal(s, 90);
  assert_int_equal(l, 10);
  assert_int_equal(gw_range_parse("bytes=-5", 100, &s, &l), 1); /* suffix */
  assert_int_equal(s, 95);
  assert_int_equal(l, 5);
  assert_int_equal(gw_range_parse("bytes=-500", 100, &s, &l), 1); /* suffix longer than doc */
  assert_int_equal(s, 0);
  assert_int_equal(l, 100);
  assert_int_equal(gw_range_parse("bytes=50-5000", 100, &s, &l), 1); /* end clamped */
  assert_int_equal(s, 50);
  assert_int_equal(l, 50);
  assert_int_equal(gw_range_parse("bytes=99-99", 100, &s, &l), 1);
  assert_int_equal(l, 1);
}

static void range_unsatisfiable_and_ignored(void **state) {
  (void)state;
  uint64_t s, l;
  assert_int_equal(gw_range_parse("bytes=100-", 100, &s, &l), CAIRN_ERANGE);
  assert_int_equal(gw_range_parse("bytes=200-300", 100, &s, &l), CAIRN_ERANGE);
  assert_int_equal(gw_range_parse("bytes=-0", 100, &s, &l), CAIRN_ERANGE);
  assert_int_equal(gw_range_parse("bytes=0-", 0, &s, &l), CAIRN_ERANGE);
  /* malformed or several ranges: ignored, the whole document is sent */
  const char *ignored[] = {"bytes=", "bytes=a-b", "bytes=5-2", "items=0-1", "bytes=0-1,3-4",
                           "bytes=--1", "bytes=1-2x", "bytes= 1-2"};
  for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
    assert_int_equal(gw_range_parse(ignored[i], 100, &s, &l), 0);
  }
}

/* ---- small cache ---- */

static gw_small_doc mkdoc(size_t len, char fill) {
  gw_small_doc d = {0};
  d.data = malloc(len ? len : 1);
  memset(d.data, fill, len);
  d.len = len;
  d.name = strdup("a.txt");
  d.content_type = strdup("text/plain");
  strcpy(d.sha256, "00");
  return d;
}

static void small_cache_hits_evicts_and_removes(void **state) {
  (void)state;
  gw_small_cache *c;
  assert_int_equal(gw_small_cache_new(3 * 40000, &c), 0);
  char id[37];
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    gw_small_doc d = mkdoc(30000, (char)('a' + i));
    gw_small_put(c, id, &d);
    gw_small_doc_clear(&d);
  }
  gw_small_doc out;
  /* the budget holds three: the two oldest are gone */
  assert_int_equal(gw_small_get(c, "00000000-0000-4000-8000-000000000000", 0, &out), 0);
  assert_int_equal(gw_small_get(c, "00000000-0000-4000-8000-000000000004", 0, &out), 1);
  assert_int_equal(out.len, 30000);
  assert_int_equal(out.data[29999], 'e');
  gw_small_doc_clear(&out);
  gw_small_remove(c, "00000000-0000-4000-8000-000000000004");
  assert_int_equal(gw_small_get(c, "00000000-0000-4000-8000-000000000004", 0, &out), 0);
  /* too large for the cache: not kept */
  gw_small_doc big = mkdoc(GW_SMALL_MAX + 1, 'z');
  gw_small_put(c, "00000000-0000-4000-8000-000000000009", &big);
  gw_small_doc_clear(&big);
  assert_int_equal(gw_small_get(c, "00000000-0000-4000-8000-000000000009", 0, &out), 0);
  gw_small_cache_free(c);
}

CAIRN_TEST_MAIN(cmocka_unit_test(ring_moves_every_byte_in_order),
                cmocka_unit_test(ring_error_stops_both_sides),
                cmocka_unit_test(ring_close_wakes_blocked_producer),
                cmocka_unit_test(ring_budget_bounds_memory), cmocka_unit_test(range_forms),
                cmocka_unit_test(range_unsatisfiable_and_ignored),
                cmocka_unit_test(small_cache_hits_evicts_and_removes))
