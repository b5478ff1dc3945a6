/* Unit tests for replica placement, clone sources and rebalancing
 * (master/placement.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "mst_chunks.h"
#include "mst_placement.h"
#include "mst_servers.h"

#include <stdio.h>
#include <string.h>

#define GIB (1ULL << 30)

/* Registers server "s<i>" in `zone` with 100 GiB, `used_pct` percent used. */
static int add_server(mst_servers *t, int i, const char *zone, unsigned used_pct) {
  char id[16];
  snprintf(id, sizeof id, "s%d", i);
  mst_server_reg r = {id, "127.0.0.1:8080", "127.0.0.1:8081", zone, 100 * GIB,
                      (100 - used_pct) * GIB};
  return mst_servers_register(t, &r, 0);
}

static mst_servers *cluster(int n, int zones, unsigned used_pct) {
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  for (int i = 0; i < n; i++) {
    char z[16];
    snprintf(z, sizeof z, "zone-%d", i % zones);
    assert_int_equal(add_server(t, i, z, used_pct), i);
  }
  return t;
}

static const mst_place_opts no_limits = {0, 0, 0};

static int place(const mst_servers *t, const mst_place_opts *o, unsigned k, bool fewer,
                 uint64_t *rng, uint16_t *out) {
  mst_place_req r = {.k = k, .allow_fewer = fewer};
  return mst_place_targets(t, o, &r, 0, rng, out);
}

static void distinct_servers_always(void **state) {
  (void)state;
  mst_servers *t = cluster(10, 10, 50);
  uint64_t rng = 1;
  uint16_t out[MST_CHUNK_REPLICAS_MAX];
  for (int i = 0; i < 1000; i++) {
    unsigned k = 1 + (unsigned)(i % 10);
    assert_int_equal(place(t, &no_limits, k, false, &rng, out), (int)k);
    for (unsigned a = 0; a < k; a++) {
      assert_true(out[a] < 10);
      for (unsigned b = a + 1; b < k; b++) assert_int_not_equal(out[a], out[b]);
    }
  }
  /* k = 11 of 10 servers. */
  assert_int_equal(place(t, &no_limits, 11, false, &rng, out), CAIRN_ENOSERVERS);
  mst_servers_free(t);
}

static void zone_spread(void **state) {
  (void)state;
  /* 3 zones x 2 servers, uneven use, so other preferences pull elsewhere. */
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  const char *zones[] = {"a", "a", "b", "b", "c", "c"};
  unsigned used[] = {10, 15, 20, 25, 90, 95};
  for (int i = 0; i < 6; i++) assert_int_equal(add_server(t, i, zones[i], used[i]), i);
  uint64_t rng = 5;
  uint16_t out[6];
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(place(t, &no_limits, 3, false, &rng, out), 3);
    const char *z0 = mst_servers_get(t, out[0])->zone, *z1 = mst_servers_get(t, out[1])->zone,
               *z2 = mst_servers_get(t, out[2])->zone;
    assert_string_not_equal(z0, z1);
    assert_string_not_equal(z0, z2);
    assert_string_not_equal(z1, z2);
  }
  /* Repair: holder in zone a; the two new copies go to b and c. */
  uint16_t holders[] = {0};
  mst_place_req r = {.k = 2, .holders = holders, .n_holders = 1};
  for (int i = 0; i < 200; i++) {
    assert_int_equal(mst_place_targets(t, &no_limits, &r, 0, &rng, out), 2);
    assert_string_not_equal(mst_servers_get(t, out[0])->zone, "a");
    assert_string_not_equal(mst_servers_get(t, out[1])->zone, "a");
    assert_int_not_equal(mst_servers_get(t, out[0])->zone_id, mst_servers_get(t, out[1])->zone_id);
  }
  /* More replicas than zones: the spread is as wide as it can be. */
  for (int i = 0; i < 200; i++) {
    assert_int_equal(place(t, &no_limits, 5, false, &rng, out), 5);
    int per_zone[3] = {0};
    for (int k = 0; k < 5; k++) per_zone[mst_servers_get(t, out[k])->zone[0] - 'a']++;
    for (int z = 0; z < 3; z++) assert_true(per_zone[z] >= 1 && per_zone[z] <= 2);
  }
  mst_servers_free(t);
}

