/*
 * twopc_primary.c - the primary's side of a write (cs_twopc.h has the
 * protocol): checks, one 2PC round under the chunk mutex, failed-replica
 * reports after the mutex is released, and the answer.
 */
#include "twopc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One round: the lease it runs under and what every replica did. */
typedef struct round {
  cs_server *s;
  const Cairn__V1__WriteRequest *req;
  cs_lease_view view;
  uint64_t serial, offset;
  bool pad;
  size_t quorum;
  size_t nsec;                            /* secondaries */
  size_t sec[CS_LEASES_MAX_REPLICAS];     /* their index in view.replicas */
  int vote[CS_LEASES_MAX_REPLICAS];       /* 0 yes, else the reason (no vote or call error) */
  bool said_no[CS_LEASES_MAX_REPLICAS];   /* answered with a no (surely not prepared) */
  int commit_rc[CS_LEASES_MAX_REPLICAS];  /* Commit result, for yes voters */
  int local_vote, local_commit;
  bool commit;                            /* the decision */
  bool lease_lost;                        /* the votes came in after the lease ended */
  uint32_t committed;                     /* replicas that committed */
  char local_err[160];
} round;

static int64_t rpc_timeout(const cs_server *s) {
  return s->cfg.rpc_timeout_ms > 0 ? s->cfg.rpc_timeout_ms : 5000;
}

/* ---- checks ---- */

/* The lease on the chunk must be ours, valid, and for the client's version. */
static int check_lease(cs_server *s, const Cairn__V1__WriteRequest *req, cs_lease_view *v,
                       char *err, size_t errlen) {
  if (cs_leases_primary(s->leases, req->handle, cmn_wall_ms(), v) != 0) {
    cs__tp_say(err, errlen, "no valid lease on chunk %" PRIu64 " here", req->handle);
    return CAIRN_ENOTPRIMARY;
  }
  if (v->version > req->version) {
    cs__tp_say(err, errlen, "the write is for version %" PRIu64 ", the chunk is at %" PRIu64,
               req->version, v->version);
    return CAIRN_ESTALE;
  }
  if (v->version < req->version || v->n == 0 || !s->id || strcmp(v->replicas[0].id, s->id) != 0) {
    cs__tp_say(err, errlen, "no lease on version %" PRIu64 " of chunk %" PRIu64 " here",
               req->version, req->handle);
    return CAIRN_ENOTPRIMARY;
  }
  return 0;
}

/* The pushed bytes must be here and match the request. */
static int check_push(cs_server *s, const Cairn__V1__WriteRequest *req, char *err, size_t errlen) {
  const void *data;
  uint64_t len;
  uint32_t crc;
  if (!s->push || cs_pushbuf_get(s->push, req->data_id.data, &data, &len, &crc) != 0) {
    cs__tp_say(err, errlen, "the bytes of this write were not pushed to the primary");
    return CAIRN_ENOENT;
  }
  cs_pushbuf_put(s->push, req->data_id.data);
  if (len != req->length) {
    cs__tp_say(err, errlen, "pushed %" PRIu64 " bytes, the write has %u", len, req->length);
    return CAIRN_EINVAL;
  }
  if (crc != req->crc32c) {
    cs__tp_say(err, errlen, "the CRC of the pushed bytes differs from the write's");
    return CAIRN_ECHECKSUM;
  }
  return 0;
}

static int check_request(cs_server *s, const Cairn__V1__WriteRequest *req, bool append,
                         char *err, size_t errlen) {
  uint64_t cs = cs_store_chunk_size(s->store);
  if (!cs__tp_handle_ok(req->handle) || req->version == 0) {
    cs__tp_say(err, errlen, "invalid chunk handle or version");
    return CAIRN_EINVAL;
  }
  if (req->data_id.len != CS_DATA_ID_LEN || req->length == 0) {
    cs__tp_say(err, errlen, "a write needs a 16-byte data id and a length above 0");
    return CAIRN_EINVAL;
  }
  if (append && req->length > cs / 4) {
    cs__tp_say(err, errlen, "a record is at most %" PRIu64 " bytes (a quarter chunk)", cs / 4);
    return CAIRN_EINVAL;
  }
  if (!append && (req->offset > cs || req->length > cs - req->offset)) {
    cs__tp_say(err, errlen, "offset %" PRIu64 " + length %u is past the chunk end %" PRIu64,
               req->offset, req->length, cs);
    return CAIRN_ERANGE;
  }
  return 0;
}

