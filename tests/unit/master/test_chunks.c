/* Unit tests for the chunk table and repair queue (master/chunks*.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "mst_chunks.h"
#include "mst_servers.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- records ------------------------------------------------------------ */

typedef struct ref_ent {
  uint64_t handle;
  bool present;
} ref_ent;

typedef struct walk_ctx {
  const ref_ent *ref;
  size_t n;
  uint64_t visited;
} walk_ctx;

static int ref_find(const ref_ent *ref, size_t n, uint64_t h) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ref[mid].handle < h)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && ref[lo].handle == h ? (int)lo : -1;
}

static int walk_check(void *arg, const mst_chunk_info *ci) {
  walk_ctx *w = arg;
  int i = ref_find(w->ref, w->n, ci->handle);
  if (i < 0 || !w->ref[i].present || ci->version != ci->handle * 3) return -1;
  w->visited++;
  return 0;
}

static void check_all(const mst_chunks *t, const ref_ent *ref, size_t n) {
  mst_chunk_info ci;
  uint64_t present = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = mst_chunks_get(t, ref[i].handle, &ci);
    if (ref[i].present) {
      present++;
      assert_int_equal(rc, 0);
      assert_int_equal(ci.handle, ref[i].handle);
      assert_int_equal(ci.version, ref[i].handle * 3);
      assert_int_equal(ci.file_id, ref[i].handle ^ 0x55);
      assert_int_equal(ci.index, (uint32_t)(ref[i].handle % 1000));
      assert_int_equal(ci.length, (uint32_t)(ref[i].handle % 65536));
      assert_int_equal(ci.goal, 1 + ref[i].handle % 9);
      assert_int_equal(ci.nrep, 0);
      assert_int_equal(ci.refcount, 1);
    } else {
      assert_int_equal(rc, CAIRN_ENOENT);
    }
  }
  assert_int_equal(mst_chunks_count(t), present);
  walk_ctx w = {ref, n, 0};
  assert_int_equal(mst_chunks_iterate(t, walk_check, &w), 0);
  assert_int_equal(w.visited, present);
}

static int insert_ref(mst_chunks *t, uint64_t h) {
  return mst_chunks_insert(t, h, h * 3, h ^ 0x55, h % 1000, h % 65536, (unsigned)(1 + h % 9));
}

/*
 * 100,000 distinct handles, half dense (as the master allocates them) and
 * half random over the whole 64-bit space, inserted, removed and reinserted
 * in random order against a reference table.
 */
static void insert_lookup_remove_random(void **state) {
  (void)state;
  enum { N = 100000 };
  uint64_t seed = 42;
  uint64_t *hs = malloc(N * sizeof *hs);
  for (size_t i = 0; i < N; i++) {
    uint64_t h = i % 2 ? 1000 + i : rnd(&seed) | (1ULL << 63);
    if (h == UINT64_MAX) h--;
    hs[i] = h;
  }
  qsort(hs, N, sizeof *hs, cmp_u64);
  ref_ent *ref = calloc(N, sizeof *ref);
  size_t n = 0;
  for (size_t i = 0; i < N; i++)
    if (i == 0 || hs[i] != hs[i - 1]) ref[n++].handle = hs[i];
  free(hs);

  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  /* Insert in a random order. */
  size_t *order = malloc(n * sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = rnd(&seed) % (i + 1), x = order[i];
    order[i] = order[j];
    order[j] = x;
  }
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(insert_ref(t, ref[order[i]].handle), 0);
    ref[order[i]].present = true;
  }
  assert_int_equal(insert_ref(t, ref[0].handle), CAIRN_EEXIST);
  check_all(t, ref, n);

  /* Random removals and reinsertions. */
  for (int round = 0; round < 3; round++) {
    for (size_t k = 0; k < n / 2; k++) {
      size_t i = rnd(&seed) % n;
      if (ref[i].present) {
        assert_int_equal(mst_chunks_remove(t, ref[i].handle), 0);
        ref[i].present = false;
      } else {
        assert_int_equal(mst_chunks_remove(t, ref[i].handle), CAIRN_ENOENT);
        assert_int_equal(insert_ref(t, ref[i].handle), 0);
        ref[i].present = true;
      }
    }
    check_all(t, ref, n);
  }
  /* Remove everything: every page is freed. */
  for (size_t i = 0; i < n; i++)
    if (ref[i].present) assert_int_equal(mst_chunks_remove(t, ref[i].handle), 0);
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.chunks, 0);
  assert_int_equal(st.pages, 0);
  assert_int_equal(st.missing, 0);
  assert_int_equal(st.under_replicated, 0);

  /* Bad input. */
  assert_int_equal(mst_chunks_insert(t, 0, 1, 1, 0, 0, 3), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_insert(t, UINT64_MAX, 1, 1, 0, 0, 3), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_insert(t, 5, 1, 1, 1ULL << 32, 0, 3), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_insert(t, 5, 1, 1, 0, 1ULL << 32, 3), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_insert(t, 5, 1, 1, 0, 0, 0), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_insert(t, 5, 1, 1, 0, 0, 10), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_count(t), 0);
  free(order);
  free(ref);
  mst_chunks_free(t);
}

