/*
 * persist.c - the master's durability: cluster creation, recovery at start
 * (newest checkpoint + replay of the log after it), logging of applied
 * mutations with group commit, and background checkpoints.
 *
 * Checkpoints are written by a forked child (Redis BGSAVE style): under the
 * write lock the parent rotates the log to a new segment and forks; the
 * child holds a copy-on-write image of the state exactly as of the last
 * record of the old segment and writes it out while the parent keeps
 * serving. When the child succeeds, log segments older than the oldest
 * checkpoint kept are deleted. MooseFS stops serving while it dumps its
 * metadata; this does not.
 *
 * Layout of the data directory:
 *   cluster_id   the cluster's UUID
 *   secret       the cluster secret (mode 0600)
 *   LOCK         held while a master runs
 *   meta/        oplog.<lsn> segments and checkpoint.<lsn> files
 */
#include "mst_master.h"

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_checkpoint.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP_CHECKPOINTS 2

static char *meta_dir(const mst_config *cfg) { return cmn_sprintf("%s/meta", cfg->dir); }

/* A fresh cluster: identity, secret, and a checkpoint at LSN 0 that records
 * the chunk size chosen for the cluster's whole life. */
int mst_init_cluster(const mst_config *cfg, char *err, size_t errlen) {
  int rc = 0;
  char *id_path = cmn_sprintf("%s/cluster_id", cfg->dir);
  char *secret_path = cfg->secret_file && *cfg->secret_file ? cmn_strdup(cfg->secret_file)
                                                             : cmn_sprintf("%s/secret", cfg->dir);
  char *meta = meta_dir(cfg);
  mst_ckpt_writer *w = NULL;
  if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", cfg->dir, strerror(errno));
    rc = cmn_errno_to_cairn(errno);
    goto done;
  }
  if (access(id_path, F_OK) == 0) {
    snprintf(err, errlen, "%s already holds a cluster (%s exists); refusing to overwrite it",
             cfg->dir, id_path);
    rc = CAIRN_EEXIST;
    goto done;
  }
  if (mkdir(meta, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", meta, strerror(errno));
    rc = cmn_errno_to_cairn(errno);
    goto done;
  }
  char id[37];
  unsigned char raw[32];
  char secret[65];
  if ((rc = cmn_uuid_v4(id)) != 0 || (rc = cmn_random_bytes(raw, sizeof raw)) != 0) {
    snprintf(err, errlen, "no randomness available");
    goto done;
  }
  cmn_hex_encode(raw, sizeof raw, secret);
  char line[80];
  snprintf(line, sizeof line, "%s\n", secret);
  if ((rc = cmn_write_file_atomic(secret_path, line, strlen(line), 0600)) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", secret_path, cairn_strerror(rc));
    goto done;
  }
  /* The checkpoint at LSN 0 fixes cluster id and chunk size. */
  Cairn__V1__CheckpointHeader hdr = CAIRN__V1__CHECKPOINT_HEADER__INIT;
  hdr.cluster_id = id;
  hdr.next_file_id = MST_NS_FIRST_ID;
  hdr.next_handle = 1;
  hdr.chunk_size = cfg->chunk_size;
  hdr.created_ms = mst_now_ms();
  Cairn__V1__CheckpointRecord r = CAIRN__V1__CHECKPOINT_RECORD__INIT;
  r.item_case = CAIRN__V1__CHECKPOINT_RECORD__ITEM_HEADER;
  r.header = &hdr;
  uint8_t buf[256];
  size_t n = protobuf_c_message_pack(&r.base, buf);
  if ((rc = mst_ckpt_writer_open(meta, 0, &w)) != 0 || (rc = mst_ckpt_write(w, buf, n)) != 0 ||
      (rc = mst_ckpt_commit(w)) != 0) {
    if (w && rc != 0) mst_ckpt_abort(w);
    snprintf(err, errlen, "cannot write the initial checkpoint in %s: %s", meta,
             cairn_strerror(rc));
    goto done;
  }
  /* cluster_id last: its presence means the cluster is complete. */
  snprintf(line, sizeof line, "%s\n", id);
  if ((rc = cmn_write_file_atomic(id_path, line, strlen(line), 0644)) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", id_path, cairn_strerror(rc));
    goto done;
  }
  CMN_INFO("init", "created cluster cluster_id=%s dir=%s chunk_size=%llu", id, cfg->dir,
           (unsigned long long)cfg->chunk_size);
done:
  free(id_path);
  free(secret_path);
  free(meta);
  return rc;
}

