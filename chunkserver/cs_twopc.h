/*
 * cs_twopc.h - writes on a chunkserver: two-phase commit with a majority
 * quorum (2 of 3) as primary and as participant, record append, the
 * outcome of past mutations, version changes and start-up recovery
 * (DESIGN.md §5). cs_service.h puts these behind cairn.v1.Chunkserver.
 *
 * A round, on the primary (the lease holder of (handle, version)):
 *   1. check the lease, the version of the local replica, the range and the
 *      pushed bytes (data id); take the chunk mutex; assign the next serial;
 *   2. Prepare on every secondary in parallel (deadline cfg.rpc_timeout_ms)
 *      while preparing locally: each participant checks the version and the
 *      bytes, makes the mutation durable but undoable in the store, then
 *      journals the round (primary and replica set) and only then votes yes;
 *   3. with the primary's own yes, yes votes from a quorum (floor(n/2) + 1
 *      of the n replicas of the lease) and the lease still valid (with its
 *      margin; once it ends the master may move the version on): Commit on the
 *      secondaries that voted yes, in parallel, and commit locally LAST;
 *      otherwise Abort everywhere it may have been prepared (nothing
 *      changes: every replica stays byte-identical);
 *   4. record the decision; if a secondary failed, suspend the lease (no
 *      new round may start at a version about to be bumped); release the
 *      chunk mutex;
 *   5. if it committed, report every secondary that voted no, timed out or
 *      failed to commit to the master (ReportFailedReplica): the master
 *      bumps the version on the others (calling our SetVersion, which needs
 *      the chunk mutex, hence step 4 first, and gives the lease back at the
 *      new version), so a replica that missed a write is stale before
 *      anyone hears of the write;
 *   6. answer: success only when a quorum committed and every failed
 *      replica was reported; CAIRN_ENOQUORUM when the vote failed or too
 *      few committed; CAIRN_EUNAVAIL when the master could not be told.
 * After an abort nothing is reported: every replica holds the same bytes
 * at the same version, so none is stale, and reporting would shrink the
 * replica set on a transient fault (or, when the primary is the one cut
 * off, throw away the good copies).
 * Pushed bytes are dropped once they are committed; after an abort (or a
 * pad) they stay until their TTL, so a retry may use them again.
 *
 * Record append: under the chunk mutex the primary picks offset = its
 * committed length. A record that does not fit runs the same round with
 * the PAD flag (zero-fill to the chunk end on every replica) and answers
 * CAIRN_ECHUNKFULL (the client goes on to the next chunk). Records are at
 * most chunk size / 4. Each record is atomic; retries make it at-least-once.
 *
 * Outcome of (handle, version, serial) on a replica: PENDING while it holds
 * that serial prepared; COMMITTED if its decision ring says so or the store's
 * last committed serial of (handle, version) is that serial; ABORTED if the
 * ring says so; UNKNOWN otherwise.
 *
 * Recovery after a restart (cs_twopc_recover): every prepared, undecided
 * mutation in the store is resolved. Without a journal it never voted yes
 * (the journal is written after the store's prepare and before the vote),
 * so the primary cannot have committed it: abort. With a journal, ask every
 * other replica it names for the outcome: COMMITTED anywhere -> commit;
 * ABORTED anywhere -> abort; only PENDING, UNKNOWN or unreachable -> ask
 * again with backoff, and after the undecided period (the lease length by
 * default) abort.
 *
 * Why that is safe. A decision is made once, by the primary, and both
 * answers a replica can act on come from that decision. Aborting after the
 * timeout can only be wrong if the mutation committed somewhere; then the
 * primary had decided to commit, and a replica that did not commit is one
 * the primary reports to the master, which bumps the version of the chunk
 * on the others: this replica is then stale and never serves that version
 * again (the version check), and the master re-replicates from a good copy.
 * The primary commits itself last, after the secondaries acknowledged their
 * commits, so a primary that restarts with its own intent pending has not
 * told the client anything, and every replica that may have committed is a
 * secondary it asks: it commits iff some secondary committed, and otherwise
 * aborts, matching every secondary that only prepared or voted no.
 *
 * A running replica whose primary went between the votes and the decision
 * is settled by the master's next SetVersion (a new lease, granted only once
 * the old one is over): it asks the others twice, a retry pause apart (a
 * Commit sent just before the primary went may still be landing), applies
 * a definite answer, and otherwise aborts and takes the new version. Safe
 * for the same reason: a client hears of a write only after every replica
 * that did not commit it was reported and left out of the next version, so
 * a replica the master still moves on either committed the write or holds
 * one no client was told of; and no primary commits once its lease ended,
 * so nobody commits it later either.
 *
 * Threads: every function may be called from any thread; they block on
 * disk and on other servers (up to cfg.rpc_timeout_ms per step, more while
 * waiting for the master), so call them from threads that may block.
 */
#ifndef CS_TWOPC_H
#define CS_TWOPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkserver.pb-c.h"
#include "cs_leases.h"
#include "cs_server.h"

typedef struct cs_twopc_opts {
  cs_leases_opts leases;     /* lease length, clock margin, decision ring */
  const char *journal_dir;   /* NULL: "<first data dir>/2pc"; created if missing; copied */
  int64_t undecided_ms;      /* 0: the lease length. Recovery aborts a prepared mutation
                              * nobody knows the outcome of after this long */
  int64_t retry_ms;          /* 0: 250 ms. First pause between outcome queries in recovery
                              * (doubling, at most 5 s) */
  int64_t report_timeout_ms; /* 0: max(4 x cfg.rpc_timeout_ms, 10 s). Deadline of
                              * ReportFailedReplica (the master pushes versions first) */
} cs_twopc_opts;

