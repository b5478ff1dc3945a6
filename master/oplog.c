/*
 * oplog.c - appending to the operation log: group commit, the flusher
 * thread, rotation, segment removal, failure handling.
 *
 * Appenders copy a frame (length, lsn, payload; the CRC slot is left empty)
 * into the `fill` batch under the log mutex and signal the flusher. The
 * flusher swaps `fill` with its own `flush` buffer, and outside the lock fills
 * in the CRCs, writes the batch with one write(2) and makes it durable with
 * one fdatasync. Everything appended while that fsync runs forms the next
 * batch, so N concurrent appenders share far fewer than N fsyncs. Only the
 * flusher ever writes a segment, and only the current (last) one.
 *
 * Invariants (under `mu`):
 *  - records durable_lsn + 1 .. next_lsn - 1 are in `flush` (being written)
 *    or in `fill`, in LSN order; pending_bytes counts both buffers;
 *  - once `failed` is set, durable_lsn never moves again and no append is
 *    accepted; records already accepted are reported with CAIRN_EIO.
 */
#include "oplog_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_diskio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "oplog"
/* A batch buffer larger than this is released after its batch is written, so
 * one burst does not pin up to max_pending bytes forever. */
#define BUF_KEEP (4u << 20)

typedef struct pending_cb {
  uint64_t lsn;
  mst_oplog_done_fn cb;
  void *arg;
} pending_cb;

typedef struct cb_list {
  pending_cb *v;
  size_t n, cap;
} cb_list;

struct mst_oplog {
  char *dir;
  size_t max_record, max_pending;
  pthread_t flusher;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;    /* flusher: records, a rotation, or close to handle */
  pthread_cond_t done_cv;    /* durable_lsn moved, rotation finished, or failure */
  pthread_cond_t space_cv;   /* pending_bytes went down */
  /* --- under mu --- */
  cmn_buf fill;
  cb_list fill_cbs;
  size_t fill_records;
  uint64_t next_lsn, durable_lsn;
  size_t pending_bytes;
  int failed, closing;
  int rotate_wanted;         /* a rotation waits for the flusher */
  int rotating;              /* a caller is inside mst_oplog_rotate */
  uint64_t rotate_cut_lsn;   /* records >= this go to the new segment */
  size_t rotate_cut_off;     /* ... and start at this offset of `fill` */
  uint64_t rotations_done;
  uint64_t *segs;            /* first LSN of each segment, ascending */
  size_t nsegs;
  mst_oplog_stats st;
  /* --- flusher thread only --- */
  int fd;
  uint64_t seg_first;
  cmn_buf flush;
  cb_list flush_cbs;
};

static int on_flusher(const mst_oplog *log) {
  return pthread_equal(pthread_self(), log->flusher);
}

/* Fill in the CRC of every frame in buf[0, len): the appenders left it 0. */
static void seal_frames(unsigned char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    uint32_t plen = mst__get_le32(buf + off);
    mst__put_le32(buf + off + 4, mst_oplog__frame_crc(buf + off + 8, plen));
    off += MST_OPLOG__FRAME_SIZE + plen;
  }
}

/* Write bytes to the current segment and fdatasync them. Flusher only. */
static int write_durable(mst_oplog *log, const unsigned char *p, size_t n, uint64_t *fsyncs) {
  int rc = cmn_write_all(log->fd, p, n);
  if (rc != 0) {
    CMN_ERROR(MOD, "write failed dir=%s segment=%016" PRIx64 " bytes=%zu errno=\"%s\"",
              log->dir, log->seg_first, n, strerror(errno));
    return rc;
  }
  (*fsyncs)++;
  if (fdatasync(log->fd) != 0) {
    CMN_ERROR(MOD, "fdatasync failed dir=%s segment=%016" PRIx64 " errno=\"%s\"", log->dir,
              log->seg_first, strerror(errno));
    return CAIRN_EIO;
  }
  return 0;
}

/*
 * Close the current segment and start one at `cut` (flusher only; the old
 * segment's records are already durable). A segment that holds no record yet
 * already starts at `cut`, so it is kept.
 */
static int start_segment(mst_oplog *log, uint64_t cut, uint64_t *fsyncs) {
  if (cut == log->seg_first) return 0;
  int fd;
  int rc = mst_oplog__segment_create(log->dir, cut, &fd);
  if (rc != 0) return rc;
  (*fsyncs)++;
  close(log->fd);
  log->fd = fd;
  log->seg_first = cut;
  pthread_mutex_lock(&log->mu);
  log->segs = cmn_realloc(log->segs, (log->nsegs + 1) * sizeof *log->segs);
  log->segs[log->nsegs++] = cut;
  pthread_mutex_unlock(&log->mu);
  CMN_INFO(MOD, "rotated dir=%s new_segment=%016" PRIx64, log->dir, cut);
  return 0;
}