static void fields_versions_refcounts(void **state) {
  (void)state;
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  assert_int_equal(mst_chunks_insert(t, 10, 1, 77, 4, 100, 3), 0);
  assert_int_equal(mst_chunks_set_version(t, 10, 5), 0);
  assert_int_equal(mst_chunks_set_version(t, 10, 5), 0);
  assert_int_equal(mst_chunks_set_version(t, 10, 4), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_length(t, 10, 4096), 0);
  assert_int_equal(mst_chunks_set_length(t, 10, 1ULL << 32), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_owner(t, 10, 78, 9), 0);
  assert_int_equal(mst_chunks_set_flags(t, 10, MST_CHUNK_F_CORRUPT, true), 0);
  assert_int_equal(mst_chunks_set_flags(t, 10, 0x10, true), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_goal(t, 10, 0), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_goal(t, 10, 5), 0);
  mst_chunk_info ci;
  assert_int_equal(mst_chunks_get(t, 10, &ci), 0);
  assert_int_equal(ci.version, 5);
  assert_int_equal(ci.length, 4096);
  assert_int_equal(ci.file_id, 78);
  assert_int_equal(ci.index, 9);
  assert_int_equal(ci.flags, MST_CHUNK_F_CORRUPT);
  assert_int_equal(ci.goal, 5);
  assert_false(ci.queued);
  assert_int_equal(mst_chunks_set_flags(t, 10, MST_CHUNK_F_CORRUPT, false), 0);
  assert_int_equal(mst_chunks_get(t, 10, &ci), 0);
  assert_int_equal(ci.flags, 0);

  assert_int_equal(mst_chunks_unref(t, 10), CAIRN_EINVAL); /* the last reference goes by remove */
  assert_int_equal(mst_chunks_ref(t, 10), 2);
  assert_int_equal(mst_chunks_ref(t, 10), 3);
  assert_int_equal(mst_chunks_get(t, 10, &ci), 0);
  assert_int_equal(ci.refcount, 3);
  assert_int_equal(mst_chunks_unref(t, 10), 2);
  assert_int_equal(mst_chunks_unref(t, 10), 1);
  assert_int_equal(mst_chunks_unref(t, 10), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_ref(t, 10), 2);
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.shared, 1);
  assert_int_equal(mst_chunks_remove(t, 10), 0);
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.shared, 0);

  assert_int_equal(mst_chunks_set_version(t, 10, 9), CAIRN_ENOENT);
  assert_int_equal(mst_chunks_ref(t, 10), CAIRN_ENOENT);
  assert_int_equal(mst_chunks_replica_count(t, 10), CAIRN_ENOENT);
  mst_chunks_free(t);
}

/* ---- replicas ----------------------------------------------------------- */

