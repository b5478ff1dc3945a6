/*
 * dataplane_stage.c - the stager: for a push whose PUSH_BEGIN says where
 * its bytes are expected to land, write them into the replica file while
 * they arrive (cs_store.h, staging), on the libuv thread pool, one job at a
 * time, so that the prepare that follows finds them on disk. Beside the
 * writes, a sync job makes what is written durable every dp->stage_sync
 * bytes, so the disk flushes while the push arrives rather than all in the
 * prepare, and the writer never waits for a flush.
 *
 * A stager lives on the loop thread and outlives its connection: the push
 * may end (PUSH_ACK, next push on the same connection) or the connection
 * close while jobs still run. It holds the push (cs_pushbuf_hold) so the
 * bytes it reads stay allocated, and the data plane (cs__dp_ref) so the
 * loop outlives it. The connection feeds it the count of bytes appended
 * and detaches once the push is finished (complete or not); the stager
 * then writes what remains, or gives up, and frees itself.
 *
 * Staging is only an optimisation: any refusal or failure just stops it,
 * and the prepare writes the bytes from the push buffer as it would have.
 */
#include "dataplane_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <inttypes.h>
#include <stdlib.h>

/* Bytes gathered before a write job starts, and the most one job writes. */
#define STAGE_PIECE (1u << 20)
#define STAGE_JOB_MAX (8u << 20)

typedef enum job_kind { JOB_BEGIN = 0, JOB_WRITE, JOB_END } job_kind;

struct cs__dp_stager {
  uv_work_t work;
  cs_dataplane *dp;
  cs_push *push;
  const uint8_t *bytes;
  cmn_frame_place place;
  uint64_t total;
  uint64_t have;    /* appended to the push so far */
  uint64_t staged;  /* written to the replica file */
  cs_stage *stage;  /* NULL until begun, and after a refusal */
  bool busy;        /* a job is on the thread pool */
  uv_work_t sync_work;
  bool syncing;     /* a sync job is on the thread pool */
  uint64_t sync_at; /* `staged` when the last sync job began */
  int sync_rc;
  bool stopped;     /* no more writes: refused, failed, or abandoned */
  bool detached;    /* the connection let go */
  job_kind job;
  uint64_t job_len; /* JOB_WRITE: bytes at `staged` */
  int job_rc;
};

static void pump(cs__dp_stager *g);

static void stage_work(uv_work_t *w) {
  cs__dp_stager *g = w->data;
  cs_store *store = g->dp->store;
  switch (g->job) {
  case JOB_BEGIN:
    g->job_rc = cs_store_stage_begin(store, g->place.handle, g->place.version, g->place.offset,
                                     g->total, &g->stage); /* left NULL when refused */
    break;
  case JOB_WRITE:
    g->job_rc = cs_store_stage_write(g->stage, g->bytes + g->staged, (size_t)g->job_len);
    break;
  case JOB_END:
    cs_store_stage_end(g->stage);
    g->stage = NULL;
    g->job_rc = 0;
    break;
  }
}

/* The sync job: only while the stage is begun and not ended (pump holds
 * the end back while it runs). */
static void sync_work(uv_work_t *w) {
  cs__dp_stager *g = w->data;
  int rc = g->sync_rc = cs_store_stage_sync(g->stage);
  if (rc != 0 && rc != CAIRN_ECANCELED)
    CMN_WARN(CS__DP_LOG, "staged bytes not synced handle=%" PRIu64 ": %s", g->place.handle,
             cairn_err_name(rc));
}

static void sync_after(uv_work_t *w, int status) {
  cs__dp_stager *g = w->data;
  g->syncing = false;
  if (status == 0 && g->sync_rc == 0) {
    cs__dp_stat_add(&g->dp->st.stage_syncs, 1);
    if (g->dp->m_stage_syncs) cmn_counter_inc(g->dp->m_stage_syncs);
  }
  pump(g);
}

static void stager_free(cs__dp_stager *g) {
  cs_dataplane *dp = g->dp;
  cs_pushbuf_unhold(g->push);
  free(g);
  cs__dp_unref(dp);
}

