/*
 * svc_chunks.c - chunk RPCs of cairn.v1.Master: LookupChunks (reads),
 * PrepareWrite (allocation and leases) and CompleteWrite (file size).
 *
 * Lease grant (GFS §3.1): when a writer asks for a chunk with no valid lease,
 * the master bumps the chunk's version, makes the bump durable, and pushes it
 * to every replica with SetVersion (the one chosen as primary also learns
 * its lease and the replica set) before it hands the lease out. A replica
 * that does not take the new version leaves the replica set (its copy is
 * stale now) and the chunk is queued for repair. Only one grant per chunk
 * runs at a time; a second writer meanwhile gets CAIRN_EBUSY and retries.
 *
 * A new chunk is created at version 1 and never handed out at that version:
 * its first lease bumps it to 2, and a chunkserver without the replica
 * creates it when told "1 -> 2" (see SetVersionRequest).
 */
#include "mst_master.h"
#include "mst_servers_svc.h"
#include "svc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "chunkserver.pb-c.h"
#include "mst_background.h"
#include "mst_placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOKUP_MAX 1024

/* ---- replies ------------------------------------------------------------- */

/* Storage for one ChunkLocation and its replica addresses. The strings
 * point into the server table: valid while the lock is held, so replies
 * built from it are sent before the lock is released, or copied. */
struct loc_buf {
  Cairn__V1__ChunkLocation loc;
  Cairn__V1__ServerAddress addrs[MST_CHUNK_REPLICAS_MAX];
  Cairn__V1__ServerAddress *ptrs[MST_CHUNK_REPLICAS_MAX];
  cmn_buf strings; /* copies, when the reply outlives the lock */
};

static void fill_addr(Cairn__V1__ServerAddress *a, const mst_server *s) {
  cairn__v1__server_address__init(a);
  a->id = (char *)s->id;
  a->data_addr = (char *)s->data_addr;
  a->rpc_addr = (char *)s->rpc_addr;
  a->zone = (char *)s->zone;
}

/* Fill a location from the chunk table (caller holds the lock). Dead
 * servers are left out; with `primary` != MST_SERVER_NONE it goes first. */
static void fill_loc(mst_master *m, struct loc_buf *b, const mst_chunk_info *ci, uint16_t primary,
                     int64_t lease_expiry, uint16_t *idx_out) {
  cairn__v1__chunk_location__init(&b->loc);
  b->loc.handle = ci->handle;
  b->loc.version = ci->version;
  b->loc.index = ci->index;
  b->loc.length = ci->length;
  size_t n = 0;
  const mst_server *p = primary != MST_SERVER_NONE ? mst_servers_get(m->servers, primary) : NULL;
  if (p && !p->dead) {
    fill_addr(&b->addrs[n], p);
    b->ptrs[n] = &b->addrs[n];
    n++;
    b->loc.primary_id = (char *)p->id;
    b->loc.lease_expiry_ms = lease_expiry;
    if (idx_out) idx_out[n - 1] = primary;
  }
  for (unsigned i = 0; i < ci->nrep; i++) {
    if (ci->replicas[i] == primary) continue;
    const mst_server *s = mst_servers_get(m->servers, ci->replicas[i]);
    if (!s || s->dead) continue;
    fill_addr(&b->addrs[n], s);
    b->ptrs[n] = &b->addrs[n];
    if (idx_out) idx_out[n] = ci->replicas[i];
    n++;
  }
  b->loc.n_replicas = n;
  b->loc.replicas = b->ptrs;
}

/* Copy every string of a filled location into b->strings so the location
 * stays valid after the lock is released. */
