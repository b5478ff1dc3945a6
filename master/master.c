/*
 * master.c - the master context: setup and teardown of its tables, lock and
 * metrics, and the waiter used to block on a log record's durability.
 */
#include "mst_master.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

static int counter(mst_master *m, const char *name, const char *help, cmn_counter **out) {
  return cmn_counter_register(m->metrics, name, help, NULL, 0, out);
}

int mst_master_init(mst_master *m, const mst_config *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->lock_fd = -1;
  m->next_file_id = MST_NS_FIRST_ID;
  m->next_handle = 1;
  pthread_rwlock_init(&m->lock, NULL);
  pthread_mutex_init(&m->bg_lock, NULL);
  pthread_cond_init(&m->bg_cond, NULL);
  if (cmn_random_bytes(&m->rng, sizeof m->rng) != 0) m->rng = (uint64_t)cmn_mono_ns();
  int rc = mst_ns_new(&m->ns);
  if (rc == 0) rc = mst_chunks_new(&m->chunks);
  mst_servers_opts so = {0};
  if (rc == 0) rc = mst_servers_new(&so, &m->servers);
  if (rc == 0) rc = cmn_metrics_create(&m->metrics);
  if (rc == 0) rc = counter(m, "cairn_master_creates_total", "files created", &m->m_creates);
  if (rc == 0)
    rc = counter(m, "cairn_master_chunks_allocated_total", "chunks allocated", &m->m_chunks_allocated);
  if (rc == 0) rc = counter(m, "cairn_master_leases_granted_total", "leases granted", &m->m_leases);
  if (rc == 0)
    rc = counter(m, "cairn_master_clones_started_total", "re-replication clones ordered", &m->m_clones);
  if (rc == 0)
    rc = counter(m, "cairn_master_replica_deletes_total", "replica deletions ordered",
                 &m->m_deletes_sent);
  if (rc == 0) rc = counter(m, "cairn_master_checkpoints_total", "checkpoints written", &m->m_ckpts);
  if (rc == 0)
    rc = counter(m, "cairn_master_checkpoint_failures_total", "checkpoint writers that failed",
                 &m->m_ckpt_failures);
  if (rc == 0)
    rc = counter(m, "cairn_master_failed_replica_reports_total", "failed replicas reported",
                 &m->m_failed_reports);
  if (rc == 0)
    rc = counter(m, "cairn_master_trash_purged_total", "trash entries removed for good", &m->m_purged);
  if (rc != 0) mst_master_destroy(m);
  return rc;
}

void mst_master_destroy(mst_master *m) {
  mst_ns_free(m->ns);
  mst_chunks_free(m->chunks);
  mst_servers_free(m->servers);
  cmn_metrics_destroy(m->metrics);
  free(m->secret);
  free(m->granting); /* empty by now: every grant answered its waiters */
  pthread_rwlock_destroy(&m->lock);
  pthread_mutex_destroy(&m->bg_lock);
  pthread_cond_destroy(&m->bg_cond);
  m->ns = NULL;
  m->chunks = NULL;
  m->servers = NULL;
  m->metrics = NULL;
  m->secret = NULL;
}

void mst_waiter_init(mst_waiter *w) {
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->done = false;
  w->status = 0;
}

void mst_waiter_done(void *arg, int status) {
  mst_waiter *w = arg;
  pthread_mutex_lock(&w->mu);
  w->done = true;
  w->status = status;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

int mst_waiter_wait(mst_waiter *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done) pthread_cond_wait(&w->cv, &w->mu);
  int st = w->status;
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  return st;
}