static void stage_after(uv_work_t *w, int status) {
  cs__dp_stager *g = w->data;
  g->busy = false;
  if (status != 0 && g->job_rc == 0) g->job_rc = CAIRN_ECANCELED; /* not run */
  if (g->job != JOB_END && g->job_rc != 0) {
    CMN_DEBUG(CS__DP_LOG, "%s handle=%" PRIu64 " at=%" PRIu64 " reason=%s",
              g->job == JOB_BEGIN ? "not staged" : "staging stopped", g->place.handle,
              g->staged, cairn_err_name(g->job_rc));
    g->stopped = true;
  } else if (g->job == JOB_WRITE) {
    g->staged += g->job_len;
  }
  pump(g);
}

static void queue_job(cs__dp_stager *g, job_kind kind, uint64_t len) {
  g->job = kind;
  g->job_len = len;
  g->job_rc = 0;
  g->busy = true;
  if (uv_queue_work(g->dp->loop, &g->work, stage_work, stage_after) != 0) {
    /* Only with a closing loop: run inline rather than leak the stage. */
    stage_work(&g->work);
    stage_after(&g->work, 0);
  }
}

/*
 * Start a sync job beside the writes once dp->stage_sync bytes were staged
 * since the last one began (none running, more bytes to come); then, if no
 * write job is running, the next one once a piece is ready (or the last
 * bytes are), the end once nothing more will be written (all bytes staged,
 * or staging stopped) and no sync runs, and the stager's own end once that
 * is done and the connection has let go.
 */
static void pump(cs__dp_stager *g) {
  if (g->stage && !g->stopped && !g->syncing && g->staged < g->total &&
      g->staged - g->sync_at >= g->dp->stage_sync) {
    /* The last bytes are left to the prepare's own fdatasync. */
    g->sync_at = g->staged;
    g->syncing = true;
    g->sync_work.data = g;
    if (uv_queue_work(g->dp->loop, &g->sync_work, sync_work, sync_after) != 0)
      g->syncing = false; /* a closing loop: the prepare syncs */
  }
  if (g->busy) return;
  if (g->stopped || g->staged == g->total) {
    if (g->syncing) return; /* sync_after pumps again */
    if (g->stage)
      queue_job(g, JOB_END, 0);
    else if (g->detached)
      stager_free(g);
    return;
  }
  uint64_t ready = g->have - g->staged;
  if (ready == 0 || (ready < STAGE_PIECE && g->have < g->total)) return;
  queue_job(g, JOB_WRITE, ready < STAGE_JOB_MAX ? ready : STAGE_JOB_MAX);
}

cs__dp_stager *cs__dp_stage_start(cs_dataplane *dp, cs_push *push, const cmn_frame_place *place,
                                  uint64_t total) {
  if (!dp->store || total < CS__DP_STAGE_MIN) return NULL;
  cs__dp_stager *g = cmn_calloc(1, sizeof *g);
  g->work.data = g;
  g->dp = dp;
  g->push = push;
  g->bytes = cs_pushbuf_bytes(push);
  g->place = *place;
  g->total = total;
  cs_pushbuf_hold(push);
  cs__dp_ref(dp);
  queue_job(g, JOB_BEGIN, 0);
  return g;
}

void cs__dp_stage_feed(cs__dp_stager *g, uint64_t have) {
  g->have = have;
  pump(g);
}

void cs__dp_stage_detach(cs__dp_stager *g, bool complete) {
  g->detached = true;
  if (!complete) g->stopped = true;
  pump(g);
}

static void reap_work(uv_work_t *w) {
  cs_dataplane *dp = w->data;
  int n = cs_store_stage_reap(dp->store, cs_pushbuf_ttl_ms(dp->push));
  if (n > 0) CMN_INFO(CS__DP_LOG, "idle staged bytes cut off count=%d", n);
}

static void reap_after(uv_work_t *w, int status) {
  (void)status;
  cs_dataplane *dp = w->data;
  dp->reaping = false;
  cs__dp_unref(dp);
}

void cs__dp_stage_reap(cs_dataplane *dp) {
  if (!dp->store || !dp->push || dp->reaping || dp->stopping) return;
  dp->reap_work.data = dp;
  if (uv_queue_work(dp->loop, &dp->reap_work, reap_work, reap_after) != 0) return;
  dp->reaping = true;
  cs__dp_ref(dp);
}
