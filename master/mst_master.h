/*
 * mst_master.h - the cairn-master process: its configuration and the
 * context every part of it (RPC services, persistence, background work,
 * status) receives.
 *
 * Locking: `lock` is one reader-writer lock over all metadata (namespace,
 * chunk table, server table, id counters). RPC handlers that only read take
 * it shared; every mutation takes it exclusive, applies the change in memory,
 * appends the operation-log record (so log order equals apply order) and
 * releases it; the reply is sent by the log's flusher thread once the record
 * is durable. No other lock is held while taking `lock`.
 */
#ifndef MST_MASTER_H
#define MST_MASTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmn_config.h"
#include "cmn_http.h"
#include "cmn_metrics.h"
#include "cmn_rpc.h"
#include "mst_chunks.h"
#include "mst_ns.h"
#include "mst_oplog.h"
#include "mst_servers.h"

#include "master.pb-c.h"
#include "oplog.pb-c.h"

typedef struct mst_config {
  char *dir;
  char *listen;
  char *http_listen;
  char *secret_file;
  char *ready_file;
  int64_t workers;
  uint64_t chunk_size;
  int64_t heartbeat_interval_ms;
  int64_t dead_after_ms;
  int64_t lease_ms;
  int64_t trash_period_ms;
  int64_t default_goal;
  bool allow_fewer_replicas;
  int64_t checkpoint_records;
  int64_t checkpoint_interval_ms;
  int64_t clones_per_server;
  int64_t creation_cap;
  int64_t rebalance_interval_ms;
  int64_t rebalance_threshold_pct;
  int64_t rebalance_moves;
  int64_t list_limit;
  int log_level;
} mst_config;

extern const cmn_config_spec mst_config_spec;

typedef struct mst_master {
  mst_config cfg;
  char cluster_id[37];
  char *secret;
  int lock_fd;

  pthread_rwlock_t lock;
  mst_ns *ns;
  mst_chunks *chunks;
  mst_servers *servers;
  uint64_t next_file_id;   /* next id to hand out */
  uint64_t next_handle;    /* next chunk handle to hand out */
  uint64_t rng;            /* placement randomness (under lock) */
  uint64_t last_trash_id;  /* set by mst_apply: trash entry of the last delete */
  uint64_t last_restored_id; /* set by mst_apply: node restored by the last undelete */
  struct mst_grant *granting; /* lease grants under way and their waiters (svc_chunks.c) */
  size_t n_granting, cap_granting;

  mst_oplog *log;
  atomic_uint_fast64_t records_since_ckpt;
  uint64_t ckpt_lsn;       /* LSN covered by the newest durable checkpoint */
  pid_t ckpt_child;        /* background checkpoint writer, 0 when none */
  uint64_t ckpt_child_lsn;
  int64_t ckpt_started_ms;
  int64_t last_ckpt_ms;

  cmn_metrics *metrics;
  cmn_rpc_server *rpc;
  cmn_http_server *http;
  cmn_http_health health;
  cmn_rpc_pool *peers;     /* channels to chunkservers */

  pthread_t bg;            /* background work: liveness, repair, GC, checkpoints */
  bool bg_started;
  pthread_mutex_t bg_lock;
  pthread_cond_t bg_cond;
  bool stopping;
  struct mst_bg *bg_state; /* clones in flight, watch list, progress (mst_background.h) */

  /* counters for metrics and status */
  cmn_counter *m_creates, *m_chunks_allocated, *m_leases, *m_clones, *m_deletes_sent;
  cmn_counter *m_ckpts, *m_ckpt_failures, *m_failed_reports, *m_purged;
} mst_master;

/* ---- lifetime (master.c) ----------------------------------------------------- */

/* Set up an empty master around a copy of `cfg` (tables, lock, metrics);
 * nothing is loaded or started. mst_master_destroy frees what init made and
 * whatever was started and is still running must have been stopped. */
int mst_master_init(mst_master *m, const mst_config *cfg);
void mst_master_destroy(mst_master *m);

/* For callers that must know a record is durable before they go on (a
 * version bump before chunkservers hear of it): log with
 * mst_log_record(m, rec, mst_waiter_done, &w) under the write lock, release
 * the lock, then mst_waiter_wait(&w). */
typedef struct mst_waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int status;
} mst_waiter;
void mst_waiter_init(mst_waiter *w);
void mst_waiter_done(void *arg, int status);
int mst_waiter_wait(mst_waiter *w); /* returns the status; destroys the waiter */

/* ---- persistence (persist.c) -------------------------------------------- */

/* Create a new cluster in cfg->dir: cluster id, secret file, empty metadata.
 * Refuses (CAIRN_EEXIST) when the directory already holds a cluster. */
int mst_init_cluster(const mst_config *cfg, char *err, size_t errlen);

/* Load the newest checkpoint, replay the log after it and open the log for
 * appending. On failure `err` says why (file and offset for corruption). */
int mst_recover(mst_master *m, char *err, size_t errlen);

/* Log a record that was already applied (caller holds the write lock), and
 * call `done(arg, status)` on the flusher thread once it is durable.
 * Failure of the log is fatal: the process exits (state is ahead of disk). */
typedef void (*mst_durable_fn)(void *arg, int status);
void mst_log_record(mst_master *m, const Cairn__V1__OplogRecord *rec, mst_durable_fn done,
                    void *arg);

/* Start a background checkpoint if none runs (fork; the child writes it).
 * Caller must NOT hold the lock. 0, CAIRN_EBUSY (one is running), or an
 * error. */
int mst_checkpoint_start(mst_master *m);

/* Reap a finished checkpoint child, truncate the log behind it. Non-blocking
 * unless `wait` is set. */
void mst_checkpoint_poll(mst_master *m, bool wait);

/* ---- the state machine (apply.c) ---------------------------------------- */

/* Apply one operation-log record to the in-memory state. Deterministic: the
 * same records in the same order give the same state; used both live (under
 * the write lock) and during replay. A failure changes nothing. */
int mst_apply(mst_master *m, const Cairn__V1__OplogRecord *rec);

/* Write every namespace node and chunk as checkpoint records (runs in the
 * forked child) / rebuild from them (at start). */
int mst_checkpoint_write_state(mst_master *m, uint64_t lsn, const char *meta_dir);
int mst_checkpoint_load_record(mst_master *m, const void *data, size_t len);

/* ---- services ------------------------------------------------------------ */

extern const cmn_rpc_method mst_master_methods[];
extern const size_t mst_master_nmethods;

/* Handlers, by file (svc_ns.c, svc_chunks.c, svc_servers.c, status.c). */
void mst_svc_mkdir(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_create(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_stat(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_list(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_rename(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_delete(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_undelete(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_set_goal(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_lookup_chunks(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_prepare_write(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_complete_write(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_register(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_heartbeat(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_report_failed(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_cluster_status(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);
void mst_svc_drain(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);

/* ---- background (background.c) and status (status.c) ---------------------- */

int mst_background_start(mst_master *m);
void mst_background_stop(mst_master *m);

/* GET /status: JSON, or an HTML page when the client accepts text/html
 * (?format=json forces JSON). */
void mst_status_http(const cmn_http_request *req, cmn_http_response *resp, void *arg);

/* Monotonic-enough wall clock used for every timestamp the master records. */
int64_t mst_now_ms(void);

#endif /* MST_MASTER_H */