static void replicas_no_duplicates(void **state) {
  (void)state;
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  assert_int_equal(mst_chunks_insert(t, 1, 1, 1, 0, 0, 9), 0);
  assert_int_equal(mst_chunks_add_replica(t, 1, 4), 1);
  assert_int_equal(mst_chunks_add_replica(t, 1, 4), 0);
  assert_int_equal(mst_chunks_replica_count(t, 1), 1);
  assert_int_equal(mst_chunks_add_replica(t, 1, MST_SERVER_NONE), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_add_replica(t, 2, 4), CAIRN_ENOENT);
  /* Grow past 3 (spilled) up to the maximum, with duplicates refused. */
  for (uint16_t s = 10; s < 10 + MST_CHUNK_REPLICAS_MAX - 1; s++) {
    assert_int_equal(mst_chunks_add_replica(t, 1, s), 1);
    assert_int_equal(mst_chunks_add_replica(t, 1, s), 0);
    assert_int_equal(mst_chunks_add_replica(t, 1, 4), 0);
  }
  assert_int_equal(mst_chunks_replica_count(t, 1), MST_CHUNK_REPLICAS_MAX);
  assert_int_equal(mst_chunks_add_replica(t, 1, 99), CAIRN_ETOOBIG);
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.spilled, 1);
  assert_int_equal(st.under_replicated, 0);
  mst_chunk_info ci;
  assert_int_equal(mst_chunks_get(t, 1, &ci), 0);
  assert_int_equal(ci.replicas[0], 4);
  assert_int_equal(ci.replicas[14], 23);

  /* Shrink back to inline, order kept. */
  for (uint16_t s = 10; s < 10 + 11; s++) assert_int_equal(mst_chunks_remove_replica(t, 1, s), 1);
  assert_int_equal(mst_chunks_remove_replica(t, 1, 10), 0);
  assert_int_equal(mst_chunks_get(t, 1, &ci), 0);
  assert_int_equal(ci.nrep, 4);
  assert_int_equal(mst_chunks_remove_replica(t, 1, 21), 1);
  assert_int_equal(mst_chunks_get(t, 1, &ci), 0);
  assert_int_equal(ci.nrep, 3);
  assert_int_equal(ci.replicas[0], 4);
  assert_int_equal(ci.replicas[1], 22);
  assert_int_equal(ci.replicas[2], 23);
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.spilled, 0);
  assert_int_equal(st.under_replicated, 1); /* goal 9 */

  /* Many spilled chunks reuse freed spill blocks. */
  for (uint64_t h = 100; h < 200; h++) {
    assert_int_equal(mst_chunks_insert(t, h, 1, 1, 0, 0, 5), 0);
    for (uint16_t s = 0; s < 5; s++) assert_int_equal(mst_chunks_add_replica(t, h, s), 1);
  }
  for (uint64_t h = 100; h < 200; h += 2) assert_int_equal(mst_chunks_remove(t, h), 0);
  for (uint64_t h = 101; h < 200; h += 2) {
    assert_int_equal(mst_chunks_get(t, h, &ci), 0);
    assert_int_equal(ci.nrep, 5);
    for (uint16_t s = 0; s < 5; s++) assert_int_equal(ci.replicas[s], s);
  }
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.spilled, 50);
  assert_int_equal(st.missing, 0);
  mst_chunks_free(t);
}

typedef struct lost_ctx {
  uint64_t *v;
  size_t n;
  unsigned bad; /* callbacks whose counts disagree with the table */
  mst_chunks *t;
} lost_ctx;

static void on_lost(void *arg, uint64_t handle, unsigned nrep, unsigned goal) {
  lost_ctx *l = arg;
  l->v[l->n++] = handle;
  mst_chunk_info ci;
  if (mst_chunks_get(l->t, handle, &ci) != 0 || ci.nrep != nrep || ci.goal != goal) l->bad++;
  if (nrep < goal) mst_chunks_repair_enqueue(l->t, handle, false); /* allowed in the callback */
}

static void remove_server_reports_lost(void **state) {
  (void)state;
  enum { N = 20000, SERVERS = 10 };
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  uint64_t seed = 7;
  uint64_t *expect = malloc(N * sizeof *expect);
  size_t nexp = 0;
  for (uint64_t h = 1; h <= N; h++) {
    unsigned goal = h % 7 == 0 ? 5 : 3;
    assert_int_equal(mst_chunks_insert(t, h * 5, 1, 1, 0, 0, goal), 0);
    unsigned want = (unsigned)(rnd(&seed) % (goal + 1)); /* 0..goal replicas */
    bool on4 = false;
    for (unsigned k = 0; k < want;) {
      uint16_t s = (uint16_t)(rnd(&seed) % SERVERS);
      int rc = mst_chunks_add_replica(t, h * 5, s);
      assert_true(rc >= 0);
      if (rc == 1) {
        k++;
        on4 = on4 || s == 4;
      }
    }
    if (on4) expect[nexp++] = h * 5;
  }
  lost_ctx l = {malloc(N * sizeof(uint64_t)), 0, 0, t};
  int lost = mst_chunks_remove_server(t, 4, on_lost, &l);
  assert_int_equal(lost, (int)nexp);
  assert_int_equal(l.n, nexp);
  assert_int_equal(l.bad, 0);
  qsort(l.v, l.n, sizeof *l.v, cmp_u64);
  for (size_t i = 0; i < nexp; i++) assert_int_equal(l.v[i], expect[i]); /* exactly those */
  /* No replica on server 4 is left anywhere; a second pass finds nothing. */
  assert_int_equal(mst_chunks_remove_server(t, 4, NULL, NULL), 0);
  for (uint64_t h = 1; h <= N; h++) assert_int_equal(mst_chunks_remove_replica(t, h * 5, 4), 0);
  /* Every chunk that lost a replica is now queued or missing. */
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.queued + st.queued_missing, nexp);
  assert_int_equal(mst_chunks_remove_server(t, MST_SERVER_NONE, NULL, NULL), CAIRN_EINVAL);
  free(l.v);
  free(expect);
  mst_chunks_free(t);
}

