/*
 * test_ratelimit.c - token buckets (gateway/ratelimit.c), driven by a fake
 * clock: burst then refusal with the right wait, refill, independence of
 * keys, bounded memory and which bucket eviction picks, bad input, and
 * four threads sharing one limiter.
 */
#include "test_main.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw_ratelimit.h"

static void new_refuses_bad_arguments(void **state) {
  (void)state;
  gw_ratelimit *rl = (gw_ratelimit *)&rl; /* must stay as is */
  gw_ratelimit *keep = rl;
  assert_int_equal(gw_ratelimit_new(0, 5, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(-1, 5, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(NAN, 5, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(INFINITY, 5, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(1, 0.5, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(1, INFINITY, 10, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(1, 5, 0, &rl), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_new(1, 5, 10, NULL), CAIRN_EINVAL);
  assert_ptr_equal(rl, keep);
  gw_ratelimit_free(NULL);
}

static void burst_then_refusal_with_retry_after(void **state) {
  (void)state;
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(10, 5, 100, &rl), 0);
  int64_t retry = -1;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(gw_ratelimit_take(rl, "alice", 1000, &retry), 0);
  }
  assert_int_equal(gw_ratelimit_take(rl, "alice", 1000, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 100); /* one token per 100 ms */
  /* Refused requests take nothing: the wait shrinks with time only. */
  assert_int_equal(gw_ratelimit_take(rl, "alice", 1040, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 60);
  assert_int_equal(gw_ratelimit_take(rl, "alice", 1099, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 1);
  /* Exactly when promised. */
  assert_int_equal(gw_ratelimit_take(rl, "alice", 1100, &retry), 0);
  assert_int_equal(gw_ratelimit_take(rl, "alice", 1100, NULL), CAIRN_ERATELIMIT);
  /* Another key is not affected. */
  assert_int_equal(gw_ratelimit_take(rl, "bob", 1100, &retry), 0);
  gw_ratelimit_free(rl);
}

static void retry_after_rounds_up(void **state) {
  (void)state;
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(3, 1, 10, &rl), 0);
  int64_t retry = 0;
  assert_int_equal(gw_ratelimit_take(rl, "k", 0, &retry), 0);
  assert_int_equal(gw_ratelimit_take(rl, "k", 0, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 334); /* 333.33 ms, rounded up */
  assert_int_equal(gw_ratelimit_take(rl, "k", 333, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 1);
  assert_int_equal(gw_ratelimit_take(rl, "k", 334, &retry), 0);
  /* A slow rate gives long waits. */
  gw_ratelimit_free(rl);
  assert_int_equal(gw_ratelimit_new(0.001, 1, 10, &rl), 0);
  assert_int_equal(gw_ratelimit_take(rl, "k", 0, &retry), 0);
  assert_int_equal(gw_ratelimit_take(rl, "k", 0, &retry), CAIRN_ERATELIMIT);
  assert_int_equal(retry, 1000000);
  gw_ratelimit_free(rl);
}

/* For many rates and times: a refused request's wait is exact, to the
 * millisecond: refused one millisecond earlier, allowed then. */
static void retry_after_promise_holds(void **state) {
  (void)state;
  static const double rates[] = {0.7, 1, 3, 7, 10, 33.3, 999, 1000, 12345};
  for (size_t r = 0; r < CMN_ARRAY_LEN(rates); r++) {
    gw_ratelimit *rl;
    assert_int_equal(gw_ratelimit_new(rates[r], 1, 10, &rl), 0);
    int64_t now = 17;
    for (int round = 0; round < 200; round++) {
      int64_t retry = 0;
      while (gw_ratelimit_take(rl, "k", now, &retry) == 0) {
        now += round % 7; /* odd steps leave fractional tokens */
      }
      assert_true(retry >= 1);
      if (retry > 1) {
        int64_t again = 0;
        assert_int_equal(gw_ratelimit_take(rl, "k", now + retry - 1, &again), CAIRN_ERATELIMIT);
        assert_int_equal(again, 1);
      }
      now += retry;
      assert_int_equal(gw_ratelimit_take(rl, "k", now, NULL), 0);
    }
    gw_ratelimit_free(rl);
  }
}

static void refill_is_capped_at_burst(void **state) {
  (void)state;
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(2, 4, 10, &rl), 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(gw_ratelimit_take(rl, "k", 0, NULL), 0);
  }
  assert_int_equal(gw_ratelimit_take(rl, "k", 0, NULL), CAIRN_ERATELIMIT);
  /* One second: two tokens. */
  assert_int_equal(gw_ratelimit_take(rl, "k", 1000, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "k", 1000, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "k", 1000, NULL), CAIRN_ERATELIMIT);
  /* An hour idle: back to the burst, not more. */
  int ok = 0;
  while (gw_ratelimit_take(rl, "k", 3601000, NULL) == 0) {
    ok++;
    assert_true(ok <= 4);
  }
  assert_int_equal(ok, 4);
  /* A clock that goes back adds nothing, and does not break the bucket. */
  assert_int_equal(gw_ratelimit_take(rl, "k", 5000, NULL), CAIRN_ERATELIMIT);
  assert_int_equal(gw_ratelimit_take(rl, "k", 3601500, NULL), 0);
  gw_ratelimit_free(rl);
}

static void bad_keys_refused(void **state) {
  (void)state;
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(1, 1, 10, &rl), 0);
  char key[GW_RATELIMIT_KEY_MAX + 2];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0';
  assert_int_equal(gw_ratelimit_take(rl, key, 0, NULL), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_take(rl, NULL, 0, NULL), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_take(NULL, "k", 0, NULL), CAIRN_EINVAL);
  assert_int_equal(gw_ratelimit_count(rl), 0); /* nothing counted */
  key[GW_RATELIMIT_KEY_MAX] = '\0';
  assert_int_equal(gw_ratelimit_take(rl, key, 0, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, key, 0, NULL), CAIRN_ERATELIMIT);
  /* Keys that share a prefix are different keys. */
  key[GW_RATELIMIT_KEY_MAX - 1] = '\0';
  assert_int_equal(gw_ratelimit_take(rl, key, 0, NULL), 0);
  assert_int_equal(gw_ratelimit_count(rl), 2);
  gw_ratelimit_free(rl);
}

static void many_keys_stay_bounded(void **state) {
  (void)state;
  /* Small (one shard) and large (sixteen shards) limiters. */
  static const size_t caps[] = {100, 5000};
  for (size_t c = 0; c < CMN_ARRAY_LEN(caps); c++) {
    gw_ratelimit *rl;
    assert_int_equal(gw_ratelimit_new(1, 2, caps[c], &rl), 0);
    for (int i = 0; i < 20000; i++) {
      char key[32];
      snprintf(key, sizeof key, "10.0.%d.%d", i / 256, i % 256);
      assert_int_equal(gw_ratelimit_take(rl, key, i, NULL), 0);
      assert_true(gw_ratelimit_count(rl) <= caps[c]);
    }
    assert_true(gw_ratelimit_count(rl) >= caps[c] * 3 / 4);
    gw_ratelimit_free(rl);
  }
}

static void eviction_prefers_idle_buckets(void **state) {
  (void)state;
  /* Room for three; one token a second, burst two. */
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(1, 2, 3, &rl), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 0, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 0, NULL), 0); /* a: empty */
  assert_int_equal(gw_ratelimit_take(rl, "b", 0, NULL), 0); /* b: one left */
  assert_int_equal(gw_ratelimit_take(rl, "c", 0, NULL), 0); /* c: one left */
  /* At 1 s, a holds one token (not full) while b and c are full again.
   * a is the least recently used, yet an idle bucket goes instead. */
  assert_int_equal(gw_ratelimit_take(rl, "d", 1000, NULL), 0);
  assert_int_equal(gw_ratelimit_count(rl), 3);
  /* a kept its state: one token, not a fresh two. */
  assert_int_equal(gw_ratelimit_take(rl, "a", 1000, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 1000, NULL), CAIRN_ERATELIMIT);
  gw_ratelimit_free(rl);
}

static void eviction_falls_back_to_lru(void **state) {
  (void)state;
  /* Room for two, a rate so low nothing refills during the test. */
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(0.001, 2, 2, &rl), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 0, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "b", 1, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "c", 2, NULL), 0); /* evicts a, the LRU */
  assert_int_equal(gw_ratelimit_count(rl), 2);
  /* b kept its state. */
  assert_int_equal(gw_ratelimit_take(rl, "b", 3, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "b", 3, NULL), CAIRN_ERATELIMIT);
  /* a was forgotten and starts full (evicting c). */
  assert_int_equal(gw_ratelimit_take(rl, "a", 4, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 4, NULL), 0);
  assert_int_equal(gw_ratelimit_take(rl, "a", 4, NULL), CAIRN_ERATELIMIT);
  assert_int_equal(gw_ratelimit_count(rl), 2);
  gw_ratelimit_free(rl);
}

/* ---- threads ---- */

#define THREADS 4
#define ITERS 5000
#define SHARED_BURST 100

typedef struct worker {
  gw_ratelimit *rl;
  int id;
  int shared_ok;
  int own_refused;
} worker;

/* Every thread hammers one shared key at a fixed time (so no refill) and
 * churns through keys of its own that push the limiter past its size. */
static void *work(void *p) {
  worker *w = p;
  for (int i = 0; i < ITERS; i++) {
    if (gw_ratelimit_take(w->rl, "shared", 0, NULL) == 0) {
      w->shared_ok++;
    }
    char key[32];
    snprintf(key, sizeof key, "t%d-%d", w->id, i);
    if (gw_ratelimit_take(w->rl, key, 0, NULL) != 0) {
      w->own_refused++;
    }
  }
  return NULL;
}

static void threads_share_one_limiter(void **state) {
  (void)state;
  gw_ratelimit *rl;
  assert_int_equal(gw_ratelimit_new(1, SHARED_BURST, 2000, &rl), 0);
  pthread_t t[THREADS];
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){rl, i, 0, 0};
    assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  int shared_ok = 0;
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    shared_ok += w[i].shared_ok;
    assert_int_equal(w[i].own_refused, 0); /* fresh keys always pass */
  }
  /* Exactly the burst, however the threads interleaved. "shared" is used
   * all the time, so eviction (least recently used or full) never took it:
   * had it, the count would exceed the burst. */
  assert_int_equal(shared_ok, SHARED_BURST);
  assert_true(gw_ratelimit_count(rl) <= 2000);
  gw_ratelimit_free(rl);
}

CAIRN_TEST_MAIN(cmocka_unit_test(new_refuses_bad_arguments),
                cmocka_unit_test(burst_then_refusal_with_retry_after),
                cmocka_unit_test(retry_after_rounds_up),
                cmocka_unit_test(retry_after_promise_holds),
                cmocka_unit_test(refill_is_capped_at_burst),
                cmocka_unit_test(bad_keys_refused), cmocka_unit_test(many_keys_stay_bounded),
                cmocka_unit_test(eviction_prefers_idle_buckets),
                cmocka_unit_test(eviction_falls_back_to_lru),
                cmocka_unit_test(threads_share_one_limiter))
