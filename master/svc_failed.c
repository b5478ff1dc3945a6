/*
 * svc_failed.c - ReportFailedReplica of cairn.v1.Master (DESIGN.md §5
 * step 6): a primary tells the master that a replica voted no, timed out or
 * failed to commit; the master takes it out of the replica set and makes it
 * stale by bumping the chunk's version on the survivors before the primary
 * tells its client anything.
 *
 * Order matters: the bump is durable in the log before any chunkserver
 * hears of it (a restarted master never hands out a version below one a
 * server holds), and the pushes run without the lock: the secondaries all
 * at once, then the primary with its lease. The handler runs the whole
 * sequence on a thread of its own, since it waits for the disk and for up
 * to two rounds of SetVersion deadlines, and RPC workers must not block.
 */
#include "mst_servers_svc.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_background.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static bool id_ok(const char *s) {
  if (!s) return false;
  size_t n = strnlen(s, MST_SERVER_ID_MAX + 1);
  if (n < 1 || n > MST_SERVER_ID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

static bool handle_valid(uint64_t h) { return h != 0 && h != UINT64_MAX; }

/* The survivors as the pushes need them, copied under the lock: the
 * primary first in the replica set (the lease goes with it), then the
 * others. */
struct survivors {
  size_t n;
  uint16_t idx[MST_CHUNK_REPLICAS_MAX];
  Cairn__V1__ServerAddress addrs[MST_CHUNK_REPLICAS_MAX];
  Cairn__V1__ServerAddress *ptrs[MST_CHUNK_REPLICAS_MAX];
  char *strs[4 * MST_CHUNK_REPLICAS_MAX];
  size_t nstrs;
};

static char *keep(struct survivors *s, const char *v) {
  char *c = cmn_strdup(v ? v : "");
  s->strs[s->nstrs++] = c;
  return c;
}

static void survivors_add(struct survivors *s, const mst_server *sv) {
  Cairn__V1__ServerAddress *a = &s->addrs[s->n];
  cairn__v1__server_address__init(a);
  a->id = keep(s, sv->id);
  a->data_addr = keep(s, sv->data_addr);
  a->rpc_addr = keep(s, sv->rpc_addr);
  a->zone = keep(s, sv->zone);
  s->ptrs[s->n] = a;
  s->idx[s->n++] = sv->idx;
}

static void survivors_free(struct survivors *s) {
  for (size_t i = 0; i < s->nstrs; i++) free(s->strs[i]);
}

/* Fills the survivors of chunk `ci` (after the failed replica left), the
 * primary first; dead servers are left out. Caller holds the lock. */
static void survivors_fill(mst_master *m, const mst_chunk_info *ci, uint16_t primary,
                           struct survivors *s) {
  memset(s, 0, sizeof *s);
  const mst_server *p = mst_servers_get(m->servers, primary);
  bool primary_in = false;
  for (unsigned i = 0; i < ci->nrep; i++) primary_in |= ci->replicas[i] == primary;
  if (p && !p->dead && primary_in) survivors_add(s, p);
  for (unsigned i = 0; i < ci->nrep; i++) {
    const mst_server *sv = mst_servers_get(m->servers, ci->replicas[i]);
    if (sv && !sv->dead && sv->idx != primary) survivors_add(s, sv);
  }
}

/*
 * SetVersion to the survivors, without the lock: the others first, all at
 * once, then the primary with its lease, so that a round it starts at the
 * new version finds every survivor there already. ok[i] says who took it.
 */
static size_t push_versions(mst_master *m, const struct survivors *s, uint16_t primary,
                            uint64_t handle, uint64_t old_v, uint64_t new_v, int64_t expiry,
                            bool *ok) {
  mst_sv_push p[MST_CHUNK_REPLICAS_MAX];
  size_t map[MST_CHUNK_REPLICAS_MAX], np = 0, acked = 0;
  for (int pass = 0; pass < 2; pass++) {
    np = 0;
    for (size_t i = 0; i < s->n; i++) {
      if ((s->idx[i] == primary) != (pass == 1)) continue;
      p[np] = (mst_sv_push){.rpc_addr = s->addrs[i].rpc_addr, .expiry = pass == 1 ? expiry : 0};
      map[np++] = i;
    }
    mst_svc_set_versions(m, p, np, handle, old_v, new_v, (Cairn__V1__ServerAddress **)s->ptrs,
                         s->n);
    for (size_t k = 0; k < np; k++) {
      ok[map[k]] = p[k].rc == 0;
      acked += ok[map[k]] ? 1 : 0;
      if (p[k].rc != 0)
        CMN_WARN("failed-replica", "survivor did not take the new version handle=%llu server=%s "
                 "version=%llu error=%s message=\"%s\"",
                 (unsigned long long)handle, s->addrs[map[k]].id, (unsigned long long)new_v,
                 cairn_err_name(p[k].rc), p[k].msg);
    }
  }
  return acked;
}

/*
 * The checks and the bump, under the write lock. On success the bump is
 * applied and being logged (wait on *w), the failed replica is out of the
 * set, and *s holds the survivors.
 */
static int bump_locked(mst_master *m, const Cairn__V1__ReportFailedReplicaRequest *req,
                       int64_t now, uint16_t *failed, uint16_t *primary, int64_t *expiry,
                       struct survivors *s, mst_waiter *w, char *err, size_t errlen) {
  int rep = mst_servers_find(m->servers, req->reporter_id);
  if (rep < 0) {
    say(err, errlen, "reporter %s is not a known chunkserver", req->reporter_id);
    return CAIRN_ENOTPRIMARY;
  }
  int fail = mst_servers_find(m->servers, req->failed_server_id);
  if (fail < 0) {
    say(err, errlen, "failed server %s is not a known chunkserver", req->failed_server_id);
    return CAIRN_ENOENT;
  }
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, req->handle, &ci) != 0) {
    say(err, errlen, "chunk %llu does not exist", (unsigned long long)req->handle);
    return CAIRN_ENOENT;
  }
  uint16_t holder;
  if (mst_chunks_lease_valid(m->chunks, req->handle, now, &holder) != 1 || holder != rep) {
    say(err, errlen, "%s does not hold a valid lease on chunk %llu", req->reporter_id,
        (unsigned long long)req->handle);
    return CAIRN_ENOTPRIMARY;
  }
  if (req->version != ci.version) {
    say(err, errlen, "chunk %llu is at version %llu, the report is about version %llu",
        (unsigned long long)req->handle, (unsigned long long)ci.version,
        (unsigned long long)req->version);
    return CAIRN_ESTALE;
  }
  (void)mst_chunks_remove_replica(m->chunks, req->handle, (uint16_t)fail);
  Cairn__V1__OpSetVersion op = CAIRN__V1__OP_SET_VERSION__INIT;
  op.handle = req->handle;
  op.version = ci.version + 1;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION;
  rec.set_version = &op;
  int rc = mst_apply(m, &rec);
  if (rc != 0) {
    (void)mst_chunks_add_replica(m->chunks, req->handle, (uint16_t)fail); /* change nothing */
    say(err, errlen, "version bump failed: %s", cairn_strerror(rc));
    return rc;
  }
  mst_waiter_init(w);
  mst_log_record(m, &rec, mst_waiter_done, w);
  (void)mst_chunks_get(m->chunks, req->handle, &ci);
  survivors_fill(m, &ci, (uint16_t)rep, s);
  *failed = (uint16_t)fail;
  *primary = (uint16_t)rep;
  *expiry = ci.lease_expiry_ms;
  return 0;
}

