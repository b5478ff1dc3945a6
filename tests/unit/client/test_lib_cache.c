/* Unit tests for chunk locations and their TTL cache (client/lib_cache.c). */
#include "test_main.h"

#include "lib_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A ChunkLocation message with `n` replicas "s<i>" at 127.0.0.<i+1>. */
typedef struct pb_loc {
  Cairn__V1__ChunkLocation loc;
  Cairn__V1__ServerAddress addrs[CAIRN__MAX_REPLICAS + 2];
  Cairn__V1__ServerAddress *ptrs[CAIRN__MAX_REPLICAS + 2];
  char strs[CAIRN__MAX_REPLICAS + 2][4][32];
} pb_loc;

static void make_pb(pb_loc *p, uint64_t handle, uint64_t version, uint64_t index, size_t n,
                    const char *primary) {
  memset(p, 0, sizeof *p);
  cairn__v1__chunk_location__init(&p->loc);
  p->loc.handle = handle;
  p->loc.version = version;
  p->loc.index = index;
  p->loc.length = 4096;
  for (size_t i = 0; i < n; i++) {
    cairn__v1__server_address__init(&p->addrs[i]);
    snprintf(p->strs[i][0], 32, "s%zu", i);
    snprintf(p->strs[i][1], 32, "127.0.0.%zu:8080", i + 1);
    snprintf(p->strs[i][2], 32, "127.0.0.%zu:8081", i + 1);
    snprintf(p->strs[i][3], 32, "z%zu", i % 2);
    p->addrs[i].id = p->strs[i][0];
    p->addrs[i].data_addr = p->strs[i][1];
    p->addrs[i].rpc_addr = p->strs[i][2];
    p->addrs[i].zone = p->strs[i][3];
    p->ptrs[i] = &p->addrs[i];
  }
  p->loc.n_replicas = n;
  p->loc.replicas = p->ptrs;
  p->loc.primary_id = (char *)(primary ? primary : "");
  p->loc.lease_expiry_ms = primary ? 123456 : 0;
}

static cairn__loc *make_loc(uint64_t handle, uint64_t version, uint64_t index) {
  pb_loc p;
  make_pb(&p, handle, version, index, 3, "s0");
  return cairn__loc_from_pb(&p.loc);
}

static void loc_copies_everything(void **state) {
  (void)state;
  pb_loc p;
  make_pb(&p, 7, 3, 2, 3, "s0");
  cairn__loc *l = cairn__loc_from_pb(&p.loc);
  memset(p.strs, 'x', sizeof p.strs); /* the location owns its strings */
  assert_int_equal(l->handle, 7);
  assert_int_equal(l->version, 3);
  assert_int_equal(l->index, 2);
  assert_int_equal(l->length, 4096);
  assert_int_equal(l->n, 3);
  assert_string_equal(l->rep[2].id, "s2");
  assert_string_equal(l->rep[2].data_addr, "127.0.0.3:8080");
  assert_string_equal(l->rep[2].rpc_addr, "127.0.0.3:8081");
  assert_string_equal(l->rep[1].zone, "z1");
  assert_true(l->has_primary);
  assert_int_equal(l->lease_expiry_ms, 123456);
  cairn__loc_unref(l);
}

static void primary_only_when_listed_first(void **state) {
  (void)state;
  pb_loc p;
  make_pb(&p, 1, 2, 0, 3, NULL);
  cairn__loc *l = cairn__loc_from_pb(&p.loc);
  assert_false(l->has_primary);
  assert_int_equal(l->lease_expiry_ms, 0);
  cairn__loc_unref(l);
  make_pb(&p, 1, 2, 0, 3, "s1"); /* named, but not first: not trusted as primary */
  l = cairn__loc_from_pb(&p.loc);
  assert_false(l->has_primary);
  cairn__loc_unref(l);
  make_pb(&p, 1, 2, 0, 0, "s0"); /* no replicas at all */
  l = cairn__loc_from_pb(&p.loc);
  assert_false(l->has_primary);
  assert_int_equal(l->n, 0);
  cairn__loc_unref(l);
}

