/*
 * Per-chunk 2PC state (lease.c): the chunk mutex, leases with their
 * replica set, serials, extension wishes, prepared notes and the decision
 * ring.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "cs_leases.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cs_leases *new_leases(int64_t lease_ms, size_t decisions) {
  cs_leases_opts o = {.lease_ms = lease_ms, .margin_ms = 500, .decisions = decisions};
  cs_leases *l = NULL;
  assert_int_equal(cs_leases_new(&o, &l), 0);
  return l;
}

static void reps3(cs_replica_addr r[3]) {
  memset(r, 0, 3 * sizeof *r);
  for (int i = 0; i < 3; i++) {
    snprintf(r[i].id, sizeof r[i].id, "server-%d", i);
    snprintf(r[i].rpc_addr, sizeof r[i].rpc_addr, "127.0.0.1:%d", 8081 + i);
    snprintf(r[i].data_addr, sizeof r[i].data_addr, "127.0.0.1:%d", 8080 + i);
  }
}

/* ---- chunk mutex ---- */

struct locker {
  cs_leases *l;
  atomic_int inside, max_inside, done;
};

static void *lock_main(void *arg) {
  struct locker *k = arg;
  for (int i = 0; i < 50; i++) {
    cs_leases_lock(k->l, 7);
    int now = atomic_fetch_add(&k->inside, 1) + 1;
    if (now > atomic_load(&k->max_inside)) atomic_store(&k->max_inside, now);
    usleep(100);
    atomic_fetch_sub(&k->inside, 1);
    cs_leases_unlock(k->l, 7);
  }
  atomic_fetch_add(&k->done, 1);
  return NULL;
}

static void mutex_serialises_one_chunk(void **state) {
  (void)state;
  struct locker k = {.l = new_leases(0, 0)};
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, lock_main, &k), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&k.max_inside), 1);
  assert_int_equal(atomic_load(&k.done), 4);
  cs_leases_free(k.l);
}

static void timed_lock_and_other_chunks(void **state) {
  (void)state;
  cs_leases *l = new_leases(0, 0);
  cs_leases_lock(l, 1);
  assert_int_equal(cs_leases_lock_timed(l, 1, 0), CAIRN_EBUSY);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_leases_lock_timed(l, 1, 100), CAIRN_EBUSY);
  assert_true(cmn_mono_ms() - t0 >= 90);
  assert_int_equal(cs_leases_lock_timed(l, 2, 0), 0); /* another chunk is free */
  cs_leases_unlock(l, 2);
  cs_leases_unlock(l, 1);
  assert_int_equal(cs_leases_lock_timed(l, 1, 0), 0);
  cs_leases_unlock(l, 1);
  cs_leases_free(l);
}

/* ---- leases ---- */

