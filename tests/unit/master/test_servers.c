/* Unit tests for the chunkserver table (master/servers.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "mst_servers.h"

#include <stdio.h>
#include <string.h>

static int reg(mst_servers *t, const char *id, const char *zone, uint64_t cap, uint64_t free_b,
               int64_t now) {
  char data[64], rpc[64];
  snprintf(data, sizeof data, "127.0.0.1:%d", 8000 + (int)strlen(id));
  snprintf(rpc, sizeof rpc, "127.0.0.1:%d", 9000 + (int)strlen(id));
  mst_server_reg r = {id, data, rpc, zone, cap, free_b};
  return mst_servers_register(t, &r, now);
}

static void register_reregister_keeps_index(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "aaaa-1", "z1", 1000, 900, 10), 0);
  assert_int_equal(reg(t, "bbbb-2", "z2", 2000, 100, 10), 1);
  assert_int_equal(reg(t, "cccc-3", NULL, 3000, 3000, 10), 2);
  assert_int_equal(mst_servers_count(t), 3);
  assert_int_equal(mst_servers_find(t, "bbbb-2"), 1);
  assert_int_equal(mst_servers_find(t, "nope"), CAIRN_ENOENT);
  const mst_server *b = mst_servers_get(t, 1);
  assert_non_null(b);
  assert_string_equal(b->id, "bbbb-2");
  assert_string_equal(b->zone, "z2");
  assert_int_equal(b->capacity_bytes, 2000);
  assert_string_equal(mst_servers_get(t, 2)->zone, "");
  assert_null(mst_servers_get(t, 3));

  /* Same id again, new addresses and zone: same index, same record. */
  mst_server_reg r = {"bbbb-2", "127.0.0.1:7001", "127.0.0.1:7002", "z1", 4000, 4000};
  assert_int_equal(mst_servers_register(t, &r, 20), 1);
  assert_ptr_equal(mst_servers_get(t, 1), b);
  assert_string_equal(b->data_addr, "127.0.0.1:7001");
  assert_string_equal(b->rpc_addr, "127.0.0.1:7002");
  assert_string_equal(b->zone, "z1");
  assert_int_equal(b->zone_id, mst_servers_get(t, 0)->zone_id);
  assert_int_equal(b->capacity_bytes, 4000);
  assert_int_equal(b->registered_ms, 20);
  assert_int_equal(mst_servers_count(t), 3);

  /* Bad input: refused, nothing changes. */
  char longid[MST_SERVER_ID_MAX + 2];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  assert_int_equal(reg(t, "", "z", 10, 1, 0), CAIRN_EINVAL);
  assert_int_equal(reg(t, "has space", "z", 10, 1, 0), CAIRN_EINVAL);
  assert_int_equal(reg(t, "bad\x01id", "z", 10, 1, 0), CAIRN_EINVAL);
  assert_int_equal(reg(t, longid, "z", 10, 1, 0), CAIRN_EINVAL);
  assert_int_equal(reg(t, "dddd-4", "z", 10, 11, 0), CAIRN_EINVAL); /* free > capacity */
  assert_int_equal(reg(t, "dddd-4", "z", 10, 1, -1), CAIRN_EINVAL);
  mst_server_reg noaddr = {"dddd-4", NULL, "127.0.0.1:1", "z", 1, 1};
  assert_int_equal(mst_servers_register(t, &noaddr, 0), CAIRN_EINVAL);
  mst_server_reg emptyaddr = {"dddd-4", "", "127.0.0.1:1", "z", 1, 1};
  assert_int_equal(mst_servers_register(t, &emptyaddr, 0), CAIRN_EINVAL);
  assert_int_equal(mst_servers_register(t, NULL, 0), CAIRN_EINVAL);
  mst_server_reg bad_re = {"bbbb-2", "127.0.0.1:1", "127.0.0.1:2", "z9", 1, 2};
  assert_int_equal(mst_servers_register(t, &bad_re, 30), CAIRN_EINVAL);
  assert_string_equal(b->data_addr, "127.0.0.1:7001");
  assert_int_equal(mst_servers_count(t), 3);
  assert_int_equal(mst_servers_find(t, "dddd-4"), CAIRN_ENOENT);
  assert_string_equal(mst_server_state_name(MST_SERVER_DRAINING), "draining");
  mst_servers_free(t);
}

