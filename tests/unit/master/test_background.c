/*
 * Unit tests for the master's background work (master/background.c,
 * master/repair.c): liveness, re-replication across zones, the clone
 * throttle and timeouts, trimming of extra copies, drains, rebalancing
 * moves, garbage collection of the trash, and the thread itself with a
 * checkpoint. The steps are driven directly with chosen clocks; only the
 * last case runs the thread.
 */
#include "test_main.h"

#include "master_fixture.h"

#include <time.h>

static mst_bg_stats stats(fx *f) {
  mst_bg_stats st;
  pthread_rwlock_rdlock(&f->m.lock);
  mst_background_stats(&f->m, &st);
  pthread_rwlock_unlock(&f->m.lock);
  return st;
}

static const mst_server *srv(fx *f, const char *id) {
  return mst_servers_get(f->m.servers, (uint16_t)fx_idx(f, id));
}

/* Heartbeats (empty) from every server in ids[] at `now`. */
static void beat(fx *f, const char *const *ids, size_t n, int64_t now) {
  for (size_t i = 0; i < n; i++) {
    bool rereg = false;
    assert_int_equal(fx_heartbeat(f, ids[i], NULL, 0, NULL, 0, NULL, 0, now, &rereg, NULL), 0);
    assert_false(rereg);
  }
}

/* The CLONE instructions queued to server `id`, taken. */
static int take_clones(fx *f, const char *id, uint64_t *handles, uint64_t *versions,
                       const char **sources, int cap) {
  mst_instr_out out;
  int n = fx_take(f, (uint16_t)fx_idx(f, id), &out);
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (out.v[i]->kind != CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_CLONE || k >= cap) continue;
    handles[k] = out.v[i]->handle;
    if (versions) versions[k] = out.v[i]->version;
    assert_non_null(out.v[i]->source);
    if (sources) sources[k] = srv(f, out.v[i]->source->id)->id;
    k++;
  }
  mst_instr_out_free(&out);
  return k;
}

/* The target reports the finished copy. */
static void complete(fx *f, const char *target, uint64_t handle, uint64_t version, int64_t now) {
  fx_rep r = {handle, version, 4096, false};
  bool rereg = false;
  assert_int_equal(fx_heartbeat(f, target, &r, 1, NULL, 0, NULL, 0, now, &rereg, NULL), 0);
}

/* ---- liveness and repair ------------------------------------------------------ */

static void dead_server_repaired_in_another_zone(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 1, 2);
  fx_rep r[] = {{1, 2, 4096, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 2);
  assert_int_equal(fx_register(f, "D", "z3", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 3);
  assert_int_equal(fx_register(f, "E", "z1", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 4);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 0); /* nothing to do */

  int64_t t1 = FX_T0 + f->m.cfg.dead_after_ms + 1;
  const char *alive[] = {"A", "B", "D", "E"};
  beat(f, alive, 4, t1);
  assert_int_equal(mst_bg_liveness(&f->m, t1), 1);
  assert_true(srv(f, "C")->dead);
  assert_int_equal(fx_chunk(f, 1).nrep, 2);
  mst_chunks_stats cs;
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.queued, 1);

  assert_int_equal(mst_bg_repair(&f->m, t1), 1);
  uint64_t h[4], v[4];
  const char *src[4];
  /* z1 and z2 hold copies: the clone goes to D, the server in z3. */
  assert_int_equal(take_clones(f, "E", h, v, src, 4), 0);
  assert_int_equal(take_clones(f, "D", h, v, src, 4), 1);
  assert_int_equal(h[0], 1);
  assert_int_equal(v[0], 2);
  assert_true(strcmp(src[0], "A") == 0 || strcmp(src[0], "B") == 0);
  assert_int_equal(srv(f, "D")->clones_as_target, 1);
  mst_bg_stats st = stats(f);
  assert_int_equal(st.clones_in_flight, 1);
  assert_int_equal(st.servers_died, 1);
  assert_int_equal(cmn_counter_get(f->m.m_clones), 1);
  /* A second round starts nothing more: the clone covers the deficit. */
  assert_int_equal(mst_bg_repair(&f->m, t1 + 1), 0);

  complete(f, "D", 1, 2, t1 + 2);
  assert_true(fx_holds(f, 1, 3));
  assert_int_equal(fx_chunk(f, 1).nrep, 3);
  assert_int_equal(srv(f, "D")->clones_as_target, 0);
  st = stats(f);
  assert_int_equal(st.clones_in_flight, 0);
  assert_int_equal(st.clones_done, 1);
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.under_replicated, 0);
  assert_int_equal(cs.queued, 0);
  fx_free(f);
}