int mst_server_report_failed(mst_master *m, const Cairn__V1__ReportFailedReplicaRequest *req,
                             uint64_t *new_version, char *err, size_t errlen) {
  if (!req || !handle_valid(req->handle)) {
    say(err, errlen, "invalid chunk handle");
    return CAIRN_EINVAL;
  }
  if (!id_ok(req->failed_server_id) || !id_ok(req->reporter_id)) {
    say(err, errlen, "server ids must be 1..%d printable characters without spaces",
        MST_SERVER_ID_MAX);
    return CAIRN_EINVAL;
  }
  if (strcmp(req->failed_server_id, req->reporter_id) == 0) {
    say(err, errlen, "a primary cannot report its own replica as failed");
    return CAIRN_EINVAL;
  }
  int64_t now = mst_now_ms();
  uint16_t failed = 0, primary = 0;
  int64_t expiry = 0;
  struct survivors s;
  mst_waiter w;
  uint64_t old_v = req->version, new_v = req->version + 1;

  pthread_rwlock_wrlock(&m->lock);
  int rc = bump_locked(m, req, now, &failed, &primary, &expiry, &s, &w, err, errlen);
  pthread_rwlock_unlock(&m->lock);
  if (rc != 0) return rc;
  CMN_WARN("failed-replica", "replica removed handle=%llu failed=%s reporter=%s error=%s "
           "version=%llu->%llu",
           (unsigned long long)req->handle, req->failed_server_id, req->reporter_id,
           cairn_err_name(req->error), (unsigned long long)old_v, (unsigned long long)new_v);

  rc = mst_waiter_wait(&w); /* durable before any server hears of it */
  bool ok[MST_CHUNK_REPLICAS_MAX] = {false};
  size_t acked = rc == 0 ? push_versions(m, &s, primary, req->handle, old_v, new_v, expiry, ok) : 0;

  pthread_rwlock_wrlock(&m->lock);
  bool primary_ok = false;
  for (size_t i = 0; i < s.n; i++) {
    if (ok[i]) {
      primary_ok |= s.idx[i] == primary;
      continue;
    }
    /* Did not take the new version: stale now. */
    if (mst_chunks_remove_replica(m->chunks, req->handle, s.idx[i]) == 1 && acked > 0)
      (void)mst_bg_queue_delete(m, s.idx[i], req->handle, old_v);
  }
  if (acked > 0) (void)mst_bg_queue_delete(m, failed, req->handle, old_v);
  if (!primary_ok) (void)mst_chunks_clear_lease(m->chunks, req->handle);
  mst_bg_check(m, req->handle);
  mst_bg_kick(m);
  cmn_counter_inc(m->m_failed_reports);
  pthread_rwlock_unlock(&m->lock);
  survivors_free(&s);

  *new_version = new_v;
  if (rc != 0) {
    say(err, errlen, "metadata log failed: %s", cairn_strerror(rc));
    return rc;
  }
  if (acked == 0) {
    say(err, errlen, "no surviving replica of chunk %llu took version %llu",
        (unsigned long long)req->handle, (unsigned long long)new_v);
    return CAIRN_EUNAVAIL;
  }
  if (!primary_ok) {
    say(err, errlen, "the primary did not take version %llu of chunk %llu; its lease is revoked",
        (unsigned long long)new_v, (unsigned long long)req->handle);
    return CAIRN_EUNAVAIL;
  }
  return 0;
}

