/*
 * test_cache.c - the permission/session cache (gateway/cache.c): hits and
 * misses, time to live, invalidation of everything and of a prefix, the
 * generation check that keeps values computed across an invalidation out,
 * the capacity bound and LRU order, threads, and the speed of a hit.
 */
#include "test_main.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw_cache.h"

static gw_cache *make(size_t capacity, int64_t ttl_ms) {
  gw_cache *c = NULL;
  assert_int_equal(gw_cache_new(capacity, ttl_ms, &c), 0);
  assert_non_null(c);
  return c;
}

/* put with the current generation, as a caller with no race would. */
static void put_now(gw_cache *c, const char *key, int64_t val, int64_t now) {
  gw_cache_put(c, key, val, gw_cache_generation(c), now);
}

static void new_refuses_bad_arguments(void **state) {
  (void)state;
  gw_cache *c = (gw_cache *)&c;
  gw_cache *keep = c;
  assert_int_equal(gw_cache_new(0, 10, &c), CAIRN_EINVAL);
  assert_int_equal(gw_cache_new(10, -1, &c), CAIRN_EINVAL);
  assert_int_equal(gw_cache_new((size_t)1 << 30, 10, &c), CAIRN_EINVAL);
  assert_int_equal(gw_cache_new(10, 10, NULL), CAIRN_EINVAL);
  assert_ptr_equal(c, keep);
  gw_cache_free(NULL);
}

static void hit_and_miss(void **state) {
  (void)state;
  gw_cache *c = make(100, 1000);
  int64_t v = 0;
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 0, &v), 0);
  put_now(c, "perm:doc:1:7", 5, 0);
  put_now(c, "perm:doc:1:8", -3, 0);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 10, &v), 1);
  assert_int_equal(v, 5);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:8", 10, &v), 1);
  assert_int_equal(v, -3);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 10, NULL), 1);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:", 10, &v), 0);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:77", 10, &v), 0);
  /* A put replaces the value. */
  put_now(c, "perm:doc:1:7", 6, 20);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 30, &v), 1);
  assert_int_equal(v, 6);
  assert_int_equal(gw_cache_count(c), 2);
  /* NULL keys: a miss, ignored. */
  assert_int_equal(gw_cache_get(c, NULL, 30, &v), 0);
  put_now(c, NULL, 1, 30);
  assert_int_equal(gw_cache_get(NULL, "k", 30, &v), 0);
  assert_int_equal(gw_cache_count(c), 2);
  gw_cache_free(c);
}

static void long_keys_are_never_cached(void **state) {
  (void)state;
  gw_cache *c = make(100, 1000);
  char key[GW_CACHE_KEY_MAX + 2];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0'; /* 128 bytes */
  put_now(c, key, 1, 0);
  assert_int_equal(gw_cache_count(c), 0);
  assert_int_equal(gw_cache_get(c, key, 0, NULL), 0);
  key[GW_CACHE_KEY_MAX] = '\0'; /* 127 bytes: fine */
  put_now(c, key, 2, 0);
  int64_t v = 0;
  assert_int_equal(gw_cache_get(c, key, 0, &v), 1);
  assert_int_equal(v, 2);
  gw_cache_free(c);
}

static void entries_expire_after_ttl(void **state) {
  (void)state;
  gw_cache *c = make(100, 100);
  int64_t v = 0;
  put_now(c, "s:1", 1, 1000);
  assert_int_equal(gw_cache_get(c, "s:1", 1074, &v), 1);
  /* The last quarter: one caller is sent to refresh, the others hit. */
  assert_int_equal(gw_cache_get(c, "s:1", 1075, &v), 0);
  assert_int_equal(gw_cache_get(c, "s:1", 1076, &v), 1);
  assert_int_equal(gw_cache_get(c, "s:1", 1099, &v), 1);
  assert_int_equal(gw_cache_get(c, "s:1", 1100, &v), 0);
  assert_int_equal(gw_cache_count(c), 0); /* the expired entry is gone */
  /* A put refreshes the birth time. */
  put_now(c, "s:2", 2, 1000);
  put_now(c, "s:2", 3, 1080);
  assert_int_equal(gw_cache_get(c, "s:2", 1150, &v), 1);
  assert_int_equal(v, 3);
  /* Gets do not: a hit keeps the original birth. The refresher's put
   * starts a new life with a new refresher. */
  put_now(c, "s:4", 5, 1000);
  assert_int_equal(gw_cache_get(c, "s:4", 1080, &v), 0);
  put_now(c, "s:4", 6, 1081);
  assert_int_equal(gw_cache_get(c, "s:4", 1150, &v), 1);
  assert_int_equal(v, 6);
  assert_int_equal(gw_cache_get(c, "s:4", 1160, &v), 0);
  assert_int_equal(gw_cache_get(c, "s:2", 1180, &v), 0);
  /* A reader whose clock is a little behind the writer's still hits. */
  put_now(c, "s:3", 4, 5000);
  assert_int_equal(gw_cache_get(c, "s:3", 4990, &v), 1);
  gw_cache_free(c);
}