static void detach_loc(struct loc_buf *b) {
  size_t total = 0;
  for (size_t i = 0; i < b->loc.n_replicas; i++) {
    Cairn__V1__ServerAddress *a = &b->addrs[i];
    total += strlen(a->id) + strlen(a->data_addr) + strlen(a->rpc_addr) + strlen(a->zone) + 4;
  }
  total += strlen(b->loc.primary_id) + 1;
  cmn_buf_reserve(&b->strings, total); /* no reallocation below: pointers stay put */
#define KEEP(field)                                          \
  do {                                                       \
    size_t off_ = b->strings.len;                            \
    cmn_buf_append(&b->strings, (field), strlen(field) + 1); \
    (field) = b->strings.data + off_;                        \
  } while (0)
  for (size_t i = 0; i < b->loc.n_replicas; i++) {
    KEEP(b->addrs[i].id);
    KEEP(b->addrs[i].data_addr);
    KEEP(b->addrs[i].rpc_addr);
    KEEP(b->addrs[i].zone);
  }
  KEEP(b->loc.primary_id);
#undef KEEP
}

/* A deep copy of a filled location (pointers rebased, strings copied). */
static void loc_copy(struct loc_buf *d, const struct loc_buf *src) {
  memset(d, 0, sizeof *d);
  d->loc = src->loc;
  for (size_t i = 0; i < src->loc.n_replicas; i++) {
    d->addrs[i] = *src->loc.replicas[i];
    d->ptrs[i] = &d->addrs[i];
  }
  d->loc.replicas = d->ptrs;
  detach_loc(d); /* copies the strings, still owned by src here */
}

/* ---- LookupChunks ------------------------------------------------------------ */

void mst_svc_lookup_chunks(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__LookupChunksRequest *req = (const Cairn__V1__LookupChunksRequest *)msg;
  size_t count = req->count ? req->count : 64;
  if (count > LOOKUP_MAX) count = LOOKUP_MAX;
  uint64_t *handles = cmn_malloc(count * sizeof *handles);
  struct loc_buf *bufs = NULL;
  Cairn__V1__ChunkLocation **locs = NULL;
  int64_t now = mst_now_ms();
  pthread_rwlock_rdlock(&m->lock);
  mst_ns_info info;
  int rc = mst_ns_stat_id(m->ns, req->file_id, &info);
  if (rc == 0 && info.type != MST_NS_FILE) rc = CAIRN_EISDIR;
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    cmn_rpc_fail(call, rc, "lookup of file %llu: %s", (unsigned long long)req->file_id,
                 cairn_strerror(rc));
    goto done;
  }
  int n = mst_ns_chunks(m->ns, req->file_id, req->first_index, count, handles);
  if (n < 0) n = 0;
  bufs = cmn_calloc((size_t)n + 1, sizeof *bufs);
  locs = cmn_calloc((size_t)n + 1, sizeof *locs);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    mst_chunk_info ci;
    if (mst_chunks_get(m->chunks, handles[i], &ci) != 0) continue;
    uint16_t primary = MST_SERVER_NONE;
    if (mst_chunks_lease_valid(m->chunks, ci.handle, now, &primary) != 1) primary = MST_SERVER_NONE;
    fill_loc(m, &bufs[k], &ci, primary, ci.lease_expiry_ms, NULL);
    locs[k] = &bufs[k].loc;
    k++;
  }
  Cairn__V1__LookupChunksReply r = CAIRN__V1__LOOKUP_CHUNKS_REPLY__INIT;
  r.n_chunks = k;
  r.chunks = locs;
  r.file_size = info.size;
  /* Strings point into the server table: answer while the lock is held
   * (cmn_rpc_reply serializes before it returns). */
  cmn_rpc_reply(call, &r.base);
  pthread_rwlock_unlock(&m->lock);
done:
  free(bufs);
  free(locs);
  free(handles);
}

/* ---- allocation -------------------------------------------------------------- */

static mst_place_opts place_opts(const mst_master *m) {
  mst_place_opts o = {0};
  o.min_free_bytes = m->cfg.chunk_size;
  o.creation_cap = (uint32_t)m->cfg.creation_cap;
  return o;
}

/*
 * Allocate chunk `index` of file `info` (caller holds the write lock):
 * choose servers, apply and log OpAddChunk, record the replicas. The
 * replicas exist on the servers only once the first lease is granted.
 */
