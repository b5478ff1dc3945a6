/*
 * repair.c - re-replication, drains, rebalancing moves and trimming of
 * extra replicas (see mst_background.h for the rules), and the background
 * state they share: the clones in flight and the watch list.
 *
 * Two lists feed the clone planner. The chunk table's repair queue holds
 * chunks with fewer replicas than their goal, most urgent first. The watch
 * list holds what that queue cannot express: chunks whose replica count
 * reaches the goal but whose effective count (replicas on servers neither
 * dead nor draining) does not, and chunks with extra copies waiting to be
 * trimmed. Both are worked on in bounded rounds under the write lock; a
 * chunk that cannot progress now (no target, throttle, lease) is put back
 * and retried a second later, never in a busy loop.
 *
 * The clone table is a plain array: clones in flight are bounded by
 * clones_per_server times the number of servers, tens to hundreds, so a
 * linear search is cheaper than any index.
 */
#include "bg_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_placement.h"

#include <stdlib.h>
#include <string.h>

#define ROUND_MAX_CHUNKS 256   /* chunks looked at per repair round, per list */
#define ROUND_MAX_DEFERS 16    /* consecutive chunks that could not be placed: stop */
#define RETRY_MS 1000          /* a chunk put back is retried after this */
#define CLONE_TIMEOUT_BEATS 10 /* a clone not done in this many heartbeats is abandoned */

/* ---- state ----------------------------------------------------------------- */

mst_bg *mst_bg_state(mst_master *m) {
  if (m->bg_state) return m->bg_state;
  pthread_mutex_lock(&m->bg_lock);
  bool stopping = m->stopping;
  pthread_mutex_unlock(&m->bg_lock);
  if (stopping) return NULL;
  m->bg_state = cmn_calloc(1, sizeof *m->bg_state);
  return m->bg_state;
}

void mst_bg_free(mst_master *m) {
  pthread_rwlock_wrlock(&m->lock);
  mst_bg *bg = m->bg_state;
  m->bg_state = NULL;
  pthread_rwlock_unlock(&m->lock);
  if (!bg) return;
  free(bg->clones);
  free(bg->watch);
  mst__u64map_free(&bg->watched);
  free(bg);
}

void mst_background_stats(mst_master *m, mst_bg_stats *out) {
  memset(out, 0, sizeof *out);
  const mst_bg *bg = m->bg_state;
  if (!bg) return;
  *out = bg->st;
  out->clones_in_flight = bg->nclones;
  out->moves_in_flight = 0;
  for (size_t i = 0; i < bg->nclones; i++)
    if (bg->clones[i].move_from != MST_SERVER_NONE) out->moves_in_flight++;
  out->watched = bg->nwatch;
}

void mst_bg_kick(mst_master *m) {
  mst_bg *bg = mst_bg_state(m);
  if (bg) bg->repair_not_before = 0;
  pthread_mutex_lock(&m->bg_lock);
  pthread_cond_signal(&m->bg_cond);
  pthread_mutex_unlock(&m->bg_lock);
}

int mst_bg_queue_delete(mst_master *m, uint16_t idx, uint64_t handle, uint64_t version) {
  mst_instr in = {.kind = MST_INSTR_DELETE, .handle = handle, .version = version};
  int rc = mst_servers_queue(m->servers, idx, &in);
  mst_bg *bg = mst_bg_state(m);
  if (rc >= 0 && bg) bg->st.deletes_ordered++;
  return rc;
}

/* ---- helpers ----------------------------------------------------------------- */

static const char *sid(const mst_master *m, uint16_t idx) {
  const mst_server *s = mst_servers_get(m->servers, idx);
  return s ? s->id : "?";
}

/* A replica on server idx counts toward the goal: the server is known,
 * not dead and not draining. */
static bool counts(const mst_master *m, uint16_t idx) {
  const mst_server *s = mst_servers_get(m->servers, idx);
  return s && !s->dead && !s->draining;
}

