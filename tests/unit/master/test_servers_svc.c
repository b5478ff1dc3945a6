/*
 * Unit tests for the chunkserver side of the master (master/svc_servers.c,
 * master/svc_failed.c): registration and its replica-report rules,
 * heartbeats, lease extensions, drains, failed-replica reports with the
 * SetVersion pushes (to a stand-in chunkserver endpoint on 127.0.0.1), and
 * the RPC glue.
 */
#include "test_main.h"

#include "master_fixture.h"

#include "chunkserver.pb-c.h"
#include "cmn_rpc.h"

#include <pthread.h>

/* ---- a stand-in chunkserver control endpoint -------------------------------- */

typedef struct fake_cs {
  cmn_rpc_server *srv;
  char addr[64];
  pthread_mutex_t mu;
  int calls;
  uint64_t handle, old_v, new_v;
  int64_t expiry[8];
  size_t nrep[8];
  int fail_with; /* answer SetVersion with this error when < 0 */
} fake_cs;

static void fake_set_version(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  fake_cs *c = ctx;
  const Cairn__V1__SetVersionRequest *req = (const Cairn__V1__SetVersionRequest *)msg;
  pthread_mutex_lock(&c->mu);
  int i = c->calls++;
  c->handle = req->handle;
  c->old_v = req->old_version;
  c->new_v = req->new_version;
  if (i < 8) {
    c->expiry[i] = req->lease_expiry_ms;
    c->nrep[i] = req->n_replicas;
  }
  int fail = c->fail_with;
  pthread_mutex_unlock(&c->mu);
  if (fail < 0) {
    cmn_rpc_fail(call, fail, "refusing as told");
    return;
  }
  Cairn__V1__Empty r = CAIRN__V1__EMPTY__INIT;
  cmn_rpc_reply(call, &r.base);
}

static const cmn_rpc_method fake_methods[] = {{"SetVersion", fake_set_version}};