static void lease_set_extend_drop(void **state) {
  (void)state;
  cs_leases *l = new_leases(10000, 0);
  cs_replica_addr r[3];
  reps3(r);
  int64_t now = cmn_wall_ms();
  cs_lease_view v;
  assert_int_equal(cs_leases_primary(l, 5, now, &v), CAIRN_ENOTPRIMARY);
  assert_int_equal(cs_leases_set(l, 5, 3, now + 8000, r, 3, 1), 0);
  assert_int_equal(cs_leases_primary(l, 5, now, &v), 0);
  assert_int_equal(v.version, 3);
  assert_int_equal(v.n, 3);
  assert_string_equal(v.replicas[0].id, "server-0");
  assert_string_equal(v.replicas[2].rpc_addr, "127.0.0.1:8083");
  assert_string_equal(v.replicas[1].data_addr, "127.0.0.1:8081");
  /* Valid until margin_ms before the expiry. */
  assert_int_equal(cs_leases_primary(l, 5, now + 7400, &v), 0);
  assert_int_equal(cs_leases_primary(l, 5, now + 7600, &v), CAIRN_ENOTPRIMARY);
  assert_int_equal(cs_leases_extend(l, 5, 2, now + 20000), CAIRN_ENOENT);
  assert_int_equal(cs_leases_extend(l, 6, 3, now + 20000), CAIRN_ENOENT);
  assert_int_equal(cs_leases_extend(l, 5, 3, now + 20000), 0);
  assert_int_equal(cs_leases_extend(l, 5, 3, now + 1000), 0); /* never shortened */
  assert_int_equal(cs_leases_primary(l, 5, now + 15000, &v), 0);
  assert_int_equal(v.expiry_ms, now + 20000);
  cs_leases_drop(l, 5);
  assert_int_equal(cs_leases_primary(l, 5, now, &v), CAIRN_ENOTPRIMARY);
  assert_int_equal(cs_leases_extend(l, 5, 3, now + 20000), CAIRN_ENOENT);
  /* Bad arguments change nothing. */
  assert_int_equal(cs_leases_set(l, 5, 3, 0, r, 3, 1), CAIRN_EINVAL);
  assert_int_equal(cs_leases_set(l, 5, 3, now + 1000, r, 0, 1), CAIRN_EINVAL);
  assert_int_equal(cs_leases_set(l, 5, 3, now + 1000, r, CS_LEASES_MAX_REPLICAS + 1, 1),
                   CAIRN_EINVAL);
  assert_int_equal(cs_leases_set(l, 5, 3, now + 1000, r, 3, 0), CAIRN_EINVAL);
  assert_int_equal(cs_leases_primary(l, 5, now, &v), CAIRN_ENOTPRIMARY);
  cs_leases_opts bad = {.lease_ms = -1};
  cs_leases *l2 = NULL;
  assert_int_equal(cs_leases_new(&bad, &l2), CAIRN_EINVAL);
  cs_leases_free(l);
}

static void serials_per_version(void **state) {
  (void)state;
  cs_leases *l = new_leases(0, 0);
  cs_replica_addr r[3];
  reps3(r);
  int64_t now = cmn_wall_ms();
  uint64_t sn;
  assert_int_equal(cs_leases_next_serial(l, 9, 2, now, &sn), CAIRN_ENOTPRIMARY);
  assert_int_equal(cs_leases_set(l, 9, 2, now + 60000, r, 3, 1), 0);
  for (uint64_t i = 1; i <= 3; i++) {
    assert_int_equal(cs_leases_next_serial(l, 9, 2, now, &sn), 0);
    assert_int_equal(sn, i);
  }
  assert_int_equal(cs_leases_peek_serial(l, 9, 2), 4);
  assert_int_equal(cs_leases_peek_serial(l, 9, 3), 0);
  assert_int_equal(cs_leases_next_serial(l, 9, 3, now, &sn), CAIRN_ENOTPRIMARY);
  assert_int_equal(cs_leases_set(l, 9, 3, now + 60000, r, 2, 1), 0); /* a new version */
  assert_int_equal(cs_leases_next_serial(l, 9, 3, now, &sn), 0);
  assert_int_equal(sn, 1);
  cs_leases_free(l);
}

static void wanted_extensions(void **state) {
  (void)state;
  cs_leases *l = new_leases(10000, 0);
  cs_replica_addr r[3];
  reps3(r);
  /* A term starts when a lease is set or extended (now, on the wall clock);
   * "worth extending" = valid, written during the term, past its middle. */
  int64_t t0 = cmn_wall_ms();
  uint64_t sn;
  assert_int_equal(cs_leases_set(l, 1, 2, t0 + 4000, r, 3, 1), 0); /* written, ends soon */
  assert_int_equal(cs_leases_next_serial(l, 1, 2, cmn_wall_ms(), &sn), 0);
  assert_int_equal(cs_leases_set(l, 2, 2, t0 + 9000, r, 3, 1), 0); /* written, ends later */
  assert_int_equal(cs_leases_next_serial(l, 2, 2, cmn_wall_ms(), &sn), 0);
  assert_int_equal(cs_leases_set(l, 3, 2, t0 + 4000, r, 3, 1), 0); /* never written */
  assert_int_equal(cs_leases_set(l, 4, 2, t0 + 4000, r, 3, 1), 0); /* written before its term */
  assert_int_equal(cs_leases_next_serial(l, 4, 2, t0 - 5000, &sn), 0);
  uint64_t out[8];
  assert_int_equal(cs_leases_wanted(l, t0, out, 8), 0); /* nothing past its middle yet */
  assert_int_equal(cs_leases_wanted(l, t0 + 2500, out, 8), 1);
  assert_int_equal(out[0], 1);
  assert_int_equal(cs_leases_wanted(l, t0 + 2500, out, 0), 0);
  /* Later the first has run out and the second is past its middle. */
  assert_int_equal(cs_leases_wanted(l, t0 + 6000, out, 8), 1);
  assert_int_equal(out[0], 2);
  /* An extension starts a new term, with no write in it yet. */
  assert_int_equal(cs_leases_extend(l, 2, 2, cmn_wall_ms() + 20000), 0);
  assert_int_equal(cs_leases_wanted(l, t0 + 6000, out, 8), 0);
  assert_int_equal(cs_leases_next_serial(l, 2, 2, cmn_wall_ms(), &sn), 0);
  assert_int_equal(cs_leases_wanted(l, t0 + 6000, out, 8), 0);  /* in the first half */
  assert_int_equal(cs_leases_wanted(l, t0 + 16000, out, 8), 1); /* in the second */
  cs_leases_free(l);
}