static int allocate_chunk(mst_master *m, const mst_ns_info *info, uint64_t index, int64_t now) {
  uint16_t chosen[MST_CHUNK_REPLICAS_MAX];
  mst_place_opts o = place_opts(m);
  mst_place_req r = {.k = info->goal, .allow_fewer = m->cfg.allow_fewer_replicas};
  int n = mst_place_targets(m->servers, &o, &r, now, &m->rng, chosen);
  if (n < 0) return n;
  Cairn__V1__OpAddChunk op = CAIRN__V1__OP_ADD_CHUNK__INIT;
  op.file_id = info->id;
  op.index = index;
  op.handle = m->next_handle;
  op.version = 1;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
  rec.add_chunk = &op;
  int rc = mst_apply(m, &rec);
  if (rc != 0) return rc;
  mst_log_record(m, &rec, NULL, NULL);
  for (int i = 0; i < n; i++) {
    mst_chunks_add_replica(m->chunks, op.handle, chosen[i]);
    mst_servers_note_creation(m->servers, chosen[i], now);
  }
  if ((unsigned)n < info->goal) mst_bg_check(m, op.handle);
  cmn_counter_inc(m->m_chunks_allocated);
  return 0;
}

/* ---- lease grant ----------------------------------------------------------- */

/* A lease grant under way, with the PrepareWrite calls for the same chunk
 * that arrived meanwhile: they get the same answer when it ends (one
 * version bump for all of them, not one each). */
struct mst_grant {
  uint64_t handle;
  struct prep_reply **waiters;
  size_t n, cap;
};

static struct mst_grant *grant_find(mst_master *m, uint64_t handle) {
  for (size_t i = 0; i < m->n_granting; i++)
    if (m->granting[i].handle == handle) return &m->granting[i];
  return NULL;
}

static void grant_add(mst_master *m, uint64_t handle) {
  if (m->n_granting == m->cap_granting) {
    m->cap_granting = m->cap_granting ? 2 * m->cap_granting : 16;
    m->granting = cmn_realloc(m->granting, m->cap_granting * sizeof *m->granting);
  }
  m->granting[m->n_granting++] = (struct mst_grant){.handle = handle};
}

static void grant_wait(struct mst_grant *g, struct prep_reply *p) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 4;
    g->waiters = cmn_realloc(g->waiters, g->cap * sizeof *g->waiters);
  }
  g->waiters[g->n++] = p;
}

/* Remove the grant of `handle`; its waiters go to the caller. */
static struct mst_grant grant_take(mst_master *m, uint64_t handle) {
  struct mst_grant g = {0};
  for (size_t i = 0; i < m->n_granting; i++) {
    if (m->granting[i].handle == handle) {
      g = m->granting[i];
      m->granting[i] = m->granting[--m->n_granting];
      break;
    }
  }
  return g;
}

static void log_refusal(uint64_t handle, const mst_sv_push *p, uint64_t new_v) {
  CMN_WARN("lease", "replica refused new version handle=%llu server=%s version=%llu error=%s "
           "message=\"%s\"",
           (unsigned long long)handle, p->rpc_addr, (unsigned long long)new_v,
           cairn_err_name(p->rc), p->msg);
}

/* Tell one replica its new version (and, for the primary, its lease),
 * logging a refusal. Runs without the lock. */
static int push_version(mst_master *m, const char *rpc_addr, uint64_t handle, uint64_t old_v,
                        uint64_t new_v, int64_t expiry, Cairn__V1__ServerAddress **replicas,
                        size_t nrep) {
  mst_sv_push p = {.rpc_addr = rpc_addr, .expiry = expiry};
  mst_svc_set_versions(m, &p, 1, handle, old_v, new_v, replicas, nrep);
  if (p.rc != 0) log_refusal(handle, &p, new_v);
  return p.rc;
}

struct sv_job {
  mst_master *m;
  mst_sv_push *p;
  uint64_t handle, old_v, new_v;
  Cairn__V1__ServerAddress **replicas;
  size_t nrep;
  pthread_t th;
  bool started;
};