static void many_servers_find_by_id(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  char id[32];
  for (int i = 0; i < 3000; i++) {
    snprintf(id, sizeof id, "srv-%05d", i);
    assert_int_equal(reg(t, id, i % 2 ? "odd" : "even", 100, 50, i), i);
  }
  for (int i = 2999; i >= 0; i--) {
    snprintf(id, sizeof id, "srv-%05d", i);
    assert_int_equal(mst_servers_find(t, id), i);
    assert_int_equal(reg(t, id, "even", 100, 50, 5000), i);
  }
  assert_int_equal(mst_servers_count(t), 3000);
  assert_int_equal(mst_servers_get(t, 7)->zone_id, mst_servers_get(t, 8)->zone_id);
  mst_servers_free(t);
}

static void heartbeat_updates_fields(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "a", "z", 1000, 1000, 100), 0);
  mst_server_hb hb = {2000, 500, 42, 7, true};
  assert_int_equal(mst_servers_heartbeat(t, 0, &hb, 200), 0);
  const mst_server *s = mst_servers_get(t, 0);
  assert_int_equal(s->capacity_bytes, 2000);
  assert_int_equal(s->free_bytes, 500);
  assert_int_equal(s->chunk_count, 42);
  assert_int_equal(s->load, 7);
  assert_true(s->read_only);
  assert_int_equal(s->last_heartbeat_ms, 200);
  assert_true(mst_server_util(s) > 0.74 && mst_server_util(s) < 0.76);
  /* An older time does not move the last heartbeat back. */
  hb.read_only = false;
  assert_int_equal(mst_servers_heartbeat(t, 0, &hb, 150), 0);
  assert_int_equal(s->last_heartbeat_ms, 200);
  assert_false(s->read_only);
  /* Bad input changes nothing. */
  mst_server_hb bad = {10, 11, 0, 0, true};
  assert_int_equal(mst_servers_heartbeat(t, 0, &bad, 300), CAIRN_EINVAL);
  assert_int_equal(mst_servers_heartbeat(t, 0, NULL, 300), CAIRN_EINVAL);
  assert_int_equal(mst_servers_heartbeat(t, 0, &hb, -5), CAIRN_EINVAL);
  assert_int_equal(mst_servers_heartbeat(t, 1, &hb, 300), CAIRN_ENOENT);
  assert_int_equal(s->capacity_bytes, 2000);
  assert_false(s->read_only);
  assert_int_equal(s->last_heartbeat_ms, 200);
  mst_servers_free(t);
}

static void dead_after_silence(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  for (int i = 0; i < 4; i++) {
    char id[8];
    snprintf(id, sizeof id, "s%d", i);
    assert_int_equal(reg(t, id, "z", 100, 50, 0), i);
  }
  mst_server_hb hb = {100, 50, 0, 0, false};
  uint16_t died[8];
  /* s0 and s2 keep talking; s1 and s3 fall silent after t=0. */
  for (int64_t now = 3000; now <= 15000; now += 3000) {
    assert_int_equal(mst_servers_heartbeat(t, 0, &hb, now), 0);
    assert_int_equal(mst_servers_heartbeat(t, 2, &hb, now), 0);
  }
  assert_int_equal(mst_servers_tick(t, 15000, 15000, died, 8), 0); /* exactly 15 s: not yet */
  assert_int_equal(mst_servers_tick(t, 15001, 15000, died, 1), 1);  /* cap 1: one per call */
  assert_int_equal(died[0], 1);
  assert_int_equal(mst_servers_tick(t, 15001, 15000, died, 8), 1);
  assert_int_equal(died[0], 3);
  assert_int_equal(mst_servers_tick(t, 15001, 15000, died, 8), 0); /* already dead */
  assert_true(mst_servers_get(t, 1)->dead);
  assert_int_equal(mst_server_state_of(mst_servers_get(t, 1)), MST_SERVER_DEAD);
  assert_false(mst_servers_get(t, 0)->dead);

  mst_servers_totals tot;
  mst_servers_get_totals(t, &tot);
  assert_int_equal(tot.servers, 4);
  assert_int_equal(tot.by_state[MST_SERVER_ALIVE], 2);
  assert_int_equal(tot.by_state[MST_SERVER_DEAD], 2);
  assert_int_equal(tot.capacity_bytes, 200); /* dead servers do not count */

  /* A dead server's heartbeat is refused: it must register again. */
  assert_int_equal(mst_servers_heartbeat(t, 1, &hb, 16000), CAIRN_ESTALE);
  assert_int_equal(reg(t, "s1", "z", 100, 50, 16000), 1);
  assert_false(mst_servers_get(t, 1)->dead);
  assert_int_equal(mst_servers_heartbeat(t, 1, &hb, 17000), 0);

  assert_int_equal(mst_servers_mark_dead(t, 0), 1);
  assert_int_equal(mst_servers_mark_dead(t, 0), 0);
  assert_int_equal(mst_servers_mark_dead(t, 9), CAIRN_ENOENT);
  assert_int_equal(mst_servers_tick(t, 1, 0, died, 8), CAIRN_EINVAL);
  assert_int_equal(mst_servers_tick(t, -1, 10, died, 8), CAIRN_EINVAL);
  assert_int_equal(mst_servers_tick(t, 1, 10, NULL, 8), CAIRN_EINVAL);
  mst_servers_free(t);
}