static void below_average_preferred(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  unsigned used[] = {20, 30, 25, 80, 85, 90}; /* average 55% */
  for (int i = 0; i < 6; i++) assert_int_equal(add_server(t, i, "z", used[i]), i);
  uint64_t rng = 11;
  unsigned hits[6] = {0};
  uint16_t out[6];
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(place(t, &no_limits, 2, false, &rng, out), 2);
    hits[out[0]]++;
    hits[out[1]]++;
  }
  unsigned empty = hits[0] + hits[1] + hits[2], full = hits[3] + hits[4] + hits[5];
  print_message("below-average servers got %u of %u replicas\n", empty, empty + full);
  assert_true(empty > full);
  assert_int_equal(full, 0); /* three emptier servers are enough for two copies */
  /* Spread among the equally good ones: each gets a fair share. */
  for (int i = 0; i < 3; i++) assert_true(hits[i] > 500);
  /* Four copies: the three emptier servers every time, plus one other. */
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(place(t, &no_limits, 4, false, &rng, out), 4);
    unsigned below = 0;
    for (int k = 0; k < 4; k++) below += out[k] < 3;
    assert_int_equal(below, 3);
  }
  mst_servers_free(t);
}

static void creation_cap_respected(void **state) {
  (void)state;
  mst_servers *t = cluster(5, 1, 50);
  for (int i = 0; i < 10; i++) assert_int_equal(mst_servers_note_creation(t, 2, 1000), 0);
  mst_place_opts o = {.creation_cap = 10};
  uint64_t rng = 3;
  uint16_t out[5];
  mst_place_req r = {.k = 3};
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(mst_place_targets(t, &o, &r, 2000, &rng, out), 3);
    for (int k = 0; k < 3; k++) assert_int_not_equal(out[k], 2);
  }
  /* Nothing else left: the capped server is used as a last resort. */
  r.k = 5;
  assert_int_equal(mst_place_targets(t, &o, &r, 2000, &rng, out), 5);
  assert_int_equal(out[4], 2);
  /* Once the window has passed, it is an ordinary server again. */
  r.k = 3;
  unsigned seen = 0;
  for (int i = 0; i < 200; i++) {
    assert_int_equal(mst_place_targets(t, &o, &r, 1000 + 61000, &rng, out), 3);
    for (int k = 0; k < 3; k++) seen += out[k] == 2;
  }
  assert_true(seen > 0);
  mst_servers_free(t);
}

static void enoservers_and_allow_fewer(void **state) {
  (void)state;
  mst_servers *t = cluster(2, 2, 50);
  uint64_t rng = 9;
  uint16_t out[3] = {MST_SERVER_NONE, MST_SERVER_NONE, MST_SERVER_NONE};
  assert_int_equal(place(t, &no_limits, 3, false, &rng, out), CAIRN_ENOSERVERS);
  assert_int_equal(place(t, &no_limits, 3, true, &rng, out), 2);
  assert_int_not_equal(out[0], out[1]);
  assert_int_equal(out[2], MST_SERVER_NONE);
  /* No usable server at all: an error even with allow_fewer. */
  assert_int_equal(mst_servers_set_drain(t, 0, true), 0);
  assert_int_equal(mst_servers_mark_dead(t, 1), 1);
  assert_int_equal(place(t, &no_limits, 1, true, &rng, out), CAIRN_ENOSERVERS);
  mst_servers_free(t);
  /* Empty table. */
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(place(t, &no_limits, 1, true, &rng, out), CAIRN_ENOSERVERS);
  /* Bad requests. */
  assert_int_equal(place(t, &no_limits, 0, true, &rng, out), CAIRN_EINVAL);
  assert_int_equal(place(t, &no_limits, MST_CHUNK_REPLICAS_MAX + 1, true, &rng, out),
                   CAIRN_EINVAL);
  mst_servers_free(t);
}

