/*
 * Two-phase commit with three chunkservers in one process, each with its
 * own store, push buffer and RPC server on 127.0.0.1, and a stand-in
 * master that records failed-replica reports: healthy writes, one and two
 * failing secondaries, lease and version checks, bad input, idempotent
 * decisions, concurrent writes, record append and padding, Outcome.
 */
#include "twopc_test_util.h"

#define H TP_HANDLE
#define ALL3 7u

static unsigned char *snap(tp_cluster *c, size_t i, uint64_t v, size_t *len) {
  return tp_file(c, i, H, v, len);
}

static void assert_same_as(tp_cluster *c, size_t i, uint64_t v, const unsigned char *want,
                           size_t n) {
  size_t len;
  unsigned char *got = tp_file(c, i, H, v, &len);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
  free(got);
}

/* ---- healthy ---- */

static void write_all_healthy(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t n = 200000;
  unsigned char *data = cmn_malloc(n);
  tp_fill(data, n, 1);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, n, 1, &r), 0);
  assert_int_equal(r.serial, 1);
  assert_int_equal(r.offset, 0);
  assert_int_equal(r.committed, 3);
  /* An overwrite across the end and an append after it. */
  tp_fill(data, 50000, 2);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 180000, data, 50000, 2, &r), 0);
  assert_int_equal(r.serial, 2);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(tp_pending_count(tp_s(c, i)), 0);
    assert_int_equal(tp_journal_count(&c->nodes[i]), 0);
  }
  tp_assert_files_equal(c, 0, 1, H, 2);
  tp_assert_files_equal(c, 0, 2, H, 2);
  uint64_t len;
  unsigned char *got = tp_content(c, 1, H, 2, &len);
  assert_int_equal(len, 230000);
  assert_memory_equal(got + 180000, data, 50000);
  free(got);
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0);
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_rounds_total 2"));
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_commits_total 2"));
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_aborts_total 0"));
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_round_seconds_count 2"));
  assert_true(tp_metric_line(c, 1, "cairn_chunkserver_2pc_rounds_total 0"));
  /* The committed bytes left every push buffer. */
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, 1, H);
  const void *p;
  uint64_t pl;
  uint32_t pc;
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(cs_pushbuf_get(tp_s(c, i)->push, id, &p, &pl, &pc), CAIRN_ENOENT);
  free(data);
}

/* ---- failing secondaries ---- */

static void one_secondary_missing_data(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t before_len;
  unsigned char *before = snap(c, 2, 2, &before_len);
  unsigned char data[70000];
  tp_fill(data, sizeof data, 3);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, 3u, H, 2, 0, data, sizeof data, 1, &r), 0); /* not to node 2 */
  assert_int_equal(r.committed, 2);
  /* The master moved the survivors to version 3; node 2 stays behind. */
  tp_assert_content(c, 0, H, 3, data, sizeof data);
  tp_assert_content(c, 1, H, 3, data, sizeof data);
  assert_same_as(c, 2, 2, before, before_len);
  tp_report rep[4];
  assert_int_equal(tp_master_reports(&c->master, rep, 4), 1);
  assert_int_equal(rep[0].handle, H);
  assert_int_equal(rep[0].version, 2);
  assert_string_equal(rep[0].failed, tp_s(c, 2)->id);
  assert_string_equal(rep[0].reporter, tp_s(c, 0)->id);
  assert_int_equal(rep[0].error, CAIRN_ENOENT);
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_failed_replicas_reported_total 1"));
  /* The primary holds the lease again, at the new version, with the survivors. */
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, sizeof data, data, 100, 2, &r), CAIRN_ESTALE);
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, sizeof data, data, 100, 3, &r), 0);
  assert_int_equal(r.serial, 1);
  assert_int_equal(r.committed, 2);
  tp_assert_files_equal(c, 0, 1, H, 3);
  free(before);
}