/* Under the chunk mutex: the lease again (it may have moved while we
 * waited), the local replica, and where the bytes go. */
static int check_locked(round *r, bool append, char *err, size_t errlen) {
  cs_server *s = r->s;
  const Cairn__V1__WriteRequest *req = r->req;
  int rc = check_lease(s, req, &r->view, err, errlen);
  if (rc != 0) return rc;
  cs_store_replica info;
  rc = cs_store_info(s->store, req->handle, &info);
  if (rc == 0 && info.pending) {
    (void)cs__tp_resolve_now(s, req->handle, rpc_timeout(s) / 4, false);
    rc = cs_store_info(s->store, req->handle, &info);
  }
  if (rc != 0) {
    cs__tp_say(err, errlen, "no replica of chunk %" PRIu64 " here", req->handle);
    return rc;
  }
  if (info.version != req->version) {
    cs__tp_say(err, errlen, "the replica here is at version %" PRIu64, info.version);
    return CAIRN_ESTALE;
  }
  if (info.corrupt) {
    cs__tp_say(err, errlen, "the replica here is corrupt");
    return CAIRN_ECORRUPT;
  }
  if (info.pending) {
    cs__tp_say(err, errlen, "an earlier mutation of the chunk is still undecided");
    return CAIRN_EBUSY;
  }
  uint64_t cs = cs_store_chunk_size(s->store);
  if (append) {
    if (info.length >= cs) {
      cs__tp_say(err, errlen, "the chunk is full");
      return CAIRN_ECHUNKFULL;
    }
    r->offset = info.length;
    r->pad = r->offset + req->length > cs;
  } else {
    if (req->offset > info.length) {
      cs__tp_say(err, errlen, "offset %" PRIu64 " leaves a hole after the committed length %" PRIu64,
                 req->offset, info.length);
      return CAIRN_EINVAL;
    }
    r->offset = req->offset;
  }
  return 0;
}

/* ---- the round ---- */

/* Commit or Abort on the secondaries marked in send[], in parallel; each
 * one's result into rcs[]. */
static void decide_calls(round *r, const Cairn__V1__DecideRequest *dr, const bool *send,
                         const char *method, int *rcs) {
  cs__tp_call c[CS_LEASES_MAX_REPLICAS];
  size_t map[CS_LEASES_MAX_REPLICAS], k = 0;
  for (size_t i = 0; i < r->nsec; i++) {
    if (!send[i]) continue;
    map[k] = i;
    c[k++] = (cs__tp_call){.s = r->s, .target = r->view.replicas[r->sec[i]].rpc_addr,
                           .service = &cairn__v1__chunkserver__descriptor, .method = method,
                           .req = &dr->base, .timeout_ms = rpc_timeout(r->s)};
  }
  cs__tp_calls_start(c, k);
  cs__tp_calls_wait(c, k);
  for (size_t j = 0; j < k; j++) {
    rcs[map[j]] = c[j].rc;
    if (c[j].rc != 0)
      CMN_WARN(CS__TP_MOD, "%s failed handle=%" PRIu64 " serial=%" PRIu64 " server=%s "
               "error=%s message=\"%s\"", method, dr->handle, dr->serial,
               r->view.replicas[r->sec[map[j]]].id, cairn_err_name(c[j].rc), c[j].st.message);
  }
  cs__tp_calls_free(c, k);
}

/*
 * Phase one everywhere at once (secondaries on threads, ourselves here),
 * the decision, then phase two: commits to the yes voters and, only after
 * they answered, our own (the primary commits last: see the recovery
 * argument in cs_twopc.h), or aborts wherever it may have been prepared.
 */