static void instruction_queue_dedup(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "a", "z", 100, 50, 0), 0);
  assert_int_equal(reg(t, "b", "z", 100, 50, 0), 1);
  mst_instr del = {.kind = MST_INSTR_DELETE, .handle = 7, .version = 3};
  assert_int_equal(mst_servers_queue(t, 0, &del), 1);
  assert_int_equal(mst_servers_queue(t, 0, &del), 0); /* the same delete goes once */
  mst_instr del2 = {.kind = MST_INSTR_DELETE, .handle = 7, .version = 4};
  assert_int_equal(mst_servers_queue(t, 0, &del2), 1); /* another version is another delete */
  mst_instr sv = {.kind = MST_INSTR_SET_VERSION, .handle = 7, .version = 5};
  assert_int_equal(mst_servers_queue(t, 0, &sv), 1);
  sv.version = 9;
  assert_int_equal(mst_servers_queue(t, 0, &sv), 0);
  sv.version = 6;
  assert_int_equal(mst_servers_queue(t, 0, &sv), 0); /* the higher version stays */
  mst_instr lease = {.kind = MST_INSTR_LEASE, .handle = 8, .version = 2, .lease_expiry_ms = 100};
  assert_int_equal(mst_servers_queue(t, 0, &lease), 1);
  lease.lease_expiry_ms = 160;
  assert_int_equal(mst_servers_queue(t, 0, &lease), 0);
  mst_instr clone = {.kind = MST_INSTR_CLONE, .handle = 9, .version = 1, .source = 1};
  assert_int_equal(mst_servers_queue(t, 0, &clone), 1);
  clone.version = 2;
  assert_int_equal(mst_servers_queue(t, 0, &clone), 0);
  assert_int_equal(mst_servers_get(t, 0)->pending, 5);

  /* Bad instructions. */
  mst_instr bad = {.kind = MST_INSTR_DELETE, .handle = 0};
  assert_int_equal(mst_servers_queue(t, 0, &bad), CAIRN_EINVAL);
  bad = (mst_instr){.kind = 99, .handle = 1};
  assert_int_equal(mst_servers_queue(t, 0, &bad), CAIRN_EINVAL);
  bad = (mst_instr){.kind = MST_INSTR_CLONE, .handle = 1, .source = 0};
  assert_int_equal(mst_servers_queue(t, 0, &bad), CAIRN_EINVAL); /* from itself */
  bad.source = 5;
  assert_int_equal(mst_servers_queue(t, 0, &bad), CAIRN_EINVAL); /* unknown source */
  assert_int_equal(mst_servers_queue(t, 3, &del), CAIRN_ENOENT);
  assert_int_equal(mst_servers_get(t, 0)->pending, 5);

  /* Taken oldest first, merged values in place; a partial take leaves the rest. */
  mst_instr out[8];
  assert_int_equal(mst_servers_take(t, 0, out, 2), 2);
  assert_int_equal(out[0].kind, MST_INSTR_DELETE);
  assert_int_equal(out[0].version, 3);
  assert_int_equal(out[1].version, 4);
  assert_int_equal(mst_servers_get(t, 0)->pending, 3);
  /* Dedup still works on what is left after a partial take. */
  assert_int_equal(mst_servers_queue(t, 0, &lease), 0);
  assert_int_equal(mst_servers_take(t, 0, out, 8), 3);
  assert_int_equal(out[0].kind, MST_INSTR_SET_VERSION);
  assert_int_equal(out[0].version, 9);
  assert_int_equal(out[1].kind, MST_INSTR_LEASE);
  assert_int_equal(out[1].lease_expiry_ms, 160);
  assert_int_equal(out[2].kind, MST_INSTR_CLONE);
  assert_int_equal(out[2].version, 2);
  assert_int_equal(out[2].source, 1);
  assert_int_equal(mst_servers_take(t, 0, out, 8), 0);
  /* Once taken, the same delete can be queued again. */
  assert_int_equal(mst_servers_queue(t, 0, &del), 1);
  assert_int_equal(mst_servers_take(t, 5, out, 8), CAIRN_ENOENT);
  mst_servers_free(t);
}