static void excluded_never_chosen(void **state) {
  (void)state;
  mst_servers *t = cluster(8, 4, 50);
  uint64_t rng = 17;
  uint16_t holders[] = {1, 6}, exclude[] = {3};
  mst_place_req r = {.k = 3, .holders = holders, .n_holders = 2, .exclude = exclude,
                     .n_exclude = 1};
  uint16_t out[5];
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(mst_place_targets(t, &no_limits, &r, 0, &rng, out), 3);
    for (int k = 0; k < 3; k++) assert_true(out[k] != 1 && out[k] != 6 && out[k] != 3);
  }
  /* 8 - 3 = 5 candidates. */
  r.k = 5;
  assert_int_equal(mst_place_targets(t, &no_limits, &r, 0, &rng, out), 5);
  r.k = 6;
  assert_int_equal(mst_place_targets(t, &no_limits, &r, 0, &rng, out), CAIRN_ENOSERVERS);
  /* Indices naming no server are refused. */
  uint16_t bogus[] = {8};
  mst_place_req rb = {.k = 1, .exclude = bogus, .n_exclude = 1};
  assert_int_equal(mst_place_targets(t, &no_limits, &rb, 0, &rng, out), CAIRN_EINVAL);
  mst_servers_free(t);
}

static void unusable_never_chosen(void **state) {
  (void)state;
  mst_servers *t = cluster(8, 2, 50);
  assert_int_equal(mst_servers_set_drain(t, 0, true), 0);
  assert_int_equal(mst_servers_mark_dead(t, 1), 1);
  mst_server_hb ro = {100 * GIB, 50 * GIB, 0, 0, true};
  assert_int_equal(mst_servers_heartbeat(t, 2, &ro, 0), 0);
  mst_server_hb low = {100 * GIB, 1 * GIB, 0, 0, false};
  assert_int_equal(mst_servers_heartbeat(t, 3, &low, 0), 0);
  assert_int_equal(mst_servers_clone_begin(t, 5, 4), 0);
  assert_int_equal(mst_servers_clone_begin(t, 6, 4), 0);
  mst_place_opts o = {.min_free_bytes = 2 * GIB, .max_clones_as_target = 2};
  uint64_t rng = 23;
  uint16_t out[8];
  for (int i = 0; i < 1000; i++) {
    int n = place(t, &o, 3, true, &rng, out);
    assert_int_equal(n, 3); /* 5, 6, 7 are all that is left */
    for (int k = 0; k < n; k++) assert_true(out[k] >= 5);
  }
  assert_int_equal(place(t, &o, 4, false, &rng, out), CAIRN_EBUSY); /* 4 is only throttled */
  o.max_clones_as_target = 3;
  assert_int_equal(place(t, &o, 4, false, &rng, out), 4);
  mst_servers_free(t);
}