static fake_cs *fake_start(void) {
  fake_cs *c = cmn_calloc(1, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  cmn_rpc_server_config cfg = {.addr = "127.0.0.1:0",
                               .secret = FX_SECRET,
                               .workers = 2,
                               .service = &cairn__v1__chunkserver__descriptor,
                               .methods = fake_methods,
                               .n_methods = CMN_ARRAY_LEN(fake_methods),
                               .ctx = c};
  assert_int_equal(cmn_rpc_server_start(&cfg, &c->srv), 0);
  snprintf(c->addr, sizeof c->addr, "127.0.0.1:%d", cmn_rpc_server_port(c->srv));
  return c;
}

static void fake_stop(fake_cs *c) {
  cmn_rpc_server_stop(c->srv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void use_peers(fx *f) {
  cmn_rpc_client_config cc = {.secret = FX_SECRET};
  assert_int_equal(cmn_rpc_pool_create(&cc, &f->m.peers), 0);
}

/* Registers `id` with its rpc_addr set to `rpc` (the fixture's helper
 * invents addresses). */
static int reg_at(fx *f, const char *id, const char *zone, const char *rpc, const fx_rep *reps,
                  size_t n) {
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  a.id = (char *)id;
  a.data_addr = "127.0.0.1:18080";
  a.rpc_addr = (char *)rpc;
  a.zone = (char *)zone;
  Cairn__V1__ReplicaReport rr[8];
  Cairn__V1__ReplicaReport *rp[8];
  for (size_t i = 0; i < n; i++) {
    cairn__v1__replica_report__init(&rr[i]);
    rr[i].handle = reps[i].handle;
    rr[i].version = reps[i].version;
    rp[i] = &rr[i];
  }
  Cairn__V1__RegisterRequest req = CAIRN__V1__REGISTER_REQUEST__INIT;
  req.addr = &a;
  req.capacity_bytes = FX_CAP;
  req.free_bytes = FX_FREE;
  req.n_replicas = n;
  req.replicas = rp;
  req.cluster_id = (char *)FX_CLUSTER;
  return mst_server_register(&f->m, &req, mst_now_ms(), NULL, NULL, 0);
}

/* ---- registration ------------------------------------------------------------ */

static void register_validates_everything(void **state) {
  (void)state;
  fx *f = fx_new();
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  Cairn__V1__RegisterRequest req = CAIRN__V1__REGISTER_REQUEST__INIT;
  req.addr = &a;
  req.capacity_bytes = 1000;
  req.free_bytes = 10;
  req.cluster_id = (char *)FX_CLUSTER;
  char err[256];
  char long_id[MST_SERVER_ID_MAX + 2], long_zone[MST_SERVER_ZONE_MAX + 2];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = 0;
  memset(long_zone, 'z', sizeof long_zone - 1);
  long_zone[sizeof long_zone - 1] = 0;
  struct {
    const char *id, *data, *rpc, *zone;
  } bad[] = {
      {"", "127.0.0.1:1", "127.0.0.1:2", "z"},
      {"has space", "127.0.0.1:1", "127.0.0.1:2", "z"},
      {"x\x01y", "127.0.0.1:1", "127.0.0.1:2", "z"},
      {long_id, "127.0.0.1:1", "127.0.0.1:2", "z"},
      {"s1", "127.0.0.1", "127.0.0.1:2", "z"},
      {"s1", "127.0.0.1:0", "127.0.0.1:2", "z"},
      {"s1", "127.0.0.1:65536", "127.0.0.1:2", "z"},
      {"s1", ":80", "127.0.0.1:2", "z"},
      {"s1", "127.0.0.1:1", "127.0.0.1:x", "z"},
      {"s1", "127.0.0.1:1", "::1:80", "z"},
      {"s1", "127.0.0.1:1", "127.0.0.1:2", long_zone},
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    a.id = (char *)bad[i].id;
    a.data_addr = (char *)bad[i].data;
    a.rpc_addr = (char *)bad[i].rpc;
    a.zone = (char *)bad[i].zone;
    err[0] = 0;
    assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), CAIRN_EINVAL);
    assert_true(err[0] != 0);
  }
  a.id = "s1";
  a.data_addr = "127.0.0.1:8080";
  a.rpc_addr = "[::1]:8081";
  a.zone = "rack 1";
  req.free_bytes = 1001;
  assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), CAIRN_EINVAL);
  req.free_bytes = 10;
  req.cluster_id = "another-cluster";
  assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), CAIRN_EAUTH);
  assert_non_null(strstr(err, "another-cluster"));
  req.cluster_id = (char *)FX_CLUSTER;
  Cairn__V1__ReplicaReport r = CAIRN__V1__REPLICA_REPORT__INIT;
  Cairn__V1__ReplicaReport *rp[1] = {&r};
  req.n_replicas = 1;
  req.replicas = rp;
  r.handle = 0;
  assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), CAIRN_EINVAL);
  r.handle = 5;
  r.length = FX_CHUNK + 1;
  assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), CAIRN_EINVAL);
  /* Nothing of the refused requests was kept. */
  assert_int_equal(mst_servers_count(f->m.servers), 0);
  r.length = 10;
  assert_int_equal(mst_server_register(&f->m, &req, FX_T0, NULL, err, sizeof err), 0);
  assert_int_equal(mst_servers_count(f->m.servers), 1);
  fx_free(f);
}