static void ttl_zero_turns_cache_off(void **state) {
  (void)state;
  gw_cache *c = make(100, 0);
  put_now(c, "k", 1, 0);
  assert_int_equal(gw_cache_get(c, "k", 0, NULL), 0);
  assert_int_equal(gw_cache_count(c), 0);
  gw_cache_invalidate_all(c);
  gw_cache_free(c);
}

static void invalidate_all_drops_everything(void **state) {
  (void)state;
  gw_cache *c = make(1000, 1000);
  for (int i = 0; i < 500; i++) {
    char key[32];
    snprintf(key, sizeof key, "k%d", i);
    put_now(c, key, i, 0);
  }
  assert_int_equal(gw_cache_count(c), 500);
  uint64_t g = gw_cache_generation(c);
  gw_cache_invalidate_all(c);
  assert_true(gw_cache_generation(c) > g);
  assert_int_equal(gw_cache_count(c), 0);
  assert_int_equal(gw_cache_get(c, "k1", 0, NULL), 0);
  /* Usable afterwards. */
  put_now(c, "k1", 9, 0);
  int64_t v = 0;
  assert_int_equal(gw_cache_get(c, "k1", 0, &v), 1);
  assert_int_equal(v, 9);
  gw_cache_free(c);
}

static void invalidate_prefix_drops_matching(void **state) {
  (void)state;
  gw_cache *c = make(1000, 1000);
  put_now(c, "perm:doc:1:7", 1, 0);
  put_now(c, "perm:doc:1:8", 1, 0);
  put_now(c, "perm:doc:12:7", 1, 0);
  put_now(c, "perm:ns:1:7", 1, 0);
  put_now(c, "perm:doc:1", 1, 0); /* shorter than the prefix */
  uint64_t g = gw_cache_generation(c);
  gw_cache_invalidate_prefix(c, "perm:doc:1:");
  assert_true(gw_cache_generation(c) > g);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 0, NULL), 0);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:8", 0, NULL), 0);
  assert_int_equal(gw_cache_get(c, "perm:doc:12:7", 0, NULL), 1);
  assert_int_equal(gw_cache_get(c, "perm:ns:1:7", 0, NULL), 1);
  assert_int_equal(gw_cache_get(c, "perm:doc:1", 0, NULL), 1);
  assert_int_equal(gw_cache_count(c), 3);
  /* A prefix that matches nothing still bumps the generation. */
  g = gw_cache_generation(c);
  gw_cache_invalidate_prefix(c, "nothing:");
  assert_true(gw_cache_generation(c) > g);
  assert_int_equal(gw_cache_count(c), 3);
  /* The empty prefix and NULL match everything. */
  gw_cache_invalidate_prefix(c, "");
  assert_int_equal(gw_cache_count(c), 0);
  put_now(c, "a", 1, 0);
  gw_cache_invalidate_prefix(c, NULL);
  assert_int_equal(gw_cache_count(c), 0);
  gw_cache_free(c);
}