/* ---- notes and decisions ---- */

static void prepared_notes(void **state) {
  (void)state;
  cs_leases *l = new_leases(0, 0);
  uint8_t id[16], got[16];
  for (int i = 0; i < 16; i++) id[i] = (uint8_t)(i * 7);
  cs_leases_lock(l, 3);
  cs_leases_note_prepared(l, 3, 2, 5, id);
  cs_leases_unlock(l, 3);
  assert_false(cs_leases_take_prepared(l, 3, 2, 4, got));
  assert_false(cs_leases_take_prepared(l, 3, 1, 5, got));
  assert_true(cs_leases_take_prepared(l, 3, 2, 5, got));
  assert_memory_equal(got, id, 16);
  assert_false(cs_leases_take_prepared(l, 3, 2, 5, got));
  cs_leases_free(l);
}

static void decision_ring(void **state) {
  (void)state;
  cs_leases *l = new_leases(0, 4);
  assert_int_equal(cs_leases_decision(l, 1, 2, 1), CAIRN_ENOENT);
  cs_leases_decided(l, 1, 2, 1, true);
  cs_leases_decided(l, 1, 2, 2, false);
  assert_int_equal(cs_leases_decision(l, 1, 2, 1), 1);
  assert_int_equal(cs_leases_decision(l, 1, 2, 2), 0);
  assert_int_equal(cs_leases_decision(l, 1, 3, 1), CAIRN_ENOENT);
  assert_int_equal(cs_leases_decision(l, 2, 2, 1), CAIRN_ENOENT);
  cs_leases_decided(l, 1, 2, 3, true);
  cs_leases_decided(l, 1, 2, 4, true);
  cs_leases_decided(l, 1, 2, 5, true); /* pushes serial 1 out */
  assert_int_equal(cs_leases_decision(l, 1, 2, 1), CAIRN_ENOENT);
  assert_int_equal(cs_leases_decision(l, 1, 2, 2), 0);
  assert_int_equal(cs_leases_decision(l, 1, 2, 5), 1);
  cs_leases_free(l);
}

static int freed;
static void count_free(void *p) {
  freed++;
  free(p);
}

static void attachment_freed_with_leases(void **state) {
  (void)state;
  cs_leases *l = new_leases(0, 0);
  int *x = cmn_malloc(sizeof *x);
  cs_leases_attach(l, x, count_free);
  assert_ptr_equal(cs_leases_attached(l), x);
  freed = 0;
  cs_leases_free(l);
  assert_int_equal(freed, 1);
  cs_leases_free(NULL);
}

CAIRN_TEST_MAIN(cmocka_unit_test(mutex_serialises_one_chunk),
                cmocka_unit_test(timed_lock_and_other_chunks),
                cmocka_unit_test(lease_set_extend_drop), cmocka_unit_test(serials_per_version),
                cmocka_unit_test(wanted_extensions), cmocka_unit_test(prepared_notes),
                cmocka_unit_test(decision_ring), cmocka_unit_test(attachment_freed_with_leases))