static int replay_one(void *arg, uint64_t lsn, const void *data, size_t len) {
  mst_master *m = arg;
  Cairn__V1__OplogRecord *rec = cairn__v1__oplog_record__unpack(NULL, len, data);
  if (!rec) {
    CMN_ERROR("recover", "log record is not a valid message lsn=%llu", (unsigned long long)lsn);
    return CAIRN_ECORRUPT;
  }
  int rc = mst_apply(m, rec);
  cairn__v1__oplog_record__free_unpacked(rec, NULL);
  if (rc != 0) {
    /* Only records that applied cleanly are ever logged, so a failure here
     * means the log and the checkpoint disagree. */
    CMN_ERROR("recover", "log record does not apply lsn=%llu error=%s", (unsigned long long)lsn,
              cairn_err_name(rc));
    return CAIRN_ECORRUPT;
  }
  return 0;
}

static int load_record(void *arg, const void *data, size_t len) {
  return mst_checkpoint_load_record(arg, data, len);
}

int mst_recover(mst_master *m, char *err, size_t errlen) {
  char *meta = meta_dir(&m->cfg);
  int64_t t0 = cmn_mono_ms();
  uint64_t lsn = 0;
  int rc = mst_ckpt_load_newest(meta, load_record, m, &lsn, err, errlen);
  if (rc != 0) goto done;
  if (!m->cluster_id[0]) {
    snprintf(err, errlen, "%s holds no checkpoint: not a cluster (run cairn-master --init)", meta);
    rc = CAIRN_ECORRUPT;
    goto done;
  }
  m->ckpt_lsn = lsn;
  mst_oplog_opts opts = {0};
  rc = mst_oplog_open(meta, &opts, lsn, replay_one, m, &m->log, err, errlen);
  if (rc != 0) goto done;
  mst_oplog_stats st;
  mst_oplog_stats_get(m->log, &st);
  mst_ns_counts c;
  mst_ns_get_counts(m->ns, &c);
  CMN_INFO("recover", "metadata loaded checkpoint_lsn=%llu last_lsn=%llu files=%llu dirs=%llu "
           "chunks=%llu ms=%lld",
           (unsigned long long)lsn, (unsigned long long)st.last_lsn, (unsigned long long)c.files,
           (unsigned long long)c.dirs, (unsigned long long)mst_chunks_count(m->chunks),
           (long long)(cmn_mono_ms() - t0));
  atomic_store(&m->records_since_ckpt, st.last_lsn > lsn ? st.last_lsn - lsn : 0);
  m->last_ckpt_ms = cmn_mono_ms();
done:
  free(meta);
  return rc;
}

struct log_pending {
  mst_durable_fn done;
  void *arg;
};

static void on_durable(void *arg, uint64_t lsn, int status) {
  struct log_pending *p = arg;
  if (status != 0) {
    /* The in-memory state is ahead of the disk: nothing more may be
     * acknowledged. Exit; a restart recovers what is durable. */
    CMN_ERROR("oplog", "operation log failed, exiting lsn=%llu error=%s", (unsigned long long)lsn,
              cairn_err_name(status));
    _exit(70);
  }
  if (p->done) p->done(p->arg, 0);
  free(p);
}