static void put_with_old_generation_is_ignored(void **state) {
  (void)state;
  gw_cache *c = make(100, 1000);
  /* A request reads the generation, then computes from the database; a
   * permission change lands meanwhile (even for another key). */
  uint64_t gen = gw_cache_generation(c);
  gw_cache_invalidate_prefix(c, "perm:doc:9:");
  gw_cache_put(c, "perm:doc:1:7", 1, gen, 0);
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 0, NULL), 0);
  assert_int_equal(gw_cache_count(c), 0);
  /* The same after invalidate_all, and for a key already cached: the old
   * value is not replaced by one computed before the change. */
  put_now(c, "perm:doc:1:7", 2, 0);
  gen = gw_cache_generation(c);
  gw_cache_invalidate_all(c);
  put_now(c, "perm:doc:1:7", 3, 0);
  gw_cache_put(c, "perm:doc:1:7", 4, gen, 0);
  int64_t v = 0;
  assert_int_equal(gw_cache_get(c, "perm:doc:1:7", 0, &v), 1);
  assert_int_equal(v, 3);
  /* A generation from the future is as wrong as one from the past. */
  gw_cache_put(c, "x", 1, gw_cache_generation(c) + 1, 0);
  assert_int_equal(gw_cache_get(c, "x", 0, NULL), 0);
  gw_cache_free(c);
}

static void capacity_bounds_and_lru_order(void **state) {
  (void)state;
  /* One shard (under 128): exact LRU. */
  gw_cache *c = make(3, 1000);
  put_now(c, "a", 1, 0);
  put_now(c, "b", 2, 0);
  put_now(c, "c", 3, 0);
  assert_int_equal(gw_cache_get(c, "a", 0, NULL), 1); /* a is now the most recent */
  put_now(c, "d", 4, 0);                              /* evicts b */
  assert_int_equal(gw_cache_count(c), 3);
  assert_int_equal(gw_cache_get(c, "b", 0, NULL), 0);
  assert_int_equal(gw_cache_get(c, "a", 0, NULL), 1);
  assert_int_equal(gw_cache_get(c, "c", 0, NULL), 1);
  assert_int_equal(gw_cache_get(c, "d", 0, NULL), 1);
  gw_cache_free(c);

  c = make(100, 1000);
  for (int i = 0; i < 1000; i++) {
    char key[32];
    snprintf(key, sizeof key, "k%d", i);
    put_now(c, key, i, 0);
    assert_true(gw_cache_count(c) <= 100);
  }
  assert_int_equal(gw_cache_count(c), 100);
  for (int i = 0; i < 1000; i++) {
    char key[32];
    snprintf(key, sizeof key, "k%d", i);
    int64_t v = -1;
    assert_int_equal(gw_cache_get(c, key, 0, &v), i >= 900);
    if (i >= 900) {
      assert_int_equal(v, i);
    }
  }
  gw_cache_free(c);

  /* Sixteen shards: bounded, and most of the room used. */
  c = make(10000, 1000);
  for (int i = 0; i < 50000; i++) {
    char key[32];
    snprintf(key, sizeof key, "user:%d", i);
    put_now(c, key, i, 0);
  }
  assert_true(gw_cache_count(c) <= 10000);
  assert_true(gw_cache_count(c) >= 9000);
  gw_cache_free(c);
}

/* ---- threads ---- */

#define THREADS 4
#define ITERS 20000

typedef struct shared {
  gw_cache *c;
  _Atomic int64_t version; /* the "database" */
  int id;
  int wrong;
} shared;

/* Readers: look up, or read the version "from the database" after taking
 * the generation and put it. */
static void *reader(void *p) {
  shared *s = p;
  for (int i = 0; i < ITERS; i++) {
    char key[32];
    snprintf(key, sizeof key, "v:%d", i % 50);
    int64_t v;
    uint64_t gen = gw_cache_generation(s->c);
    if (!gw_cache_get(s->c, key, 0, &v)) {
      v = atomic_load(&s->version);
      gw_cache_put(s->c, key, v, gen, 0);
    }
  }
  return NULL;
}

/* The writer: change the version, then invalidate, as a handler does after
 * a database write. */
static void *writer(void *p) {
  shared *s = p;
  for (int i = 0; i < ITERS / 10; i++) {
    atomic_fetch_add(&s->version, 1);
    if (i % 2) {
      gw_cache_invalidate_all(s->c);
    } else {
      gw_cache_invalidate_prefix(s->c, "v:");
    }
  }
  return NULL;
}