/* ---- leases ------------------------------------------------------------- */

static void lease_validity(void **state) {
  (void)state;
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  assert_int_equal(mst_chunks_insert(t, 3, 1, 1, 0, 0, 3), 0);
  assert_int_equal(mst_chunks_add_replica(t, 3, 1), 1);
  assert_int_equal(mst_chunks_add_replica(t, 3, 2), 1);
  uint16_t p = 0;
  assert_int_equal(mst_chunks_lease_valid(t, 3, 0, &p), 0);
  assert_int_equal(mst_chunks_set_lease(t, 3, 7, 60000), CAIRN_EINVAL); /* not a holder */
  assert_int_equal(mst_chunks_set_lease(t, 3, 2, -1), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_lease(t, 3, 2, MST_CHUNK_LEASE_MAX_MS), CAIRN_EINVAL);
  assert_int_equal(mst_chunks_set_lease(t, 4, 2, 100), CAIRN_ENOENT);
  assert_int_equal(mst_chunks_set_lease(t, 3, 2, 60000), 0);
  assert_int_equal(mst_chunks_lease_valid(t, 3, 59999, &p), 1);
  assert_int_equal(p, 2);
  assert_int_equal(mst_chunks_lease_valid(t, 3, 60000, &p), 0);
  assert_int_equal(mst_chunks_lease_valid(t, 4, 0, &p), CAIRN_ENOENT);
  /* Extension replaces. */
  assert_int_equal(mst_chunks_set_lease(t, 3, 2, 120000), 0);
  assert_int_equal(mst_chunks_lease_valid(t, 3, 60000, NULL), 1);
  mst_chunk_info ci;
  assert_int_equal(mst_chunks_get(t, 3, &ci), 0);
  assert_true(ci.leased);
  assert_int_equal(ci.primary, 2);
  assert_int_equal(ci.lease_expiry_ms, 120000);
  /* The holder's replica going does not end the lease before it expires. */
  assert_int_equal(mst_chunks_remove_replica(t, 3, 2), 1);
  assert_int_equal(mst_chunks_lease_valid(t, 3, 100000, &p), 1);
  assert_int_equal(mst_chunks_clear_lease(t, 3), 1);
  assert_int_equal(mst_chunks_clear_lease(t, 3), 0);
  assert_int_equal(mst_chunks_lease_valid(t, 3, 0, &p), 0);

  /* Expiry sweep. */
  for (uint64_t h = 10; h < 110; h++) {
    assert_int_equal(mst_chunks_insert(t, h, 1, 1, 0, 0, 3), 0);
    assert_int_equal(mst_chunks_add_replica(t, h, 1), 1);
    assert_int_equal(mst_chunks_set_lease(t, h, 1, (int64_t)h * 10), 0);
  }
  assert_int_equal(mst_chunks_expire_leases(t, 599), 50); /* expiries 100..590 */
  assert_int_equal(mst_chunks_lease_valid(t, 60, 0, NULL), 1);
  assert_int_equal(mst_chunks_lease_valid(t, 59, 0, NULL), 0);
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.leases, 50);
  assert_int_equal(mst_chunks_remove(t, 60), 0);
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.leases, 49);
  mst_chunks_free(t);
}

/* ---- repair queue ------------------------------------------------------- */

static void add_chunk(mst_chunks *t, uint64_t h, unsigned goal, unsigned nrep) {
  assert_int_equal(mst_chunks_insert(t, h, 1, 1, 0, 0, goal), 0);
  for (unsigned i = 0; i < nrep; i++)
    assert_int_equal(mst_chunks_add_replica(t, h, (uint16_t)i), 1);
}

static uint64_t pop(mst_chunks *t) {
  mst_repair_item it;
  return mst_chunks_repair_pop(t, &it) == 1 ? it.handle : 0;
}