static void *sv_main(void *arg) {
  struct sv_job *j = arg;
  cmn_rpc_status st = {0};
  j->p->rc = mst_svc_set_version(j->m, j->p->rpc_addr, j->handle, j->old_v, j->new_v,
                                 j->p->expiry, j->replicas, j->nrep, &st);
  snprintf(j->p->msg, sizeof j->p->msg, "%.*s", (int)sizeof j->p->msg - 1,
           j->p->rc != 0 ? st.message : "");
  return NULL;
}

void mst_svc_set_versions(mst_master *m, mst_sv_push *p, size_t n, uint64_t handle,
                          uint64_t old_v, uint64_t new_v, Cairn__V1__ServerAddress **replicas,
                          size_t nrep) {
  struct sv_job jobs[MST_CHUNK_REPLICAS_MAX];
  if (n > MST_CHUNK_REPLICAS_MAX) n = MST_CHUNK_REPLICAS_MAX;
  for (size_t i = 0; i < n; i++) {
    jobs[i] = (struct sv_job){.m = m, .p = &p[i], .handle = handle, .old_v = old_v,
                              .new_v = new_v, .replicas = replicas, .nrep = nrep};
    /* The first here; the others on threads of their own (here, too, when
     * no thread can be had). */
    jobs[i].started = i > 0 && pthread_create(&jobs[i].th, NULL, sv_main, &jobs[i]) == 0;
  }
  for (size_t i = 0; i < n; i++)
    if (!jobs[i].started) sv_main(&jobs[i]);
  for (size_t i = 0; i < n; i++)
    if (jobs[i].started) pthread_join(jobs[i].th, NULL);
}

int mst_svc_set_version(mst_master *m, const char *rpc_addr, uint64_t handle, uint64_t old_v,
                        uint64_t new_v, int64_t expiry, Cairn__V1__ServerAddress **replicas,
                        size_t nrep, cmn_rpc_status *st) {
  if (!m->peers) return CAIRN_EUNAVAIL;
  cmn_rpc_channel *ch;
  int rc = cmn_rpc_pool_get(m->peers, rpc_addr, &ch);
  if (rc != 0) return rc;
  Cairn__V1__SetVersionRequest req = CAIRN__V1__SET_VERSION_REQUEST__INIT;
  req.handle = handle;
  req.old_version = old_v;
  req.new_version = new_v;
  req.lease_expiry_ms = expiry;
  req.n_replicas = nrep;
  req.replicas = replicas;
  /* A replica that is only slow (a busy disk, a loaded machine) must not be
   * declared stale for it: SetVersion is idempotent, so one that timed out
   * or could not be reached is asked again a few times before it counts as
   * lost. */
  for (int attempt = 0;; attempt++) {
    ProtobufCMessage *reply = NULL;
    rc = cmn_rpc_call_unary(ch, &cairn__v1__chunkserver__descriptor, "SetVersion", &req.base,
                            &reply, MST_SVC_SET_VERSION_TIMEOUT_MS, st);
    if (reply) protobuf_c_message_free_unpacked(reply, NULL);
    bool unheard = rc == CAIRN_ETIMEDOUT || rc == CAIRN_EUNAVAIL || rc == CAIRN_ECLOSED;
    if (!unheard || attempt == 2) break; /* an answer (even a refusal) is final */
    usleep(200 * 1000);
  }
  return rc;
}

/*
 * Grant a lease on `handle`: bump the version durably, push it to every
 * replica, drop those that do not answer, choose a primary. Called with the
 * write lock held and the handle marked as granting; returns with the lock
 * held (it is released during the disk wait and the RPCs).
 */