static void too_many_replicas_are_cut(void **state) {
  (void)state;
  pb_loc p;
  make_pb(&p, 1, 2, 0, CAIRN__MAX_REPLICAS + 2, "s0");
  cairn__loc *l = cairn__loc_from_pb(&p.loc);
  assert_int_equal(l->n, CAIRN__MAX_REPLICAS);
  cairn__loc_unref(l);
}

static void put_get_and_ttl(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(1000, 100);
  assert_null(cairn__cache_get(c, 1, 0, 0));
  cairn__loc *l = make_loc(10, 2, 0);
  cairn__cache_put(c, 1, l, 5000);
  cairn__loc_unref(l); /* the cache keeps its own reference */
  cairn__loc *g = cairn__cache_get(c, 1, 0, 5999);
  assert_non_null(g);
  assert_int_equal(g->handle, 10);
  cairn__loc_unref(g);
  assert_null(cairn__cache_get(c, 2, 0, 5999)); /* another file */
  assert_null(cairn__cache_get(c, 1, 1, 5999)); /* another chunk */
  assert_null(cairn__cache_get(c, 1, 0, 6000));  /* expired exactly at ttl */
  assert_int_equal(cairn__cache_count(c), 0);     /* and gone */
  cairn__cache_free(c);
}

static void put_replaces_and_refreshes(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(1000, 100);
  cairn__loc *a = make_loc(10, 2, 3), *b = make_loc(10, 3, 3);
  cairn__cache_put(c, 1, a, 0);
  cairn__cache_put(c, 1, b, 900);
  assert_int_equal(cairn__cache_count(c), 1);
  cairn__loc *g = cairn__cache_get(c, 1, 3, 1500); /* alive: the second put restarted the ttl */
  assert_non_null(g);
  assert_int_equal(g->version, 3);
  cairn__loc_unref(g);
  /* a reference taken before a replacement stays valid */
  assert_int_equal(a->version, 2);
  cairn__loc_unref(a);
  cairn__loc_unref(b);
  cairn__cache_free(c);
}

static void drop_only_the_failed_location(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(1000, 100);
  cairn__loc *old = make_loc(10, 2, 0), *newer = make_loc(10, 3, 0);
  cairn__cache_put(c, 1, newer, 0);
  /* a reader failing on the old version must not drop the newer entry */
  cairn__cache_drop(c, 1, 0, old);
  cairn__loc *g = cairn__cache_get(c, 1, 0, 1);
  assert_non_null(g);
  cairn__loc_unref(g);
  cairn__cache_drop(c, 1, 0, newer);
  assert_null(cairn__cache_get(c, 1, 0, 1));
  cairn__cache_put(c, 1, old, 0);
  cairn__cache_drop(c, 1, 0, NULL); /* whatever it is */
  assert_null(cairn__cache_get(c, 1, 0, 1));
  cairn__cache_drop(c, 9, 9, NULL); /* nothing there: no-op */
  cairn__loc_unref(old);
  cairn__loc_unref(newer);
  cairn__cache_free(c);
}

static void zero_ttl_caches_nothing(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(0, 100);
  cairn__loc *l = make_loc(10, 2, 0);
  cairn__cache_put(c, 1, l, 0);
  assert_null(cairn__cache_get(c, 1, 0, 0));
  assert_int_equal(cairn__cache_count(c), 0);
  cairn__loc_unref(l);
  cairn__cache_free(c);
}