static void register_applies_report_rules(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/a", 3, 1, 5, 3); /* chunks 1..5 at version 3 */
  /* A holds 1..5 at the current version. */
  fx_rep a_reps[] = {{1, 3, 100, 0}, {2, 3, 0, 0}, {3, 3, 0, 0}, {4, 3, 0, 0}, {5, 3, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, a_reps, 5, FX_T0, NULL),
                   0);
  uint64_t before = fx_appended(f);
  /* B: 1 current (longer), 2 stale, 3 newer, 4 corrupt, 99 orphan. */
  fx_rep b_reps[] = {{1, 3, 500, 0}, {2, 2, 0, 0}, {3, 7, 0, 0}, {4, 3, 0, 1}, {99, 4, 0, 0}};
  mst_instr_out out;
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, b_reps, 5, FX_T0, &out),
                   1);
  const Cairn__V1__ServerInstruction *in;
  assert_non_null(in = fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 2));
  assert_int_equal(in->version, 2);
  assert_non_null(in = fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 4));
  assert_non_null(in = fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 99));
  assert_int_equal(in->version, 4);
  assert_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1));
  assert_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 3));
  mst_instr_out_free(&out);

  assert_true(fx_holds(f, 1, 1) && fx_holds(f, 1, 0));
  assert_int_equal(fx_chunk(f, 1).length, 500);
  assert_false(fx_holds(f, 2, 1));
  assert_true(fx_holds(f, 2, 0));
  assert_false(fx_holds(f, 4, 1));
  assert_true(fx_chunk(f, 4).flags & MST_CHUNK_F_CORRUPT);
  /* Chunk 3: version 7 adopted and logged; A's copy at 3 is stale now. */
  mst_chunk_info c3 = fx_chunk(f, 3);
  assert_int_equal(c3.version, 7);
  assert_int_equal(c3.nrep, 1);
  assert_true(fx_holds(f, 3, 1));
  assert_int_equal(fx_appended(f), before + 1);
  assert_int_equal(fx_take(f, 0, &out) >= 1, 1);
  assert_non_null(in = fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 3));
  assert_int_equal(in->version, 3);
  mst_instr_out_free(&out);
  /* Every chunk is below its goal of 3: all queued. */
  mst_chunks_stats st;
  mst_chunks_get_stats(f->m.chunks, &st);
  assert_int_equal(st.queued, 5);
  fx_free(f);
}

static void stale_only_copy_is_kept(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/a", 3, 1, 1, 5);
  mst_instr_out out;
  fx_rep r[] = {{1, 4, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 1, FX_T0, &out), 0);
  assert_int_equal(out.n, 0); /* no DELETE for the last copy there is */
  mst_instr_out_free(&out);
  mst_chunk_info ci = fx_chunk(f, 1);
  assert_int_equal(ci.nrep, 0);
  assert_true(ci.flags & MST_CHUNK_F_STALE);
  pthread_rwlock_wrlock(&f->m.lock);
  Cairn__V1__ReplicaReport rr = CAIRN__V1__REPLICA_REPORT__INIT;
  rr.handle = 1;
  rr.version = 5;
  assert_int_equal(mst_server_report(&f->m, 0, &rr, FX_T0), MST_REPORT_ADDED);
  rr.version = 4;
  assert_int_equal(mst_server_report(&f->m, 0, &rr, FX_T0), MST_REPORT_KEPT_STALE);
  rr.handle = 0;
  assert_int_equal(mst_server_report(&f->m, 0, &rr, FX_T0), CAIRN_EINVAL);
  pthread_rwlock_unlock(&f->m.lock);
  fx_free(f);
}