static int grant_lease(mst_master *m, uint64_t handle, struct loc_buf *out) {
  mst_chunk_info ci;
  int rc = mst_chunks_get(m->chunks, handle, &ci);
  if (rc != 0) return rc;
  if (ci.nrep == 0) return CAIRN_ENOSERVERS;
  uint64_t old_v = ci.version, new_v = ci.version + 1;
  Cairn__V1__OpSetVersion op = CAIRN__V1__OP_SET_VERSION__INIT;
  op.handle = handle;
  op.version = new_v;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION;
  rec.set_version = &op;
  if ((rc = mst_apply(m, &rec)) != 0) return rc;
  mst_chunks_clear_lease(m->chunks, handle);
  mst_waiter w;
  mst_waiter_init(&w);
  mst_log_record(m, &rec, mst_waiter_done, &w);

  /* Snapshot the replica addresses; choose the least loaded live replica as
   * primary and put it first. */
  ci.version = new_v;
  uint16_t primary = MST_SERVER_NONE;
  uint32_t best = UINT32_MAX;
  for (unsigned i = 0; i < ci.nrep; i++) {
    const mst_server *s = mst_servers_get(m->servers, ci.replicas[i]);
    if (s && !s->dead && s->load < best) {
      best = s->load;
      primary = ci.replicas[i];
    }
  }
  if (primary == MST_SERVER_NONE) {
    pthread_rwlock_unlock(&m->lock);
    mst_waiter_wait(&w);
    pthread_rwlock_wrlock(&m->lock);
    return CAIRN_ENOSERVERS;
  }
  int64_t expiry = mst_now_ms() + m->cfg.lease_ms;
  /* Filled in place: the location's pointers point into *out itself. */
  struct loc_buf *snap = out;
  uint16_t idx[MST_CHUNK_REPLICAS_MAX]; /* server index of each snapshot entry */
  fill_loc(m, snap, &ci, primary, expiry, idx);
  detach_loc(snap);
  pthread_rwlock_unlock(&m->lock);

  rc = mst_waiter_wait(&w); /* the bump is durable before any server hears of it */
  int ok[MST_CHUNK_REPLICAS_MAX] = {0};
  size_t acked = 0, n = snap->loc.n_replicas;
  if (rc == 0) {
    /* All at once: nobody hears of the lease before the grant is answered. */
    mst_sv_push pushes[MST_CHUNK_REPLICAS_MAX];
    for (size_t i = 0; i < n; i++)
      pushes[i] = (mst_sv_push){.rpc_addr = snap->addrs[i].rpc_addr, .expiry = i == 0 ? expiry : 0};
    mst_svc_set_versions(m, pushes, n, handle, old_v, new_v, snap->ptrs, n);
    for (size_t i = 0; i < n; i++) {
      ok[i] = pushes[i].rc == 0;
      if (!ok[i]) log_refusal(handle, &pushes[i], new_v);
      acked += ok[i] ? 1 : 0;
    }
  }
  /* The chosen primary did not take the version: make the first replica
   * that did the primary instead (it already holds the new version; the
   * repeated SetVersion only hands it the lease). */
  if (rc == 0 && acked > 0 && !ok[0]) {
    for (size_t i = 1; i < n; i++) {
      if (!ok[i]) continue;
      Cairn__V1__ServerAddress *t = snap->ptrs[0];
      snap->ptrs[0] = snap->ptrs[i];
      snap->ptrs[i] = t;
      if (push_version(m, snap->ptrs[0]->rpc_addr, handle, old_v, new_v, expiry, snap->ptrs, n) == 0) {
        primary = idx[i];
        snap->loc.primary_id = snap->addrs[i].id;
        break;
      }
      snap->ptrs[i] = snap->ptrs[0];
      snap->ptrs[0] = t;
    }
    if (snap->ptrs[0] == &snap->addrs[0]) rc = CAIRN_EBUSY; /* no replica took the lease */
  }
  if (rc == 0 && acked == 0) rc = CAIRN_EUNAVAIL;

  pthread_rwlock_wrlock(&m->lock);
  /* Replicas that did not take the new version are stale now. Their copies
   * are deleted only when another replica took it: when none did, they are
   * the only copies there are (kept on disk, reported stale, for an
   * operator), not garbage. */
  for (size_t i = 0; i < n; i++) {
    if (ok[i]) continue;
    if (mst_chunks_remove_replica(m->chunks, handle, idx[i]) == 1 && acked > 0)
      (void)mst_bg_queue_delete(m, idx[i], handle, old_v);
  }
  if (acked < n) mst_bg_check(m, handle);
  if (rc == 0) {
    mst_chunks_set_lease(m->chunks, handle, primary, expiry);
    cmn_counter_inc(m->m_leases);
    /* Answer with what the servers acknowledged, primary first. */
    Cairn__V1__ServerAddress *first = snap->ptrs[0];
    size_t k = 0;
    snap->ptrs[k++] = first;
    for (size_t i = 0; i < n; i++)
      if (ok[i] && &snap->addrs[i] != first) snap->ptrs[k++] = &snap->addrs[i];
    snap->loc.n_replicas = k;
  } else {
    cmn_buf_free(&snap->strings);
  }
  return rc;
}