/*
 * Write one batch (flusher only, lock not held): the part before a rotation
 * cut, the switch of segment, the part after it. Returns the highest LSN made
 * durable through *durable and the first error, if any.
 */
static int write_batch(mst_oplog *log, size_t cut_off, int rotate, uint64_t cut_lsn,
                       uint64_t last_lsn, uint64_t *durable, uint64_t *fsyncs) {
  unsigned char *buf = (unsigned char *)log->flush.data;
  size_t len = log->flush.len;
  int rc;
  seal_frames(buf, len);
  if (cut_off > 0) {
    if ((rc = write_durable(log, buf, cut_off, fsyncs)) != 0) return rc;
    *durable = rotate ? cut_lsn - 1 : last_lsn;
  }
  if (rotate && (rc = start_segment(log, cut_lsn, fsyncs)) != 0) return rc;
  if (cut_off < len) {
    if ((rc = write_durable(log, buf + cut_off, len - cut_off, fsyncs)) != 0) return rc;
    *durable = last_lsn;
  }
  return 0;
}

/*
 * The flusher thread: take the whole `fill` batch, write and fsync it, publish
 * the new durable LSN (waking append_wait callers and appenders waiting for
 * space), then run the batch's callbacks without the lock. On close it drains
 * what is left and exits. After a failure it keeps taking batches only to
 * report them failed.
 */