/*
 * Create s->leases and the 2PC state hung on it: the journal directory and,
 * when s->metrics is set, the metrics (cairn_chunkserver_2pc_*). Needs
 * s->store; s->push, s->peers, s->master, s->id and s->rpc_addr are used
 * later by the calls below. `o` may be NULL (defaults); it is copied.
 * Errors: CAIRN_EINVAL (bad options, no store), CAIRN_EIO (journal dir),
 * CAIRN_EEXIST (metrics clash). Call once at start-up, before the RPC
 * server takes calls.
 */
int cs_twopc_init(cs_server *s, const cs_twopc_opts *o);

/* Ask a running cs_twopc_recover to give up soon (shutdown). Any thread. */
void cs_twopc_stop(cs_server *s);

/* Free s->leases and the 2PC state (NULL-safe). Only after the RPC server
 * stopped (no handler runs) and cs_twopc_recover returned. */
void cs_twopc_fini(cs_server *s);

/* ---- primary ---- */

typedef struct cs_twopc_result {
  uint64_t serial;    /* of the mutation */
  uint64_t offset;    /* where the bytes went */
  uint32_t committed; /* replicas that committed */
} cs_twopc_result;

/*
 * Run a client's Write (append false) or Append (true; req->offset is
 * ignored) as primary. 0 with *out filled: committed on a quorum and every
 * failed replica reported. `err` (may be NULL) gets a message on failure.
 * Errors: CAIRN_EINVAL (handle, version, data id not 16 bytes, length 0, a
 * hole past the committed length, an append above chunk size / 4),
 * CAIRN_ERANGE (offset + length beyond the chunk), CAIRN_ENOTPRIMARY (no
 * valid lease on (handle, version)), CAIRN_ESTALE (the client's version is
 * older than ours, or the replica is at another version), CAIRN_ENOENT (the
 * bytes were not pushed here), CAIRN_ECHECKSUM (pushed bytes differ from
 * length/crc), CAIRN_EBUSY (a mutation of the chunk is still undecided
 * here), CAIRN_ECORRUPT, CAIRN_ECHUNKFULL (append: the record does not fit;
 * the chunk is now padded), CAIRN_ENOQUORUM (vote failed or too few
 * commits), CAIRN_EUNAVAIL (a failed replica could not be reported), or the
 * store's error when the local commit failed (the lease is then dropped).
 */
int cs_twopc_write(cs_server *s, const Cairn__V1__WriteRequest *req, bool append,
                   cs_twopc_result *out, char *err, size_t errlen);

/* ---- participant ---- */

/*
 * Phase one on this replica. 0 is a yes vote: the mutation and its journal
 * are durable. Otherwise the no vote's reason: CAIRN_EINVAL (malformed
 * request), CAIRN_ENOENT (no replica, or the bytes were not pushed here),
 * CAIRN_ESTALE (another version), CAIRN_ECHECKSUM (bytes differ from
 * length/crc), CAIRN_EBUSY (an earlier mutation is undecided and could not
 * be resolved), and the store's errors (cs_store_prepare).
 */
int cs_twopc_prepare(cs_server *s, const Cairn__V1__PrepareRequest *req, char *err,
                     size_t errlen);

/* Phase two; idempotent. cs_store_commit / cs_store_abort errors
 * (CAIRN_ENOENT: commit of a serial never prepared here; CAIRN_ECONFLICT:
 * abort of a committed serial), CAIRN_EINVAL. */
int cs_twopc_commit(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial);
int cs_twopc_abort(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial);

/* What this replica knows of (handle, version, serial): one of
 * CAIRN__V1__OUTCOME_REPLY__OUTCOME__* (>= 0). Waits at most wait_ms for
 * the chunk mutex when it must look at the store: CAIRN_EBUSY after that.
 * CAIRN_EINVAL for a bad handle/version/serial. */
int cs_twopc_outcome(cs_server *s, uint64_t handle, uint64_t version, uint64_t serial,
                     int64_t wait_ms);

/*
 * The master's version change: cs_store_set_version (which creates an
 * empty replica for a never-written chunk, old_version 1), then, when
 * lease_expiry_ms > 0, this server is primary of the new version with the
 * given replica set (it must come first in it); otherwise any lease of the
 * handle is dropped. An undecided mutation in the way is resolved first:
 * as another replica knows it, else aborted (see above for why). Errors:
 * CAIRN_EINVAL (bad request),
 * the store's (CAIRN_ENOENT, CAIRN_ESTALE, CAIRN_EBUSY, ...).
 */
int cs_twopc_set_version(cs_server *s, const Cairn__V1__SetVersionRequest *req, char *err,
                         size_t errlen);

/* ---- start-up ---- */

/*
 * Resolve every prepared, undecided mutation the store reported at open
 * (see the top of this file) and remove journals nothing refers to.
 * Blocks until all are resolved (at most about undecided_ms) or
 * cs_twopc_stop; run it on a thread of its own once the RPC server serves
 * (other replicas ask us too). Returns how many mutations it resolved,
 * CAIRN_ECANCELED when stopped, or CAIRN_EIO (the store failed).
 */
int cs_twopc_recover(cs_server *s);

#endif /* CS_TWOPC_H */