static void clone_throttle_is_respected(void **state) {
  (void)state;
  mst_config cfg = fx_config();
  cfg.clones_per_server = 1;
  fx *f = fx_new_with(&cfg);
  fx_file(f, "/f", 3, 1, 3, 1);
  fx_rep r[] = {{1, 1, 10, 0}, {2, 1, 10, 0}, {3, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 2);
  /* Three chunks need C; C takes one clone at a time. */
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 1);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0 + 2000), 0);
  assert_int_equal(srv(f, "C")->clones_as_target, 1);
  uint64_t h[4], v[4];
  assert_int_equal(take_clones(f, "C", h, v, NULL, 4), 1);
  mst_chunks_stats cs;
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.queued, 2); /* the others wait in the queue */
  for (int round = 0; round < 2; round++) {
    complete(f, "C", h[0], v[0], FX_T0 + 3000 + round);
    assert_int_equal(mst_bg_repair(&f->m, FX_T0 + 3000 + round), 1);
    assert_int_equal(take_clones(f, "C", h, v, NULL, 4), 1);
  }
  complete(f, "C", h[0], v[0], FX_T0 + 4000);
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.under_replicated, 0);
  assert_int_equal(stats(f).clones_done, 3);
  fx_free(f);
}

static void stuck_clones_are_abandoned(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 1, 1);
  fx_rep r[] = {{1, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 2);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 1);
  int64_t limit = 10 * f->m.cfg.heartbeat_interval_ms;
  assert_int_equal(mst_bg_expire(&f->m, FX_T0 + limit), 0);
  assert_int_equal(mst_bg_expire(&f->m, FX_T0 + limit + 1), 1);
  assert_int_equal(stats(f).clones_abandoned, 1);
  assert_int_equal(srv(f, "C")->clones_as_target, 0);
  mst_chunks_stats cs;
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.queued, 1); /* back in the queue */

  /* Tried again; then the target dies and the clone goes with it. */
  int64_t t = FX_T0 + limit + 2;
  assert_int_equal(mst_bg_repair(&f->m, t), 1);
  const char *ab[] = {"A", "B"};
  int64_t t2 = t + f->m.cfg.dead_after_ms + 1;
  beat(f, ab, 2, t2);
  assert_int_equal(mst_bg_liveness(&f->m, t2), 1);
  assert_int_equal(stats(f).clones_abandoned, 2);
  assert_int_equal(stats(f).clones_in_flight, 0);
  assert_int_equal(srv(f, "A")->clones_as_source + srv(f, "B")->clones_as_source, 0);
  fx_free(f);
}

static void clone_at_wrong_version_is_rejected(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 1, 1);
  fx_rep r[] = {{1, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 2);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 1);
  uint64_t h[2], v[2];
  assert_int_equal(take_clones(f, "C", h, v, NULL, 2), 1);
  /* A lease was granted meanwhile: the version moved, writes may be missing. */
  assert_int_equal(mst_chunks_set_version(f->m.chunks, 1, 2), 0);
  mst_instr_out out;
  fx_rep rep = {1, 2, 10, false};
  assert_int_equal(fx_heartbeat(f, "C", &rep, 1, NULL, 0, NULL, 0, FX_T0 + 1, NULL, &out), 0);
  const Cairn__V1__ServerInstruction *in =
      fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1);
  assert_non_null(in);
  assert_int_equal(in->version, 2);
  mst_instr_out_free(&out);
  assert_false(fx_holds(f, 1, 2));
  assert_int_equal(stats(f).clones_failed, 1);
  mst_chunks_stats cs;
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.queued, 1);
  fx_free(f);
}

static void leased_chunk_waits_for_its_lease(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 1, 1);
  fx_rep r[] = {{1, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 1, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 1);
  assert_int_equal(mst_chunks_set_lease(f->m.chunks, 1, 0, FX_T0 + 5000), 0);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 0);
  mst_chunks_stats cs;
  mst_chunks_get_stats(f->m.chunks, &cs);
  assert_int_equal(cs.queued, 1);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0 + 500), 0);  /* backing off */
  assert_int_equal(mst_bg_repair(&f->m, FX_T0 + 5000), 1); /* lease over */
  fx_free(f);
}

