/*
 * 2PC recovery: a replica restarted in each state of the prepare / commit /
 * abort state machine (crashes injected into its store, the store opened
 * again), resolving its undecided mutation by asking the others; the
 * restarted primary; journals; a lost decision healed by the next round.
 */
#include "twopc_test_util.h"

#define H TP_HANDLE
#define ALL3 7u
#define SHORT_UNDECIDED_MS 1500

struct recover_job {
  cs_server *s;
  int rc;
  pthread_t th;
};

static void *recover_main(void *arg) {
  struct recover_job *j = arg;
  j->rc = cs_twopc_recover(j->s);
  return NULL;
}

/* A prepared mutation on `node` naming `primary_addr` and the nodes of
 * `mask` (plus itself), pushed and prepared directly (no primary runs). */
static void prepare_only(tp_cluster *c, size_t node, const char *primary_id,
                         const char *primary_addr, unsigned mask, uint64_t serial,
                         const unsigned char *data, size_t len) {
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, serial + 100, H);
  tp_push(c, 1u << node, id, data, len);
  Cairn__V1__ServerAddress a[TP_MAX_NODES + 1], *p[TP_MAX_NODES + 1];
  size_t n = 0;
  cairn__v1__server_address__init(&a[n]);
  a[n].id = (char *)primary_id;
  a[n].rpc_addr = (char *)primary_addr;
  p[n] = &a[n];
  n++;
  for (size_t i = 0; i < c->n; i++) {
    if (!(mask & (1u << i)) && i != node) continue;
    if (strcmp(tp_s(c, i)->id, primary_id) == 0) continue;
    cairn__v1__server_address__init(&a[n]);
    a[n].id = (char *)tp_s(c, i)->id;
    a[n].rpc_addr = tp_s(c, i)->rpc_addr;
    p[n] = &a[n];
    n++;
  }
  Cairn__V1__PrepareRequest q = CAIRN__V1__PREPARE_REQUEST__INIT;
  q.handle = H;
  q.version = 2;
  q.serial = serial;
  q.data_id.data = id;
  q.data_id.len = CS_DATA_ID_LEN;
  q.length = (uint32_t)len;
  q.crc32c = cmn_crc32c(0, data, len);
  q.primary_id = (char *)primary_id;
  q.primary_rpc_addr = (char *)primary_addr;
  q.n_replicas = n;
  q.replicas = p;
  assert_int_equal(cs_twopc_prepare(tp_s(c, node), &q, NULL, 0), 0);
}

static void assert_file_is(tp_cluster *c, size_t i, const unsigned char *want, size_t n) {
  size_t len;
  unsigned char *got = tp_file(c, i, H, 2, &len);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
  free(got);
}

/* ---- participant restarts ---- */

static void participant_commits_after_restart(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[40000];
  tp_fill(data, sizeof data, 1);
  tp_node *p2 = &c->nodes[2];
  p2->fault.crash_step = "commit.header"; /* prepared, then dies as the commit starts */
  atomic_store(&p2->fault.armed, 1);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, &r), 0);
  assert_true(atomic_load(&p2->fault.fired));
  assert_int_equal(r.committed, 2);
  tp_report rep[2];
  assert_int_equal(tp_master_reports(&c->master, rep, 2), 1);
  assert_string_equal(rep[0].failed, p2->s.id);

  tp_node_restart(c, p2);
  assert_int_equal(tp_pending_count(&p2->s), 1);
  assert_int_equal(tp_outcome(c, 2, H, 2, 1), TP_OUT_PENDING);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_twopc_recover(&p2->s), 1);
  assert_true(cmn_mono_ms() - t0 < 10000); /* answered, not timed out */
  assert_int_equal(tp_pending_count(&p2->s), 0);
  assert_int_equal(tp_journal_count(p2), 0);
  tp_assert_content(c, 2, H, 2, data, sizeof data); /* consistent, and stale (version 2 < 3) */
  tp_assert_content(c, 0, H, 3, data, sizeof data);
  assert_int_equal(tp_outcome(c, 2, H, 2, 1), TP_OUT_COMMITTED);
  assert_true(tp_metric_line(c, 2, "cairn_chunkserver_2pc_recovered_total 1"));
}

