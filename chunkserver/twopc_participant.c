/*
 * twopc_participant.c - one replica's side of two-phase commit: Prepare
 * (store prepare + journal before the yes vote), Commit, Abort, Outcome,
 * and the master's SetVersion (which also hands out leases).
 *
 * Every step that changes a replica runs under the chunk mutex
 * (cs_leases_lock), so the store sees the mutations of one chunk in order.
 * The primary runs the same steps on itself with the mutex already held,
 * through the *_locked functions.
 */
#include "twopc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

struct find_pending {
  uint64_t handle;
  cs_store_intent it;
  bool found;
};

static int find_pending_cb(void *arg, const cs_store_intent *it) {
  struct find_pending *f = arg;
  if (it->handle != f->handle) return 0;
  f->it = *it;
  f->found = true;
  return 1;
}

int cs__tp_pending_of(cs_server *s, uint64_t handle, cs_store_intent *out) {
  struct find_pending f = {.handle = handle};
  int rc = cs_store_pending(s->store, find_pending_cb, &f);
  if (rc < 0) return rc;
  if (!f.found) return CAIRN_ENOENT;
  *out = f.it;
  return 0;
}

static int64_t rpc_timeout(const cs_server *s) {
  return s->cfg.rpc_timeout_ms > 0 ? s->cfg.rpc_timeout_ms : 5000;
}

/* ---- prepare ---- */

/* The store half of a prepare: the pushed bytes (or a pad) into the store. */
static int store_prepare(cs_server *s, const Cairn__V1__PrepareRequest *req, char *err,
                         size_t errlen) {
  if (req->pad)
    return cs_store_prepare(s->store, req->handle, req->version, req->serial, req->offset, NULL,
                            0, 0, CS_STORE_PAD);
  const void *data;
  uint64_t len;
  uint32_t crc;
  int rc = s->push ? cs_pushbuf_get(s->push, req->data_id.data, &data, &len, &crc)
                   : CAIRN_ENOENT;
  if (rc != 0) {
    cs__tp_say(err, errlen, "the bytes of this write were not pushed here");
    return CAIRN_ENOENT;
  }
  if (len != req->length || crc != req->crc32c) {
    cs__tp_say(err, errlen, "pushed bytes (length %" PRIu64 ") differ from the write (length %u)",
               len, req->length);
    rc = len != req->length ? CAIRN_EINVAL : CAIRN_ECHECKSUM;
  } else {
    rc = cs_store_prepare(s->store, req->handle, req->version, req->serial, req->offset, data,
                          (size_t)len, crc, 0);
  }
  cs_pushbuf_put(s->push, req->data_id.data);
  return rc;
}

/*
 * Phase one with the chunk mutex held: version check, the bytes into the
 * store, then the journal (primary and replica set) — only when both are
 * durable is the answer a yes. An earlier mutation still pending here is
 * resolved first when another replica knows its outcome (its Commit or
 * Abort was lost), so one lost message does not block the chunk for good.
 */
int cs__tp_prepare_locked(cs_server *s, const Cairn__V1__PrepareRequest *req, char *err,
                          size_t errlen) {
  cs__tp *t = cs__tp_get(s);
  cs_store_replica info;
  int rc = cs_store_info(s->store, req->handle, &info);
  if (rc != 0) {
    cs__tp_say(err, errlen, "no replica of chunk %" PRIu64 " here", req->handle);
    return rc;
  }
  if (info.version != req->version) {
    cs__tp_say(err, errlen, "replica is at version %" PRIu64 ", the write is for %" PRIu64,
               info.version, req->version);
    return CAIRN_ESTALE;
  }
  for (int attempt = 0;; attempt++) {
    rc = store_prepare(s, req, err, errlen);
    if (rc != CAIRN_EBUSY || attempt > 0) break;
    cs_store_intent it;
    if (cs__tp_pending_of(s, req->handle, &it) != 0 || it.serial == req->serial) break;
    if (cs__tp_resolve_now(s, req->handle, rpc_timeout(s) / 4, false) != 1) break;
  }
  if (rc != 0) {
    if (err && !err[0])
      cs__tp_say(err, errlen, "store refused the prepare: %s", cairn_strerror(rc));
    return rc;
  }
  rc = cs__tp_journal_write(t, req);
  if (rc != 0) {
    (void)cs_store_abort(s->store, req->handle, req->version, req->serial);
    cs__tp_say(err, errlen, "journal write failed: %s", cairn_strerror(rc));
    return rc;
  }
  if (!req->pad)
    cs_leases_note_prepared(s->leases, req->handle, req->version, req->serial, req->data_id.data);
  return 0;
}

