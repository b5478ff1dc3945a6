/*
 * test_lru.c - the intrusive hash table with an LRU list under the
 * gateway's caches (gateway/lru.c): init arguments, the empty table,
 * insert and find, the list order that insert and touch make, removal from
 * the middle and the ends, keys that share a hash (one chain), and walking
 * the list, destroy handing nodes to a free function, and the shard sets
 * (argument checks, the exact split of a capacity, pick, count, destroy).
 */
#include "test_main.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "gw_lru.h"

typedef struct item {
  int val;
  gw_lru_node node; /* not first, so GW_LRU_ENTRY must really subtract */
  char key[16];
} item;

static item *mkitem(const char *key, int val) {
  item *it = calloc(1, sizeof *it);
  assert_non_null(it);
  assert_true(strlen(key) < sizeof it->key);
  strcpy(it->key, key);
  it->val = val;
  return it;
}

/* Insert with an explicit hash, so tests choose which keys collide. */
static item *put(gw_lru *t, const char *key, uint64_t hash, int val) {
  item *it = mkitem(key, val);
  gw_lru_insert(t, &it->node, hash, it->key, strlen(it->key));
  return it;
}

static item *get(const gw_lru *t, const char *key, uint64_t hash) {
  gw_lru_node *n = gw_lru_find(t, hash, key, strlen(key));
  return n ? GW_LRU_ENTRY(n, item, node) : NULL;
}

/* The keys from most to least recently used, joined by ',', and a check
 * that walking back from the tail gives the same order reversed. */
static void assert_order(const gw_lru *t, const char *want) {
  char got[256] = "";
  size_t n = 0;
  for (gw_lru_node *x = t->head; x; x = x->next, n++) {
    if (got[0]) {
      strcat(got, ",");
    }
    strcat(got, GW_LRU_ENTRY(x, item, node)->key);
  }
  assert_string_equal(got, want);
  assert_int_equal(n, t->count);
  size_t back = 0;
  gw_lru_node *prev = NULL;
  for (gw_lru_node *x = gw_lru_tail(t); x; x = x->prev, back++) {
    assert_ptr_equal(x->next, prev);
    prev = x;
  }
  assert_ptr_equal(prev, t->head);
  assert_int_equal(back, n);
}

static void free_item(gw_lru_node *n) { free(GW_LRU_ENTRY(n, item, node)); }

static void free_all(gw_lru *t) { gw_lru_destroy(t, free_item); }

/* A new table of `buckets` chains holding nkeys keys, keys[i] with hash
 * base + i and value i, inserted in order; the items go to its[]. */
static void fill(gw_lru *t, size_t buckets, const char *const *keys, size_t nkeys,
                 uint64_t base, item **its) {
  assert_int_equal(gw_lru_init(t, buckets), 0);
  for (size_t i = 0; i < nkeys; i++) {
    its[i] = put(t, keys[i], base + i, (int)i);
  }
}

static void init_refuses_bad_arguments(void **state) {
  (void)state;
  gw_lru t;
  memset(&t, 0x5a, sizeof t);
  gw_lru keep = t;
  assert_int_equal(gw_lru_init(&t, 0), CAIRN_EINVAL);
  assert_int_equal(gw_lru_init(&t, GW_LRU_BUCKETS_MAX + 1), CAIRN_EINVAL);
  assert_int_equal(gw_lru_init(NULL, 8), CAIRN_EINVAL);
  assert_memory_equal(&t, &keep, sizeof t);
  gw_lru_destroy(NULL, NULL);
}

static void init_rounds_buckets_up_to_a_power_of_two(void **state) {
  (void)state;
  const size_t asks[] = {1, 2, 3, 64, 65, 4096};
  const size_t wants[] = {1, 2, 4, 64, 128, 4096};
  for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
    gw_lru t;
    assert_int_equal(gw_lru_init(&t, asks[i]), 0);
    assert_int_equal(t.mask + 1, wants[i]);
    gw_lru_destroy(&t, NULL);
    assert_null(t.buckets);
  }
}