static unsigned effective(const mst_master *m, const mst_chunk_info *ci) {
  unsigned n = 0;
  for (unsigned i = 0; i < ci->nrep; i++) n += counts(m, ci->replicas[i]) ? 1u : 0u;
  return n;
}

static bool chunk_trashed(const mst_master *m, const mst_chunk_info *ci) {
  mst_ns_info info;
  return ci->file_id != 0 && mst_ns_stat_id(m->ns, ci->file_id, &info) == 0 && info.trashed;
}

static unsigned clones_of(const mst_bg *bg, uint64_t handle, uint16_t *targets, unsigned cap) {
  unsigned n = 0;
  for (size_t i = 0; i < bg->nclones; i++) {
    if (bg->clones[i].handle != handle) continue;
    if (targets && n < cap) targets[n] = bg->clones[i].target;
    n++;
  }
  return n;
}

static void watch_add(mst_bg *bg, uint64_t handle, int64_t not_before) {
  if (!mst__u64map_put(&bg->watched, handle, 1)) return; /* already watched */
  if (bg->nwatch == bg->cwatch) {
    bg->cwatch = bg->cwatch ? bg->cwatch * 2 : 64;
    bg->watch = cmn_realloc(bg->watch, bg->cwatch * sizeof *bg->watch);
  }
  bg->watch[bg->nwatch++] = (bg_watch){handle, not_before};
}

/* A chunk still at version 1 was allocated but never leased, so never
 * written: its replicas exist only in this table (servers create the file
 * at the first lease). One that lost every copy (its servers died before
 * the first write) has lost no bytes: its copies are chosen anew instead of
 * waiting forever for a replica that never existed. */
static void replace_unwritten(mst_master *m, mst_chunk_info *ci) {
  uint16_t out[MST_CHUNK_REPLICAS_MAX];
  mst_place_opts o = {.min_free_bytes = m->cfg.chunk_size,
                      .creation_cap = (uint32_t)m->cfg.creation_cap};
  mst_place_req r = {.k = ci->goal, .allow_fewer = true};
  int n = mst_place_targets(m->servers, &o, &r, mst_now_ms(), &m->rng, out);
  for (int i = 0; i < n; i++) (void)mst_chunks_add_replica(m->chunks, ci->handle, out[i]);
  if (n > 0) {
    CMN_INFO("repair", "never-written chunk placed anew handle=%llu replicas=%d",
             (unsigned long long)ci->handle, n);
    (void)mst_chunks_get(m->chunks, ci->handle, ci);
  }
}

void mst_bg_check(mst_master *m, uint64_t handle) {
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, handle, &ci) != 0) return;
  if (ci.version == 1 && ci.nrep == 0) replace_unwritten(m, &ci);
  if (ci.nrep < ci.goal) {
    (void)mst_chunks_repair_enqueue(m->chunks, handle, chunk_trashed(m, &ci));
    return;
  }
  mst_bg *bg = mst_bg_state(m);
  if (bg && (ci.nrep > ci.goal || effective(m, &ci) < ci.goal)) watch_add(bg, handle, 0);
}

/* ---- clones ------------------------------------------------------------------ */

/* Removes clone i from the table and releases its throttle counters. */
static bg_clone clone_drop(mst_master *m, mst_bg *bg, size_t i) {
  bg_clone c = bg->clones[i];
  (void)mst_servers_clone_end(m->servers, c.source, c.target);
  bg->clones[i] = bg->clones[--bg->nclones];
  return c;
}

/* Orders the clone: CLONE instruction to the target, throttle counters,
 * the record with its start time. */