static void instruction_queue_bound(void **state) {
  (void)state;
  mst_servers *t;
  mst_servers_opts o = {.max_pending = 100};
  assert_int_equal(mst_servers_new(&o, &t), 0);
  assert_int_equal(reg(t, "a", "z", 100, 50, 0), 0);
  int queued = 0, busy = 0;
  for (uint64_t h = 1; h <= 150; h++) {
    mst_instr d = {.kind = MST_INSTR_DELETE, .handle = h};
    int rc = mst_servers_queue(t, 0, &d);
    if (rc == 1) queued++;
    if (rc == CAIRN_EBUSY) busy++;
  }
  assert_int_equal(queued, 100);
  assert_int_equal(busy, 50);
  assert_int_equal(mst_servers_get(t, 0)->dropped, 50);
  /* A duplicate of a queued entry still merges when the queue is full. */
  mst_instr d5 = {.kind = MST_INSTR_DELETE, .handle = 5};
  assert_int_equal(mst_servers_queue(t, 0, &d5), 0);
  mst_instr out[100];
  assert_int_equal(mst_servers_take(t, 0, out, 100), 100);
  for (int i = 0; i < 100; i++) assert_int_equal(out[i].handle, (uint64_t)i + 1);
  mst_instr d200 = {.kind = MST_INSTR_DELETE, .handle = 200};
  assert_int_equal(mst_servers_queue(t, 0, &d200), 1);

  /* A dead server's queue is emptied and it takes no new instructions. */
  uint16_t died[1];
  assert_int_equal(mst_servers_tick(t, 100000, 1000, died, 1), 1);
  assert_int_equal(mst_servers_get(t, 0)->pending, 0);
  assert_int_equal(mst_servers_queue(t, 0, &d200), CAIRN_ESTALE);
  assert_int_equal(mst_servers_take(t, 0, out, 100), 0);
  mst_servers_free(t);

  /* Default bound: 10,000. */
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "a", "z", 100, 50, 0), 0);
  for (uint64_t h = 1; h <= 10000; h++) {
    mst_instr d = {.kind = MST_INSTR_DELETE, .handle = h, .version = h % 3};
    assert_int_equal(mst_servers_queue(t, 0, &d), 1);
  }
  mst_instr d = {.kind = MST_INSTR_DELETE, .handle = 10001};
  assert_int_equal(mst_servers_queue(t, 0, &d), CAIRN_EBUSY);
  mst_servers_free(t);
}

static void drain_flag(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "a", "z", 100, 50, 0), 0);
  assert_int_equal(reg(t, "b", "z", 100, 50, 0), 1);
  assert_int_equal(mst_servers_set_drain(t, 1, true), 0);
  assert_int_equal(mst_server_state_of(mst_servers_get(t, 1)), MST_SERVER_DRAINING);
  mst_servers_totals tot;
  mst_servers_get_totals(t, &tot);
  assert_int_equal(tot.by_state[MST_SERVER_ALIVE], 1);
  assert_int_equal(tot.by_state[MST_SERVER_DRAINING], 1);
  /* The flag survives death and re-registration. */
  assert_int_equal(mst_servers_mark_dead(t, 1), 1);
  assert_int_equal(mst_server_state_of(mst_servers_get(t, 1)), MST_SERVER_DEAD);
  assert_int_equal(reg(t, "b", "z", 100, 50, 10), 1);
  assert_int_equal(mst_server_state_of(mst_servers_get(t, 1)), MST_SERVER_DRAINING);
  assert_int_equal(mst_servers_set_drain(t, 1, false), 0);
  assert_int_equal(mst_server_state_of(mst_servers_get(t, 1)), MST_SERVER_ALIVE);
  assert_int_equal(mst_servers_set_drain(t, 2, true), CAIRN_ENOENT);
  mst_servers_free(t);
}