int cs_twopc_prepare(cs_server *s, const Cairn__V1__PrepareRequest *req, char *err,
                     size_t errlen) {
  if (!req || !cs__tp_handle_ok(req->handle) || req->version == 0 || req->serial == 0) {
    cs__tp_say(err, errlen, "invalid handle, version or serial");
    return CAIRN_EINVAL;
  }
  if (!req->pad && (req->data_id.len != CS_DATA_ID_LEN || req->length == 0)) {
    cs__tp_say(err, errlen, "a write needs a 16-byte data id and a length");
    return CAIRN_EINVAL;
  }
  if (!cs__tp_str_ok(req->primary_id, CS_LEASES_ID_MAX) ||
      !cs__tp_str_ok(req->primary_rpc_addr, CS_LEASES_ADDR_MAX) || req->n_replicas == 0 ||
      !cs__tp_addrs_ok(req->replicas, req->n_replicas)) {
    cs__tp_say(err, errlen, "invalid primary or replica set");
    return CAIRN_EINVAL;
  }
  cs_leases_lock(s->leases, req->handle);
  int rc = cs__tp_prepare_locked(s, req, err, errlen);
  cs_leases_unlock(s->leases, req->handle);
  if (rc != 0)
    CMN_DEBUG(CS__TP_MOD, "vote no handle=%" PRIu64 " version=%" PRIu64 " serial=%" PRIu64
              " error=%s", req->handle, req->version, req->serial, cairn_err_name(rc));
  return rc;
}

/* ---- commit / abort ---- */

int cs__tp_commit_locked(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  int rc = cs_store_commit(s->store, handle, version, serial);
  if (rc != 0) {
    CMN_WARN(CS__TP_MOD, "commit failed handle=%" PRIu64 " version=%" PRIu64 " serial=%" PRIu64
             " error=%s", handle, version, serial, cairn_err_name(rc));
    return rc;
  }
  cs_leases_decided(s->leases, handle, version, serial, true);
  cs__tp_journal_remove(cs__tp_get(s), handle, version, serial);
  uint8_t id[CS_DATA_ID_LEN];
  if (cs_leases_take_prepared(s->leases, handle, version, serial, id) && s->push)
    cs_pushbuf_drop(s->push, id);
  return 0;
}

int cs__tp_abort_locked(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  int rc = cs_store_abort(s->store, handle, version, serial);
  if (rc != 0) {
    CMN_WARN(CS__TP_MOD, "abort failed handle=%" PRIu64 " version=%" PRIu64 " serial=%" PRIu64
             " error=%s", handle, version, serial, cairn_err_name(rc));
    return rc;
  }
  cs_leases_decided(s->leases, handle, version, serial, false);
  cs__tp_journal_remove(cs__tp_get(s), handle, version, serial);
  uint8_t id[CS_DATA_ID_LEN];
  (void)cs_leases_take_prepared(s->leases, handle, version, serial, id); /* bytes kept for a retry */
  return 0;
}

static int decide(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial, bool commit) {
  if (!cs__tp_handle_ok(handle) || version == 0 || serial == 0) return CAIRN_EINVAL;
  cs_leases_lock(s->leases, handle);
  int rc = commit ? cs__tp_commit_locked(s, handle, version, serial)
                  : cs__tp_abort_locked(s, handle, version, serial);
  cs_leases_unlock(s->leases, handle);
  return rc;
}