/* ---- RPC glue ------------------------------------------------------------------- */

struct report_job {
  mst_master *m;
  cmn_rpc_call *call;
  Cairn__V1__ReportFailedReplicaRequest req;
  char failed[MST_SERVER_ID_MAX + 1];
  char reporter[MST_SERVER_ID_MAX + 1];
};

/* Runs the report and answers; touches nothing of the master after the
 * answer (shutdown waits for answers, not for this thread). */
static void *report_main(void *arg) {
  struct report_job *j = arg;
  char err[256] = "";
  uint64_t nv = 0;
  int rc = mst_server_report_failed(j->m, &j->req, &nv, err, sizeof err);
  if (rc != 0) {
    cmn_rpc_fail(j->call, rc, "report failed replica: %s", err[0] ? err : cairn_strerror(rc));
  } else {
    Cairn__V1__ReportFailedReplicaReply r = CAIRN__V1__REPORT_FAILED_REPLICA_REPLY__INIT;
    r.new_version = nv;
    cmn_rpc_reply(j->call, &r.base);
  }
  free(j);
  return NULL;
}

void mst_svc_report_failed(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  const Cairn__V1__ReportFailedReplicaRequest *req =
      (const Cairn__V1__ReportFailedReplicaRequest *)msg;
  if (!id_ok(req->failed_server_id) || !id_ok(req->reporter_id)) {
    cmn_rpc_fail(call, CAIRN_EINVAL,
                 "report failed replica: server ids must be 1..%d printable characters without "
                 "spaces",
                 MST_SERVER_ID_MAX);
    return;
  }
  struct report_job *j = cmn_calloc(1, sizeof *j);
  j->m = ctx;
  j->call = call;
  j->req = *req;
  snprintf(j->failed, sizeof j->failed, "%s", req->failed_server_id);
  snprintf(j->reporter, sizeof j->reporter, "%s", req->reporter_id);
  j->req.failed_server_id = j->failed;
  j->req.reporter_id = j->reporter;
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&t, &at, report_main, j);
  pthread_attr_destroy(&at);
  if (e != 0) report_main(j); /* no thread: do it here rather than not at all */
}