static void empty_table(void **state) {
  (void)state;
  gw_lru t;
  assert_int_equal(gw_lru_init(&t, 16), 0);
  assert_int_equal(t.count, 0);
  assert_null(gw_lru_tail(&t));
  assert_null(t.head);
  assert_null(gw_lru_find(&t, 0, "", 0));
  assert_null(gw_lru_find(&t, 7, "a", 1));
  assert_order(&t, "");
  gw_lru_destroy(&t, NULL);
}

static void insert_and_find(void **state) {
  (void)state;
  gw_lru t;
  const char *const keys[] = {"alpha", "beta"};
  item *its[2];
  fill(&t, 8, keys, 2, 1, its);
  item *a = its[0];
  assert_int_equal(t.count, 2);
  assert_ptr_equal(get(&t, "alpha", 1), a);
  assert_ptr_equal(get(&t, "beta", 2), its[1]);
  assert_int_equal(get(&t, "beta", 2)->val, 1);
  /* The hash must match as well as the key, and the key in full. */
  assert_null(get(&t, "alpha", 2));
  assert_null(get(&t, "alph", 1));
  assert_null(get(&t, "alphaa", 1));
  assert_null(get(&t, "gamma", 3));
  /* Key bytes need not end where a C string would. */
  assert_null(gw_lru_find(&t, 1, "alpha!", 6));
  assert_ptr_equal(gw_lru_find(&t, 1, "alpha!", 5), &a->node);
  /* find does not reorder. */
  assert_order(&t, "beta,alpha");
  free_all(&t);
}

static void insert_and_touch_order(void **state) {
  (void)state;
  gw_lru t;
  assert_int_equal(gw_lru_init(&t, 4), 0);
  item *a = put(&t, "a", 11, 0);
  assert_order(&t, "a");
  assert_ptr_equal(gw_lru_tail(&t), &a->node);
  item *b = put(&t, "b", 12, 0);
  item *c = put(&t, "c", 13, 0);
  assert_order(&t, "c,b,a");
  assert_ptr_equal(gw_lru_tail(&t), &a->node);
  gw_lru_touch(&t, &a->node); /* tail to front */
  assert_order(&t, "a,c,b");
  assert_ptr_equal(gw_lru_tail(&t), &b->node);
  gw_lru_touch(&t, &c->node); /* middle to front */
  assert_order(&t, "c,a,b");
  gw_lru_touch(&t, &c->node); /* front stays front */
  assert_order(&t, "c,a,b");
  assert_int_equal(t.count, 3);
  free_all(&t);
}

static void remove_middle_ends_and_last(void **state) {
  (void)state;
  gw_lru t;
  const char *const keys[] = {"a", "b", "c", "d"};
  item *its[4];
  fill(&t, 4, keys, 4, 1, its);
  item *a = its[0], *b = its[1], *c = its[2], *d = its[3];
  assert_order(&t, "d,c,b,a");

  gw_lru_remove(&t, &b->node); /* middle */
  assert_null(b->node.prev);
  assert_null(b->node.next);
  free(b);
  assert_null(get(&t, "b", 2));
  assert_order(&t, "d,c,a");

  gw_lru_remove(&t, &d->node); /* head */
  free(d);
  assert_order(&t, "c,a");

  gw_lru_remove(&t, gw_lru_tail(&t)); /* tail, the way an eviction does */
  free(a);
  assert_order(&t, "c");
  assert_ptr_equal(gw_lru_tail(&t), &c->node);

  gw_lru_remove(&t, &c->node); /* last */
  free(c);
  assert_int_equal(t.count, 0);
  assert_null(t.head);
  assert_null(gw_lru_tail(&t));
  assert_order(&t, "");

  /* The table works as new after being emptied. */
  item *e = put(&t, "e", 5, 0);
  assert_ptr_equal(get(&t, "e", 5), e);
  assert_order(&t, "e");
  free_all(&t);
}

