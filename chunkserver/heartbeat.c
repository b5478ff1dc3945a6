/*
 * heartbeat.c - registration, heartbeats and the master's instructions.
 *
 * The thread's loop: (re-)register with the full replica report, then one
 * heartbeat per interval until the master asks for a new registration or
 * the thread is stopped. Instructions run in the thread, except clones,
 * which copy a whole replica over the data plane and run on their own
 * threads (at most CLONE_THREADS at once; more wait for the next reply).
 */
#include "cs_heartbeat.h"

#include "cairn_error.h"
#include "cmn_dpclient.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "cs_leases.h"
#include "cs_twopc.h"
#include "chunkserver.pb-c.h"
#include "master.pb-c.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLONE_THREADS 2
#define MAX_REPORTS 10000
#define RPC_TIMEOUT_MS 10000
#define CLONE_TIMEOUT_MS 30000

struct report {
  uint64_t handle, version, length;
  bool corrupt, removed;
};

struct cs_heartbeat {
  cs_server *s;
  pthread_t thread;
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t cv;
  bool stop;
  bool kicked;
  bool connected;
  char cluster_id[64];
  struct report *reports;
  size_t nreports, capreports;
  int clones_running;
  uint32_t interval_ms;
};

/* ---- cluster id kept in the data dirs ------------------------------------ */

/* Every data dir's CLUSTER file must agree (or be absent). */
static int load_cluster_id(cs_heartbeat *hb) {
  cs_store_usage u;
  cs_store_stats(hb->s->store, &u);
  for (size_t i = 0; i < u.ndirs; i++) {
    char *path = cmn_sprintf("%s/CLUSTER", u.dirs[i].path);
    char *text = NULL;
    int rc = cmn_read_file(path, 256, &text, NULL);
    free(path);
    if (rc == CAIRN_ENOENT) continue;
    if (rc != 0) return rc;
    text[strcspn(text, " \r\n")] = '\0';
    if (hb->cluster_id[0] && strcmp(hb->cluster_id, text) != 0) {
      CMN_ERROR("heartbeat", "data dirs belong to different clusters dir=%s cluster=%s other=%s",
                u.dirs[i].path, text, hb->cluster_id);
      free(text);
      return CAIRN_ECONFIG;
    }
    snprintf(hb->cluster_id, sizeof hb->cluster_id, "%s", text);
    free(text);
  }
  return 0;
}

static void save_cluster_id(cs_heartbeat *hb, const char *id) {
  if (!id || !*id || strcmp(id, hb->cluster_id) == 0) return;
  snprintf(hb->cluster_id, sizeof hb->cluster_id, "%s", id);
  cs_store_usage u;
  cs_store_stats(hb->s->store, &u);
  char line[80];
  snprintf(line, sizeof line, "%s\n", id);
  for (size_t i = 0; i < u.ndirs; i++) {
    if (u.dirs[i].state == CS_STORE_DIR_FAILED) continue;
    char *path = cmn_sprintf("%s/CLUSTER", u.dirs[i].path);
    int rc = cmn_write_file_atomic(path, line, strlen(line), 0644);
    if (rc != 0) CMN_WARN("heartbeat", "cannot record cluster id path=%s error=%s", path, cairn_err_name(rc));
    free(path);
  }
  CMN_INFO("heartbeat", "joined cluster cluster_id=%s", id);
}

/* ---- incremental reports ---------------------------------------------------- */

static void push_report(cs_heartbeat *hb, const struct report *r) {
  pthread_mutex_lock(&hb->mu);
  if (hb->nreports < MAX_REPORTS) { /* beyond it the next full report catches up */
    if (hb->nreports == hb->capreports) {
      hb->capreports = hb->capreports ? 2 * hb->capreports : 64;
      hb->reports = cmn_realloc(hb->reports, hb->capreports * sizeof *hb->reports);
    }
    hb->reports[hb->nreports++] = *r;
  }
  pthread_mutex_unlock(&hb->mu);
}

void cs_heartbeat_report_added(cs_heartbeat *hb, uint64_t handle, uint64_t version,
                               uint64_t length, bool corrupt) {
  struct report r = {handle, version, length, corrupt, false};
  push_report(hb, &r);
}

void cs_heartbeat_report_removed(cs_heartbeat *hb, uint64_t handle) {
  struct report r = {handle, 0, 0, false, true};
  push_report(hb, &r);
}