static void run_round(round *r) {
  cs_server *s = r->s;
  const Cairn__V1__WriteRequest *req = r->req;
  Cairn__V1__ServerAddress addrs[CS_LEASES_MAX_REPLICAS];
  Cairn__V1__ServerAddress *ptrs[CS_LEASES_MAX_REPLICAS];
  for (size_t i = 0; i < r->view.n; i++) {
    cairn__v1__server_address__init(&addrs[i]);
    addrs[i].id = r->view.replicas[i].id;
    addrs[i].rpc_addr = r->view.replicas[i].rpc_addr;
    addrs[i].data_addr = r->view.replicas[i].data_addr;
    ptrs[i] = &addrs[i];
  }
  Cairn__V1__PrepareRequest pr = CAIRN__V1__PREPARE_REQUEST__INIT;
  pr.handle = req->handle;
  pr.version = req->version;
  pr.serial = r->serial;
  pr.offset = r->offset;
  pr.pad = r->pad;
  if (!r->pad) {
    pr.data_id = req->data_id;
    pr.length = req->length;
    pr.crc32c = req->crc32c;
  }
  pr.primary_id = (char *)s->id;
  pr.primary_rpc_addr = s->rpc_addr;
  pr.n_replicas = r->view.n;
  pr.replicas = ptrs;

  cs__tp_call c[CS_LEASES_MAX_REPLICAS];
  for (size_t i = 0; i < r->nsec; i++)
    c[i] = (cs__tp_call){.s = s, .target = r->view.replicas[r->sec[i]].rpc_addr,
                         .service = &cairn__v1__chunkserver__descriptor, .method = "Prepare",
                         .req = &pr.base, .timeout_ms = rpc_timeout(s)};
  cs__tp_calls_start(c, r->nsec);
  r->local_vote = cs__tp_prepare_locked(s, &pr, r->local_err, sizeof r->local_err);
  cs__tp_calls_wait(c, r->nsec);

  size_t yes = r->local_vote == 0 ? 1 : 0;
  for (size_t i = 0; i < r->nsec; i++) {
    const Cairn__V1__PrepareReply *rep = (const Cairn__V1__PrepareReply *)c[i].reply;
    if (c[i].rc != 0) {
      r->vote[i] = c[i].rc;
    } else if (!rep->vote_yes) {
      r->vote[i] = rep->error < 0 ? rep->error : CAIRN_EUNKNOWN;
      r->said_no[i] = true;
    } else {
      r->vote[i] = 0;
      yes++;
    }
    if (r->vote[i] != 0)
      CMN_WARN(CS__TP_MOD, "replica voted no handle=%" PRIu64 " serial=%" PRIu64 " server=%s "
               "error=%s message=\"%s\"", req->handle, r->serial,
               r->view.replicas[r->sec[i]].id, cairn_err_name(r->vote[i]),
               c[i].rc != 0 ? c[i].st.message : "vote no");
  }
  cs__tp_calls_free(c, r->nsec);
  r->commit = r->local_vote == 0 && yes >= r->quorum;
  /* Commit only under a lease still valid (with its margin): once it ends
   * the master may move the version on, and the replicas then settle what
   * nobody can vouch for as aborted (cs_twopc_set_version). */
  cs_lease_view now;
  if (r->commit && (cs_leases_primary(s->leases, req->handle, cmn_wall_ms(), &now) != 0 ||
                    now.version != req->version)) {
    r->commit = false;
    r->lease_lost = true;
  }
  /* Known before anyone is told: Outcome queries answer from the ring. */
  cs_leases_decided(s->leases, req->handle, req->version, r->serial, r->commit);

  Cairn__V1__DecideRequest dr = CAIRN__V1__DECIDE_REQUEST__INIT;
  dr.handle = req->handle;
  dr.version = req->version;
  dr.serial = r->serial;
  bool send[CS_LEASES_MAX_REPLICAS];
  int rcs[CS_LEASES_MAX_REPLICAS] = {0};
  for (size_t i = 0; i < r->nsec; i++)
    send[i] = r->commit ? r->vote[i] == 0 : !r->said_no[i]; /* a timeout may have prepared */
  decide_calls(r, &dr, send, r->commit ? "Commit" : "Abort", rcs);
  for (size_t i = 0; i < r->nsec && r->commit; i++) {
    r->commit_rc[i] = rcs[i];
    if (send[i] && rcs[i] == 0) r->committed++;
  }
  if (r->commit) {
    r->local_commit = cs__tp_commit_locked(s, req->handle, req->version, r->serial);
    if (r->local_commit == 0) r->committed++;
  } else if (r->local_vote == 0) {
    (void)cs__tp_abort_locked(s, req->handle, req->version, r->serial);
  }
}