/* While a lease grant is under way the chunk's version is already the new
 * one and writes at it may start any moment: a copy taken then could miss
 * them, so no clone starts and no extra copy is trimmed until it ends. */
static void chunk_being_granted_is_left_alone(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 1, 2);
  fx_file(f, "/g", 2, 2, 1, 2);
  fx_rep r1[] = {{1, 2, 10, 0}}, r2[] = {{2, 2, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r1, 1, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r2, 1, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, r2, 1, FX_T0, NULL), 2);
  assert_int_equal(fx_register(f, "D", "z4", FX_CAP, FX_FREE, r2, 1, FX_T0, NULL), 3);
  assert_int_equal(fx_chunk(f, 2).nrep, 3); /* one copy more than its goal */
  assert_int_equal(mst_chunks_set_flags(f->m.chunks, 1, MST_CHUNK_F_GRANTING, true), 0);
  assert_int_equal(mst_chunks_set_flags(f->m.chunks, 2, MST_CHUNK_F_GRANTING, true), 0);
  assert_int_equal(mst_chunks_write_busy(f->m.chunks, 1, FX_T0), 1);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0), 0);
  assert_int_equal(mst_bg_scan(&f->m, FX_T0), 0);
  assert_int_equal(fx_chunk(f, 2).nrep, 3);
  mst_bg_stats st = stats(f);
  assert_int_equal(st.clones_started, 0);
  /* The grant ended (without a lease: it failed): both go ahead. */
  assert_int_equal(mst_chunks_set_flags(f->m.chunks, 1, MST_CHUNK_F_GRANTING, false), 0);
  assert_int_equal(mst_chunks_set_flags(f->m.chunks, 2, MST_CHUNK_F_GRANTING, false), 0);
  assert_int_equal(mst_chunks_write_busy(f->m.chunks, 1, FX_T0), 0);
  assert_int_equal(mst_bg_scan(&f->m, FX_T0 + 1000), 1);
  assert_int_equal(fx_chunk(f, 2).nrep, 2);
  assert_int_equal(mst_bg_repair(&f->m, FX_T0 + 1000), 2);
  fx_free(f);
}

/* ---- trimming, drains, rebalancing ------------------------------------------------ */

static void extra_copies_trimmed_by_preference(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/f", 3, 1, 3, 1);
  fx_rep r[] = {{1, 1, 10, 0}, {2, 1, 10, 0}, {3, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 2);
  /* D shares A's zone and is fuller; E is emptier in a zone of its own. */
  assert_int_equal(fx_register(f, "D", "z1", FX_CAP, 10 * (uint64_t)FX_CHUNK, r, 3, FX_T0, NULL), 3);
  assert_int_equal(fx_register(f, "E", "z4", FX_CAP, 90 * (uint64_t)FX_CHUNK, r, 1, FX_T0, NULL), 4);
  /* Chunk 1 has 5 copies, 2 and 3 have 4. E drains. */
  assert_int_equal(mst_servers_set_drain(f->m.servers, 4, true), 0);
  assert_int_equal(mst_chunks_set_lease(f->m.chunks, 3, 3, FX_T0 + 60000), 0);
  assert_int_equal(mst_bg_scan(&f->m, FX_T0), 4);
  /* 1: the draining copy first, then the fuller zone duplicate D. */
  assert_false(fx_holds(f, 1, 4));
  assert_false(fx_holds(f, 1, 3));
  assert_int_equal(fx_chunk(f, 1).nrep, 3);
  /* 2: D, the fuller of the zone-z1 pair. */
  assert_false(fx_holds(f, 2, 3));
  assert_true(fx_holds(f, 2, 0));
  /* 3: D holds the lease, so A goes instead. */
  assert_true(fx_holds(f, 3, 3));
  assert_false(fx_holds(f, 3, 0));
  mst_instr_out out;
  assert_int_equal(fx_take(f, 3, &out), 2);
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1));
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 2));
  mst_instr_out_free(&out);
  mst_bg_stats st = stats(f);
  assert_int_equal(st.trimmed, 4);
  assert_int_equal(st.deletes_ordered, 4);
  assert_int_equal(mst_bg_scan(&f->m, FX_T0 + 1), 0);
  fx_free(f);
}