void cs_heartbeat_kick(cs_heartbeat *hb) {
  pthread_mutex_lock(&hb->mu);
  hb->kicked = true;
  pthread_cond_signal(&hb->cv);
  pthread_mutex_unlock(&hb->mu);
}

bool cs_heartbeat_connected(cs_heartbeat *hb) {
  pthread_mutex_lock(&hb->mu);
  bool c = hb->connected;
  pthread_mutex_unlock(&hb->mu);
  return c;
}

/* ---- instructions --------------------------------------------------------------- */

struct clone_job {
  cs_heartbeat *hb;
  uint64_t handle, version;
  char source[300];     /* data-plane address */
  char source_rpc[300]; /* control address (for the replica's length) */
};

/* The committed length of the source's replica, which the import must know
 * before the bytes come. The master only clones chunks without a valid
 * lease, so the length does not move meanwhile (if it did, the import's
 * length check fails the clone and the master orders it again). */
static int source_length(cs_server *s, const struct clone_job *j, uint64_t *len) {
  cmn_rpc_channel *ch;
  int rc = cmn_rpc_pool_get(s->peers, j->source_rpc, &ch);
  if (rc != 0) return rc;
  Cairn__V1__ChunkInfoRequest req = CAIRN__V1__CHUNK_INFO_REQUEST__INIT;
  req.handle = j->handle;
  ProtobufCMessage *reply = NULL;
  rc = cmn_rpc_call_unary(ch, &cairn__v1__chunkserver__descriptor, "ChunkInfo", &req.base, &reply,
                          RPC_TIMEOUT_MS, NULL);
  if (rc != 0) return rc;
  const Cairn__V1__ChunkInfoReply *r = (const Cairn__V1__ChunkInfoReply *)reply;
  if (!r->replica || r->replica->version != j->version) rc = CAIRN_ESTALE;
  else if (r->replica->corrupt) rc = CAIRN_ECORRUPT;
  else *len = r->replica->length;
  protobuf_c_message_free_unpacked(reply, NULL);
  return rc;
}

struct clone_sink {
  cs_store_import_ctx *imp;
  int rc;
};

static int clone_piece(void *arg, const void *data, size_t len, uint32_t crc) {
  struct clone_sink *k = arg;
  if (k->rc == 0) k->rc = cs_store_import_write(k->imp, data, len, crc);
  return k->rc;
}

/* Copy a whole replica from its source over the data plane into the store
 * (CRCs verified piece by piece, published atomically), then report it. */
static void *clone_main(void *arg) {
  struct clone_job *j = arg;
  cs_heartbeat *hb = j->hb;
  cs_server *s = hb->s;
  int64_t t0 = cmn_mono_ms();
  cmn_dp_conn *conn = NULL;
  cs_store_replica have;
  uint64_t total = 0;
  int rc = source_length(s, j, &total);
  if (rc == 0) rc = cmn_dp_connect(j->source, s->secret, CLONE_TIMEOUT_MS, &conn);
  cs_leases_lock(s->leases, j->handle);
  if (rc == 0 && cs_store_info(s->store, j->handle, &have) == 0 && have.version >= j->version)
    rc = CAIRN_EEXIST;
  struct clone_sink sink = {NULL, 0};
  if (rc == 0) rc = cs_store_import_begin(s->store, j->handle, j->version, total, &sink.imp);
  uint64_t got = 0;
  if (rc == 0) rc = cmn_dp_clone(conn, j->handle, j->version, clone_piece, &sink, &got);
  if (rc == 0 && sink.rc != 0) rc = sink.rc;
  if (rc == 0) {
    rc = cs_store_import_finish(sink.imp);
  } else {
    cs_store_import_cancel(sink.imp);
  }
  cs_leases_unlock(s->leases, j->handle);
  cmn_dp_close(conn);
  if (rc == 0) {
    cs_heartbeat_report_added(hb, j->handle, j->version, got, false);
    cs_heartbeat_kick(hb);
    CMN_INFO("clone", "replica copied handle=%llu version=%llu bytes=%llu source=%s ms=%lld",
             (unsigned long long)j->handle, (unsigned long long)j->version,
             (unsigned long long)got, j->source, (long long)(cmn_mono_ms() - t0));
  } else if (rc != CAIRN_EEXIST) {
    CMN_WARN("clone", "copy failed handle=%llu version=%llu source=%s error=%s",
             (unsigned long long)j->handle, (unsigned long long)j->version, j->source,
             cairn_err_name(rc));
  }
  pthread_mutex_lock(&hb->mu);
  hb->clones_running--;
  pthread_cond_broadcast(&hb->cv);
  pthread_mutex_unlock(&hb->mu);
  free(j);
  return NULL;
}

