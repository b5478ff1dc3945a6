/*
 * background.c - the master's background thread: liveness of chunkservers,
 * the repair / scan / rebalance rounds of repair.c, garbage collection of
 * the trash, lease and clone expiry, and checkpoints.
 *
 * The thread wakes every BG_TICK_MS (sooner when bg_cond is signalled: a
 * log that reached its checkpoint threshold, a new server, a drain) and runs
 * each step in turn. A step takes the write lock for its own short stretch;
 * nothing holds it across an RPC, a sleep or an fsync wait. Checkpoints are
 * started and reaped here without the lock (persist.c takes it for the
 * fork).
 */
#include "bg_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BG_TICK_MS 200
#define BG_SCAN_MS 10000        /* over-replication / drain scan period */
#define BG_CKPT_RETRY_MS 10000  /* after a checkpoint that could not start */
#define BG_DEAD_BATCH 64
#define BG_GC_BATCH 1000

/* ---- liveness -------------------------------------------------------------------- */

static void on_lost(void *arg, uint64_t handle, unsigned nrep, unsigned goal) {
  (void)nrep;
  (void)goal;
  mst_bg_check(arg, handle);
}

/*
 * Servers silent for longer than dead_after are dead: their clones are
 * abandoned first (while their throttle counters still mean something),
 * then their replicas leave every set and the chunks that fell short are
 * queued. Their pending instructions were dropped by the server table; a
 * server that comes back registers with a full report.
 */
int mst_bg_liveness(mst_master *m, int64_t now_ms) {
  uint16_t died[BG_DEAD_BATCH];
  int total = 0, n;
  pthread_rwlock_wrlock(&m->lock);
  do {
    n = mst_servers_tick(m->servers, now_ms, m->cfg.dead_after_ms, died, BG_DEAD_BATCH);
    for (int i = 0; i < n; i++) {
      (void)mst_bg_server_reset(m, died[i]);
      int lost = mst_chunks_remove_server(m->chunks, died[i], on_lost, m);
      CMN_WARN("liveness", "replicas of dead server dropped id=%s replicas=%d",
               mst_servers_get(m->servers, died[i])->id, lost);
    }
    total += n > 0 ? n : 0;
  } while (n == BG_DEAD_BATCH);
  mst_bg *bg = mst_bg_state(m);
  if (bg) bg->st.servers_died += (uint64_t)total;
  pthread_rwlock_unlock(&m->lock);
  return total;
}

/* ---- garbage collection ------------------------------------------------------------ */

/*
 * Trash entries older than the trash period go for good: each is an OpPurge
 * record applied and logged like any mutation (nobody waits for it to be
 * durable: a purge lost in a crash is simply done again). Applying it
 * removes the chunks and queues a DELETE to every holder.
 */
int mst_bg_gc(mst_master *m, int64_t now_ms) {
  int64_t before = now_ms - m->cfg.trash_period_ms;
  if (before <= 0) return 0;
  uint64_t *ids = cmn_malloc(BG_GC_BATCH * sizeof *ids);
  int purged = 0;
  pthread_rwlock_wrlock(&m->lock);
  int n = mst_ns_trash_expired(m->ns, before, ids, BG_GC_BATCH);
  for (int i = 0; i < n; i++) {
    Cairn__V1__OpPurge op = CAIRN__V1__OP_PURGE__INIT;
    op.file_id = ids[i];
    op.now_ms = now_ms;
    Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_PURGE;
    rec.purge = &op;
    int rc = mst_apply(m, &rec);
    if (rc != 0) {
      CMN_WARN("gc", "purge failed file_id=%llu error=%s", (unsigned long long)ids[i],
               cairn_err_name(rc));
      continue;
    }
    mst_log_record(m, &rec, NULL, NULL);
    cmn_counter_inc(m->m_purged);
    purged++;
  }
  mst_bg *bg = mst_bg_state(m);
  if (bg) bg->st.purged += (uint64_t)purged;
  pthread_rwlock_unlock(&m->lock);
  free(ids);
  if (purged > 0) CMN_INFO("gc", "trash purged entries=%d", purged);
  return purged;
}