static void one_secondary_store_fault(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  tp_node *bad = &c->nodes[1];
  bad->fault.err_step = "prepare.data";
  bad->fault.err_code = CAIRN_ENOSPC;
  atomic_store(&bad->fault.armed, 1);
  unsigned char data[5000];
  tp_fill(data, sizeof data, 4);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, &r), 0);
  assert_true(atomic_load(&bad->fault.fired));
  assert_int_equal(r.committed, 2);
  tp_assert_files_equal(c, 0, 2, H, 3);
  tp_assert_content(c, 1, H, 2, NULL, 0);
  tp_report rep[4];
  assert_int_equal(tp_master_reports(&c->master, rep, 4), 1);
  assert_string_equal(rep[0].failed, tp_s(c, 1)->id);
  assert_int_equal(rep[0].error, CAIRN_ENOSPC);
}

static void two_secondaries_fail_abort(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[30000];
  tp_fill(data, sizeof data, 5);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), 0);
  unsigned char *before[3];
  size_t blen[3];
  for (size_t i = 0; i < 3; i++) before[i] = snap(c, i, 2, &blen[i]);
  /* Overwrite and append, each with only the primary holding the bytes. */
  tp_fill(data, sizeof data, 6);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, 1u, H, 2, 1000, data, sizeof data, 2, &r), CAIRN_ENOQUORUM);
  assert_int_equal(tp_write(c, 0, 1u, H, 2, 30000, data, sizeof data, 3, &r), CAIRN_ENOQUORUM);
  for (size_t i = 0; i < 3; i++) {
    assert_same_as(c, i, 2, before[i], blen[i]);
    free(before[i]);
  }
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0); /* nothing is stale */
  /* With nodes 0 and 1 it commits; node 2 is reported and left at version 2.
   * Version 3 has two replicas: both must vote yes. */
  tp_fill(data, sizeof data, 7);
  assert_int_equal(tp_write(c, 0, 3u, H, 2, 30000, data, 1000, 4, &r), 0);
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 1);
  before[0] = snap(c, 0, 3, &blen[0]);
  before[2] = snap(c, 2, 2, &blen[2]);
  tp_node *bad = &c->nodes[1];
  bad->fault.err_step = "prepare.data";
  bad->fault.err_code = CAIRN_EIO;
  atomic_store(&bad->fault.armed, 1);
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, 0, data, sizeof data, 5, &r), CAIRN_ENOQUORUM);
  assert_true(atomic_load(&bad->fault.fired));
  atomic_store(&bad->fault.armed, 0);
  assert_same_as(c, 0, 3, before[0], blen[0]);
  assert_same_as(c, 2, 2, before[2], blen[2]);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(tp_pending_count(tp_s(c, i)), 0);
    assert_int_equal(tp_journal_count(&c->nodes[i]), 0);
  }
  free(before[0]);
  free(before[2]);
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 1);
  assert_true(tp_metric_line(c, 0, "cairn_chunkserver_2pc_aborts_total 3"));
}

static void master_unreachable_is_unavailable(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  c->master.fail_with = CAIRN_EUNAVAIL;
  unsigned char data[1000];
  tp_fill(data, sizeof data, 9);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, 3u, H, 2, 0, data, sizeof data, 1, &r), CAIRN_EUNAVAIL);
  tp_assert_content(c, 0, H, 2, data, sizeof data); /* committed on two, but unacknowledged */
  /* No more writes on a lease whose failed replica the master does not know of. */
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 2, &r), CAIRN_ENOTPRIMARY);
}

/* ---- leases and versions ---- */

static void not_primary_or_expired(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[100];
  tp_fill(data, sizeof data, 10);
  assert_int_equal(tp_write(c, 1, ALL3, H, 2, 0, data, sizeof data, 1, NULL), CAIRN_ENOTPRIMARY);
  assert_int_equal(tp_write(c, 0, ALL3, H + 1, 2, 0, data, sizeof data, 2, NULL),
                   CAIRN_ENOTPRIMARY);
  /* A new version whose lease is already over. */
  size_t idx[3] = {0, 1, 2};
  tp_grant(c, H, 2, 3, idx, 3, cmn_wall_ms() - 1000);
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, 0, data, sizeof data, 3, NULL), CAIRN_ENOTPRIMARY);
  /* Extending it makes it usable; extending another version does not. */
  assert_int_equal(cs_leases_extend(tp_s(c, 0)->leases, H, 2, cmn_wall_ms() + 60000),
                   CAIRN_ENOENT);
  assert_int_equal(cs_leases_extend(tp_s(c, 0)->leases, H, 3, cmn_wall_ms() + 60000), 0);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, 0, data, sizeof data, 4, &r), 0);
  assert_int_equal(r.serial, 1);
  /* The lease moves to node 1: node 0 is a secondary now. */
  size_t idx2[3] = {1, 0, 2};
  tp_grant(c, H, 3, 4, idx2, 3, cmn_wall_ms() + 60000);
  assert_int_equal(tp_write(c, 0, ALL3, H, 4, 100, data, sizeof data, 5, NULL),
                   CAIRN_ENOTPRIMARY);
  assert_int_equal(tp_write(c, 1, ALL3, H, 4, 100, data, sizeof data, 6, &r), 0);
  assert_int_equal(r.serial, 1);
  tp_assert_files_equal(c, 0, 1, H, 4);
}