/* Keys with one hash share a chain: each is still found by its bytes, and
 * removing any one (first, middle or last of the chain) keeps the rest. */
static void equal_hashes_share_a_chain(void **state) {
  (void)state;
  const char *const keys[] = {"k0", "k1", "k2", "k3", "k4"};
  for (size_t gone = 0; gone < 5; gone++) {
    gw_lru t;
    item *its[5];
    assert_int_equal(gw_lru_init(&t, 2), 0);
    for (size_t i = 0; i < 5; i++) {
      its[i] = put(&t, keys[i], 42, (int)i); /* one hash for all five */
    }
    put(&t, "other", 43, 99); /* the other bucket */
    for (size_t i = 0; i < 5; i++) {
      assert_ptr_equal(get(&t, keys[i], 42), its[i]);
    }
    gw_lru_remove(&t, &its[gone]->node);
    free(its[gone]);
    for (size_t i = 0; i < 5; i++) {
      if (i == gone) {
        assert_null(get(&t, keys[i], 42));
      } else {
        assert_ptr_equal(get(&t, keys[i], 42), its[i]);
        assert_int_equal(get(&t, keys[i], 42)->val, (int)i);
      }
    }
    assert_int_equal(get(&t, "other", 43)->val, 99);
    assert_int_equal(t.count, 5);
    free_all(&t);
  }
}

/* With one bucket every key collides in the chain; hashes still tell
 * equal keys of different hashes apart. */
static void one_bucket_table(void **state) {
  (void)state;
  gw_lru t;
  assert_int_equal(gw_lru_init(&t, 1), 0);
  assert_int_equal(t.mask, 0);
  char name[8];
  for (int i = 0; i < 50; i++) {
    snprintf(name, sizeof name, "n%d", i);
    put(&t, name, (uint64_t)i * 7919, i);
  }
  for (int i = 0; i < 50; i++) {
    snprintf(name, sizeof name, "n%d", i);
    assert_int_equal(get(&t, name, (uint64_t)i * 7919)->val, i);
    assert_null(get(&t, name, (uint64_t)i * 7919 + 1));
  }
  /* Evict from the tail until empty: the oldest goes first. */
  for (int i = 0; i < 50; i++) {
    gw_lru_node *n = gw_lru_tail(&t);
    assert_non_null(n);
    item *it = GW_LRU_ENTRY(n, item, node);
    assert_int_equal(it->val, i);
    gw_lru_remove(&t, n);
    free(it);
  }
  assert_int_equal(t.count, 0);
  assert_null(gw_lru_tail(&t));
  gw_lru_destroy(&t, NULL);
}

/* destroy hands every node still in the table to the free function, once
 * each; with NULL it leaves them alone (the caller freed them). */
static int freed;
static void count_and_free(gw_lru_node *n) {
  assert_null(n->next);
  assert_null(n->prev);
  freed++;
  free_item(n);
}

static void destroy_frees_nodes(void **state) {
  (void)state;
  gw_lru t;
  const char *const keys[] = {"x", "y", "z"};
  item *its[3];
  fill(&t, 2, keys, 3, 5, its);
  freed = 0;
  gw_lru_destroy(&t, count_and_free);
  assert_int_equal(freed, 3);
  assert_null(t.buckets);
  assert_null(t.head);
  assert_int_equal(t.count, 0);
  gw_lru_destroy(&t, count_and_free); /* again: nothing left */
  assert_int_equal(freed, 3);
}