static void *flusher_main(void *p) {
  mst_oplog *log = p;
  pthread_mutex_lock(&log->mu);
  for (;;) {
    while (!log->closing && log->fill.len == 0 && !log->rotate_wanted)
      pthread_cond_wait(&log->work_cv, &log->mu);
    if (log->fill.len == 0 && !log->rotate_wanted) break; /* closing, drained */
    cmn_buf tb = log->fill;
    log->fill = log->flush;
    log->flush = tb;
    cb_list tc = log->fill_cbs;
    log->fill_cbs = log->flush_cbs;
    log->flush_cbs = tc;
    size_t records = log->fill_records;
    log->fill_records = 0;
    int rotate = log->rotate_wanted;
    uint64_t cut_lsn = log->rotate_cut_lsn;
    size_t cut_off = rotate ? log->rotate_cut_off : log->flush.len;
    uint64_t last_lsn = log->next_lsn - 1, durable = log->durable_lsn, fsyncs = 0;
    int rc = log->failed ? CAIRN_EIO : 0;
    pthread_mutex_unlock(&log->mu);

    if (rc == 0) rc = write_batch(log, cut_off, rotate, cut_lsn, last_lsn, &durable, &fsyncs);

    pthread_mutex_lock(&log->mu);
    log->st.records_durable += durable - log->durable_lsn;
    log->st.bytes_written += rc == 0 ? log->flush.len : 0;
    log->st.fsyncs += fsyncs;
    if (records > 0 && rc == 0) {
      log->st.batches++;
      if (records > log->st.max_batch_records) log->st.max_batch_records = records;
    }
    log->durable_lsn = durable;
    log->pending_bytes -= log->flush.len;
    if (rc != 0 && !log->failed) {
      log->failed = 1;
      CMN_ERROR(MOD, "operation log failed dir=%s durable_lsn=%" PRIu64 " lost_from_lsn=%" PRIu64
                ": refusing further appends",
                log->dir, durable, durable + 1);
    }
    if (rotate) {
      log->rotate_wanted = 0;
      if (rc == 0) log->rotations_done++;
    }
    pthread_cond_broadcast(&log->done_cv);
    pthread_cond_broadcast(&log->space_cv);
    pthread_mutex_unlock(&log->mu);

    for (size_t i = 0; i < log->flush_cbs.n; i++) {
      pending_cb *c = &log->flush_cbs.v[i];
      c->cb(c->arg, c->lsn, c->lsn <= durable ? 0 : CAIRN_EIO);
    }
    log->flush_cbs.n = 0;
    log->flush.len = 0;
    if (log->flush.cap > BUF_KEEP) cmn_buf_free(&log->flush);
    if (log->flush_cbs.cap > 4096) {
      free(log->flush_cbs.v);
      memset(&log->flush_cbs, 0, sizeof log->flush_cbs);
    }
    pthread_mutex_lock(&log->mu);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

static void free_log(mst_oplog *log) {
  if (log->fd >= 0) close(log->fd);
  cmn_buf_free(&log->fill);
  cmn_buf_free(&log->flush);
  free(log->fill_cbs.v);
  free(log->flush_cbs.v);
  free(log->segs);
  free(log->dir);
  pthread_mutex_destroy(&log->mu);
  pthread_cond_destroy(&log->work_cv);
  pthread_cond_destroy(&log->done_cv);
  pthread_cond_destroy(&log->space_cv);
  free(log);
}

int mst_oplog_open(const char *dir, const mst_oplog_opts *opts, uint64_t after_lsn,
                   mst_oplog_replay_fn replay, void *arg, mst_oplog **out, char *err,
                   size_t errlen) {
  if (err && errlen > 0) err[0] = '\0';
  if (!dir || !*dir || !out || after_lsn == UINT64_MAX) return CAIRN_EINVAL;
  size_t max_record = opts && opts->max_record ? opts->max_record : MST_OPLOG_DEFAULT_MAX_RECORD;
  size_t max_pending =
      opts && opts->max_pending ? opts->max_pending : MST_OPLOG_DEFAULT_MAX_PENDING;
  if (max_record > MST_OPLOG_LIMIT_MAX_RECORD) {
    CMN_ERROR(MOD, "max_record too large max_record=%zu limit=%zu", max_record,
              (size_t)MST_OPLOG_LIMIT_MAX_RECORD);
    return CAIRN_EINVAL;
  }
  mst_oplog__state s;
  int rc = mst_oplog__recover(dir, max_record, after_lsn, replay, arg, &s, err, errlen);
  if (rc != 0) return rc;

  mst_oplog *log = cmn_calloc(1, sizeof *log);
  log->dir = cmn_strdup(dir);
  log->max_record = max_record;
  log->max_pending = max_pending;
  log->fd = s.fd;
  log->seg_first = s.seg_first;
  log->segs = s.segs;
  log->nsegs = s.nsegs;
  log->next_lsn = s.next_lsn;
  log->durable_lsn = s.next_lsn - 1;
  pthread_mutex_init(&log->mu, NULL);
  pthread_cond_init(&log->work_cv, NULL);
  pthread_cond_init(&log->done_cv, NULL);
  pthread_cond_init(&log->space_cv, NULL);
  if (pthread_create(&log->flusher, NULL, flusher_main, log) != 0) {
    CMN_ERROR(MOD, "cannot start flusher thread dir=%s", dir);
    rc = CAIRN_ENOMEM;
    goto fail;
  }
  *out = log;
  return 0;
fail:
  free_log(log);
  return rc;
}

/*
 * Accept one record: wait for space if over the pending bound (never on the
 * flusher thread, which is the one that frees space), take the next LSN,
 * copy the frame into `fill`, and wake the flusher. Called with `mu` held;
 * on success *lsn is set and the record belongs to the log.
 */
static int accept_locked(mst_oplog *log, const void *data, size_t len, mst_oplog_done_fn cb,
                         void *arg, uint64_t *lsn) {
  size_t framed = MST_OPLOG__FRAME_SIZE + len;
  int flusher = on_flusher(log);
  for (;;) {
    if (log->failed) return CAIRN_EIO;
    if (log->closing) return CAIRN_ECLOSED;
    if (flusher || log->pending_bytes == 0 || log->pending_bytes + framed <= log->max_pending)
      break;
    pthread_cond_wait(&log->space_cv, &log->mu);
  }
  uint64_t l = log->next_lsn++;
  unsigned char hdr[MST_OPLOG__FRAME_SIZE] = {0};
  mst__put_le32(hdr, (uint32_t)len);
  mst__put_le64(hdr + 8, l);
  cmn_buf_append(&log->fill, hdr, sizeof hdr);
  if (len > 0) cmn_buf_append(&log->fill, data, len);
  if (cb) {
    cb_list *c = &log->fill_cbs;
    if (c->n == c->cap) {
      c->cap = c->cap ? c->cap * 2 : 64;
      c->v = cmn_realloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (pending_cb){l, cb, arg};
  }
  log->fill_records++;
  log->pending_bytes += framed;
  log->st.records_appended++;
  *lsn = l;
  pthread_cond_signal(&log->work_cv);
  return 0;
}

static int check_append_args(const mst_oplog *log, const void *data, size_t len) {
  if (!log || (!data && len > 0)) return CAIRN_EINVAL;
  if (len > log->max_record) return CAIRN_ETOOBIG;
  return 0;
}

int mst_oplog_append(mst_oplog *log, const void *data, size_t len, mst_oplog_done_fn cb,
                     void *arg, uint64_t *lsn) {
  int rc = check_append_args(log, data, len);
  if (rc != 0) return rc;
  uint64_t l = 0;
  pthread_mutex_lock(&log->mu);
  rc = accept_locked(log, data, len, cb, arg, &l);
  pthread_mutex_unlock(&log->mu);
  if (rc == 0 && lsn) *lsn = l;
  return rc;
}

/* Append, then sleep until the flusher has made the record durable or the
 * log has failed (whichever it reports first for this LSN). */
int mst_oplog_append_wait(mst_oplog *log, const void *data, size_t len, uint64_t *lsn) {
  int rc = check_append_args(log, data, len);
  if (rc != 0) return rc;
  if (on_flusher(log)) return CAIRN_EINVAL;
  uint64_t l = 0;
  pthread_mutex_lock(&log->mu);
  rc = accept_locked(log, data, len, NULL, NULL, &l);
  while (rc == 0 && log->durable_lsn < l && !log->failed)
    pthread_cond_wait(&log->done_cv, &log->mu);
  if (rc == 0 && log->durable_lsn < l) rc = CAIRN_EIO;
  pthread_mutex_unlock(&log->mu);
  if (l != 0 && lsn) *lsn = l;
  return rc;
}

/*
 * Ask the flusher to cut the log at the current end: the cut is taken under
 * the lock now (exact with respect to call order), and the switch happens
 * when the flusher writes the batch holding the cut. One rotation at a time.
 */
int mst_oplog_rotate(mst_oplog *log, uint64_t *next_lsn) {
  if (!log || !next_lsn || on_flusher(log)) return CAIRN_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&log->mu);
  while (log->rotating && !log->failed && !log->closing)
    pthread_cond_wait(&log->done_cv, &log->mu);
  if (log->failed) rc = CAIRN_EIO;
  else if (log->closing) rc = CAIRN_ECLOSED;
  if (rc == 0) {
    log->rotating = 1;
    log->rotate_wanted = 1;
    log->rotate_cut_lsn = log->next_lsn;
    log->rotate_cut_off = log->fill.len;
    uint64_t goal = log->rotations_done + 1;
    pthread_cond_signal(&log->work_cv);
    while (log->rotations_done < goal && !log->failed)
      pthread_cond_wait(&log->done_cv, &log->mu);
    rc = log->rotations_done >= goal ? 0 : CAIRN_EIO;
    *next_lsn = log->rotate_cut_lsn;
    log->rotating = 0;
    pthread_cond_broadcast(&log->done_cv);
  }
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/*
 * Segment i holds LSNs segs[i] .. segs[i + 1] - 1, so it can go once
 * segs[i + 1] <= lsn. The current segment is never removed. The entries are
 * taken off the list under the lock, the files unlinked outside it.
 */
int mst_oplog_remove_before(mst_oplog *log, uint64_t lsn) {
  if (!log) return CAIRN_EINVAL;
  pthread_mutex_lock(&log->mu);
  size_t k = 0;
  while (k + 1 < log->nsegs && log->segs[k + 1] <= lsn) k++;
  uint64_t *gone = NULL;
  if (k > 0) {
    gone = cmn_malloc(k * sizeof *gone);
    memcpy(gone, log->segs, k * sizeof *gone);
    memmove(log->segs, log->segs + k, (log->nsegs - k) * sizeof *log->segs);
    log->nsegs -= k;
  }
  pthread_mutex_unlock(&log->mu);
  int rc = 0;
  for (size_t i = 0; i < k; i++) {
    char *p = mst_oplog__segment_path(log->dir, gone[i]);
    if (unlink(p) != 0 && errno != ENOENT) {
      CMN_ERROR(MOD, "cannot remove segment file=%s errno=\"%s\"", p, strerror(errno));
      rc = CAIRN_EIO;
    } else {
      CMN_INFO(MOD, "removed segment file=%s before_lsn=%" PRIu64, p, lsn);
    }
    free(p);
  }
  free(gone);
  if (k > 0 && rc == 0) rc = mst__fsync_dir(log->dir);
  return rc != 0 ? rc : (int)k;
}

void mst_oplog_stats_get(mst_oplog *log, mst_oplog_stats *st) {
  pthread_mutex_lock(&log->mu);
  *st = log->st;
  st->last_lsn = log->next_lsn - 1;
  st->durable_lsn = log->durable_lsn;
  st->pending_bytes = log->pending_bytes;
  st->segments = log->nsegs;
  st->failed = log->failed;
  pthread_mutex_unlock(&log->mu);
}

/* Let the flusher drain and exit, then release everything. Appenders still
 * blocked for space are woken and get CAIRN_ECLOSED. */
int mst_oplog_close(mst_oplog *log) {
  if (!log) return 0;
  if (on_flusher(log)) return CAIRN_EINVAL;
  pthread_mutex_lock(&log->mu);
  log->closing = 1;
  pthread_cond_signal(&log->work_cv);
  pthread_cond_broadcast(&log->space_cv);
  pthread_cond_broadcast(&log->done_cv);
  pthread_mutex_unlock(&log->mu);
  pthread_join(log->flusher, NULL);
  int rc = log->failed ? CAIRN_EIO : 0;
  CMN_INFO(MOD, "closed dir=%s last_lsn=%" PRIu64 " durable_lsn=%" PRIu64 " failed=%d", log->dir,
           log->next_lsn - 1, log->durable_lsn, log->failed);
  free_log(log);
  return rc;
}