static void participant_aborts_when_nobody_knows(void **state) {
  tp_cluster *c = tp_cluster_new(3, SHORT_UNDECIDED_MS);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t blen;
  unsigned char *before = tp_file(c, 1, H, 2, &blen);
  unsigned char data[5000];
  tp_fill(data, sizeof data, 2);
  /* The named primary is unreachable; node 2 is up but knows nothing. */
  prepare_only(c, 1, "gone-primary", "127.0.0.1:1", 4u, 7, data, sizeof data);
  tp_node_restart(c, &c->nodes[1]);
  assert_int_equal(tp_pending_count(tp_s(c, 1)), 1);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_twopc_recover(tp_s(c, 1)), 1);
  assert_true(cmn_mono_ms() - t0 >= SHORT_UNDECIDED_MS);
  assert_int_equal(tp_pending_count(tp_s(c, 1)), 0);
  assert_int_equal(tp_journal_count(&c->nodes[1]), 0);
  assert_file_is(c, 1, before, blen);
  free(before);
}

static void participant_aborts_when_primary_aborted(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[5000];
  tp_fill(data, sizeof data, 3);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), 0);
  size_t blen;
  unsigned char *before = tp_file(c, 1, H, 2, &blen);
  /* The primary's own prepare fails (no vote of its own: abort), node 1
   * voted yes and dies as the abort starts, node 2 lacks the bytes. */
  tp_node *p0 = &c->nodes[0], *p1 = &c->nodes[1];
  p0->fault.err_step = "prepare.data";
  p0->fault.err_code = CAIRN_ENOSPC;
  atomic_store(&p0->fault.armed, 1);
  p1->fault.crash_step = "abort.clear";
  atomic_store(&p1->fault.armed, 1);
  assert_int_equal(tp_write(c, 0, 3u, H, 2, sizeof data, data, 100, 2, NULL), CAIRN_ENOQUORUM);
  assert_true(atomic_load(&p1->fault.fired));
  atomic_store(&p0->fault.armed, 0);
  tp_node_restart(c, p1);
  assert_int_equal(tp_pending_count(&p1->s), 1);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_twopc_recover(&p1->s), 1);
  assert_true(cmn_mono_ms() - t0 < 10000); /* the primary said ABORTED */
  assert_int_equal(tp_pending_count(&p1->s), 0);
  assert_file_is(c, 1, before, blen);
  free(before);
}

static void committed_participant_stays(void **state) {
  tp_cluster *c = tp_cluster_new(3, SHORT_UNDECIDED_MS);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[20000];
  tp_fill(data, sizeof data, 4);
  /* Node 1 dies right after its commit is durable, before tidying up. */
  tp_node *p1 = &c->nodes[1];
  p1->fault.crash_step = "commit.clear";
  atomic_store(&p1->fault.armed, 1);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, &r), 0);
  assert_true(atomic_load(&p1->fault.fired));
  tp_node_restart(c, p1);
  assert_int_equal(tp_pending_count(&p1->s), 0);
  assert_int_equal(cs_twopc_recover(&p1->s), 0);
  assert_int_equal(tp_journal_count(p1), 0); /* the orphan journal went */
  tp_assert_content(c, 1, H, 2, data, sizeof data);
  /* Its commit was not acknowledged, so it was reported: the others are at
   * version 3. Two clean commits there, then a restart: nothing to do, and
   * the store still answers COMMITTED for the last serial. */
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, sizeof data, data, 1000, 2, &r), 0);
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, sizeof data, data, 2000, 3, &r), 0);
  assert_int_equal(r.serial, 2);
  tp_node_restart(c, &c->nodes[2]);
  assert_int_equal(cs_twopc_recover(tp_s(c, 2)), 0);
  assert_int_equal(tp_outcome(c, 2, H, 3, 2), TP_OUT_COMMITTED);
  assert_int_equal(tp_outcome(c, 2, H, 3, 1), TP_OUT_UNKNOWN);
  tp_assert_files_equal(c, 0, 2, H, 3);
}