static void lease_ending_during_the_votes_aborts(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[3000];
  tp_fill(data, sizeof data, 12);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), 0);
  /* A lease with 1.5 s left (1 s once the margin is taken off), and a
   * secondary whose prepare takes 1.5 s: the votes are in after the lease. */
  size_t idx[3] = {0, 1, 2};
  tp_grant(c, H, 2, 3, idx, 3, cmn_wall_ms() + 1500);
  unsigned char *before[3];
  size_t blen[3];
  for (size_t i = 0; i < 3; i++) before[i] = snap(c, i, 3, &blen[i]);
  tp_node *slow = &c->nodes[1];
  slow->fault.slow_step = "prepare.sync";
  slow->fault.slow_ms = 1500;
  atomic_store(&slow->fault.armed, 1);
  tp_fill(data, sizeof data, 13);
  assert_int_equal(tp_write(c, 0, ALL3, H, 3, 1000, data, sizeof data, 2, NULL),
                   CAIRN_ENOQUORUM);
  assert_true(atomic_load(&slow->fault.fired));
  atomic_store(&slow->fault.armed, 0);
  for (size_t i = 0; i < 3; i++) {
    assert_same_as(c, i, 3, before[i], blen[i]);
    assert_int_equal(tp_pending_count(tp_s(c, i)), 0);
    free(before[i]);
  }
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0);
}

static void stale_version(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t idx[3] = {0, 1, 2};
  tp_grant(c, H, 2, 3, idx, 3, cmn_wall_ms() + 60000);
  unsigned char data[100];
  tp_fill(data, sizeof data, 11);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), CAIRN_ESTALE);
  /* A participant at another version votes no. */
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, 1, H);
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT, *ap = &a;
  a.id = (char *)tp_s(c, 0)->id;
  a.rpc_addr = tp_s(c, 0)->rpc_addr;
  Cairn__V1__PrepareRequest q = CAIRN__V1__PREPARE_REQUEST__INIT;
  q.handle = H;
  q.version = 2;
  q.serial = 1;
  q.data_id.data = id;
  q.data_id.len = CS_DATA_ID_LEN;
  q.length = sizeof data;
  q.crc32c = cmn_crc32c(0, data, sizeof data);
  q.primary_id = a.id;
  q.primary_rpc_addr = a.rpc_addr;
  q.n_replicas = 1;
  q.replicas = &ap;
  assert_int_equal(cs_twopc_prepare(tp_s(c, 1), &q, NULL, 0), CAIRN_ESTALE);
  /* A stale SetVersion changes nothing. */
  Cairn__V1__SetVersionRequest sv = CAIRN__V1__SET_VERSION_REQUEST__INIT;
  sv.handle = H;
  sv.old_version = 1;
  sv.new_version = 2;
  assert_int_equal(cs_twopc_set_version(tp_s(c, 1), &sv, NULL, 0), CAIRN_ESTALE);
}

/* ---- bad input ---- */