static void clone_source(void **state) {
  (void)state;
  mst_servers *t = cluster(4, 2, 50);
  mst_chunks *c;
  assert_int_equal(mst_chunks_new(&c), 0);
  assert_int_equal(mst_chunks_insert(c, 1, 1, 1, 0, 100, 3), 0);
  for (uint16_t s = 0; s < 3; s++) assert_int_equal(mst_chunks_add_replica(c, 1, s), 1);
  mst_server_hb busy = {100 * GIB, 50 * GIB, 0, 9, false};
  assert_int_equal(mst_servers_heartbeat(t, 0, &busy, 0), 0);
  assert_int_equal(mst_servers_clone_begin(t, 1, 3), 0);
  uint64_t rng = 31;
  for (int i = 0; i < 100; i++)
    assert_int_equal(mst_place_clone_source(t, c, 1, 0, &rng), 2); /* least loaded */
  assert_int_equal(mst_servers_mark_dead(t, 2), 1);
  assert_int_equal(mst_place_clone_source(t, c, 1, 0, &rng), 1);
  assert_int_equal(mst_place_clone_source(t, c, 1, 1, &rng), 0); /* 1 is at its limit */
  assert_int_equal(mst_servers_clone_begin(t, 0, 3), 0);
  assert_int_equal(mst_place_clone_source(t, c, 1, 1, &rng), CAIRN_EBUSY);
  assert_int_equal(mst_servers_mark_dead(t, 0), 1);
  assert_int_equal(mst_servers_mark_dead(t, 1), 1);
  assert_int_equal(mst_place_clone_source(t, c, 1, 0, &rng), CAIRN_ENOSERVERS);
  assert_int_equal(mst_place_clone_source(t, c, 2, 0, &rng), CAIRN_ENOENT);
  mst_chunks_free(c);
  mst_servers_free(t);
}

static void deterministic_given_seed(void **state) {
  (void)state;
  mst_servers *t = cluster(20, 4, 50);
  uint16_t a[3], b[3];
  uint64_t r1 = 1234, r2 = 1234;
  bool varied = false;
  uint16_t first[3];
  for (int i = 0; i < 100; i++) {
    assert_int_equal(place(t, &no_limits, 3, false, &r1, a), 3);
    assert_int_equal(place(t, &no_limits, 3, false, &r2, b), 3);
    assert_memory_equal(a, b, sizeof a);
    if (i == 0) memcpy(first, a, sizeof a);
    if (memcmp(first, a, sizeof a) != 0) varied = true;
  }
  assert_true(varied); /* equally good servers take turns */
  mst_servers_free(t);
}

static void rebalance_full_to_empty(void **state) {
  (void)state;
  /* Zones a and b, each with one full (90%) and one empty (10%) server, and
   * two middle ones (50%). Average: 50%. */
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(add_server(t, 0, "a", 90), 0);
  assert_int_equal(add_server(t, 1, "b", 90), 1);
  assert_int_equal(add_server(t, 2, "a", 10), 2);
  assert_int_equal(add_server(t, 3, "b", 10), 3);
  assert_int_equal(add_server(t, 4, "a", 50), 4);
  assert_int_equal(add_server(t, 5, "b", 50), 5);
  mst_chunks *c;
  assert_int_equal(mst_chunks_new(&c), 0);
  /* 600 chunks of 64 MiB with 2 replicas (goal 2) in different zones. */
  uint64_t rng = 77;
  for (uint64_t h = 1; h <= 600; h++) {
    assert_int_equal(mst_chunks_insert(c, h, 1, 1, 0, 64u << 20, 2), 0);
    uint16_t x = (uint16_t)(h % 3 == 0 ? 0 : h % 3 == 1 ? 4 : 0); /* zone a */
    uint16_t y = (uint16_t)(h % 2 ? 1 : 5);                          /* zone b */
    assert_int_equal(mst_chunks_add_replica(c, h, x), 1);
    assert_int_equal(mst_chunks_add_replica(c, h, y), 1);
  }
  /* Chunk 600 is being written (leased): never moved. Chunk 599 is under
   * replicated (goal 3): never moved. */
  assert_int_equal(mst_chunks_set_lease(c, 600, 0, 1000000), 0);
  assert_int_equal(mst_chunks_set_goal(c, 599, 3), 0);
  mst_rebalance_opts o = {.threshold = 0.10, .min_free_bytes = GIB};
  mst_move mv[200];
  int n = mst_place_rebalance(t, c, &o, 1000, &rng, mv, 200);
  print_message("rebalance planned %d moves\n", n);
  assert_true(n > 0);
  for (int i = 0; i < n; i++) {
    assert_true(mv[i].from == 0 || mv[i].from == 1);  /* only from the full ones */
    assert_true(mv[i].to == 2 || mv[i].to == 3);      /* only to the empty ones */
    assert_true(mv[i].handle != 600 && mv[i].handle != 599);
    /* Zone kept: a replica leaves zone a only for zone a. */
    assert_int_equal(mst_servers_get(t, mv[i].from)->zone_id,
                     mst_servers_get(t, mv[i].to)->zone_id);
    mst_chunk_info ci;
    assert_int_equal(mst_chunks_get(c, mv[i].handle, &ci), 0);
    bool holds_from = false;
    for (unsigned k = 0; k < ci.nrep; k++) {
      assert_int_not_equal(ci.replicas[k], mv[i].to); /* never two on one server */
      holds_from = holds_from || ci.replicas[k] == mv[i].from;
    }
    assert_true(holds_from);
    for (int j = 0; j < i; j++) assert_true(mv[j].handle != mv[i].handle);
  }
  /* Bounded by max_moves. */
  assert_int_equal(mst_place_rebalance(t, c, &o, 1000, &rng, mv, 3), 3);
  /* Balanced cluster: nothing to do. */
  mst_servers *even = cluster(4, 2, 50);
  assert_int_equal(mst_place_rebalance(even, c, &o, 1000, &rng, mv, 200), 0);
  mst_rebalance_opts bad = {.threshold = -0.1};
  assert_int_equal(mst_place_rebalance(t, c, &bad, 1000, &rng, mv, 200), CAIRN_EINVAL);
  mst_servers_free(even);
  mst_chunks_free(c);
  mst_servers_free(t);
}