static void bounded_expired_first(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(100, 4);
  for (uint64_t i = 0; i < 2; i++) {
    cairn__loc *l = make_loc(100 + i, 2, i);
    cairn__cache_put(c, 1, l, 0); /* expire at 100 */
    cairn__loc_unref(l);
  }
  for (uint64_t i = 2; i < 4; i++) {
    cairn__loc *l = make_loc(100 + i, 2, i);
    cairn__cache_put(c, 1, l, 50); /* expire at 150 */
    cairn__loc_unref(l);
  }
  assert_int_equal(cairn__cache_count(c), 4);
  cairn__loc *l = make_loc(200, 2, 9);
  cairn__cache_put(c, 1, l, 120); /* full: the two expired ones go */
  cairn__loc_unref(l);
  assert_int_equal(cairn__cache_count(c), 3);
  cairn__loc *g = cairn__cache_get(c, 1, 2, 121);
  assert_non_null(g);
  cairn__loc_unref(g);
  /* full of live entries: everything goes, the new one stays */
  l = make_loc(201, 2, 10);
  cairn__cache_put(c, 1, l, 121);
  cairn__loc_unref(l);
  l = make_loc(202, 2, 11);
  cairn__cache_put(c, 1, l, 121);
  cairn__loc_unref(l);
  assert_true(cairn__cache_count(c) <= 4);
  g = cairn__cache_get(c, 1, 11, 122);
  assert_non_null(g);
  cairn__loc_unref(g);
  cairn__cache_free(c);
}

static void many_entries_grow_the_table(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(1000, 100000);
  for (uint64_t f = 1; f <= 20; f++)
    for (uint64_t i = 0; i < 500; i++) {
      cairn__loc *l = make_loc(f * 1000 + i, 2, i);
      cairn__cache_put(c, f, l, 0);
      cairn__loc_unref(l);
    }
  assert_int_equal(cairn__cache_count(c), 10000);
  for (uint64_t f = 1; f <= 20; f++)
    for (uint64_t i = 0; i < 500; i += 7) {
      cairn__loc *g = cairn__cache_get(c, f, i, 1);
      assert_non_null(g);
      assert_int_equal(g->handle, f * 1000 + i);
      cairn__loc_unref(g);
    }
  cairn__cache_free(c); /* frees every entry (LSan checks) */
}

struct hammer {
  cairn__cache *c;
  int seed;
  int wrong; /* entries found under the wrong key (asserts stay on the main thread) */
};

static void *hammer_main(void *arg) {
  struct hammer *h = arg;
  for (int k = 0; k < 5000; k++) {
    uint64_t idx = (uint64_t)((k * 7 + h->seed) % 64);
    if (k % 3 == 0) {
      cairn__loc *l = make_loc(idx + 1, (uint64_t)k, idx);
      cairn__cache_put(h->c, 1, l, k);
      cairn__loc_unref(l);
    } else if (k % 3 == 1) {
      cairn__loc *g = cairn__cache_get(h->c, 1, idx, k);
      if (g) {
        h->wrong += g->index != idx;
        cairn__loc_unref(g);
      }
    } else {
      cairn__cache_drop(h->c, 1, idx, NULL);
    }
  }
  return NULL;
}

static void concurrent_use_is_safe(void **state) {
  (void)state;
  cairn__cache *c = cairn__cache_new(50, 32);
  pthread_t th[4];
  struct hammer h[4];
  for (int i = 0; i < 4; i++) {
    h[i] = (struct hammer){c, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(h[i].wrong, 0);
  }
  assert_true(cairn__cache_count(c) <= 32);
  cairn__cache_free(c);
}

CAIRN_TEST_MAIN(cmocka_unit_test(loc_copies_everything),
                cmocka_unit_test(primary_only_when_listed_first),
                cmocka_unit_test(too_many_replicas_are_cut), cmocka_unit_test(put_get_and_ttl),
                cmocka_unit_test(put_replaces_and_refreshes),
                cmocka_unit_test(drop_only_the_failed_location),
                cmocka_unit_test(zero_ttl_caches_nothing), cmocka_unit_test(bounded_expired_first),
                cmocka_unit_test(many_entries_grow_the_table),
                cmocka_unit_test(concurrent_use_is_safe))