void mst_log_record(mst_master *m, const Cairn__V1__OplogRecord *rec, mst_durable_fn done,
                    void *arg) {
  size_t n = cairn__v1__oplog_record__get_packed_size(rec);
  uint8_t stack[512];
  uint8_t *buf = n <= sizeof stack ? stack : cmn_malloc(n);
  cairn__v1__oplog_record__pack(rec, buf);
  struct log_pending *p = cmn_malloc(sizeof *p);
  p->done = done;
  p->arg = arg;
  uint64_t lsn;
  int rc = mst_oplog_append(m->log, buf, n, on_durable, p, &lsn);
  if (buf != stack) free(buf);
  if (rc != 0) {
    CMN_ERROR("oplog", "append failed, exiting error=%s", cairn_err_name(rc));
    _exit(70);
  }
  uint64_t since = atomic_fetch_add(&m->records_since_ckpt, 1) + 1;
  if (since == (uint64_t)m->cfg.checkpoint_records) {
    pthread_mutex_lock(&m->bg_lock);
    pthread_cond_signal(&m->bg_cond);
    pthread_mutex_unlock(&m->bg_lock);
  }
}

int mst_checkpoint_start(mst_master *m) {
  pthread_rwlock_wrlock(&m->lock);
  if (m->ckpt_child > 0) {
    pthread_rwlock_unlock(&m->lock);
    return CAIRN_EBUSY;
  }
  uint64_t next_lsn;
  int rc = mst_oplog_rotate(m->log, &next_lsn);
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    CMN_ERROR("checkpoint", "log rotation failed error=%s", cairn_err_name(rc));
    return rc;
  }
  uint64_t lsn = next_lsn - 1;
  char *meta = meta_dir(&m->cfg);
  pid_t pid = fork();
  if (pid == 0) {
    /* Child: a frozen copy of the state. Only plain file I/O from here. */
    int crc = mst_checkpoint_write_state(m, lsn, meta);
    _exit(crc == 0 ? 0 : 1);
  }
  free(meta);
  if (pid < 0) {
    rc = cmn_errno_to_cairn(errno);
    pthread_rwlock_unlock(&m->lock);
    CMN_ERROR("checkpoint", "fork failed error=%s", strerror(errno));
    return rc;
  }
  m->ckpt_child = pid;
  m->ckpt_child_lsn = lsn;
  m->ckpt_started_ms = cmn_mono_ms();
  atomic_store(&m->records_since_ckpt, 0);
  pthread_rwlock_unlock(&m->lock);
  CMN_INFO("checkpoint", "started lsn=%llu pid=%d", (unsigned long long)lsn, (int)pid);
  return 0;
}

void mst_checkpoint_poll(mst_master *m, bool wait) {
  if (m->ckpt_child <= 0) return;
  int status;
  pid_t r = waitpid(m->ckpt_child, &status, wait ? 0 : WNOHANG);
  if (r == 0) return;
  uint64_t lsn = m->ckpt_child_lsn;
  int64_t ms = cmn_mono_ms() - m->ckpt_started_ms;
  m->ckpt_child = 0;
  m->last_ckpt_ms = cmn_mono_ms();
  if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cmn_counter_inc(m->m_ckpt_failures);
    CMN_ERROR("checkpoint", "writer failed lsn=%llu status=%d; the log is kept",
              (unsigned long long)lsn, status);
    return;
  }
  m->ckpt_lsn = lsn;
  cmn_counter_inc(m->m_ckpts);
  char *meta = meta_dir(&m->cfg);
  uint64_t oldest = lsn;
  int rc = mst_ckpt_prune(meta, KEEP_CHECKPOINTS, &oldest);
  /* Keep the log from the oldest checkpoint kept, so falling back to it
   * (if the newest is ever damaged) still has every record after it. */
  if (rc == 0) rc = mst_oplog_remove_before(m->log, oldest + 1);
  free(meta);
  CMN_INFO("checkpoint", "done lsn=%llu ms=%lld truncated_before=%llu%s", (unsigned long long)lsn,
           (long long)ms, (unsigned long long)(oldest + 1), rc == 0 ? "" : " (cleanup failed)");
}