static void reregistration_replaces_replica_set(void **state) {
  (void)state;
  fx *f = fx_new();
  /* Version 2: the chunks were written (a chunk still at version 1 has no
   * bytes anywhere, and one that loses every copy is simply placed anew). */
  fx_file(f, "/a", 1, 1, 3, 2);
  fx_rep r1[] = {{1, 2, 0, 0}, {2, 2, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r1, 2, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 1);
  assert_true(fx_holds(f, 1, 0) && fx_holds(f, 2, 0) && !fx_holds(f, 3, 0));
  fx_rep r2[] = {{2, 2, 0, 0}, {3, 2, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z9", 100 * FX_CHUNK, 40 * FX_CHUNK, r2, 2, FX_T0 + 5, NULL),
                   0); /* same index */
  assert_false(fx_holds(f, 1, 0));
  assert_true(fx_holds(f, 2, 0) && fx_holds(f, 3, 0));
  assert_string_equal(mst_servers_get(f->m.servers, 0)->zone, "z9");
  /* Chunk 1 lost its only copy: missing, queued. */
  mst_chunks_stats st;
  mst_chunks_get_stats(f->m.chunks, &st);
  assert_int_equal(st.missing, 1);
  assert_int_equal(st.queued_missing, 1);
  fx_free(f);
}

/* ---- heartbeats ---------------------------------------------------------------- */

static void heartbeat_of_unknown_or_dead_server_asks_to_reregister(void **state) {
  (void)state;
  fx *f = fx_new();
  bool rereg = false;
  assert_int_equal(fx_heartbeat(f, "nobody", NULL, 0, NULL, 0, NULL, 0, FX_T0, &rereg, NULL), 0);
  assert_true(rereg);
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 0);
  assert_int_equal(fx_heartbeat(f, "A", NULL, 0, NULL, 0, NULL, 0, FX_T0 + 1, &rereg, NULL), 0);
  assert_false(rereg);
  /* Silent past dead_after: dead, and then told to register again. */
  assert_int_equal(mst_bg_liveness(&f->m, FX_T0 + 1 + f->m.cfg.dead_after_ms + 1), 1);
  assert_int_equal(fx_heartbeat(f, "A", NULL, 0, NULL, 0, NULL, 0, FX_T0 + 9000, &rereg, NULL), 0);
  assert_true(rereg);
  /* Bad input is an error, not a re-register. */
  assert_int_equal(fx_heartbeat(f, "bad id", NULL, 0, NULL, 0, NULL, 0, FX_T0, &rereg, NULL),
                   CAIRN_EINVAL);
  uint64_t zero = 0;
  assert_int_equal(fx_heartbeat(f, "A", NULL, 0, &zero, 1, NULL, 0, FX_T0, &rereg, NULL),
                   CAIRN_EINVAL);
  fx_free(f);
}

static void heartbeat_added_and_removed(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/a", 2, 1, 2, 1);
  fx_rep r[] = {{1, 1, 0, 0}, {2, 1, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 2, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 1);
  mst_instr_out out;
  fx_rep add[] = {{1, 1, 77, 0}, {2, 1, 0, 0}, {42, 9, 0, 0}};
  assert_int_equal(fx_heartbeat(f, "B", add, 3, NULL, 0, NULL, 0, FX_T0 + 1, NULL, &out), 0);
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 42));
  mst_instr_out_free(&out);
  assert_true(fx_holds(f, 1, 1) && fx_holds(f, 2, 1));
  assert_int_equal(fx_chunk(f, 1).length, 77);
  mst_chunks_stats st;
  mst_chunks_get_stats(f->m.chunks, &st);
  assert_int_equal(st.under_replicated, 0);
  uint64_t rm[] = {2};
  assert_int_equal(fx_heartbeat(f, "A", NULL, 0, rm, 1, NULL, 0, FX_T0 + 2, NULL, NULL), 0);
  assert_false(fx_holds(f, 2, 0));
  mst_chunks_get_stats(f->m.chunks, &st);
  assert_int_equal(st.under_replicated, 1);
  assert_int_equal(st.queued, 1);
  fx_free(f);
}

static void lease_extended_only_for_holder(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/a", 2, 1, 2, 4);
  fx_rep r[] = {{1, 4, 0, 0}, {2, 4, 0, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 2, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 2, FX_T0, NULL), 1);
  assert_int_equal(mst_chunks_set_lease(f->m.chunks, 1, 0, FX_T0 + 1000), 0);
  assert_int_equal(mst_chunks_set_lease(f->m.chunks, 2, 0, FX_T0 + 10), 0);
  mst_instr_out out;
  uint64_t ask[] = {1, 2, 777};
  /* B holds no lease: nothing extended. */
  assert_int_equal(fx_heartbeat(f, "B", NULL, 0, NULL, 0, ask, 3, FX_T0 + 100, NULL, &out), 0);
  assert_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_LEASE, 1));
  mst_instr_out_free(&out);
  assert_int_equal(fx_chunk(f, 1).lease_expiry_ms, FX_T0 + 1000);
  /* A holds both; the lease on 2 expired already. */
  assert_int_equal(fx_heartbeat(f, "A", NULL, 0, NULL, 0, ask, 3, FX_T0 + 100, NULL, &out), 0);
  const Cairn__V1__ServerInstruction *in =
      fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_LEASE, 1);
  assert_non_null(in);
  assert_int_equal(in->lease_expiry_ms, FX_T0 + 100 + f->m.cfg.lease_ms);
  assert_int_equal(in->version, 4);
  assert_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_LEASE, 2));
  mst_instr_out_free(&out);
  assert_int_equal(fx_chunk(f, 1).lease_expiry_ms, FX_T0 + 100 + f->m.cfg.lease_ms);
  assert_int_equal(mst_chunks_lease_valid(f->m.chunks, 2, FX_T0 + 100, NULL), 0);
  fx_free(f);
}