static void no_journal_aborts_at_once(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t blen;
  unsigned char *before = tp_file(c, 2, H, 2, &blen);
  unsigned char data[3000];
  tp_fill(data, sizeof data, 5);
  prepare_only(c, 2, tp_s(c, 0)->id, tp_s(c, 0)->rpc_addr, ALL3, 4, data, sizeof data);
  /* As if it died between the store's prepare and the journal. */
  char *j = cmn_sprintf("%s/2pc/%016x-2-4", c->nodes[2].dir, (unsigned)H);
  assert_int_equal(unlink(j), 0);
  free(j);
  /* Plus a leftover of an unfinished journal write and an orphan journal. */
  char *tmp = cmn_sprintf("%s/2pc/%016x-2-9.tmp.123", c->nodes[2].dir, (unsigned)H);
  char *orphan = cmn_sprintf("%s/2pc/%016x-2-3", c->nodes[2].dir, (unsigned)H);
  assert_int_equal(cmn_write_file_atomic(tmp, "x", 1, 0644), 0);
  assert_int_equal(cmn_write_file_atomic(orphan, "x", 1, 0644), 0);
  free(tmp);
  free(orphan);
  tp_node_restart(c, &c->nodes[2]);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_twopc_recover(tp_s(c, 2)), 1);
  assert_true(cmn_mono_ms() - t0 < 5000);
  assert_int_equal(tp_journal_count(&c->nodes[2]), 0);
  assert_file_is(c, 2, before, blen);
  free(before);
}

/* ---- primary restarts ---- */

static void primary_commits_when_a_secondary_did(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[30000];
  tp_fill(data, sizeof data, 6);
  tp_node *p0 = &c->nodes[0];
  p0->fault.crash_step = "commit.header"; /* the secondaries committed, then the primary died */
  atomic_store(&p0->fault.armed, 1);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), CAIRN_EIO);
  assert_true(atomic_load(&p0->fault.fired));
  tp_assert_content(c, 1, H, 2, data, sizeof data);
  /* Everyone restarts: the secondaries answer from their stores. */
  tp_node_restart(c, &c->nodes[1]);
  tp_node_restart(c, &c->nodes[2]);
  tp_node_restart(c, p0);
  assert_int_equal(tp_pending_count(&p0->s), 1);
  assert_int_equal(cs_twopc_recover(&p0->s), 1);
  tp_assert_content(c, 0, H, 2, data, sizeof data);
  tp_assert_files_equal(c, 0, 1, H, 2);
  tp_assert_files_equal(c, 0, 2, H, 2);
}

static void primary_aborts_when_no_secondary_committed(void **state) {
  tp_cluster *c = tp_cluster_new(3, SHORT_UNDECIDED_MS);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t blen;
  unsigned char *before = tp_file(c, 0, H, 2, &blen);
  unsigned char data[30000];
  tp_fill(data, sizeof data, 7);
  tp_node *p0 = &c->nodes[0];
  p0->fault.crash_step = "abort.clear"; /* both secondaries voted no; the primary dies aborting */
  atomic_store(&p0->fault.armed, 1);
  assert_int_equal(tp_write(c, 0, 1u, H, 2, 0, data, sizeof data, 1, NULL), CAIRN_ENOQUORUM);
  assert_true(atomic_load(&p0->fault.fired));
  tp_node_restart(c, p0);
  assert_int_equal(tp_pending_count(&p0->s), 1);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cs_twopc_recover(&p0->s), 1);
  assert_true(cmn_mono_ms() - t0 >= SHORT_UNDECIDED_MS);
  assert_file_is(c, 0, before, blen);
  free(before);
}

/* ---- lost decisions, stop ---- */

static void lost_abort_is_healed_by_next_round(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  cs_server *p = tp_s(c, 0);
  /* Serial 1 was prepared on node 1 and aborted by the primary, but the
   * Abort never arrived. */
  unsigned char data[2000];
  tp_fill(data, sizeof data, 8);
  prepare_only(c, 1, p->id, p->rpc_addr, ALL3, 1, data, sizeof data);
  uint64_t serial;
  assert_int_equal(cs_leases_next_serial(p->leases, H, 2, cmn_wall_ms(), &serial), 0);
  assert_int_equal(serial, 1);
  cs_leases_decided(p->leases, H, 2, 1, false);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, 500, 2, &r), 0);
  assert_int_equal(r.serial, 2);
  assert_int_equal(r.committed, 3);
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0);
  tp_assert_content(c, 1, H, 2, data, 500);
  tp_assert_files_equal(c, 0, 1, H, 2);
  assert_int_equal(tp_journal_count(&c->nodes[1]), 0);
}