static void shards_refuse_bad_arguments(void **state) {
  (void)state;
  gw_lru_shards ss;
  memset(&ss, 0x5a, sizeof ss);
  gw_lru_shards keep = ss;
  assert_int_equal(gw_lru_shards_init(&ss, 0, 64, 16), CAIRN_EINVAL);
  assert_int_equal(gw_lru_shards_init(&ss, 100, 0, 16), CAIRN_EINVAL);
  assert_int_equal(gw_lru_shards_init(&ss, 100, 64, 0), CAIRN_EINVAL);
  assert_int_equal(gw_lru_shards_init(NULL, 100, 64, 16), CAIRN_EINVAL);
  /* One shard of more than GW_LRU_BUCKETS_MAX nodes cannot be made. */
  assert_int_equal(gw_lru_shards_init(&ss, GW_LRU_BUCKETS_MAX + 1, GW_LRU_BUCKETS_MAX + 1, 1),
                   CAIRN_EINVAL);
  assert_memory_equal(&ss, &keep, sizeof ss);
  gw_lru_shards_destroy(NULL, NULL);
}

/* The shard count follows capacity / min_per_shard within 1 .. max_shards,
 * and the caps add up to the capacity exactly, differing by at most one. */
static void shards_split_capacity_exactly(void **state) {
  (void)state;
  const size_t caps[] = {1, 63, 127, 128, 1000, 1025, 100000};
  const size_t want_n[] = {1, 1, 1, 2, 15, 16, 16};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    gw_lru_shards ss;
    assert_int_equal(gw_lru_shards_init(&ss, caps[i], 64, 16), 0);
    assert_int_equal(ss.n, want_n[i]);
    size_t sum = 0;
    for (size_t k = 0; k < ss.n; k++) {
      sum += ss.v[k].cap;
      assert_true(ss.v[k].cap == caps[i] / ss.n || ss.v[k].cap == caps[i] / ss.n + 1);
      assert_true(ss.v[k].lru.mask + 1 >= ss.v[k].cap);
    }
    assert_int_equal(sum, caps[i]);
    gw_lru_shards_destroy(&ss, NULL);
    assert_null(ss.v);
    assert_int_equal(ss.n, 0);
  }
}

/* pick uses the high half of the hash; count adds up every shard; destroy
 * frees what the shards still hold. */
static void shards_pick_count_and_destroy(void **state) {
  (void)state;
  gw_lru_shards ss;
  assert_int_equal(gw_lru_shards_init(&ss, 4 * 64, 64, 16), 0);
  assert_int_equal(ss.n, 4);
  assert_int_equal(gw_lru_shards_count(&ss), 0);
  assert_int_equal(gw_lru_shards_count(NULL), 0);
  char name[16];
  for (uint64_t i = 0; i < 40; i++) {
    uint64_t h = (i << 32) | (i * 3);
    gw_lru_shard *s = gw_lru_shards_pick(&ss, h);
    assert_ptr_equal(s, &ss.v[i % 4]);
    assert_ptr_equal(gw_lru_shards_pick(&ss, h ^ 0xffffffffu), s); /* low half ignored */
    snprintf(name, sizeof name, "key%u", (unsigned)i);
    pthread_mutex_lock(&s->mu);
    put(&s->lru, name, h, (int)i);
    pthread_mutex_unlock(&s->mu);
  }
  assert_int_equal(gw_lru_shards_count(&ss), 40);
  for (size_t k = 0; k < ss.n; k++) {
    assert_int_equal(ss.v[k].lru.count, 10);
  }
  freed = 0;
  gw_lru_shards_destroy(&ss, count_and_free);
  assert_int_equal(freed, 40);
  assert_int_equal(gw_lru_shards_count(&ss), 0);
}

CAIRN_TEST_MAIN(
    /* the table */
    cmocka_unit_test(init_refuses_bad_arguments), cmocka_unit_test(empty_table),
    cmocka_unit_test(init_rounds_buckets_up_to_a_power_of_two), cmocka_unit_test(insert_and_find),
    cmocka_unit_test(insert_and_touch_order), cmocka_unit_test(remove_middle_ends_and_last),
    cmocka_unit_test(equal_hashes_share_a_chain), cmocka_unit_test(one_bucket_table),
    cmocka_unit_test(destroy_frees_nodes),
    /* shard sets */
    cmocka_unit_test(shards_refuse_bad_arguments), cmocka_unit_test(shards_split_capacity_exactly),
    cmocka_unit_test(shards_pick_count_and_destroy))