static void start_clone(cs_heartbeat *hb, const Cairn__V1__ServerInstruction *in) {
  if (!in->source || !in->source->data_addr || !*in->source->data_addr ||
      !in->source->rpc_addr || !*in->source->rpc_addr)
    return;
  pthread_mutex_lock(&hb->mu);
  bool room = hb->clones_running < CLONE_THREADS && !hb->stop;
  if (room) hb->clones_running++;
  pthread_mutex_unlock(&hb->mu);
  if (!room) return; /* the master re-orders it when its clone times out */
  struct clone_job *j = cmn_calloc(1, sizeof *j);
  j->hb = hb;
  j->handle = in->handle;
  j->version = in->version;
  snprintf(j->source, sizeof j->source, "%s", in->source->data_addr);
  snprintf(j->source_rpc, sizeof j->source_rpc, "%s", in->source->rpc_addr);
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &attr, clone_main, j) != 0) {
    pthread_mutex_lock(&hb->mu);
    hb->clones_running--;
    pthread_mutex_unlock(&hb->mu);
    free(j);
  }
  pthread_attr_destroy(&attr);
}

static void run_instruction(cs_heartbeat *hb, const Cairn__V1__ServerInstruction *in) {
  cs_server *s = hb->s;
  int rc = 0;
  switch (in->kind) {
  case CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE:
    cs_leases_lock(s->leases, in->handle);
    rc = cs_store_delete(s->store, in->handle, in->version);
    cs_leases_unlock(s->leases, in->handle);
    if (rc == 0 || rc == CAIRN_ENOENT) cs_heartbeat_report_removed(hb, in->handle);
    CMN_DEBUG("heartbeat", "delete handle=%llu version=%llu result=%s",
              (unsigned long long)in->handle, (unsigned long long)in->version, cairn_err_name(rc));
    break;
  case CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_CLONE:
    start_clone(hb, in);
    break;
  case CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_SET_VERSION: {
    /* Through the 2PC layer, like the master's SetVersion RPC: it takes the
     * chunk mutex, resolves an undecided mutation in the way and drops a
     * lease of the old version. */
    cs_store_replica r;
    rc = cs_store_info(s->store, in->handle, &r);
    if (rc == 0 && r.version < in->version) {
      Cairn__V1__SetVersionRequest req = CAIRN__V1__SET_VERSION_REQUEST__INIT;
      req.handle = in->handle;
      req.old_version = r.version;
      req.new_version = in->version;
      char err[256];
      rc = cs_twopc_set_version(s, &req, err, sizeof err);
    }
    if (rc != 0)
      CMN_WARN("heartbeat", "set version failed handle=%llu version=%llu error=%s",
               (unsigned long long)in->handle, (unsigned long long)in->version, cairn_err_name(rc));
    break;
  }
  case CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_LEASE:
    cs_leases_extend(s->leases, in->handle, in->version, in->lease_expiry_ms);
    break;
  default:
    CMN_WARN("heartbeat", "unknown instruction kind=%d", (int)in->kind);
  }
}

/* ---- registration and heartbeats ---------------------------------------------------- */

struct full_report {
  Cairn__V1__ReplicaReport *v;
  Cairn__V1__ReplicaReport **p;
  size_t n, cap;
};

static int add_full(void *arg, const cs_store_replica *r) {
  struct full_report *f = arg;
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 256;
    f->v = cmn_realloc(f->v, f->cap * sizeof *f->v);
  }
  Cairn__V1__ReplicaReport *x = &f->v[f->n++];
  cairn__v1__replica_report__init(x);
  x->handle = r->handle;
  x->version = r->version;
  x->length = r->length;
  x->corrupt = r->corrupt;
  return 0;
}

static bool any_dir_degraded(const cs_store_usage *u) {
  for (size_t i = 0; i < u->ndirs; i++)
    if (u->dirs[i].state != CS_STORE_DIR_OK) return true;
  return false;
}