/* ---- PrepareWrite ------------------------------------------------------------ */

struct prep_reply {
  cmn_rpc_call *call;
  struct loc_buf loc;
  uint64_t chunk_size;
};

static void prep_send(void *arg, int status) {
  struct prep_reply *p = arg;
  if (status != 0) {
    cmn_rpc_fail(p->call, status, "metadata log failed");
  } else {
    Cairn__V1__PrepareWriteReply r = CAIRN__V1__PREPARE_WRITE_REPLY__INIT;
    r.chunk = &p->loc.loc;
    r.chunk_size = p->chunk_size;
    cmn_rpc_reply(p->call, &r.base);
  }
  cmn_buf_free(&p->loc.strings);
  free(p);
}

static void prep_fail(struct prep_reply *p, int rc, uint64_t file_id, uint64_t index) {
  cmn_rpc_fail(p->call, rc, "prepare write of file %llu chunk %llu: %s", (unsigned long long)file_id,
               (unsigned long long)index, cairn_strerror(rc));
  cmn_buf_free(&p->loc.strings);
  free(p);
}

/* A lease grant waits on the disk and on RPCs to the chunkservers: it runs
 * on a thread of its own so the RPC workers keep serving. */
struct grant_job {
  mst_master *m;
  struct prep_reply *p;
  uint64_t handle, file_id, index;
};

static void *grant_main(void *arg) {
  struct grant_job *j = arg;
  mst_master *m = j->m;
  pthread_rwlock_wrlock(&m->lock);
  /* While the grant runs, no copy of the chunk may start: it would be taken
   * at the new version and could miss the first writes at it. */
  (void)mst_chunks_set_flags(m->chunks, j->handle, MST_CHUNK_F_GRANTING, true);
  int rc = grant_lease(m, j->handle, &j->p->loc);
  (void)mst_chunks_set_flags(m->chunks, j->handle, MST_CHUNK_F_GRANTING, false);
  struct mst_grant g = grant_take(m, j->handle);
  pthread_rwlock_unlock(&m->lock);
  /* Anything allocated for this request was a new chunk, so this grant
   * logged its version bump after the allocation records and waited for
   * it: they are durable too. */
  for (size_t i = 0; i < g.n; i++) {
    if (rc != 0) {
      prep_fail(g.waiters[i], rc, j->file_id, j->index);
    } else {
      loc_copy(&g.waiters[i]->loc, &j->p->loc);
      prep_send(g.waiters[i], 0);
    }
  }
  free(g.waiters);
  if (rc != 0) prep_fail(j->p, rc, j->file_id, j->index);
  else prep_send(j->p, 0);
  free(j);
  return NULL;
}