static int clone_start(mst_master *m, mst_bg *bg, uint64_t handle, uint64_t version, uint16_t src,
                       uint16_t dst, uint16_t move_from, int64_t now) {
  mst_instr in = {.kind = MST_INSTR_CLONE, .source = src, .handle = handle, .version = version};
  int rc = mst_servers_queue(m->servers, dst, &in);
  if (rc < 0) return rc;
  (void)mst_servers_clone_begin(m->servers, src, dst);
  (void)mst_servers_note_creation(m->servers, dst, now);
  if (bg->nclones == bg->cclones) {
    bg->cclones = bg->cclones ? bg->cclones * 2 : 16;
    bg->clones = cmn_realloc(bg->clones, bg->cclones * sizeof *bg->clones);
  }
  bg->clones[bg->nclones++] = (bg_clone){handle, version, src, dst, move_from, now};
  bg->st.clones_started++;
  cmn_counter_inc(m->m_clones);
  CMN_INFO("repair", "%s started handle=%llu version=%llu source=%s target=%s",
           move_from == MST_SERVER_NONE ? "clone" : "move", (unsigned long long)handle,
           (unsigned long long)version, sid(m, src), sid(m, dst));
  return 0;
}

int mst_bg_clone_reported(mst_master *m, uint16_t target, uint64_t handle, uint64_t version,
                          bool good, uint16_t *move_from) {
  mst_bg *bg = mst_bg_state(m);
  if (!bg) return 0;
  for (size_t i = 0; i < bg->nclones; i++) {
    if (bg->clones[i].handle != handle || bg->clones[i].target != target) continue;
    bg_clone c = clone_drop(m, bg, i);
    if (good && version == c.version) {
      bg->st.clones_done++;
      if (c.move_from != MST_SERVER_NONE) bg->st.moves_done++;
      if (move_from) *move_from = c.move_from;
      return 1;
    }
    bg->st.clones_failed++;
    CMN_WARN("repair", "clone failed handle=%llu target=%s reported_version=%llu "
             "clone_version=%llu good=%d",
             (unsigned long long)handle, sid(m, target), (unsigned long long)version,
             (unsigned long long)c.version, good ? 1 : 0);
    return 2;
  }
  return 0;
}

void mst_bg_clone_finish(mst_master *m, uint64_t handle, uint16_t move_from, int64_t now_ms) {
  (void)mst_bg_trim(m, handle, move_from, now_ms);
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, handle, &ci) == 0 && ci.nrep >= ci.goal &&
      (ci.flags & MST_CHUNK_F_CORRUPT))
    (void)mst_chunks_set_flags(m->chunks, handle, MST_CHUNK_F_CORRUPT, false);
  mst_bg_check(m, handle);
  mst_bg_kick(m);
}

int mst_bg_server_reset(mst_master *m, uint16_t idx) {
  mst_bg *bg = mst_bg_state(m);
  if (!bg) return 0;
  uint64_t *handles = NULL;
  size_t n = 0;
  for (size_t i = 0; i < bg->nclones;) {
    if (bg->clones[i].source != idx && bg->clones[i].target != idx) {
      i++;
      continue;
    }
    bg_clone c = clone_drop(m, bg, i);
    bg->st.clones_abandoned++;
    handles = cmn_realloc(handles, (n + 1) * sizeof *handles);
    handles[n++] = c.handle;
    CMN_INFO("repair", "clone abandoned handle=%llu source=%s target=%s reason=server_reset",
             (unsigned long long)c.handle, sid(m, c.source), sid(m, c.target));
  }
  for (size_t i = 0; i < n; i++) mst_bg_check(m, handles[i]);
  free(handles);
  return (int)n;
}

/*
 * Starts the clones chunk `handle` needs to reach its goal in effective
 * replicas, counting clones already in flight. Holders that count and
 * in-flight targets are passed to placement as holders (never chosen, their
 * zones taken); holders that do not count (draining) are excluded, so their
 * zones are free to receive. Returns the number of clones started (0 when
 * none is needed), or a negative code when the chunk must wait:
 * CAIRN_EBUSY (valid lease, clone throttle) or CAIRN_ENOSERVERS.
 */