static void repair_queue_order(void **state) {
  (void)state;
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  add_chunk(t, 1, 3, 2);  /* live, 2 copies */
  add_chunk(t, 2, 3, 1);  /* trashed, 1 copy */
  add_chunk(t, 3, 3, 1);  /* live, 1 copy */
  add_chunk(t, 4, 3, 2);  /* trashed, 2 copies */
  add_chunk(t, 5, 3, 0);  /* missing */
  add_chunk(t, 6, 3, 3);  /* healthy */
  add_chunk(t, 7, 5, 2);  /* live, 2 copies, 3 short */
  add_chunk(t, 8, 3, 1);  /* live, 1 copy, queued after 3 */
  assert_int_equal(mst_chunks_repair_enqueue(t, 1, false), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 2, true), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 3, false), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 4, true), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 5, false), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 6, false), 0); /* not below its goal */
  assert_int_equal(mst_chunks_repair_enqueue(t, 7, false), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 8, false), 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 3, false), 0); /* once only */
  assert_int_equal(mst_chunks_repair_enqueue(t, 1, false), 0);
  assert_int_equal(mst_chunks_repair_enqueue(t, 99, false), CAIRN_ENOENT);
  assert_int_equal(mst_chunks_repair_size(t), 6);
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.missing, 1);
  assert_int_equal(st.queued_missing, 1);
  assert_int_equal(st.under_replicated, 7);

  mst_repair_item it;
  assert_int_equal(mst_chunks_repair_pop(t, &it), 1);
  assert_int_equal(it.handle, 3);
  assert_int_equal(it.nrep, 1);
  assert_int_equal(it.goal, 3);
  assert_false(it.trashed);
  assert_int_equal(pop(t), 8);  /* same bucket: first in, first out */
  assert_int_equal(pop(t), 2);  /* 1 copy, trashed */
  assert_int_equal(pop(t), 7);  /* 2 copies, live, larger deficit */
  assert_int_equal(pop(t), 1);
  assert_int_equal(mst_chunks_repair_pop(t, &it), 1);
  assert_int_equal(it.handle, 4);
  assert_true(it.trashed);
  assert_int_equal(pop(t), 0);  /* only the missing chunk is left: not repairable */
  assert_int_equal(mst_chunks_repair_size(t), 0);

  /* A replica comes back: the missing chunk becomes repairable. */
  assert_int_equal(mst_chunks_add_replica(t, 5, 9), 1);
  assert_int_equal(mst_chunks_repair_size(t), 1);
  assert_int_equal(pop(t), 5);
  assert_int_equal(pop(t), 0);

  /* Requeue after pop: it comes back once. */
  assert_int_equal(mst_chunks_repair_enqueue(t, 3, false), 1);
  assert_int_equal(pop(t), 3);
  assert_int_equal(pop(t), 0);
  mst_chunks_free(t);
}