static void bad_input_changes_nothing(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[1000];
  tp_fill(data, sizeof data, 12);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), 0);
  unsigned char *before[3];
  size_t blen[3];
  for (size_t i = 0; i < 3; i++) before[i] = snap(c, i, 2, &blen[i]);

  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, 2, H);
  tp_push(c, ALL3, id, data, sizeof data);
  Cairn__V1__WriteRequest q = CAIRN__V1__WRITE_REQUEST__INIT;
  q.handle = H;
  q.version = 2;
  q.data_id.data = id;
  q.data_id.len = 15;
  q.length = sizeof data;
  q.crc32c = cmn_crc32c(0, data, sizeof data);
  cs_twopc_result res;
  char err[256];
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  q.data_id.len = CS_DATA_ID_LEN;
  q.length = 0;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  q.length = sizeof data;
  q.offset = TP_CHUNK - 10;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_ERANGE);
  q.offset = UINT64_MAX - 5;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_ERANGE);
  q.offset = 5000; /* a hole after the committed 1000 bytes */
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  q.offset = 0;
  q.crc32c ^= 1;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_ECHECKSUM);
  q.crc32c ^= 1;
  q.length = sizeof data - 1;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  q.length = sizeof data;
  q.handle = 0;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  q.handle = H;
  q.version = 0;
  assert_int_equal(cs_twopc_write(tp_s(c, 0), &q, false, &res, err, sizeof err), CAIRN_EINVAL);
  /* Bytes never pushed. */
  uint8_t other[CS_DATA_ID_LEN];
  tp_id(other, 99, H);
  assert_int_equal(tp_call_write(c, 0, false, H, 2, 0, other, data, sizeof data, NULL),
                   CAIRN_ENOENT);
  /* A record above a quarter chunk. */
  unsigned char *big = cmn_calloc(1, TP_CHUNK / 4 + 1);
  uint8_t bid[CS_DATA_ID_LEN];
  tp_id(bid, 3, H);
  tp_push(c, 1u, bid, big, TP_CHUNK / 4 + 1);
  assert_int_equal(tp_call_write(c, 0, true, H, 2, 0, bid, big, TP_CHUNK / 4 + 1, NULL),
                   CAIRN_EINVAL);
  free(big);
  /* Malformed participant and master requests. */
  Cairn__V1__PrepareRequest p = CAIRN__V1__PREPARE_REQUEST__INIT;
  p.handle = H;
  p.version = 2;
  p.serial = 5;
  p.data_id.data = id;
  p.data_id.len = CS_DATA_ID_LEN;
  p.length = sizeof data;
  p.primary_id = "";
  p.primary_rpc_addr = "127.0.0.1:1";
  assert_int_equal(cs_twopc_prepare(tp_s(c, 1), &p, NULL, 0), CAIRN_EINVAL);
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT, *ap[2] = {&a, &a};
  a.id = "x";
  a.rpc_addr = "127.0.0.1:1";
  p.primary_id = "x";
  p.n_replicas = 2; /* one server twice */
  p.replicas = ap;
  assert_int_equal(cs_twopc_prepare(tp_s(c, 1), &p, NULL, 0), CAIRN_EINVAL);
  assert_int_equal(cs_twopc_commit(tp_s(c, 1), H, 2, 0), CAIRN_EINVAL);
  assert_int_equal(cs_twopc_abort(tp_s(c, 1), 0, 2, 1), CAIRN_EINVAL);
  assert_int_equal(cs_twopc_outcome(tp_s(c, 1), H, 0, 1, 0), CAIRN_EINVAL);
  Cairn__V1__SetVersionRequest sv = CAIRN__V1__SET_VERSION_REQUEST__INIT;
  sv.handle = H;
  sv.old_version = 3;
  sv.new_version = 3;
  assert_int_equal(cs_twopc_set_version(tp_s(c, 1), &sv, NULL, 0), CAIRN_EINVAL);
  sv.new_version = 4;
  sv.lease_expiry_ms = cmn_wall_ms() + 1000; /* a lease without a replica set */
  assert_int_equal(cs_twopc_set_version(tp_s(c, 1), &sv, NULL, 0), CAIRN_EINVAL);

  for (size_t i = 0; i < 3; i++) {
    assert_same_as(c, i, 2, before[i], blen[i]);
    free(before[i]);
  }
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0);
}

/* ---- decisions ---- */