int cs_twopc_commit(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  return decide(s, handle, version, serial, true);
}

int cs_twopc_abort(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  return decide(s, handle, version, serial, false);
}

/* ---- outcome ---- */

/*
 * Whether `serial` is the last committed serial of (handle, version) in
 * the store. The store has no read-only call for it, but its contract for
 * cs_store_abort of a serial that is not pending is exactly that: nothing
 * changes, and the answer is CAIRN_ECONFLICT iff that serial is the last
 * committed one. The caller holds the chunk mutex and has checked that
 * `serial` is not the pending one, so no prepare can slip in between.
 */
static bool last_committed_is(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  return cs_store_abort(s->store, handle, version, serial) == CAIRN_ECONFLICT;
}

static bool is_pending(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial) {
  cs_store_intent it;
  return cs__tp_pending_of(s, handle, &it) == 0 && it.version == version && it.serial == serial;
}

int cs_twopc_outcome(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial,
                     int64_t wait_ms) {
  if (!cs__tp_handle_ok(handle) || version == 0 || serial == 0) return CAIRN_EINVAL;
  int d = cs_leases_decision(s->leases, handle, version, serial);
  if (d >= 0) return d ? CS__TP_OUT_COMMITTED : CS__TP_OUT_ABORTED;
  if (is_pending(s, handle, version, serial)) return CS__TP_OUT_PENDING;
  /* The store's answer needs the chunk quiet (see last_committed_is). */
  if (cs_leases_lock_timed(s->leases, handle, wait_ms) != 0) return CAIRN_EBUSY;
  int out = CS__TP_OUT_UNKNOWN;
  cs_store_replica info;
  if (is_pending(s, handle, version, serial)) {
    out = CS__TP_OUT_PENDING;
  } else if (cs_store_info(s->store, handle, &info) == 0 && info.version == version &&
             last_committed_is(s, handle, version, serial)) {
    out = CS__TP_OUT_COMMITTED;
  } else {
    d = cs_leases_decision(s->leases, handle, version, serial); /* decided while we waited */
    if (d >= 0) out = d ? CS__TP_OUT_COMMITTED : CS__TP_OUT_ABORTED;
  }
  cs_leases_unlock(s->leases, handle);
  return out;
}

/* ---- set version ---- */

/*
 * The last committed serial of (handle, version), for a lease handed out
 * again on a version this replica already had (a repeated SetVersion after
 * a restart lost the in-memory count). Found by bisection with commit
 * probes: per the store's contract, committing a serial that is not pending
 * changes nothing and answers 0 iff it is at or below the last committed
 * one. Serials at or above a pending one are never probed. Chunk mutex held.
 */
static int last_serial_probe(cs_server *s, uint64_t handle, uint64_t version, uint64_t *last) {
  cs_store_intent it;
  uint64_t limit = UINT64_MAX;
  if (cs__tp_pending_of(s, handle, &it) == 0 && it.version == version) limit = it.serial;
  uint64_t lo = 0, hi = 1;
  int rc;
  for (;;) { /* grow hi until it is past the last committed serial */
    if (hi >= limit) break;
    rc = cs_store_commit(s->store, handle, version, hi);
    if (rc == CAIRN_ENOENT) break;
    if (rc != 0) return rc;
    lo = hi;
    if (hi > UINT64_MAX / 2) {
      hi = UINT64_MAX;
      break;
    }
    hi *= 2;
  }
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    rc = mid >= limit ? CAIRN_ENOENT : cs_store_commit(s->store, handle, version, mid);
    if (rc == 0) lo = mid;
    else if (rc == CAIRN_ENOENT) hi = mid;
    else return rc;
  }
  *last = lo;
  return 0;
}