static void repair_queue_follows_changes(void **state) {
  (void)state;
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  add_chunk(t, 1, 3, 2);
  add_chunk(t, 2, 3, 2);
  add_chunk(t, 3, 3, 2);
  add_chunk(t, 4, 3, 2);
  for (uint64_t h = 1; h <= 4; h++) assert_int_equal(mst_chunks_repair_enqueue(t, h, false), 1);
  /* 1 is repaired: it leaves the queue. */
  assert_int_equal(mst_chunks_add_replica(t, 1, 7), 1);
  assert_int_equal(mst_chunks_repair_size(t), 3);
  /* 4 loses a copy: it jumps ahead. */
  assert_int_equal(mst_chunks_remove_replica(t, 4, 0), 1);
  /* 3 goes to the trash: it falls behind; 2 is deleted. */
  assert_int_equal(mst_chunks_repair_enqueue(t, 3, true), 0);
  assert_int_equal(mst_chunks_remove(t, 2), 0);
  assert_int_equal(mst_chunks_repair_size(t), 2);
  assert_int_equal(pop(t), 4);
  assert_int_equal(pop(t), 3);
  assert_int_equal(pop(t), 0);
  /* Goal changes: lowered to the copy count leaves the queue. */
  add_chunk(t, 10, 4, 2);
  assert_int_equal(mst_chunks_repair_enqueue(t, 10, false), 1);
  assert_int_equal(mst_chunks_set_goal(t, 10, 2), 0);
  assert_int_equal(mst_chunks_repair_size(t), 0);
  assert_int_equal(pop(t), 0);
  /* Cancel. */
  add_chunk(t, 11, 3, 1);
  assert_int_equal(mst_chunks_repair_enqueue(t, 11, false), 1);
  assert_int_equal(mst_chunks_repair_cancel(t, 11), 1);
  assert_int_equal(mst_chunks_repair_cancel(t, 11), 0);
  assert_int_equal(pop(t), 0);

  /* Random churn against a model: every pop is queued, never twice for one
   * enqueue, in non-decreasing urgency while nothing changes. */
  enum { N = 3000 };
  uint64_t seed = 99;
  bool *queued = calloc(N + 1, sizeof *queued);
  for (uint64_t h = 100; h < 100 + N; h++) add_chunk(t, h, 3, 2);
  for (int step = 0; step < 200000; step++) {
    uint64_t h = 100 + rnd(&seed) % N;
    int op = (int)(rnd(&seed) % 4);
    if (op == 0) {
      int rc = mst_chunks_repair_enqueue(t, h, rnd(&seed) % 2);
      int nrep = mst_chunks_replica_count(t, h);
      if (nrep < 3) {
        assert_int_equal(rc, queued[h - 100] ? 0 : 1);
        queued[h - 100] = true;
      }
    } else if (op == 1) {
      if (mst_chunks_add_replica(t, h, (uint16_t)(rnd(&seed) % 4)) == 1 &&
          mst_chunks_replica_count(t, h) >= 3)
        queued[h - 100] = false;
    } else if (op == 2) {
      mst_chunks_remove_replica(t, h, (uint16_t)(rnd(&seed) % 4));
    } else {
      mst_repair_item it;
      if (mst_chunks_repair_pop(t, &it) == 1) {
        assert_true(it.handle >= 100 && it.handle < 100 + N);
        assert_true(queued[it.handle - 100]);
        assert_true(it.nrep >= 1 && it.nrep < it.goal);
        queued[it.handle - 100] = false;
      }
    }
  }
  uint64_t expect = 0, expect_missing = 0;
  for (uint64_t h = 100; h < 100 + N; h++) {
    if (!queued[h - 100]) continue;
    if (mst_chunks_replica_count(t, h) == 0)
      expect_missing++;
    else
      expect++;
  }
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.queued, expect);
  assert_int_equal(st.queued_missing, expect_missing);
  /* Drain: exactly the queued repairable chunks come out, each once, most
   * urgent first. */
  unsigned last_nrep = 0;
  uint64_t popped = 0;
  mst_repair_item it;
  while (mst_chunks_repair_pop(t, &it) == 1) {
    assert_true(queued[it.handle - 100]);
    queued[it.handle - 100] = false;
    assert_true(it.nrep >= last_nrep);
    last_nrep = it.nrep;
    popped++;
  }
  assert_int_equal(popped, expect);
  free(queued);
  mst_chunks_free(t);
}

/* ---- memory ------------------------------------------------------------- */

/* A million chunks with three replicas each, as the master allocates them:
 * the table's own accounting must stay within 64 bytes per chunk. */
static void memory_per_chunk_1m(void **state) {
  (void)state;
  enum { N = 1000000 };
  mst_chunks *t;
  assert_int_equal(mst_chunks_new(&t), 0);
  for (uint64_t h = 1; h <= N; h++) {
    assert_int_equal(mst_chunks_insert(t, h, 1, h / 16 + 16, h % 16, 64u << 20, 3), 0);
    for (uint16_t s = 0; s < 3; s++) mst_chunks_add_replica(t, h, (uint16_t)((h + s) % 50));
  }
  mst_chunks_stats st;
  mst_chunks_get_stats(t, &st);
  assert_int_equal(st.chunks, N);
  assert_int_equal(st.under_replicated, 0);
  double per = (double)st.mem_bytes / N;
  print_message("chunk table: %.1f bytes per chunk (allocated, 1M chunks)\n", per);
  assert_true(per <= 40.0);
  /* Deleting every other chunk frees space too (pages shrink). */
  for (uint64_t h = 1; h <= N; h += 2) assert_int_equal(mst_chunks_remove(t, h), 0);
  mst_chunks_stats st2;
  mst_chunks_get_stats(t, &st2);
  assert_true(st2.mem_bytes < st.mem_bytes * 3 / 4);
  mst_chunks_free(t);
}

CAIRN_TEST_MAIN(cmocka_unit_test(insert_lookup_remove_random),
                cmocka_unit_test(fields_versions_refcounts),
                cmocka_unit_test(replicas_no_duplicates),
                cmocka_unit_test(remove_server_reports_lost),
                cmocka_unit_test(lease_validity),
                cmocka_unit_test(repair_queue_order),
                cmocka_unit_test(repair_queue_follows_changes),
                cmocka_unit_test(memory_per_chunk_1m))