static void threads_never_keep_stale_values(void **state) {
  (void)state;
  shared s = {.c = make(64, 60000)};
  atomic_init(&s.version, 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS - 1; i++) {
    assert_int_equal(pthread_create(&t[i], NULL, reader, &s), 0);
  }
  assert_int_equal(pthread_create(&t[THREADS - 1], NULL, writer, &s), 0);
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
  }
  /* Once the last change is invalidated, every value still cached (put by
   * a reader that finished after the writer) is the final version: a value
   * read before the last change was refused or removed. */
  int64_t final = atomic_load(&s.version);
  assert_int_equal(final, ITERS / 10);
  for (int k = 0; k < 50; k++) {
    char key[32];
    snprintf(key, sizeof key, "v:%d", k);
    int64_t v;
    if (gw_cache_get(s.c, key, 0, &v)) {
      assert_int_equal(v, final);
    }
  }
  assert_true(gw_cache_count(s.c) <= 64);
  gw_cache_free(s.c);
}

/* Several threads on one cache with values a function of their key: a hit
 * must never return another key's value. */
static void *mixed(void *p) {
  shared *s = p;
  for (int i = 0; i < ITERS; i++) {
    char key[32];
    int n = (i * 7 + s->id * 13) % 3000;
    snprintf(key, sizeof key, "u:%d", n);
    int64_t v;
    if (gw_cache_get(s->c, key, i, &v)) {
      if (v != n * 3) {
        s->wrong++;
      }
    } else {
      gw_cache_put(s->c, key, n * 3, gw_cache_generation(s->c), i);
    }
    if (i % 5000 == 4999) {
      gw_cache_invalidate_prefix(s->c, "u:1");
    }
  }
  return NULL;
}

static void threads_share_one_cache(void **state) {
  (void)state;
  gw_cache *c = make(2000, 1000);
  pthread_t t[THREADS];
  shared s[THREADS];
  for (int i = 0; i < THREADS; i++) {
    memset(&s[i], 0, sizeof s[i]);
    s[i].c = c;
    s[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, mixed, &s[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(s[i].wrong, 0);
  }
  assert_true(gw_cache_count(c) <= 2000);
  gw_cache_free(c);
}

/* ---- a full cache ---- */

static void full_cache_hits_every_hot_key(void **state) {
  (void)state;
  /* A full cache still finds every recently put key, many times over.
   * (Its speed is measured by bench/run.sh gateway, not here.) Keys
   * shaped like the gateway's. */
  gw_cache *c = make(65536, 60000);
  enum { NKEYS = 1024, GETS = NKEYS * 2000 };
  static char keys[NKEYS][48];
  /* A full cache, so a lookup that scanned would have some 65000 entries
   * to look at; the hot keys go in last, so none of them is evicted. */
  for (int i = 0; i < 65536 - NKEYS; i++) {
    char fill[32];
    snprintf(fill, sizeof fill, "fill:%d", i);
    put_now(c, fill, -1, 0);
  }
  for (int i = 0; i < NKEYS; i++) {
    snprintf(keys[i], sizeof keys[i], "perm:doc:%08x-1111-2222-3333-44445555:%d", i, i % 97);
    put_now(c, keys[i], i, 0);
  }
  int64_t sum = 0, v = 0;
  for (int i = 0; i < GETS; i++) {
    if (gw_cache_get(c, keys[i % NKEYS], 1, &v)) {
      sum += v;
    }
  }
  assert_int_equal(sum, (int64_t)GETS / NKEYS * (NKEYS * (NKEYS - 1) / 2));
  gw_cache_free(c);
}

CAIRN_TEST_MAIN(cmocka_unit_test(new_refuses_bad_arguments), cmocka_unit_test(hit_and_miss),
                cmocka_unit_test(long_keys_are_never_cached),
                cmocka_unit_test(entries_expire_after_ttl),
                cmocka_unit_test(ttl_zero_turns_cache_off),
                cmocka_unit_test(invalidate_all_drops_everything),
                cmocka_unit_test(invalidate_prefix_drops_matching),
                cmocka_unit_test(put_with_old_generation_is_ignored),
                cmocka_unit_test(capacity_bounds_and_lru_order),
                cmocka_unit_test(threads_never_keep_stale_values),
                cmocka_unit_test(threads_share_one_cache), cmocka_unit_test(full_cache_hits_every_hot_key))
