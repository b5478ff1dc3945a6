/* Unit tests for the retry and backoff policy, chunk spans and the replica order
 * (client/lib_policy.c). */
#include "test_main.h"

#include "lib_internal.h"

#include <stdlib.h>
#include <string.h>

static void backoff_grows_with_jitter_and_a_cap(void **state) {
  (void)state;
  for (uint64_t rnd = 0; rnd < 2000; rnd += 37) {
    int64_t d0 = cairn__backoff_ms(0, rnd);
    assert_true(d0 >= CAIRN__BACKOFF_BASE_MS / 2 && d0 <= CAIRN__BACKOFF_BASE_MS);
    int64_t d3 = cairn__backoff_ms(3, rnd);
    assert_true(d3 >= 4 * CAIRN__BACKOFF_BASE_MS && d3 <= 8 * CAIRN__BACKOFF_BASE_MS);
    for (int a = 0; a < 100; a++) {
      int64_t d = cairn__backoff_ms(a, rnd);
      assert_true(d >= 1 && d <= CAIRN__BACKOFF_CAP_MS);
    }
    assert_true(cairn__backoff_ms(1000, rnd) >= CAIRN__BACKOFF_CAP_MS / 2);
  }
  /* the jitter really varies */
  int64_t lo = INT64_MAX, hi = 0;
  for (uint64_t rnd = 0; rnd < 100; rnd++) {
    int64_t d = cairn__backoff_ms(4, rnd);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(hi - lo > CAIRN__BACKOFF_BASE_MS);
}

static void non_retryable_errors_stop_at_once(void **state) {
  (void)state;
  cairn__retry r;
  cairn__retry_init(&r, 8, 60000, 0);
  assert_int_equal(cairn__retry_next(&r, CAIRN_EINVAL, 0, 1), -1);
  assert_int_equal(cairn__retry_next(&r, CAIRN_ENOENT, 0, 1), -1);
  assert_int_equal(cairn__retry_next(&r, CAIRN_EAUTH, 0, 1), -1);
  assert_int_equal(cairn__retry_next(&r, CAIRN_EPERM, 0, 1), -1);
  assert_int_equal(r.attempts, 0);
}

static void retryable_errors_until_max_attempts(void **state) {
  (void)state;
  cairn__retry r;
  cairn__retry_init(&r, 4, 600000, 0);
  const int codes[] = {CAIRN_EUNAVAIL, CAIRN_ESTALE, CAIRN_ENOTPRIMARY};
  for (int i = 0; i < 3; i++) {
    int64_t d = cairn__retry_next(&r, codes[i], 0, 12345);
    assert_true(d >= 0);
    assert_int_equal(d, cairn__backoff_ms(i, 12345));
  }
  /* the fourth failure is the last attempt */
  assert_int_equal(cairn__retry_next(&r, CAIRN_EUNAVAIL, 0, 1), -1);
  assert_int_equal(r.attempts, 4);
}

static void deadline_bounds_everything(void **state) {
  (void)state;
  cairn__retry r;
  cairn__retry_init(&r, 1000, 1000, 5000); /* deadline at 6000 */
  assert_true(cairn__retry_next(&r, CAIRN_EBUSY, 5000, 0) >= 0);
  /* a backoff that would end past the deadline: give up now */
  r.attempts = 20; /* backoff at the cap (> 1 s) */
  assert_int_equal(cairn__retry_next(&r, CAIRN_EBUSY, 5100, 0), -1);
  cairn__retry_init(&r, 1000, 1000, 5000);
  assert_int_equal(cairn__retry_next(&r, CAIRN_EBUSY, 6000, 0), -1); /* past it */
  /* attempt timeouts shrink to what is left, never below 1 ms */
  cairn__retry_init(&r, 8, 1000, 0);
  assert_int_equal(cairn__retry_timeout(&r, 10000, 0), 1000);
  assert_int_equal(cairn__retry_timeout(&r, 300, 0), 300);
  assert_int_equal(cairn__retry_timeout(&r, 10000, 900), 100);
  assert_int_equal(cairn__retry_timeout(&r, 10000, 5000), 1);
}

static void zero_attempts_means_one(void **state) {
  (void)state;
  cairn__retry r;
  cairn__retry_init(&r, 0, 1000, 0);
  assert_int_equal(cairn__retry_next(&r, CAIRN_EUNAVAIL, 0, 0), -1);
}

/* ---- chunk spans ---- */

static void spans_cut_at_chunk_boundaries(void **state) {
  (void)state;
  cairn__span s;
  uint64_t a, b;
  cairn__span_init(&s, 10, 5, 100); /* inside one chunk */
  assert_int_equal(s.first, 0);
  assert_int_equal(s.count, 1);
  cairn__span_part(&s, 0, &a, &b);
  assert_int_equal(a, 10);
  assert_int_equal(b, 15);
  cairn__span_init(&s, 250, 300, 100); /* 250..549: chunks 2..5 */
  assert_int_equal(s.first, 2);
  assert_int_equal(s.count, 4);
  uint64_t want[4][2] = {{250, 300}, {300, 400}, {400, 500}, {500, 550}};
  for (size_t i = 0; i < 4; i++) {
    cairn__span_part(&s, i, &a, &b);
    assert_int_equal(a, want[i][0]);
    assert_int_equal(b, want[i][1]);
  }
  cairn__span_init(&s, 100, 100, 100); /* exactly one whole chunk */
  assert_int_equal(s.first, 1);
  assert_int_equal(s.count, 1);
  cairn__span_init(&s, 99, 2, 100); /* one byte on each side of a boundary */
  assert_int_equal(s.count, 2);
  cairn__span_init(&s, 7, 0, 100);
  assert_int_equal(s.count, 0);
}

/* ---- replica order ---- */

static cairn__loc *loc3(uint64_t handle, const char *addrs[3], const char *zones[3]) {
  cairn__loc *l = calloc(1, sizeof *l);
  atomic_init(&l->refs, 1);
  l->handle = handle;
  l->n = 3;
  static const char *ids[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    l->rep[i].id = ids[i];
    l->rep[i].data_addr = addrs[i];
    l->rep[i].rpc_addr = addrs[i];
    l->rep[i].zone = zones[i];
  }
  return l;
}

static void local_host_then_zone_then_others(void **state) {
  (void)state;
  const char *addrs[3] = {"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"};
  const char *zones[3] = {"z1", "z2", "z3"};
  cairn__loc *l = loc3(0, addrs, zones);
  size_t o[3];
  cairn__order_replicas(l, "10.0.0.3", "z2", o);
  assert_int_equal(o[0], 2);
  assert_int_equal(o[1], 1);
  assert_int_equal(o[2], 0);
  cairn__order_replicas(l, "other", "z1", o);
  assert_int_equal(o[0], 0);
  cairn__order_replicas(l, "10.0.0.2", NULL, o);
  assert_int_equal(o[0], 1);
  /* the host part only, case-insensitive; the port does not matter */
  cairn__order_replicas(l, "10.0.0.2:8080", NULL, o);
  assert_int_equal(o[0], 0); /* "10.0.0.2:8080" is no host: no preference */
  free(l);
  const char *named[3] = {"pi-1.lan:8080", "Pi-2.lan:8080", "[::1]:8080"};
  l = loc3(0, named, zones);
  cairn__order_replicas(l, "pi-2.LAN", NULL, o);
  assert_int_equal(o[0], 1);
  cairn__order_replicas(l, "::1", NULL, o);
  assert_int_equal(o[0], 2);
  free(l);
}

static void ties_rotate_with_the_handle(void **state) {
  (void)state;
  const char *addrs[3] = {"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"};
  const char *zones[3] = {"z", "z", "z"};
  int first[3] = {0};
  for (uint64_t h = 0; h < 30; h++) {
    cairn__loc *l = loc3(h, addrs, zones);
    size_t o[3];
    cairn__order_replicas(l, NULL, NULL, o);
    /* a permutation */
    assert_int_not_equal(o[0], o[1]);
    assert_int_not_equal(o[1], o[2]);
    assert_int_not_equal(o[0], o[2]);
    first[o[0]]++;
    /* the preferred zone still wins over the rotation */
    cairn__order_replicas(l, NULL, "z", o);
    assert_int_equal(o[0], h % 3);
    free(l);
  }
  assert_int_equal(first[0], 10);
  assert_int_equal(first[1], 10);
  assert_int_equal(first[2], 10);
}

static void same_zone_keeps_all_replicas(void **state) {
  (void)state;
  const char *addrs[3] = {"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"};
  const char *zones[3] = {"z2", "z1", "z2"};
  cairn__loc *l = loc3(1, addrs, zones);
  size_t o[3];
  cairn__order_replicas(l, NULL, "z2", o);
  /* both z2 replicas before the z1 one, each listed once */
  assert_true((o[0] == 0 && o[1] == 2) || (o[0] == 2 && o[1] == 0));
  assert_int_equal(o[2], 1);
  free(l);
}

CAIRN_TEST_MAIN(cmocka_unit_test(backoff_grows_with_jitter_and_a_cap),
                cmocka_unit_test(non_retryable_errors_stop_at_once),
                cmocka_unit_test(retryable_errors_until_max_attempts),
                cmocka_unit_test(deadline_bounds_everything),
                cmocka_unit_test(zero_attempts_means_one),
                cmocka_unit_test(spans_cut_at_chunk_boundaries),
                cmocka_unit_test(local_host_then_zone_then_others),
                cmocka_unit_test(ties_rotate_with_the_handle),
                cmocka_unit_test(same_zone_keeps_all_replicas))