static int prepare_direct(tp_cluster *c, size_t node, uint64_t serial, uint64_t offset,
                          const unsigned char *data, size_t len, uint64_t seed, bool push) {
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, seed, H);
  if (push) tp_push(c, 1u << node, id, data, len);
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT, *ap = &a;
  a.id = (char *)tp_s(c, 0)->id;
  a.rpc_addr = tp_s(c, 0)->rpc_addr;
  Cairn__V1__PrepareRequest q = CAIRN__V1__PREPARE_REQUEST__INIT;
  q.handle = H;
  q.version = 2;
  q.serial = serial;
  q.offset = offset;
  q.data_id.data = id;
  q.data_id.len = CS_DATA_ID_LEN;
  q.length = (uint32_t)len;
  q.crc32c = cmn_crc32c(0, data, len);
  q.primary_id = a.id;
  q.primary_rpc_addr = a.rpc_addr;
  q.n_replicas = 1;
  q.replicas = &ap;
  return cs_twopc_prepare(tp_s(c, node), &q, NULL, 0);
}

static void commit_abort_idempotent(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  cs_server *s = tp_s(c, 1);
  unsigned char data[3000];
  tp_fill(data, sizeof data, 13);
  assert_int_equal(prepare_direct(c, 1, 1, 0, data, sizeof data, 1, true), 0);
  assert_int_equal(prepare_direct(c, 1, 1, 0, data, sizeof data, 1, false), 0); /* repeated */
  assert_int_equal(tp_journal_count(&c->nodes[1]), 1);
  assert_int_equal(tp_outcome(c, 1, H, 2, 1), TP_OUT_PENDING);
  assert_int_equal(cs_twopc_commit(s, H, 2, 1), 0);
  assert_int_equal(cs_twopc_commit(s, H, 2, 1), 0);
  assert_int_equal(cs_twopc_abort(s, H, 2, 1), CAIRN_ECONFLICT);
  assert_int_equal(tp_journal_count(&c->nodes[1]), 0);
  assert_int_equal(tp_outcome(c, 1, H, 2, 1), TP_OUT_COMMITTED);
  tp_assert_content(c, 1, H, 2, data, sizeof data);
  size_t blen;
  unsigned char *before = snap(c, 1, 2, &blen);
  assert_int_equal(prepare_direct(c, 1, 2, sizeof data, data, 500, 2, true), 0);
  assert_int_equal(cs_twopc_abort(s, H, 2, 2), 0);
  assert_int_equal(cs_twopc_abort(s, H, 2, 2), 0);
  assert_int_equal(cs_twopc_commit(s, H, 2, 2), CAIRN_ENOENT);
  assert_same_as(c, 1, 2, before, blen);
  assert_int_equal(tp_outcome(c, 1, H, 2, 2), TP_OUT_ABORTED);
  /* The same over RPC. */
  assert_int_equal(prepare_direct(c, 1, 3, sizeof data, data, 500, 3, true), 0);
  Cairn__V1__DecideRequest d = CAIRN__V1__DECIDE_REQUEST__INIT;
  d.handle = H;
  d.version = 2;
  d.serial = 3;
  for (int i = 0; i < 2; i++) {
    ProtobufCMessage *rep = NULL;
    assert_int_equal(cmn_rpc_call_unary(c->client[1], &cairn__v1__chunkserver__descriptor,
                                        "Commit", &d.base, &rep, 5000, NULL), 0);
    protobuf_c_message_free_unpacked(rep, NULL);
  }
  unsigned char want[3500];
  memcpy(want, data, 3000);
  memcpy(want + 3000, data, 500);
  tp_assert_content(c, 1, H, 2, want, sizeof want);
  free(before);
}

/* ---- concurrency ---- */

struct writer {
  tp_cluster *c;
  uint64_t handle;
  size_t primary;
  int id, n;
  size_t len;
  uint64_t serials[16];
  int fails;
};

static void *overwrite_main(void *arg) {
  struct writer *w = arg;
  unsigned char *data = cmn_malloc(w->len);
  for (int k = 0; k < w->n; k++) {
    tp_fill(data, w->len, (uint32_t)(w->id * 100 + k));
    Cairn__V1__WriteReply r;
    int rc = tp_write(w->c, w->primary, ALL3, w->handle, 2, 0, data, w->len,
                      (uint64_t)(w->id * 100 + k + 1000), &r);
    if (rc != 0) w->fails++;
    else w->serials[k] = r.serial;
  }
  free(data);
  return NULL;
}