static void recent_creations_window(void **state) {
  (void)state;
  mst_servers *t;
  mst_servers_opts o = {.creation_window_ms = 8000}; /* 8 slots of 1 s */
  assert_int_equal(mst_servers_new(&o, &t), 0);
  assert_int_equal(reg(t, "a", "z", 100, 50, 0), 0);
  for (int i = 0; i < 5; i++) assert_int_equal(mst_servers_note_creation(t, 0, 500), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(mst_servers_note_creation(t, 0, 3500), 0);
  assert_int_equal(mst_servers_recent_creations(t, 0, 3600), 8);
  assert_int_equal(mst_servers_recent_creations(t, 0, 7999), 8);
  assert_int_equal(mst_servers_recent_creations(t, 0, 8000), 3); /* the t=0.5 s slot left */
  assert_int_equal(mst_servers_recent_creations(t, 0, 11999), 0);
  /* A much later creation clears the whole ring. */
  assert_int_equal(mst_servers_note_creation(t, 0, 1000000), 0);
  assert_int_equal(mst_servers_recent_creations(t, 0, 1000000), 1);
  /* An older time counts in the newest slot. */
  assert_int_equal(mst_servers_note_creation(t, 0, 10), 0);
  assert_int_equal(mst_servers_recent_creations(t, 0, 1000001), 2);
  assert_int_equal(mst_servers_recent_creations(t, 9, 0), 0);
  assert_int_equal(mst_servers_note_creation(t, 9, 0), CAIRN_ENOENT);
  assert_int_equal(mst_servers_note_creation(t, 0, -1), CAIRN_EINVAL);
  mst_servers_free(t);
  mst_servers_opts bad = {.creation_window_ms = 7};
  assert_int_equal(mst_servers_new(&bad, &t), CAIRN_EINVAL);
}

static void clones_and_totals(void **state) {
  (void)state;
  mst_servers *t;
  assert_int_equal(mst_servers_new(NULL, &t), 0);
  assert_int_equal(reg(t, "a", "z", 1000, 250, 0), 0);
  assert_int_equal(reg(t, "b", "z", 3000, 1750, 0), 1);
  assert_int_equal(mst_servers_clone_begin(t, 0, 1), 0);
  assert_int_equal(mst_servers_clone_begin(t, 0, 1), 0);
  assert_int_equal(mst_servers_get(t, 0)->clones_as_source, 2);
  assert_int_equal(mst_servers_get(t, 1)->clones_as_target, 2);
  assert_int_equal(mst_servers_clone_begin(t, 0, 0), CAIRN_EINVAL);
  assert_int_equal(mst_servers_clone_begin(t, 0, 4), CAIRN_ENOENT);
  mst_servers_totals tot;
  mst_servers_get_totals(t, &tot);
  assert_int_equal(tot.clones_in_flight, 2);
  assert_int_equal(tot.capacity_bytes, 4000);
  assert_int_equal(tot.free_bytes, 2000);
  assert_true(tot.avg_util > 0.49 && tot.avg_util < 0.51);
  for (int i = 0; i < 3; i++) assert_int_equal(mst_servers_clone_end(t, 0, 1), 0);
  assert_int_equal(mst_servers_get(t, 0)->clones_as_source, 0); /* never below 0 */
  /* Re-registration resets the counters of the restarted server. */
  assert_int_equal(mst_servers_clone_begin(t, 1, 0), 0);
  assert_int_equal(reg(t, "a", "z", 1000, 250, 5), 0);
  assert_int_equal(mst_servers_get(t, 0)->clones_as_target, 0);
  mst_servers_free(t);
}

CAIRN_TEST_MAIN(cmocka_unit_test(register_reregister_keeps_index),
                cmocka_unit_test(many_servers_find_by_id),
                cmocka_unit_test(heartbeat_updates_fields),
                cmocka_unit_test(dead_after_silence),
                cmocka_unit_test(instruction_queue_dedup),
                cmocka_unit_test(instruction_queue_bound),
                cmocka_unit_test(drain_flag),
                cmocka_unit_test(recent_creations_window),
                cmocka_unit_test(clones_and_totals))