static void drain_unknown_and_flag(void **state) {
  (void)state;
  fx *f = fx_new();
  char err[128];
  assert_int_equal(mst_server_drain(&f->m, "ghost", false, err, sizeof err), CAIRN_ENOENT);
  assert_int_equal(mst_server_drain(&f->m, "", false, err, sizeof err), CAIRN_EINVAL);
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 0);
  assert_int_equal(mst_server_drain(&f->m, "A", false, err, sizeof err), 0);
  assert_true(mst_servers_get(f->m.servers, 0)->draining);
  assert_int_equal(mst_server_drain(&f->m, "A", true, err, sizeof err), 0);
  assert_false(mst_servers_get(f->m.servers, 0)->draining);
  fx_free(f);
}

/* ---- failed replicas ------------------------------------------------------------- */

/* Chunk 1 at version 5 on A (primary, lease), B and C. */
static void failed_setup(fx *f, const char *a_rpc, const char *b_rpc, const char *c_rpc) {
  fx_file(f, "/w", 3, 1, 1, 5);
  fx_rep r[] = {{1, 5, 0, 0}};
  assert_int_equal(reg_at(f, "A", "z1", a_rpc, r, 1), 0);
  assert_int_equal(reg_at(f, "B", "z2", b_rpc, r, 1), 1);
  assert_int_equal(reg_at(f, "C", "z3", c_rpc, r, 1), 2);
  assert_int_equal(mst_chunks_set_lease(f->m.chunks, 1, 0, mst_now_ms() + 60000), 0);
}

/* Replay callback: the version of the last OpSetVersion record of chunk 1. */
static int find_set_version(void *arg, uint64_t lsn, const void *data, size_t len) {
  (void)lsn;
  Cairn__V1__OplogRecord *rec = cairn__v1__oplog_record__unpack(NULL, len, data);
  if (!rec) return CAIRN_ECORRUPT;
  if (rec->op_case == CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION && rec->set_version->handle == 1)
    *(uint64_t *)arg = rec->set_version->version;
  cairn__v1__oplog_record__free_unpacked(rec, NULL);
  return 0;
}

static int report(fx *f, uint64_t version, const char *failed, const char *reporter,
                  uint64_t *nv) {
  Cairn__V1__ReportFailedReplicaRequest req = CAIRN__V1__REPORT_FAILED_REPLICA_REQUEST__INIT;
  req.handle = 1;
  req.version = version;
  req.failed_server_id = (char *)failed;
  req.reporter_id = (char *)reporter;
  req.error = CAIRN_ETIMEDOUT;
  char err[256];
  return mst_server_report_failed(&f->m, &req, nv, err, sizeof err);
}

static void failed_replica_bumps_version_durably(void **state) {
  (void)state;
  fx *f = fx_new();
  fake_cs *cs = fake_start();
  use_peers(f);
  failed_setup(f, cs->addr, cs->addr, "127.0.0.1:9");
  uint64_t nv = 0;
  /* Refusals first: they change nothing. */
  assert_int_equal(report(f, 5, "C", "B", &nv), CAIRN_ENOTPRIMARY);
  assert_int_equal(report(f, 4, "C", "A", &nv), CAIRN_ESTALE);
  assert_int_equal(report(f, 5, "Z", "A", &nv), CAIRN_ENOENT);
  assert_int_equal(report(f, 5, "A", "A", &nv), CAIRN_EINVAL);
  assert_int_equal(report(f, 5, "C", "nobody", &nv), CAIRN_ENOTPRIMARY);
  assert_int_equal(fx_chunk(f, 1).nrep, 3);
  assert_int_equal(cs->calls, 0);

  uint64_t durable = fx_durable(f);
  assert_int_equal(report(f, 5, "C", "A", &nv), 0);
  assert_int_equal(nv, 6);
  assert_int_equal(fx_durable(f), durable + 1); /* the OpSetVersion is on disk */
  mst_chunk_info ci = fx_chunk(f, 1);
  assert_int_equal(ci.version, 6);
  assert_int_equal(ci.nrep, 2);
  assert_false(fx_holds(f, 1, 2));
  /* Both survivors were told 5 -> 6: the secondary first, then the primary
   * with its lease (a round it starts then finds the secondary there). */
  assert_int_equal(cs->calls, 2);
  assert_int_equal(cs->handle, 1);
  assert_int_equal(cs->old_v, 5);
  assert_int_equal(cs->new_v, 6);
  assert_int_equal(cs->expiry[0], 0);
  assert_true(cs->expiry[1] > 0);
  assert_int_equal(cs->nrep[1], 2);
  /* The failed server is told to delete its stale copy; repair is queued. */
  mst_instr_out out;
  assert_int_equal(fx_take(f, 2, &out), 1);
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1));
  assert_int_equal(out.v[0]->version, 5);
  mst_instr_out_free(&out);
  mst_chunks_stats st;
  mst_chunks_get_stats(f->m.chunks, &st);
  assert_int_equal(st.queued, 1);
  assert_int_equal(cmn_counter_get(f->m.m_failed_reports), 1);
  /* A second report about the same failure (old version) does not bump again. */
  assert_int_equal(report(f, 5, "C", "A", &nv), CAIRN_ESTALE);
  assert_int_equal(fx_chunk(f, 1).version, 6);

  /* The bump survives a reopen of the log. */
  assert_int_equal(mst_oplog_close(f->m.log), 0);
  f->m.log = NULL;
  char err[256];
  uint64_t found = 0;
  assert_int_equal(mst_oplog_open(f->meta, NULL, 0, find_set_version, &found, &f->m.log, err,
                                  sizeof err),
                   0);
  assert_int_equal(found, 6);
  fx_free(f);
  fake_stop(cs);
}