static int plan_clones(mst_master *m, mst_bg *bg, uint64_t handle, int64_t now) {
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, handle, &ci) != 0 || ci.nrep == 0) return 0;
  uint16_t holders[2 * MST_CHUNK_REPLICAS_MAX], excl[MST_CHUNK_REPLICAS_MAX];
  size_t nh = 0, ne = 0;
  for (unsigned i = 0; i < ci.nrep; i++) {
    if (counts(m, ci.replicas[i])) holders[nh++] = ci.replicas[i];
    else excl[ne++] = ci.replicas[i];
  }
  unsigned eff = (unsigned)nh;
  unsigned inflight = clones_of(bg, handle, holders + nh, MST_CHUNK_REPLICAS_MAX);
  nh += CMN_MIN(inflight, MST_CHUNK_REPLICAS_MAX);
  int need = (int)ci.goal - (int)eff - (int)inflight;
  if (need <= 0) return 0;
  if (mst_chunks_write_busy(m->chunks, handle, now) == 1) return CAIRN_EBUSY;
  uint32_t cps = (uint32_t)m->cfg.clones_per_server;
  mst_place_opts o = {.min_free_bytes = m->cfg.chunk_size,
                      .creation_cap = (uint32_t)m->cfg.creation_cap,
                      .max_clones_as_target = cps};
  mst_place_req r = {.k = (unsigned)need, .holders = holders, .n_holders = nh, .exclude = excl,
                     .n_exclude = ne, .allow_fewer = true};
  uint16_t targets[MST_CHUNK_REPLICAS_MAX];
  int n = mst_place_targets(m->servers, &o, &r, now, &m->rng, targets);
  if (n < 0) return n;
  int started = 0, rc = 0;
  for (int i = 0; i < n; i++) {
    int src = mst_place_clone_source(m->servers, m->chunks, handle, cps, &m->rng);
    if (src < 0) {
      rc = src;
      break;
    }
    rc = clone_start(m, bg, handle, ci.version, (uint16_t)src, targets[i], MST_SERVER_NONE, now);
    if (rc < 0) break;
    started++;
  }
  if (started > 0) return started;
  return rc < 0 ? rc : CAIRN_EBUSY;
}

/* ---- trimming ---------------------------------------------------------------- */

/* Preference class of deleting replica i of set[0..n): lower goes first. */
static int trim_class(const mst_master *m, const uint16_t *set, size_t n, size_t i,
                      uint16_t prefer) {
  if (set[i] == prefer) return 0;
  if (!counts(m, set[i])) return 1;
  const mst_server *s = mst_servers_get(m->servers, set[i]);
  for (size_t j = 0; j < n; j++) {
    if (j == i) continue;
    const mst_server *o = mst_servers_get(m->servers, set[j]);
    if (o && s && o->zone_id == s->zone_id) return 2;
  }
  return 3;
}

int mst_bg_trim(mst_master *m, uint64_t handle, uint16_t prefer, int64_t now_ms) {
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, handle, &ci) != 0 || ci.nrep <= ci.goal) return 0;
  mst_bg *bg = mst_bg_state(m);
  if (bg && clones_of(bg, handle, NULL, 0) > 0) return 0; /* a source may be copied from */
  unsigned eff = effective(m, &ci);
  if (eff < ci.goal) return 0;
  if (ci.flags & MST_CHUNK_F_GRANTING) return 0; /* the grant pushes to every replica */
  uint16_t holder = MST_SERVER_NONE;
  if (mst_chunks_lease_valid(m->chunks, handle, now_ms, &holder) != 1) holder = MST_SERVER_NONE;
  uint16_t set[MST_CHUNK_REPLICAS_MAX];
  size_t n = ci.nrep;
  memcpy(set, ci.replicas, n * sizeof set[0]);
  int deleted = 0;
  while (n > ci.goal) {
    int best = -1, best_cls = 99;
    double best_util = -1.0;
    for (size_t i = 0; i < n; i++) {
      if (set[i] == holder) continue;
      bool c = counts(m, set[i]);
      if (c && eff <= ci.goal) continue; /* would fall below the goal */
      int cls = trim_class(m, set, n, i, prefer);
      const mst_server *s = mst_servers_get(m->servers, set[i]);
      double u = s ? mst_server_util(s) : 1.0;
      if (cls < best_cls || (cls == best_cls && u > best_util)) {
        best = (int)i;
        best_cls = cls;
        best_util = u;
      }
    }
    if (best < 0) break;
    uint16_t victim = set[best];
    if (counts(m, victim)) eff--;
    (void)mst_chunks_remove_replica(m->chunks, handle, victim);
    (void)mst_bg_queue_delete(m, victim, handle, ci.version);
    if (bg) bg->st.trimmed++;
    CMN_INFO("repair", "extra replica deleted handle=%llu server=%s replicas=%zu goal=%u",
             (unsigned long long)handle, sid(m, victim), n - 1, (unsigned)ci.goal);
    set[best] = set[--n];
    deleted++;
  }
  return deleted;
}