void mst_svc_prepare_write(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__PrepareWriteRequest *req = (const Cairn__V1__PrepareWriteRequest *)msg;
  struct prep_reply *p = cmn_calloc(1, sizeof *p);
  p->call = call;
  int64_t now = mst_now_ms();
  pthread_rwlock_wrlock(&m->lock);
  p->chunk_size = m->cfg.chunk_size;
  mst_ns_info info;
  int rc = mst_ns_stat_id(m->ns, req->file_id, &info);
  if (rc == 0 && info.type != MST_NS_FILE) rc = CAIRN_EISDIR;
  if (rc == 0 && info.trashed) rc = CAIRN_ENOENT;
  uint64_t index = req->chunk_index;
  if (req->append) {
    index = info.chunk_count ? info.chunk_count - 1 : 0;
    if (req->min_index > index) index = req->min_index;
  }
  /* A file can grow by at most a few chunks past its end in one call: a
   * client cannot make the master allocate a million chunks at once. */
  if (rc == 0 && index > info.chunk_count + 64) rc = CAIRN_EINVAL;
  for (uint64_t i = info.chunk_count; rc == 0 && i <= index; i++) rc = allocate_chunk(m, &info, i, now);
  uint64_t handle = 0;
  if (rc == 0) rc = mst_ns_chunk_get(m->ns, info.id, index, &handle);
  uint16_t primary = MST_SERVER_NONE;
  mst_chunk_info ci;
  if (rc == 0) rc = mst_chunks_get(m->chunks, handle, &ci);
  if (rc == 0 && mst_chunks_lease_valid(m->chunks, handle, now, &primary) == 1) {
    const mst_server *s = mst_servers_get(m->servers, primary);
    if (s && !s->dead) {
      fill_loc(m, &p->loc, &ci, primary, ci.lease_expiry_ms, NULL);
      detach_loc(&p->loc);
    } else {
      rc = CAIRN_EBUSY; /* the holder died: its lease must expire first */
    }
    pthread_rwlock_unlock(&m->lock);
    if (rc != 0) prep_fail(p, rc, req->file_id, index);
    else prep_send(p, 0);
    return;
  }
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    prep_fail(p, rc, req->file_id, index);
    return;
  }
  struct mst_grant *g = grant_find(m, handle);
  if (g) { /* another writer's grant is under way: share its answer */
    grant_wait(g, p);
    pthread_rwlock_unlock(&m->lock);
    return;
  }
  grant_add(m, handle);
  pthread_rwlock_unlock(&m->lock);
  struct grant_job *j = cmn_malloc(sizeof *j);
  *j = (struct grant_job){m, p, handle, req->file_id, index};
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &attr, grant_main, j) != 0) grant_main(j);
  pthread_attr_destroy(&attr);
}

/* ---- CompleteWrite ---------------------------------------------------------- */

static void after_size(mst_master *m, mst_deferred *d, uint64_t id) {
  mst_ns_info info;
  d->path.len = 0;
  if (mst_ns_stat_id(m->ns, id, &info) != 0) memset(&info, 0, sizeof info);
  else (void)mst_ns_path(m->ns, id, &d->path);
  if (!d->path.data) cmn_buf_append(&d->path, "", 0);
  mst_fill_info(&d->info, &info, d->path.data);
  cairn__v1__file_info_reply__init(&d->u.info);
  d->u.info.info = &d->info;
  d->msg = &d->u.info.base;
}

void mst_svc_complete_write(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__CompleteWriteRequest *req = (const Cairn__V1__CompleteWriteRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  pthread_rwlock_wrlock(&m->lock);
  mst_ns_info info;
  int rc = mst_ns_stat_id(m->ns, req->file_id, &info);
  if (rc == 0 && info.type != MST_NS_FILE) rc = CAIRN_EISDIR;
  /* The size may not run past the chunks the file has. */
  if (rc == 0 && req->end_offset > info.chunk_count * m->cfg.chunk_size) rc = CAIRN_EINVAL;
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    mst_deferred_fail(d, rc, "complete write");
    return;
  }
  if (req->end_offset <= info.size) { /* nothing changes: no record */
    after_size(m, d, info.id);
    pthread_rwlock_unlock(&m->lock);
    mst_deferred_send(d, 0);
    return;
  }
  Cairn__V1__OpSetSize op = CAIRN__V1__OP_SET_SIZE__INIT;
  op.file_id = info.id;
  op.size = req->end_offset;
  op.mtime_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_SIZE;
  rec.set_size = &op;
  rc = mst_apply(m, &rec);
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    mst_deferred_fail(d, rc, "complete write");
    return;
  }
  after_size(m, d, info.id);
  mst_log_record(m, &rec, mst_deferred_send, d);
  pthread_rwlock_unlock(&m->lock);
}