static void failed_replica_silent_survivor_leaves(void **state) {
  (void)state;
  fx *f = fx_new();
  fake_cs *cs = fake_start();
  use_peers(f);
  /* B's endpoint refuses SetVersion: it is stale after the bump. */
  failed_setup(f, cs->addr, "127.0.0.1:9", "127.0.0.1:9");
  uint64_t nv = 0;
  assert_int_equal(report(f, 5, "C", "A", &nv), 0);
  assert_int_equal(nv, 6);
  mst_chunk_info ci = fx_chunk(f, 1);
  assert_int_equal(ci.nrep, 1);
  assert_true(fx_holds(f, 1, 0));
  mst_instr_out out;
  assert_int_equal(fx_take(f, 1, &out), 1); /* B: delete the stale copy */
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1));
  mst_instr_out_free(&out);

  /* Now the primary itself refuses: the lease goes and the report fails. */
  pthread_mutex_lock(&cs->mu);
  cs->fail_with = CAIRN_EIO;
  pthread_mutex_unlock(&cs->mu);
  fx_rep r[] = {{1, 6, 0, 0}};
  assert_int_equal(reg_at(f, "B", "z2", cs->addr, r, 1), 1);
  assert_int_equal(report(f, 6, "B", "A", &nv), CAIRN_EUNAVAIL);
  assert_int_equal(nv, 7);
  assert_int_equal(mst_chunks_lease_valid(f->m.chunks, 1, mst_now_ms(), NULL), 0);
  fx_free(f);
  fake_stop(cs);
}

/* ---- the RPC glue ------------------------------------------------------------------ */

static const cmn_rpc_method glue_methods[] = {
    {"RegisterServer", mst_svc_register},
    {"Heartbeat", mst_svc_heartbeat},
    {"ReportFailedReplica", mst_svc_report_failed},
    {"Drain", mst_svc_drain},
};