/*
 * Our own commit failed after the others committed: this replica no longer
 * matches the chunk. Drop it (the heartbeat reports it gone and the master
 * re-replicates) and the lease with it, so it never serves the old bytes.
 */
static void disown_replica(round *r) {
  const Cairn__V1__WriteRequest *req = r->req;
  int rc = cs_store_delete(r->s->store, req->handle, req->version);
  cs_leases_drop(r->s->leases, req->handle);
  CMN_ERROR(CS__TP_MOD, "primary could not commit its own replica handle=%" PRIu64
            " serial=%" PRIu64 " error=%s delete=%s", req->handle, r->serial,
            cairn_err_name(r->local_commit), cairn_err_name(rc));
}

/* Some secondary did not commit a committed mutation. */
static bool has_failed(const round *r) {
  for (size_t i = 0; i < r->nsec; i++)
    if (r->vote[i] != 0 || r->commit_rc[i] != 0) return true;
  return false;
}

/*
 * A replica missed a committed mutation: stop taking writes on this lease
 * before the chunk mutex goes. Every round started at this version now
 * would include the failed replica and be reported against a version the
 * master is about to bump; worse, it would hold the chunk mutex that the
 * master's SetVersion (the bump, sent to us while we wait for the report's
 * answer) needs, until the master gives up on us. The SetVersion gives the
 * lease back at the new version, with the survivors; meanwhile writers get
 * CAIRN_ENOTPRIMARY (retryable) and ask the master again.
 */
static void suspend_lease(round *r) {
  cs_leases_drop(r->s->leases, r->req->handle);
}

/*
 * Tell the master about every secondary that did not commit a committed
 * mutation, one at a time: each report bumps the version, and the next one
 * must name the new version. Returns how many were reported; *all is false
 * if some could not be.
 */
static size_t report_failed(round *r, bool *all) {
  cs_server *s = r->s;
  cs__tp *t = cs__tp_get(s);
  uint64_t version = r->req->version;
  size_t ok = 0;
  *all = true;
  for (size_t i = 0; i < r->nsec; i++) {
    int why = r->vote[i] != 0 ? r->vote[i] : r->commit_rc[i];
    if (why == 0) continue;
    Cairn__V1__ReportFailedReplicaRequest q = CAIRN__V1__REPORT_FAILED_REPLICA_REQUEST__INIT;
    q.handle = r->req->handle;
    q.version = version;
    q.failed_server_id = r->view.replicas[r->sec[i]].id;
    q.reporter_id = (char *)s->id;
    q.error = why;
    cs__tp_call c = {.s = s, .service = &cairn__v1__master__descriptor,
                     .method = "ReportFailedReplica", .req = &q.base,
                     .timeout_ms = t->report_timeout_ms};
    cs__tp_call_run(&c);
    if (c.rc == 0) {
      const Cairn__V1__ReportFailedReplicaReply *rep =
          (const Cairn__V1__ReportFailedReplicaReply *)c.reply;
      if (rep->new_version > version) version = rep->new_version;
      ok++;
      CMN_WARN(CS__TP_MOD, "failed replica reported handle=%" PRIu64 " server=%s error=%s "
               "new_version=%" PRIu64, q.handle, q.failed_server_id, cairn_err_name(why),
               version);
    } else {
      *all = false;
      CMN_ERROR(CS__TP_MOD, "could not report a failed replica handle=%" PRIu64 " server=%s "
                "error=%s message=\"%s\"", q.handle, q.failed_server_id, cairn_err_name(c.rc),
                c.st.message);
    }
    cs__tp_calls_free(&c, 1);
  }
  return ok;
}