/* ---- repair rounds ------------------------------------------------------------ */

/* One watched chunk: returns true to keep watching it (retry later). */
static bool watch_eval(mst_master *m, mst_bg *bg, uint64_t handle, int64_t now, int *started) {
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, handle, &ci) != 0) return false;
  if (ci.nrep < ci.goal) {
    (void)mst_chunks_repair_enqueue(m->chunks, handle, chunk_trashed(m, &ci));
    return false;
  }
  if (effective(m, &ci) < ci.goal) {
    int rc = plan_clones(m, bg, handle, now);
    if (rc > 0) *started += rc;
    return rc < 0;
  }
  if (ci.nrep > ci.goal) {
    if (clones_of(bg, handle, NULL, 0) > 0) return true;
    (void)mst_bg_trim(m, handle, MST_SERVER_NONE, now);
    return mst_chunks_replica_count(m->chunks, handle) > (int)ci.goal;
  }
  return false;
}

int mst_bg_repair(mst_master *m, int64_t now_ms) {
  pthread_rwlock_wrlock(&m->lock);
  mst_bg *bg = mst_bg_state(m);
  if (!bg || now_ms < bg->repair_not_before) {
    pthread_rwlock_unlock(&m->lock);
    return 0;
  }
  int started = 0, failures = 0, in_row = 0;
  /* Chunks that could not be placed go back in the queue after the round,
   * so one round does not pop the same chunk twice. */
  mst_repair_item back[ROUND_MAX_CHUNKS];
  size_t nback = 0;
  mst_repair_item it;
  for (int k = 0; k < ROUND_MAX_CHUNKS && in_row < ROUND_MAX_DEFERS; k++) {
    if (mst_chunks_repair_pop(m->chunks, &it) != 1) break;
    int rc = plan_clones(m, bg, it.handle, now_ms);
    if (rc >= 0) {
      started += rc;
      in_row = 0;
      continue;
    }
    back[nback++] = it;
    failures++;
    in_row++;
  }
  for (size_t i = 0; i < nback; i++)
    (void)mst_chunks_repair_enqueue(m->chunks, back[i].handle, back[i].trashed);

  size_t w = 0, looked = 0, n0 = bg->nwatch;
  for (size_t i = 0; i < n0; i++) {
    bg_watch e = bg->watch[i];
    bool keep = true;
    if (looked < ROUND_MAX_CHUNKS && e.not_before_ms <= now_ms) {
      looked++;
      keep = watch_eval(m, bg, e.handle, now_ms, &started);
      if (keep) {
        e.not_before_ms = now_ms + RETRY_MS;
        failures++;
      }
    }
    if (keep) bg->watch[w++] = e;
    else mst__u64map_del(&bg->watched, e.handle, NULL);
  }
  /* Entries added during the walk (if a step ever adds some) stay. */
  for (size_t i = n0; i < bg->nwatch; i++) bg->watch[w++] = bg->watch[i];
  bg->nwatch = w;
  if (started == 0 && failures > 0) bg->repair_not_before = now_ms + RETRY_MS;
  pthread_rwlock_unlock(&m->lock);
  return started;
}