static void copy_addrs(Cairn__V1__ServerAddress *const *a, size_t n, cs_replica_addr *out) {
  for (size_t i = 0; i < n; i++) {
    snprintf(out[i].id, sizeof out[i].id, "%s", a[i]->id);
    snprintf(out[i].rpc_addr, sizeof out[i].rpc_addr, "%s", a[i]->rpc_addr);
    snprintf(out[i].data_addr, sizeof out[i].data_addr, "%s", a[i]->data_addr ? a[i]->data_addr : "");
  }
}

/* The lease part of SetVersion, after the store took the version. */
static int take_lease(cs_server *s, const Cairn__V1__SetVersionRequest *req, bool was_there,
                      char *err, size_t errlen) {
  if (req->lease_expiry_ms <= 0) {
    cs_leases_drop(s->leases, req->handle); /* a secondary of this version */
    return 0;
  }
  uint64_t next = 1; /* a new version restarts serials */
  if (was_there) {
    next = cs_leases_peek_serial(s->leases, req->handle, req->new_version);
    if (next == 0) {
      uint64_t last = 0;
      int rc = last_serial_probe(s, req->handle, req->new_version, &last);
      if (rc != 0) {
        cs__tp_say(err, errlen, "cannot read the replica's serial: %s", cairn_strerror(rc));
        return rc;
      }
      next = last + 1;
    }
  }
  cs_replica_addr *reps = cmn_calloc(req->n_replicas, sizeof *reps);
  copy_addrs(req->replicas, req->n_replicas, reps);
  int rc = cs_leases_set(s->leases, req->handle, req->new_version, req->lease_expiry_ms, reps,
                         req->n_replicas, next);
  free(reps);
  return rc;
}

int cs_twopc_set_version(cs_server *s, const Cairn__V1__SetVersionRequest *req, char *err,
                         size_t errlen) {
  if (!req || !cs__tp_handle_ok(req->handle) || req->old_version == 0 ||
      req->new_version <= req->old_version || req->lease_expiry_ms < 0) {
    cs__tp_say(err, errlen, "invalid handle or versions");
    return CAIRN_EINVAL;
  }
  if (!cs__tp_addrs_ok(req->replicas, req->n_replicas)) {
    cs__tp_say(err, errlen, "invalid replica set");
    return CAIRN_EINVAL;
  }
  if (req->lease_expiry_ms > 0 &&
      (req->n_replicas == 0 || !s->id || strcmp(req->replicas[0]->id, s->id) != 0)) {
    cs__tp_say(err, errlen, "a lease must come with the replica set, this server first");
    return CAIRN_EINVAL;
  }
  cs_leases_lock(s->leases, req->handle);
  cs_store_replica before;
  bool was_there = cs_store_info(s->store, req->handle, &before) == 0 &&
                   before.version == req->new_version;
  int rc = cs_store_set_version(s->store, req->handle, req->old_version, req->new_version);
  /* The master moves a version on only when no primary may commit at the
   * old one any more (cs_twopc.h): a mutation nobody can vouch for is
   * aborted rather than left to block the chunk. */
  if (rc == CAIRN_EBUSY && cs__tp_resolve_now(s, req->handle, rpc_timeout(s) / 4, true) == 1)
    rc = cs_store_set_version(s->store, req->handle, req->old_version, req->new_version);
  if (rc != 0) {
    cs__tp_say(err, errlen, "version %" PRIu64 " -> %" PRIu64 " refused: %s", req->old_version,
               req->new_version, cairn_strerror(rc));
  } else {
    rc = take_lease(s, req, was_there, err, errlen);
  }
  cs_leases_unlock(s->leases, req->handle);
  if (rc == 0)
    CMN_INFO(CS__TP_MOD, "version set handle=%" PRIu64 " version=%" PRIu64 "->%" PRIu64
             " primary=%s", req->handle, req->old_version, req->new_version,
             req->lease_expiry_ms > 0 ? "yes" : "no");
  return rc;
}