static void concurrent_writes_serialised(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char first[65536];
  tp_fill(first, sizeof first, 14);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, first, sizeof first, 1, NULL), 0);
  struct writer w[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (struct writer){.c = c, .handle = H, .primary = 0, .id = i, .n = 4, .len = 65536};
    assert_int_equal(pthread_create(&th[i], NULL, overwrite_main, &w[i]), 0);
  }
  bool seen[64] = {false};
  uint64_t last_serial = 0;
  int last_w = -1, last_k = -1;
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].fails, 0);
    for (int k = 0; k < w[i].n; k++) {
      uint64_t sn = w[i].serials[k];
      assert_true(sn >= 2 && sn <= 33);
      assert_false(seen[sn]);
      seen[sn] = true;
      if (k > 0) assert_true(sn > w[i].serials[k - 1]);
      if (sn > last_serial) {
        last_serial = sn;
        last_w = i;
        last_k = k;
      }
    }
  }
  assert_int_equal(last_serial, 33);
  tp_assert_files_equal(c, 0, 1, H, 2);
  tp_assert_files_equal(c, 0, 2, H, 2);
  unsigned char want[65536];
  tp_fill(want, sizeof want, (uint32_t)(last_w * 100 + last_k));
  tp_assert_content(c, 2, H, 2, want, sizeof want);
}

static void *append_chunk_main(void *arg) {
  struct writer *w = arg;
  unsigned char *data = cmn_malloc(w->len);
  for (int k = 0; k < w->n; k++) {
    tp_fill(data, w->len, (uint32_t)(w->handle * 10 + (uint64_t)k));
    uint8_t id[CS_DATA_ID_LEN];
    tp_id(id, (uint64_t)k + 5000, w->handle);
    Cairn__V1__WriteReply r;
    if (tp_push_rc(w->c, ALL3, id, data, w->len) != 0 ||
        tp_call_write(w->c, w->primary, true, w->handle, 2, 0, id, data, w->len, &r) != 0)
      w->fails++;
    else w->serials[k] = r.serial;
  }
  free(data);
  return NULL;
}

static void different_chunks_in_parallel(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  struct writer w[6];
  pthread_t th[6];
  for (int i = 0; i < 6; i++) {
    uint64_t h = H + 10 + (uint64_t)i;
    tp_chunk(c, h, (size_t)i % 3, 3);
    w[i] = (struct writer){.c = c, .handle = h, .primary = (size_t)i % 3, .id = i, .n = 5,
                           .len = 20000};
  }
  for (int i = 0; i < 6; i++)
    assert_int_equal(pthread_create(&th[i], NULL, append_chunk_main, &w[i]), 0);
  for (int i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].fails, 0);
    for (int k = 0; k < 5; k++) assert_int_equal(w[i].serials[k], (uint64_t)k + 1);
    tp_assert_files_equal(c, 0, 1, w[i].handle, 2);
    tp_assert_files_equal(c, 0, 2, w[i].handle, 2);
    uint64_t len;
    unsigned char *got = tp_content(c, 1, w[i].handle, 2, &len);
    assert_int_equal(len, 5 * 20000);
    unsigned char want[20000];
    for (int k = 0; k < 5; k++) {
      tp_fill(want, sizeof want, (uint32_t)(w[i].handle * 10 + (uint64_t)k));
      assert_memory_equal(got + (size_t)k * 20000, want, sizeof want);
    }
    free(got);
  }
}

/* ---- record append ---- */

#define REC_WRITERS 8
#define REC_PER 8

struct appender {
  tp_cluster *c;
  int id;
  uint64_t off[REC_PER];
  size_t len[REC_PER];
  int fails;
};

static void *append_main(void *arg) {
  struct appender *a = arg;
  unsigned char *rec = cmn_malloc(16384);
  for (int k = 0; k < REC_PER; k++) {
    size_t len = 3000 + (size_t)((a->id * 7 + k * 13) % 10) * 1000;
    tp_fill(rec, len, (uint32_t)(a->id * 1000 + k));
    uint8_t id[CS_DATA_ID_LEN];
    tp_id(id, (uint64_t)(a->id * 1000 + k), H);
    Cairn__V1__WriteReply r;
    int rc = tp_push_rc(a->c, ALL3, id, rec, len);
    if (rc == 0) rc = tp_call_write(a->c, 0, true, H, 2, 0, id, rec, len, &r);
    if (rc != 0) {
      a->fails++;
      continue;
    }
    a->off[k] = r.offset;
    a->len[k] = len;
  }
  free(rec);
  return NULL;
}