static void rpc_glue_round_trip(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/g", 1, 1, 1, 2);
  cmn_rpc_server_config cfg = {.addr = "127.0.0.1:0",
                               .secret = FX_SECRET,
                               .workers = 2,
                               .service = &cairn__v1__master__descriptor,
                               .methods = glue_methods,
                               .n_methods = CMN_ARRAY_LEN(glue_methods),
                               .ctx = &f->m};
  cmn_rpc_server *srv;
  assert_int_equal(cmn_rpc_server_start(&cfg, &srv), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", cmn_rpc_server_port(srv));
  cmn_rpc_client_config cc = {.secret = FX_SECRET};
  cmn_rpc_channel *ch;
  assert_int_equal(cmn_rpc_channel_open(target, &cc, &ch), 0);

  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  a.id = "S1";
  a.data_addr = "127.0.0.1:8080";
  a.rpc_addr = "127.0.0.1:8081";
  Cairn__V1__ReplicaReport orphan = CAIRN__V1__REPLICA_REPORT__INIT;
  orphan.handle = 500;
  orphan.version = 1;
  Cairn__V1__ReplicaReport *rp[] = {&orphan};
  Cairn__V1__RegisterRequest rr = CAIRN__V1__REGISTER_REQUEST__INIT;
  rr.addr = &a;
  rr.capacity_bytes = 10;
  rr.free_bytes = 5;
  rr.cluster_id = (char *)FX_CLUSTER;
  rr.n_replicas = 1;
  rr.replicas = rp;
  ProtobufCMessage *reply = NULL;
  cmn_rpc_status st;
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "RegisterServer",
                                      &rr.base, &reply, 5000, &st),
                   0);
  Cairn__V1__RegisterReply *reg = (Cairn__V1__RegisterReply *)reply;
  assert_int_equal(reg->heartbeat_interval_ms, 1000);
  assert_int_equal(reg->chunk_size, FX_CHUNK);
  assert_int_equal(reg->n_instructions, 1);
  assert_int_equal(reg->instructions[0]->kind, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE);
  assert_int_equal(reg->instructions[0]->handle, 500);
  protobuf_c_message_free_unpacked(reply, NULL);

  rr.cluster_id = "wrong";
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "RegisterServer",
                                      &rr.base, &reply, 5000, &st),
                   CAIRN_EAUTH);
  assert_non_null(strstr(st.message, "wrong"));

  Cairn__V1__HeartbeatRequest hb = CAIRN__V1__HEARTBEAT_REQUEST__INIT;
  hb.server_id = "S2";
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "Heartbeat", &hb.base,
                                      &reply, 5000, &st),
                   0);
  assert_true(((Cairn__V1__HeartbeatReply *)reply)->reregister);
  protobuf_c_message_free_unpacked(reply, NULL);

  Cairn__V1__DrainRequest dr = CAIRN__V1__DRAIN_REQUEST__INIT;
  dr.server_id = "S9";
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "Drain", &dr.base,
                                      &reply, 5000, &st),
                   CAIRN_ENOENT);
  dr.server_id = "S1";
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "Drain", &dr.base,
                                      &reply, 5000, &st),
                   0);
  protobuf_c_message_free_unpacked(reply, NULL);

  /* Goes through the report thread: S1 holds no lease. */
  Cairn__V1__ReportFailedReplicaRequest fr = CAIRN__V1__REPORT_FAILED_REPLICA_REQUEST__INIT;
  fr.handle = 1;
  fr.version = 2;
  fr.failed_server_id = "S2";
  fr.reporter_id = "S1";
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "ReportFailedReplica",
                                      &fr.base, &reply, 5000, &st),
                   CAIRN_ENOENT); /* S2 unknown */
  a.id = "S2";
  rr.cluster_id = (char *)FX_CLUSTER;
  rr.n_replicas = 0;
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "RegisterServer",
                                      &rr.base, &reply, 5000, &st),
                   0);
  protobuf_c_message_free_unpacked(reply, NULL);
  assert_int_equal(cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, "ReportFailedReplica",
                                      &fr.base, &reply, 5000, &st),
                   CAIRN_ENOTPRIMARY);

  cmn_rpc_channel_close(ch);
  cmn_rpc_server_stop(srv);
  fx_free(f);
}

CAIRN_TEST_MAIN(cmocka_unit_test(register_validates_everything),
                cmocka_unit_test(register_applies_report_rules),
                cmocka_unit_test(stale_only_copy_is_kept),
                cmocka_unit_test(reregistration_replaces_replica_set),
                cmocka_unit_test(heartbeat_of_unknown_or_dead_server_asks_to_reregister),
                cmocka_unit_test(heartbeat_added_and_removed),
                cmocka_unit_test(lease_extended_only_for_holder),
                cmocka_unit_test(drain_unknown_and_flag),
                cmocka_unit_test(failed_replica_bumps_version_durably),
                cmocka_unit_test(failed_replica_silent_survivor_leaves),
                cmocka_unit_test(rpc_glue_round_trip))