int mst_bg_expire(mst_master *m, int64_t now_ms) {
  pthread_rwlock_wrlock(&m->lock);
  mst_bg *bg = mst_bg_state(m);
  int abandoned = 0;
  int64_t limit = CLONE_TIMEOUT_BEATS * m->cfg.heartbeat_interval_ms;
  for (size_t i = 0; bg && i < bg->nclones;) {
    const bg_clone *c = &bg->clones[i];
    bool gone = mst_chunks_get(m->chunks, c->handle, NULL) != 0;
    if (!gone && now_ms - c->started_ms <= limit) {
      i++;
      continue;
    }
    bg_clone d = clone_drop(m, bg, i);
    bg->st.clones_abandoned++;
    abandoned++;
    CMN_WARN("repair", "clone abandoned handle=%llu source=%s target=%s reason=%s",
             (unsigned long long)d.handle, sid(m, d.source), sid(m, d.target),
             gone ? "chunk_removed" : "timeout");
    if (!gone) mst_bg_check(m, d.handle);
  }
  (void)mst_chunks_expire_leases(m->chunks, now_ms);
  pthread_rwlock_unlock(&m->lock);
  return abandoned;
}

/* ---- scan ---------------------------------------------------------------------- */

struct scan_ctx {
  const mst_master *m;
  uint64_t *v;
  size_t n, cap;
};

static int scan_visit(void *arg, const mst_chunk_info *ci) {
  struct scan_ctx *x = arg;
  bool want = (ci->nrep < ci->goal && !ci->queued) || ci->nrep > ci->goal ||
              (ci->nrep > 0 && effective(x->m, ci) < ci->goal);
  if (!want) return 0;
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 256;
    x->v = cmn_realloc(x->v, x->cap * sizeof *x->v);
  }
  x->v[x->n++] = ci->handle;
  return 0;
}

/*
 * The table is walked under the shared lock (O(chunks), no change), the
 * chunks found are then handled under the write lock; anything that
 * changed in between is re-read there.
 */
int mst_bg_scan(mst_master *m, int64_t now_ms) {
  struct scan_ctx x = {.m = m};
  pthread_rwlock_rdlock(&m->lock);
  (void)mst_chunks_iterate(m->chunks, scan_visit, &x);
  pthread_rwlock_unlock(&m->lock);
  int deleted = 0;
  pthread_rwlock_wrlock(&m->lock);
  for (size_t i = 0; i < x.n; i++) {
    deleted += mst_bg_trim(m, x.v[i], MST_SERVER_NONE, now_ms);
    mst_bg_check(m, x.v[i]);
  }
  mst_bg *bg = mst_bg_state(m);
  if (bg) bg->st.last_scan_ms = now_ms;
  pthread_rwlock_unlock(&m->lock);
  free(x.v);
  return deleted;
}

/* ---- rebalancing ----------------------------------------------------------------- */

int mst_bg_rebalance(mst_master *m, int64_t now_ms) {
  if (m->cfg.rebalance_moves <= 0) return 0;
  size_t max = (size_t)m->cfg.rebalance_moves;
  mst_move *moves = cmn_malloc(max * sizeof *moves);
  mst_rebalance_opts o = {.threshold = (double)m->cfg.rebalance_threshold_pct / 100.0,
                          .min_free_bytes = m->cfg.chunk_size};
  uint32_t cps = (uint32_t)m->cfg.clones_per_server;
  int started = 0;
  pthread_rwlock_wrlock(&m->lock);
  mst_bg *bg = mst_bg_state(m);
  int n = bg ? mst_place_rebalance(m->servers, m->chunks, &o, now_ms, &m->rng, moves, max) : 0;
  for (int i = 0; i < n; i++) {
    const mst_move *mv = &moves[i];
    const mst_server *from = mst_servers_get(m->servers, mv->from);
    const mst_server *to = mst_servers_get(m->servers, mv->to);
    mst_chunk_info ci;
    if (!from || !to || from->clones_as_source >= cps || to->clones_as_target >= cps ||
        clones_of(bg, mv->handle, NULL, 0) > 0 || mst_chunks_get(m->chunks, mv->handle, &ci) != 0)
      continue;
    if (clone_start(m, bg, mv->handle, ci.version, mv->from, mv->to, mv->from, now_ms) == 0)
      started++;
  }
  if (bg) bg->st.last_rebalance_ms = now_ms;
  pthread_rwlock_unlock(&m->lock);
  free(moves);
  return started;
}