static void lost_commit_is_healed_by_set_version(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  cs_server *p = tp_s(c, 0);
  unsigned char data[2000];
  tp_fill(data, sizeof data, 9);
  prepare_only(c, 2, p->id, p->rpc_addr, ALL3, 1, data, sizeof data);
  cs_leases_decided(p->leases, H, 2, 1, true); /* the primary committed; the Commit got lost */
  size_t idx[3] = {1, 0, 2};
  tp_grant(c, H, 2, 3, idx, 3, cmn_wall_ms() + 60000); /* node 2 resolves, then moves on */
  tp_assert_content(c, 2, H, 3, data, sizeof data);
}

static void new_version_settles_what_nobody_knows(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char base[6000], data[4000];
  tp_fill(base, sizeof base, 11);
  tp_fill(data, sizeof data, 12);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, base, sizeof base, 1, NULL), 0);
  /* Then the primary went between the votes and the decision of serial 2:
   * nodes 1 and 2 hold it prepared, with only each other to ask. */
  prepare_only(c, 1, "gone-primary", "127.0.0.1:1", 6u, 2, data, sizeof data);
  prepare_only(c, 2, "gone-primary", "127.0.0.1:1", 6u, 2, data, sizeof data);
  /* The master grants a new lease once the old one is over: both settle
   * the mutation as aborted and take the version, well inside the
   * master's call deadline, with the bytes they had committed. */
  size_t idx[2] = {1, 2};
  int64_t t0 = cmn_mono_ms();
  tp_grant(c, H, 2, 3, idx, 2, cmn_wall_ms() + 60000);
  assert_true(cmn_mono_ms() - t0 < 2 * TP_RPC_TIMEOUT_MS);
  for (size_t i = 1; i < 3; i++) {
    assert_int_equal(tp_pending_count(tp_s(c, i)), 0);
    assert_int_equal(tp_journal_count(&c->nodes[i]), 0);
    tp_assert_content(c, i, H, 3, base, sizeof base);
  }
  /* And the chunk takes writes again under the new lease. */
  assert_int_equal(tp_write(c, 1, 6u, H, 3, sizeof base, data, sizeof data, 3, NULL), 0);
  tp_assert_files_equal(c, 1, 2, H, 3);
}

static void recover_stops_on_request(void **state) {
  tp_cluster *c = tp_cluster_new(3, 60000);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[1000];
  tp_fill(data, sizeof data, 10);
  prepare_only(c, 1, "gone-primary", "127.0.0.1:1", 0u, 3, data, sizeof data);
  tp_node_restart(c, &c->nodes[1]);
  struct recover_job j = {.s = tp_s(c, 1)};
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(pthread_create(&j.th, NULL, recover_main, &j), 0);
  usleep(300 * 1000);
  cs_twopc_stop(tp_s(c, 1));
  pthread_join(j.th, NULL);
  assert_int_equal(j.rc, CAIRN_ECANCELED);
  assert_true(cmn_mono_ms() - t0 < 10000);
  assert_int_equal(tp_pending_count(tp_s(c, 1)), 1); /* still undecided: nothing guessed */
}

/* Frees the test's cluster (and its temp dirs), also after a failed assertion. */
static int teardown(void **state) {
  if (*state) tp_cluster_free(*state);
  *state = NULL;
  return 0;
}

CAIRN_TEST_MAIN(cmocka_unit_test_teardown(participant_commits_after_restart, teardown),
                cmocka_unit_test_teardown(participant_aborts_when_nobody_knows, teardown),
                cmocka_unit_test_teardown(participant_aborts_when_primary_aborted, teardown),
                cmocka_unit_test_teardown(committed_participant_stays, teardown),
                cmocka_unit_test_teardown(no_journal_aborts_at_once, teardown),
                cmocka_unit_test_teardown(primary_commits_when_a_secondary_did, teardown),
                cmocka_unit_test_teardown(primary_aborts_when_no_secondary_committed, teardown),
                cmocka_unit_test_teardown(lost_abort_is_healed_by_next_round, teardown),
                cmocka_unit_test_teardown(lost_commit_is_healed_by_set_version, teardown),
                cmocka_unit_test_teardown(new_version_settles_what_nobody_knows, teardown),
                cmocka_unit_test_teardown(recover_stops_on_request, teardown))