/* The client's answer, from what the round and the reports did. */
static int answer(round *r, bool reported_all, char *err, size_t errlen) {
  if (!r->commit) {
    if (r->lease_lost)
      cs__tp_say(err, errlen, "the lease ended before the votes were in");
    else if (r->local_vote != 0)
      cs__tp_say(err, errlen, "the primary voted no: %s", r->local_err[0] ? r->local_err
                                                                         : cairn_strerror(r->local_vote));
    else
      cs__tp_say(err, errlen, "too few replicas voted yes (quorum %zu of %zu)", r->quorum,
                 r->view.n);
    return CAIRN_ENOQUORUM;
  }
  if (r->local_commit != 0) {
    cs__tp_say(err, errlen, "the primary failed to commit: %s", cairn_strerror(r->local_commit));
    return r->local_commit;
  }
  if (r->committed < r->quorum) {
    cs__tp_say(err, errlen, "only %u replicas committed (quorum %zu)", r->committed, r->quorum);
    return CAIRN_ENOQUORUM;
  }
  if (!reported_all) {
    cs__tp_say(err, errlen, "a failed replica could not be reported to the master");
    return CAIRN_EUNAVAIL;
  }
  if (r->pad) {
    cs__tp_say(err, errlen, "the record does not fit: the chunk is padded, go on to the next");
    return CAIRN_ECHUNKFULL;
  }
  return 0;
}

int cs_twopc_write(cs_server *s, const Cairn__V1__WriteRequest *req, bool append,
                   cs_twopc_result *out, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (!s || !req || !out) return CAIRN_EINVAL;
  cs__tp *t = cs__tp_get(s);
  int rc = check_request(s, req, append, err, errlen);
  round *r = cmn_calloc(1, sizeof *r);
  r->s = s;
  r->req = req;
  if (rc == 0) rc = check_lease(s, req, &r->view, err, errlen);
  if (rc == 0) rc = check_push(s, req, err, errlen);
  if (rc != 0) goto done;

  cs_leases_lock(s->leases, req->handle);
  int64_t t0 = cmn_mono_ns();
  rc = check_locked(r, append, err, errlen);
  if (rc == 0)
    rc = cs_leases_next_serial(s->leases, req->handle, req->version, cmn_wall_ms(), &r->serial);
  if (rc != 0) {
    cs_leases_unlock(s->leases, req->handle);
    goto done;
  }
  for (size_t i = 1; i < r->view.n; i++) r->sec[r->nsec++] = i;
  r->quorum = r->view.n / 2 + 1;
  run_round(r);
  if (r->commit && r->local_commit != 0) disown_replica(r);
  else if (r->commit && has_failed(r)) suspend_lease(r);
  cs_leases_unlock(s->leases, req->handle);
  if (t->m_round) cmn_histogram_observe(t->m_round, (double)(cmn_mono_ns() - t0) / 1e9);
  cs__tp_count(t->m_rounds, 1);
  cs__tp_count(r->commit ? t->m_commits : t->m_aborts, 1);

  bool all = true;
  if (r->commit) cs__tp_count(t->m_reported, report_failed(r, &all));
  if (r->commit && !r->pad && s->push) cs_pushbuf_drop(s->push, req->data_id.data);
  rc = answer(r, all, err, errlen);
  out->serial = r->serial;
  out->offset = r->offset;
  out->committed = r->committed;
  CMN_DEBUG(CS__TP_MOD, "round handle=%" PRIu64 " version=%" PRIu64 " serial=%" PRIu64
            " offset=%" PRIu64 " pad=%d decision=%s committed=%u result=%s", req->handle,
            req->version, r->serial, r->offset, r->pad, r->commit ? "commit" : "abort",
            r->committed, cairn_err_name(rc));
done:
  free(r);
  return rc;
}