/* ---- checkpoints ----------------------------------------------------------------- */

/* Reaps a finished checkpoint writer and starts a new one when the log grew
 * by checkpoint_records, or grew at all and checkpoint_interval passed. */
static void checkpoint_step(mst_master *m, int64_t mono, int64_t *retry_at) {
  mst_checkpoint_poll(m, false);
  if (!m->log || m->ckpt_child > 0 || mono < *retry_at) return;
  uint64_t since = atomic_load(&m->records_since_ckpt);
  if (since == 0) return;
  bool by_count = m->cfg.checkpoint_records > 0 && since >= (uint64_t)m->cfg.checkpoint_records;
  bool by_time = m->cfg.checkpoint_interval_ms > 0 &&
                 mono - m->last_ckpt_ms >= m->cfg.checkpoint_interval_ms;
  if (!by_count && !by_time) return;
  int rc = mst_checkpoint_start(m);
  if (rc != 0 && rc != CAIRN_EBUSY) *retry_at = mono + BG_CKPT_RETRY_MS;
}

/* ---- the thread ------------------------------------------------------------------ */

static bool should_stop(mst_master *m) {
  pthread_mutex_lock(&m->bg_lock);
  bool s = m->stopping;
  pthread_mutex_unlock(&m->bg_lock);
  return s;
}

/* Sleeps up to ms on bg_cond (a signal or stop ends it early). */
static void nap(mst_master *m, int64_t ms) {
  struct timespec ts;
  cmn_deadline_in(&ts, ms);
  pthread_mutex_lock(&m->bg_lock);
  if (!m->stopping) (void)pthread_cond_timedwait(&m->bg_cond, &m->bg_lock, &ts);
  pthread_mutex_unlock(&m->bg_lock);
}

static void *bg_main(void *arg) {
  mst_master *m = arg;
  int64_t start = cmn_mono_ms();
  int64_t settle = start + m->cfg.dead_after_ms; /* start-up grace, see mst_background.h */
  int64_t next_scan = settle;
  int64_t next_rebalance = settle + m->cfg.rebalance_interval_ms;
  int64_t ckpt_retry = 0;
  CMN_INFO("background", "started grace_ms=%lld", (long long)m->cfg.dead_after_ms);
  while (!should_stop(m)) {
    int64_t now = mst_now_ms(), mono = cmn_mono_ms();
    (void)mst_bg_liveness(m, now);
    (void)mst_bg_expire(m, now);
    if (mono >= settle) {
      (void)mst_bg_repair(m, now);
      if (mono >= next_scan) {
        (void)mst_bg_scan(m, now);
        next_scan = mono + BG_SCAN_MS;
      }
      if (m->cfg.rebalance_moves > 0 && mono >= next_rebalance) {
        (void)mst_bg_rebalance(m, now);
        next_rebalance = mono + m->cfg.rebalance_interval_ms;
      }
    }
    (void)mst_bg_gc(m, now);
    checkpoint_step(m, mono, &ckpt_retry);
    nap(m, BG_TICK_MS);
  }
  CMN_INFO("background", "stopped");
  return NULL;
}

int mst_background_start(mst_master *m) {
  if (m->bg_started) return CAIRN_EBUSY;
  pthread_rwlock_wrlock(&m->lock);
  mst_bg *bg = mst_bg_state(m);
  pthread_rwlock_unlock(&m->lock);
  if (!bg) return CAIRN_ECLOSED;
  int err = pthread_create(&m->bg, NULL, bg_main, m);
  if (err != 0) {
    CMN_ERROR("background", "cannot start thread error=%s", strerror(err));
    return cmn_errno_to_cairn(err);
  }
  m->bg_started = true;
  return 0;
}

void mst_background_stop(mst_master *m) {
  pthread_mutex_lock(&m->bg_lock);
  m->stopping = true;
  pthread_cond_broadcast(&m->bg_cond);
  pthread_mutex_unlock(&m->bg_lock);
  if (m->bg_started) {
    pthread_join(m->bg, NULL);
    m->bg_started = false;
  }
  mst_checkpoint_poll(m, true);
  mst_bg_free(m);
}
