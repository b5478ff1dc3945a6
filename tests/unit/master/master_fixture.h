/*
 * master_fixture.h - a master context for unit tests of the chunkserver
 * service and the background work: mst_master_init with small settings, a
 * cluster id, an operation log in a temporary directory (so mutations can
 * be logged), and helpers to build files, register servers and send
 * heartbeats without RPC. Include after test_main.h.
 */
#ifndef MASTER_FIXTURE_H
#define MASTER_FIXTURE_H

#include "cairn_error.h"
#include "cmn_util.h"
#include "mst_background.h"
#include "mst_master.h"
#include "mst_servers_svc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_CLUSTER "0b7e6f2c-6a51-4c1e-9d0f-3a2b1c4d5e6f"
#define FX_SECRET "fixture-secret-0123456789abcdef"
#define FX_T0 ((int64_t)1700000000000) /* a wall-clock-like starting time */
#define FX_CHUNK (1u << 20)
#define FX_CAP (100 * (uint64_t)FX_CHUNK) /* a server's capacity and free space */
#define FX_FREE (50 * (uint64_t)FX_CHUNK)

typedef struct fx {
  mst_master m;
  char *dir;  /* temporary directory */
  char *meta; /* dir/meta: the operation log (and checkpoints) */
} fx;

static inline void fx_rm_flat(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char *p = cmn_sprintf("%s/%s", dir, de->d_name);
      unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static inline mst_config fx_config(void) {
  mst_config c;
  memset(&c, 0, sizeof c);
  c.chunk_size = FX_CHUNK;
  c.heartbeat_interval_ms = 1000;
  c.dead_after_ms = 5000;
  c.lease_ms = 60000;
  c.trash_period_ms = 10000;
  c.default_goal = 3;
  c.checkpoint_records = 1000000;
  c.checkpoint_interval_ms = 3600000;
  c.clones_per_server = 2;
  c.creation_cap = 1000;
  c.rebalance_interval_ms = 60000;
  c.rebalance_threshold_pct = 10;
  c.rebalance_moves = 4;
  c.list_limit = 1000;
  return c;
}

static inline fx *fx_new_with(const mst_config *cfg) {
  fx *f = cmn_calloc(1, sizeof *f);
  const char *base = getenv("TMPDIR");
  f->dir = cmn_sprintf("%s/cairn-mbg-XXXXXX", base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  f->meta = cmn_sprintf("%s/meta", f->dir);
  assert_int_equal(mst_master_init(&f->m, cfg), 0);
  f->m.cfg.dir = f->dir;
  snprintf(f->m.cluster_id, sizeof f->m.cluster_id, "%s", FX_CLUSTER);
  char err[256];
  assert_int_equal(mst_oplog_open(f->meta, NULL, 0, NULL, NULL, &f->m.log, err, sizeof err), 0);
  return f;
}

static inline fx *fx_new(void) {
  mst_config c = fx_config();
  return fx_new_with(&c);
}

static inline void fx_free(fx *f) {
  mst_background_stop(&f->m);
  assert_int_equal(mst_oplog_close(f->m.log), 0);
  f->m.log = NULL;
  cmn_rpc_pool_destroy(f->m.peers);
  f->m.peers = NULL;
  mst_master_destroy(&f->m);
  fx_rm_flat(f->meta);
  fx_rm_flat(f->dir);
  free(f->meta);
  free(f->dir);
  free(f);
}

static inline uint64_t fx_durable(fx *f) {
  mst_oplog_stats st;
  mst_oplog_stats_get(f->m.log, &st);
  return st.records_durable;
}

static inline uint64_t fx_appended(fx *f) {
  mst_oplog_stats st;
  mst_oplog_stats_get(f->m.log, &st);
  return st.records_appended;
}

/* A file at `path` with `n` chunks at `version`, handles first_handle...;
 * returns the file id. Applied (not logged): the state is what matters. */
static inline uint64_t fx_file(fx *f, const char *path, unsigned goal, uint64_t first_handle,
                               unsigned n, uint64_t version) {
  mst_master *m = &f->m;
  Cairn__V1__OpCreate op = CAIRN__V1__OP_CREATE__INIT;
  op.path = (char *)path;
  op.goal = goal;
  op.parents = true;
  op.first_id = m->next_file_id;
  op.now_ms = FX_T0;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE;
  rec.create = &op;
  assert_int_equal(mst_apply(m, &rec), 0);
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(m->ns, path, strlen(path), &info), 0);
  for (unsigned i = 0; i < n; i++) {
    Cairn__V1__OpAddChunk add = CAIRN__V1__OP_ADD_CHUNK__INIT;
    add.file_id = info.id;
    add.index = i;
    add.handle = first_handle + i;
    add.version = version;
    Cairn__V1__OplogRecord r2 = CAIRN__V1__OPLOG_RECORD__INIT;
    r2.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
    r2.add_chunk = &add;
    assert_int_equal(mst_apply(m, &r2), 0);
  }
  return info.id;
}

typedef struct fx_rep {
  uint64_t handle, version, length;
  bool corrupt;
} fx_rep;

/* RegisterServer for `id` in `zone` reporting reps[0..n); returns what
 * mst_server_register returns. `out` may be NULL. */
static inline int fx_register(fx *f, const char *id, const char *zone, uint64_t cap,
                              uint64_t free_b, const fx_rep *reps, size_t n, int64_t now,
                              mst_instr_out *out) {
  char data[96], rpc[96];
  snprintf(data, sizeof data, "127.0.0.1:%d", 20000 + (int)(strlen(id) * 7 + (unsigned char)id[0]));
  snprintf(rpc, sizeof rpc, "127.0.0.1:%d", 30000 + (int)(strlen(id) * 7 + (unsigned char)id[0]));
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  a.id = (char *)id;
  a.data_addr = data;
  a.rpc_addr = rpc;
  a.zone = (char *)zone;
  Cairn__V1__ReplicaReport *rr = cmn_calloc(n + 1, sizeof *rr);
  Cairn__V1__ReplicaReport **rp = cmn_calloc(n + 1, sizeof *rp);
  for (size_t i = 0; i < n; i++) {
    cairn__v1__replica_report__init(&rr[i]);
    rr[i].handle = reps[i].handle;
    rr[i].version = reps[i].version;
    rr[i].length = reps[i].length;
    rr[i].corrupt = reps[i].corrupt;
    rp[i] = &rr[i];
  }
  Cairn__V1__RegisterRequest req = CAIRN__V1__REGISTER_REQUEST__INIT;
  req.addr = &a;
  req.capacity_bytes = cap;
  req.free_bytes = free_b;
  req.n_replicas = n;
  req.replicas = rp;
  req.cluster_id = (char *)FX_CLUSTER;
  char err[256];
  int rc = mst_server_register(&f->m, &req, now, out, err, sizeof err);
  free(rr);
  free(rp);
  return rc;
}

/* Heartbeat with an incremental report; returns mst_server_heartbeat's
 * result, *rereg the re-register flag. `out` may be NULL. */
static inline int fx_heartbeat(fx *f, const char *id, const fx_rep *added, size_t nadded,
                               const uint64_t *removed, size_t nremoved, const uint64_t *leases,
                               size_t nleases, int64_t now, bool *rereg, mst_instr_out *out) {
  Cairn__V1__ReplicaReport *rr = cmn_calloc(nadded + 1, sizeof *rr);
  Cairn__V1__ReplicaReport **rp = cmn_calloc(nadded + 1, sizeof *rp);
  for (size_t i = 0; i < nadded; i++) {
    cairn__v1__replica_report__init(&rr[i]);
    rr[i].handle = added[i].handle;
    rr[i].version = added[i].version;
    rr[i].length = added[i].length;
    rr[i].corrupt = added[i].corrupt;
    rp[i] = &rr[i];
  }
  Cairn__V1__HeartbeatRequest req = CAIRN__V1__HEARTBEAT_REQUEST__INIT;
  req.server_id = (char *)id;
  req.capacity_bytes = 100 * (uint64_t)FX_CHUNK;
  req.free_bytes = 50 * (uint64_t)FX_CHUNK;
  req.n_added = nadded;
  req.added = rp;
  req.n_removed = nremoved;
  req.removed = (uint64_t *)removed;
  req.n_lease_extensions = nleases;
  req.lease_extensions = (uint64_t *)leases;
  bool rr_flag = false;
  char err[256];
  int rc = mst_server_heartbeat(&f->m, &req, now, rereg ? rereg : &rr_flag, out, err, sizeof err);
  free(rr);
  free(rp);
  return rc;
}

/* Takes server idx's pending instructions. */
static inline int fx_take(fx *f, uint16_t idx, mst_instr_out *out) {
  pthread_rwlock_wrlock(&f->m.lock);
  int n = mst_server_take_instructions(&f->m, idx, 10000, out);
  pthread_rwlock_unlock(&f->m.lock);
  return n;
}

/* The instruction of `kind` for `handle` in *out, or NULL. */
static inline const Cairn__V1__ServerInstruction *fx_find(const mst_instr_out *out, int kind,
                                                          uint64_t handle) {
  for (size_t i = 0; i < out->n; i++)
    if ((int)out->v[i]->kind == kind && out->v[i]->handle == handle) return out->v[i];
  return NULL;
}

static inline mst_chunk_info fx_chunk(fx *f, uint64_t handle) {
  mst_chunk_info ci;
  assert_int_equal(mst_chunks_get(f->m.chunks, handle, &ci), 0);
  return ci;
}

static inline bool fx_holds(fx *f, uint64_t handle, int idx) {
  mst_chunk_info ci = fx_chunk(f, handle);
  for (unsigned i = 0; i < ci.nrep; i++)
    if (ci.replicas[i] == idx) return true;
  return false;
}

static inline int fx_idx(fx *f, const char *id) { return mst_servers_find(f->m.servers, id); }

#endif /* MASTER_FIXTURE_H */