static void drain_moves_every_replica_off(void **state) {
  (void)state;
  mst_config cfg = fx_config();
  cfg.clones_per_server = 4;
  fx *f = fx_new_with(&cfg);
  fx_file(f, "/f", 3, 1, 3, 1);
  fx_rep r[] = {{1, 1, 10, 0}, {2, 1, 10, 0}, {3, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 1);
  assert_int_equal(fx_register(f, "C", "z3", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 2);
  assert_int_equal(fx_register(f, "D", "z1", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 3);
  assert_int_equal(fx_register(f, "E", "z2", FX_CAP, FX_FREE, NULL, 0, FX_T0, NULL), 4);
  char err[128];
  assert_int_equal(mst_server_drain(&f->m, "A", false, err, sizeof err), 0);
  assert_int_equal(stats(f).watched, 3);
  int64_t t = FX_T0 + 1;
  int started = mst_bg_repair(&f->m, t);
  assert_int_equal(started, 3);
  /* A's zone is free to receive: every clone goes to D. */
  uint64_t h[8], v[8];
  int n = take_clones(f, "D", h, v, NULL, 8);
  assert_int_equal(n, 3);
  assert_int_equal(take_clones(f, "E", h + n, v + n, NULL, 8 - n), 0);
  for (int i = 0; i < n; i++) complete(f, "D", h[i], v[i], t + 1 + i);
  for (uint64_t c = 1; c <= 3; c++) {
    assert_false(fx_holds(f, c, 0));
    assert_true(fx_holds(f, c, 3));
    assert_int_equal(fx_chunk(f, c).nrep, 3);
  }
  mst_instr_out out;
  assert_int_equal(fx_take(f, 0, &out), 3);
  for (uint64_t c = 1; c <= 3; c++)
    assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, c));
  mst_instr_out_free(&out);
  assert_int_equal(mst_bg_repair(&f->m, t + 10), 0);
  assert_int_equal(stats(f).watched, 0);
  fx_free(f);
}

static void rebalance_moves_to_emptier_server(void **state) {
  (void)state;
  mst_config cfg = fx_config();
  cfg.clones_per_server = 2;
  fx *f = fx_new_with(&cfg);
  fx_file(f, "/f", 1, 1, 4, 1);
  fx_rep r[] = {{1, 1, 4096, 0}, {2, 1, 4096, 0}, {3, 1, 4096, 0}, {4, 1, 4096, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, 10 * (uint64_t)FX_CHUNK, r, 4, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, 90 * (uint64_t)FX_CHUNK, NULL, 0, FX_T0, NULL), 1);
  assert_int_equal(mst_bg_rebalance(&f->m, FX_T0), 2); /* throttled to 2 */
  mst_bg_stats st = stats(f);
  assert_int_equal(st.moves_in_flight, 2);
  assert_int_equal(st.last_rebalance_ms, FX_T0);
  uint64_t h[4], v[4];
  const char *src[4];
  assert_int_equal(take_clones(f, "B", h, v, src, 4), 2);
  assert_string_equal(src[0], "A");
  for (int i = 0; i < 2; i++) {
    complete(f, "B", h[i], v[i], FX_T0 + 1);
    assert_true(fx_holds(f, h[i], 1));
    assert_false(fx_holds(f, h[i], 0));
  }
  st = stats(f);
  assert_int_equal(st.moves_done, 2);
  assert_int_equal(st.moves_in_flight, 0);
  mst_instr_out out;
  assert_int_equal(fx_take(f, 0, &out), 2);
  assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, h[0]));
  mst_instr_out_free(&out);
  fx_free(f);
}

/* ---- garbage collection ------------------------------------------------------------- */