static void record_append_8_threads(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  struct appender a[REC_WRITERS];
  pthread_t th[REC_WRITERS];
  for (int i = 0; i < REC_WRITERS; i++) {
    a[i] = (struct appender){.c = c, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, append_main, &a[i]), 0);
  }
  for (int i = 0; i < REC_WRITERS; i++) pthread_join(th[i], NULL);
  uint64_t len;
  unsigned char *got = tp_content(c, 0, H, 2, &len);
  uint64_t total = 0;
  unsigned char want[16384];
  for (int i = 0; i < REC_WRITERS; i++) {
    assert_int_equal(a[i].fails, 0);
    for (int k = 0; k < REC_PER; k++) {
      total += a[i].len[k];
      assert_true(a[i].off[k] + a[i].len[k] <= len);
      tp_fill(want, a[i].len[k], (uint32_t)(i * 1000 + k));
      assert_memory_equal(got + a[i].off[k], want, a[i].len[k]);
      if (k > 0) assert_true(a[i].off[k] > a[i].off[k - 1]); /* one writer's in order */
    }
  }
  assert_int_equal(total, len); /* no gaps, no overlaps */
  free(got);
  tp_assert_files_equal(c, 0, 1, H, 2);
  tp_assert_files_equal(c, 0, 2, H, 2);
}

static void record_that_does_not_fit_pads(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  size_t rl = 200000;
  unsigned char *rec = cmn_malloc(rl);
  Cairn__V1__WriteReply r;
  for (int k = 0; k < 5; k++) {
    tp_fill(rec, rl, (uint32_t)k);
    uint8_t id[CS_DATA_ID_LEN];
    tp_id(id, (uint64_t)k + 1, H);
    tp_push(c, ALL3, id, rec, rl);
    assert_int_equal(tp_call_write(c, 0, true, H, 2, 0, id, rec, rl, &r), 0);
    assert_int_equal(r.offset, (uint64_t)k * rl);
  }
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, 6, H);
  tp_push(c, ALL3, id, rec, rl);
  assert_int_equal(tp_call_write(c, 0, true, H, 2, 0, id, rec, rl, &r), CAIRN_ECHUNKFULL);
  for (size_t i = 0; i < 3; i++) {
    uint64_t len;
    unsigned char *got = tp_content(c, i, H, 2, &len);
    assert_int_equal(len, TP_CHUNK);
    for (uint64_t b = 5 * rl; b < TP_CHUNK; b++)
      if (got[b] != 0) fail_msg("node %zu: byte %" PRIu64 " of the pad is not zero", i, b);
    tp_fill(rec, rl, 4);
    assert_memory_equal(got + 4 * rl, rec, rl);
    free(got);
  }
  tp_assert_files_equal(c, 0, 1, H, 2);
  tp_assert_files_equal(c, 0, 2, H, 2);
  /* A full chunk answers at once. */
  tp_id(id, 7, H);
  tp_push(c, ALL3, id, rec, 100);
  assert_int_equal(tp_call_write(c, 0, true, H, 2, 0, id, rec, 100, &r), CAIRN_ECHUNKFULL);
  assert_int_equal(tp_master_reports(&c->master, NULL, 0), 0);
  free(rec);
}

/* ---- outcome ---- */

static void outcome_answers(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3);
  unsigned char data[4000];
  tp_fill(data, sizeof data, 15);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, NULL), 0);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(tp_outcome(c, i, H, 2, 1), TP_OUT_COMMITTED);
    assert_int_equal(tp_outcome(c, i, H, 2, 9), TP_OUT_UNKNOWN);
    assert_int_equal(tp_outcome(c, i, H, 3, 1), TP_OUT_UNKNOWN);
    assert_int_equal(tp_outcome(c, i, H + 5, 2, 1), TP_OUT_UNKNOWN);
  }
  /* Serial 2 has its bytes on the primary only: aborted, and the others
   * never prepared it. */
  assert_int_equal(tp_write(c, 0, 1u, H, 2, 0, data, 100, 2, NULL), CAIRN_ENOQUORUM);
  assert_int_equal(tp_outcome(c, 0, H, 2, 2), TP_OUT_ABORTED);
  assert_int_equal(tp_outcome(c, 1, H, 2, 2), TP_OUT_UNKNOWN);
  /* Serial 3 commits without node 2. */
  assert_int_equal(tp_write(c, 0, 3u, H, 2, 0, data, 100, 3, NULL), 0);
  assert_int_equal(tp_outcome(c, 0, H, 2, 3), TP_OUT_COMMITTED);
  assert_int_equal(tp_outcome(c, 1, H, 2, 3), TP_OUT_COMMITTED);
  assert_int_equal(tp_outcome(c, 2, H, 2, 3), TP_OUT_UNKNOWN);
  /* A prepared, undecided mutation. */
  assert_int_equal(prepare_direct(c, 2, 4, sizeof data, data, 10, 4, true), 0);
  assert_int_equal(tp_outcome(c, 2, H, 2, 4), TP_OUT_PENDING);
}