/* A source gives only until it is within the margin: A (75.5% used) gives
 * 1 GiB chunks to B (empty) while above average + 10% = 50%, i.e. 26 times;
 * C (44.5%) neither gives nor takes. */
static void rebalance_stops_at_margin(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  mst_server_reg a = {"A", "127.0.0.1:1", "127.0.0.1:2", "z", 100 * GIB, 100 * GIB - 151 * GIB / 2};
  mst_server_reg b = {"B", "127.0.0.1:3", "127.0.0.1:4", "z", 100 * GIB, 100 * GIB};
  mst_server_reg cc = {"C", "127.0.0.1:5", "127.0.0.1:6", "z", 100 * GIB, 100 * GIB - 89 * GIB / 2};
  assert_int_equal(mst_servers_register(t, &a, 0), 0);
  assert_int_equal(mst_servers_register(t, &b, 0), 1);
  assert_int_equal(mst_servers_register(t, &cc, 0), 2);
  mst_chunks *c;
  assert_int_equal(mst_chunks_new(&c), 0);
  for (uint64_t h = 1; h <= 40; h++) {
    assert_int_equal(mst_chunks_insert(c, h, 1, 1, 0, GIB, 1), 0);
    assert_int_equal(mst_chunks_add_replica(c, h, 0), 1);
  }
  mst_rebalance_opts o = {.threshold = 0.10};
  mst_move mv[100];
  uint64_t rng = 5;
  int n = mst_place_rebalance(t, c, &o, 0, &rng, mv, 100);
  assert_int_equal(n, 26);
  for (int i = 0; i < n; i++) {
    assert_int_equal(mv[i].from, 0);
    assert_int_equal(mv[i].to, 1);
  }
  mst_chunks_free(c);
  mst_servers_free(t);
}

CAIRN_TEST_MAIN(cmocka_unit_test(distinct_servers_always),
                cmocka_unit_test(zone_spread),
                cmocka_unit_test(below_average_preferred),
                cmocka_unit_test(creation_cap_respected),
                cmocka_unit_test(enoservers_and_allow_fewer),
                cmocka_unit_test(excluded_never_chosen),
                cmocka_unit_test(unusable_never_chosen),
                cmocka_unit_test(clone_source),
                cmocka_unit_test(deterministic_given_seed),
                cmocka_unit_test(rebalance_full_to_empty),
                cmocka_unit_test(rebalance_stops_at_margin))