static void gc_purges_expired_trash(void **state) {
  (void)state;
  fx *f = fx_new();
  fx_file(f, "/t", 2, 1, 2, 1);
  fx_file(f, "/keep", 2, 10, 1, 1);
  fx_rep r[] = {{1, 1, 10, 0}, {2, 1, 10, 0}, {10, 1, 10, 0}};
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 0);
  assert_int_equal(fx_register(f, "B", "z2", FX_CAP, FX_FREE, r, 3, FX_T0, NULL), 1);
  Cairn__V1__OpDelete op = CAIRN__V1__OP_DELETE__INIT;
  op.path = "/t";
  op.now_ms = FX_T0;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_DELETE;
  rec.delete_ = &op;
  assert_int_equal(mst_apply(&f->m, &rec), 0);
  int64_t period = f->m.cfg.trash_period_ms;
  assert_int_equal(mst_bg_gc(&f->m, FX_T0 + period), 0); /* not older than the period yet */
  uint64_t before = fx_appended(f);
  assert_int_equal(mst_bg_gc(&f->m, FX_T0 + period + 1), 1);
  assert_int_equal(fx_appended(f), before + 1);
  assert_int_equal(mst_chunks_count(f->m.chunks), 1);
  assert_int_equal(cmn_counter_get(f->m.m_purged), 1);
  assert_int_equal(stats(f).purged, 1);
  for (uint16_t s = 0; s < 2; s++) {
    mst_instr_out out;
    assert_int_equal(fx_take(f, s, &out), 2);
    assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 1));
    assert_non_null(fx_find(&out, CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE, 2));
    mst_instr_out_free(&out);
  }
  assert_int_equal(cmn_counter_get(f->m.m_deletes_sent), 4);
  assert_int_equal(mst_bg_gc(&f->m, FX_T0 + period + 2), 0);
  fx_free(f);
}

/* ---- the thread -------------------------------------------------------------------- */

static bool has_checkpoint(const char *dir) {
  DIR *d = opendir(dir);
  bool found = false;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL)
    if (strncmp(de->d_name, "checkpoint.", 11) == 0 && !strstr(de->d_name, ".tmp")) found = true;
  if (d) closedir(d);
  return found;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void thread_runs_liveness_and_checkpoints(void **state) {
  (void)state;
  mst_config cfg = fx_config();
  cfg.dead_after_ms = 500;
  cfg.checkpoint_records = 3;
  fx *f = fx_new_with(&cfg);
  f->m.last_ckpt_ms = cmn_mono_ms(); /* only the record count may trigger it */
  assert_int_equal(fx_register(f, "A", "z1", FX_CAP, FX_FREE, NULL, 0, mst_now_ms(), NULL), 0);
  assert_int_equal(mst_background_start(&f->m), 0);
  assert_int_equal(mst_background_start(&f->m), CAIRN_EBUSY);
  for (int i = 0; i < 3; i++) {
    char path[32];
    snprintf(path, sizeof path, "/d%d", i);
    Cairn__V1__OpMkdir op = CAIRN__V1__OP_MKDIR__INIT;
    op.path = path;
    op.now_ms = mst_now_ms();
    Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_MKDIR;
    rec.mkdir = &op;
    pthread_rwlock_wrlock(&f->m.lock);
    op.first_id = f->m.next_file_id;
    assert_int_equal(mst_apply(&f->m, &rec), 0);
    mst_log_record(&f->m, &rec, NULL, NULL);
    pthread_rwlock_unlock(&f->m.lock);
  }
  bool dead = false;
  for (int i = 0; i < 200 && !(dead && cmn_counter_get(f->m.m_ckpts) >= 1); i++) {
    sleep_ms(50);
    pthread_rwlock_rdlock(&f->m.lock);
    dead = mst_servers_get(f->m.servers, 0)->dead;
    pthread_rwlock_unlock(&f->m.lock);
  }
  assert_true(dead);
  assert_int_equal(cmn_counter_get(f->m.m_ckpts), 1);
  assert_true(has_checkpoint(f->meta));
  mst_background_stop(&f->m);
  pthread_rwlock_rdlock(&f->m.lock);
  assert_null(f->m.bg_state);
  pthread_rwlock_unlock(&f->m.lock);
  fx_free(f);
}

CAIRN_TEST_MAIN(cmocka_unit_test(dead_server_repaired_in_another_zone),
                cmocka_unit_test(clone_throttle_is_respected),
                cmocka_unit_test(stuck_clones_are_abandoned),
                cmocka_unit_test(clone_at_wrong_version_is_rejected),
                cmocka_unit_test(leased_chunk_waits_for_its_lease),
                cmocka_unit_test(chunk_being_granted_is_left_alone),
                cmocka_unit_test(extra_copies_trimmed_by_preference),
                cmocka_unit_test(drain_moves_every_replica_off),
                cmocka_unit_test(rebalance_moves_to_emptier_server),
                cmocka_unit_test(gc_purges_expired_trash),
                cmocka_unit_test(thread_runs_liveness_and_checkpoints))