static void set_version_and_chunk_info(void **state) {
  tp_cluster *c = tp_cluster_new(3, 0);
  *state = c;
  tp_chunk(c, H, 0, 3); /* 1 -> 2 creates the replicas */
  Cairn__V1__ChunkInfoRequest q = CAIRN__V1__CHUNK_INFO_REQUEST__INIT;
  q.handle = H;
  ProtobufCMessage *rep = NULL;
  assert_int_equal(cmn_rpc_call_unary(c->client[2], &cairn__v1__chunkserver__descriptor,
                                      "ChunkInfo", &q.base, &rep, 5000, NULL), 0);
  Cairn__V1__ChunkInfoReply *ci = (Cairn__V1__ChunkInfoReply *)rep;
  assert_non_null(ci->replica);
  assert_int_equal(ci->replica->version, 2);
  assert_int_equal(ci->replica->length, 0);
  protobuf_c_message_free_unpacked(rep, NULL);
  q.handle = H + 1;
  rep = NULL;
  assert_int_equal(cmn_rpc_call_unary(c->client[2], &cairn__v1__chunkserver__descriptor,
                                      "ChunkInfo", &q.base, &rep, 5000, NULL), CAIRN_ENOENT);
  /* Repeating the grant is idempotent and keeps the serial count. */
  unsigned char data[100];
  tp_fill(data, sizeof data, 16);
  Cairn__V1__WriteReply r;
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 1, &r), 0);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 2, &r), 0);
  assert_int_equal(r.serial, 2);
  tp_chunk(c, H, 0, 3);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 3, &r), 0);
  assert_int_equal(r.serial, 3);
  /* Forgotten (as after a restart): the serial is found in the store. */
  cs_leases_drop(tp_s(c, 0)->leases, H);
  tp_chunk(c, H, 0, 3);
  assert_int_equal(tp_write(c, 0, ALL3, H, 2, 0, data, sizeof data, 4, &r), 0);
  assert_int_equal(r.serial, 4);
}

/* Frees the test's cluster (and its temp dirs), also after a failed assertion. */
static int teardown(void **state) {
  if (*state) tp_cluster_free(*state);
  *state = NULL;
  return 0;
}

CAIRN_TEST_MAIN(cmocka_unit_test_teardown(write_all_healthy, teardown), cmocka_unit_test_teardown(one_secondary_missing_data, teardown),
                cmocka_unit_test_teardown(one_secondary_store_fault, teardown),
                cmocka_unit_test_teardown(two_secondaries_fail_abort, teardown),
                cmocka_unit_test_teardown(master_unreachable_is_unavailable, teardown),
                cmocka_unit_test_teardown(not_primary_or_expired, teardown),
                cmocka_unit_test_teardown(lease_ending_during_the_votes_aborts, teardown),
                cmocka_unit_test_teardown(stale_version, teardown),
                cmocka_unit_test_teardown(bad_input_changes_nothing, teardown),
                cmocka_unit_test_teardown(commit_abort_idempotent, teardown),
                cmocka_unit_test_teardown(concurrent_writes_serialised, teardown),
                cmocka_unit_test_teardown(different_chunks_in_parallel, teardown),
                cmocka_unit_test_teardown(record_append_8_threads, teardown),
                cmocka_unit_test_teardown(record_that_does_not_fit_pads, teardown), cmocka_unit_test_teardown(outcome_answers, teardown),
                cmocka_unit_test_teardown(set_version_and_chunk_info, teardown))