static Cairn__V1__ServerAddress our_address(cs_server *s) {
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  a.id = (char *)s->id;
  a.data_addr = s->data_addr;
  a.rpc_addr = s->rpc_addr;
  a.zone = s->cfg.zone;
  return a;
}

static void run_instructions(cs_heartbeat *hb, Cairn__V1__ServerInstruction **v, size_t n) {
  for (size_t i = 0; i < n; i++) run_instruction(hb, v[i]);
}

static int do_register(cs_heartbeat *hb) {
  cs_server *s = hb->s;
  struct full_report f = {0};
  /* Reports queued before this point are covered by the full report. */
  pthread_mutex_lock(&hb->mu);
  hb->nreports = 0;
  pthread_mutex_unlock(&hb->mu);
  cs_store_foreach(s->store, add_full, &f);
  f.p = cmn_calloc(f.n + 1, sizeof *f.p);
  for (size_t i = 0; i < f.n; i++) f.p[i] = &f.v[i];
  cs_store_usage u;
  cs_store_stats(s->store, &u);
  Cairn__V1__ServerAddress a = our_address(s);
  Cairn__V1__RegisterRequest req = CAIRN__V1__REGISTER_REQUEST__INIT;
  req.addr = &a;
  req.capacity_bytes = u.capacity;
  req.free_bytes = u.free < u.capacity ? u.free : u.capacity;
  req.n_replicas = f.n;
  req.replicas = f.p;
  req.cluster_id = hb->cluster_id;
  ProtobufCMessage *reply = NULL;
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(s->master, &cairn__v1__master__descriptor, "RegisterServer",
                              &req.base, &reply, RPC_TIMEOUT_MS, &st);
  free(f.v);
  free(f.p);
  if (rc != 0) {
    CMN_WARN("heartbeat", "registration failed master=%s error=%s message=\"%s\"", s->cfg.master,
             cairn_err_name(rc), st.message);
    return rc;
  }
  Cairn__V1__RegisterReply *r = (Cairn__V1__RegisterReply *)reply;
  if (r->chunk_size != cs_store_chunk_size(s->store)) {
    CMN_ERROR("heartbeat", "chunk size differs from the cluster's ours=%llu cluster=%llu",
              (unsigned long long)cs_store_chunk_size(s->store),
              (unsigned long long)r->chunk_size);
    protobuf_c_message_free_unpacked(reply, NULL);
    return CAIRN_ECONFIG;
  }
  save_cluster_id(hb, r->cluster_id);
  hb->interval_ms = r->heartbeat_interval_ms ? r->heartbeat_interval_ms : 3000;
  CMN_INFO("heartbeat", "registered master=%s id=%s replicas=%zu interval_ms=%u", s->cfg.master,
           s->id, f.n, hb->interval_ms);
  run_instructions(hb, r->instructions, r->n_instructions);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

/* One heartbeat. Returns 0, 1 when the master wants a new registration, or
 * an error. */
static int do_heartbeat(cs_heartbeat *hb) {
  cs_server *s = hb->s;
  pthread_mutex_lock(&hb->mu);
  struct report *reps = hb->reports;
  size_t nrep = hb->nreports;
  hb->reports = NULL;
  hb->nreports = hb->capreports = 0;
  pthread_mutex_unlock(&hb->mu);

  Cairn__V1__ReplicaReport *added = cmn_calloc(nrep + 1, sizeof *added);
  Cairn__V1__ReplicaReport **addedp = cmn_calloc(nrep + 1, sizeof *addedp);
  uint64_t *removed = cmn_calloc(nrep + 1, sizeof *removed);
  size_t na = 0, nr = 0;
  for (size_t i = 0; i < nrep; i++) {
    if (reps[i].removed) {
      removed[nr++] = reps[i].handle;
      continue;
    }
    cairn__v1__replica_report__init(&added[na]);
    added[na].handle = reps[i].handle;
    added[na].version = reps[i].version;
    added[na].length = reps[i].length;
    added[na].corrupt = reps[i].corrupt;
    addedp[na] = &added[na];
    na++;
  }
  uint64_t ext[256];
  size_t next = cs_leases_wanted(s->leases, cmn_wall_ms(), ext, CMN_ARRAY_LEN(ext));
  cs_store_usage u;
  cs_store_stats(s->store, &u);
  Cairn__V1__HeartbeatRequest req = CAIRN__V1__HEARTBEAT_REQUEST__INIT;
  req.server_id = (char *)s->id;
  req.capacity_bytes = u.capacity;
  req.free_bytes = u.free < u.capacity ? u.free : u.capacity;
  req.chunk_count = (uint32_t)u.chunks;
  req.n_added = na;
  req.added = addedp;
  req.n_removed = nr;
  req.removed = removed;
  req.n_lease_extensions = next;
  req.lease_extensions = ext;
  req.read_only = any_dir_degraded(&u);
  ProtobufCMessage *reply = NULL;
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(s->master, &cairn__v1__master__descriptor, "Heartbeat", &req.base,
                              &reply, RPC_TIMEOUT_MS, &st);
  if (rc != 0) {
    /* Keep the reports for the next attempt. */
    for (size_t i = 0; i < nrep; i++) push_report(hb, &reps[i]);
    CMN_WARN("heartbeat", "heartbeat failed master=%s error=%s message=\"%s\"", s->cfg.master,
             cairn_err_name(rc), st.message);
  } else {
    Cairn__V1__HeartbeatReply *r = (Cairn__V1__HeartbeatReply *)reply;
    if (r->reregister) rc = 1;
    else run_instructions(hb, r->instructions, r->n_instructions);
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  free(reps);
  free(added);
  free(addedp);
  free(removed);
  return rc;
}

/* Sleep up to `ms` or until kicked or stopped. Returns true when stopping. */
static bool pause_ms(cs_heartbeat *hb, int64_t ms) {
  struct timespec ts;
  cmn_deadline_in(&ts, ms);
  pthread_mutex_lock(&hb->mu);
  while (!hb->stop && !hb->kicked) {
    if (pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) == ETIMEDOUT) break;
  }
  hb->kicked = false;
  bool stop = hb->stop;
  pthread_mutex_unlock(&hb->mu);
  return stop;
}

static void set_connected(cs_heartbeat *hb, bool c) {
  pthread_mutex_lock(&hb->mu);
  hb->connected = c;
  pthread_mutex_unlock(&hb->mu);
}

static void *hb_main(void *arg) {
  cs_heartbeat *hb = arg;
  int64_t backoff = 200;
  for (;;) {
    int rc = do_register(hb);
    if (rc == CAIRN_ECONFIG) {
      CMN_ERROR("heartbeat", "this server cannot join the cluster; not retrying");
      set_connected(hb, false);
      while (!pause_ms(hb, 60000)) {
      }
      return NULL;
    }
    if (rc != 0) {
      set_connected(hb, false);
      if (pause_ms(hb, backoff)) return NULL;
      backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
      continue;
    }
    backoff = 200;
    set_connected(hb, true);
    for (;;) {
      if (pause_ms(hb, hb->interval_ms)) return NULL;
      rc = do_heartbeat(hb);
      if (rc == 1) {
        CMN_INFO("heartbeat", "master asked to register again");
        break;
      }
      set_connected(hb, rc == 0);
    }
  }
}

int cs_heartbeat_start(cs_server *s, cs_heartbeat **out) {
  cs_heartbeat *hb = cmn_calloc(1, sizeof *hb);
  hb->s = s;
  hb->interval_ms = 3000;
  pthread_mutex_init(&hb->mu, NULL);
  pthread_cond_init(&hb->cv, NULL);
  int rc = load_cluster_id(hb);
  if (rc == 0 && pthread_create(&hb->thread, NULL, hb_main, hb) != 0) rc = CAIRN_ENOMEM;
  if (rc != 0) {
    pthread_mutex_destroy(&hb->mu);
    pthread_cond_destroy(&hb->cv);
    free(hb);
    return rc;
  }
  *out = hb;
  return 0;
}

void cs_heartbeat_stop(cs_heartbeat *hb) {
  if (!hb) return;
  pthread_mutex_lock(&hb->mu);
  hb->stop = true;
  pthread_cond_broadcast(&hb->cv);
  pthread_mutex_unlock(&hb->mu);
  pthread_join(hb->thread, NULL);
  pthread_mutex_lock(&hb->mu);
  while (hb->clones_running > 0) pthread_cond_wait(&hb->cv, &hb->mu);
  pthread_mutex_unlock(&hb->mu);
  free(hb->reports);
  pthread_mutex_destroy(&hb->mu);
  pthread_cond_destroy(&hb->cv);
  free(hb);
}
