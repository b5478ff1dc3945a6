/*
 * mst_servers_svc.h - the chunkserver-facing side of cairn.v1.Master:
 * registration with a full replica report, heartbeats with incremental
 * reports and lease extensions, failed-replica reports from primaries, and
 * drains. The RPC handlers (mst_svc_register, mst_svc_heartbeat,
 * mst_svc_report_failed, mst_svc_drain in mst_master.h) are thin glue over
 * the functions below, which tests drive directly.
 *
 * Replica reports (registration and heartbeat `added`), per replica:
 *   - unknown handle (orphan): DELETE(handle, version) queued to the server;
 *   - corrupt: DELETE queued, the replica leaves the set, the chunk is marked
 *     MST_CHUNK_F_CORRUPT (cleared once a clone restores its goal) and
 *     queued for repair;
 *   - version below the master's (stale): the replica leaves the set and a
 *     DELETE is queued -- unless no other replica of the chunk is known: the
 *     copy is then kept on disk (not in the set, chunk marked
 *     MST_CHUNK_F_STALE) so that the last copy of data is never destroyed
 *     automatically;
 *   - version above the master's: the master crashed while granting a lease
 *     (GFS 4.5): the higher version is adopted (OpSetVersion applied and
 *     logged), the other holders are stale (they leave the set and get a
 *     DELETE), and the replica is added;
 *   - otherwise the replica is added and the chunk's known length raised to
 *     the reported one.
 * A report from the target of a clone in flight ends the clone (see
 * mst_background.h): at the clone's version it completes it, at any other
 * version (or corrupt) it fails it and the copy is deleted.
 *
 * Validation. Every request is checked whole before anything changes: a
 * server id is 1..64 printable ASCII characters without spaces; data_addr
 * and rpc_addr are host:port with a port 1..65535; a zone is at most 64
 * printable bytes; free_bytes <= capacity_bytes; handles are neither 0 nor
 * UINT64_MAX; a reported length is at most the chunk size; the cluster id
 * of a registration equals the master's (else CAIRN_EAUTH).
 *
 * Drain. A drained server's replicas stop counting toward their chunks'
 * goals; the background thread copies them elsewhere and deletes the
 * drained copies once each chunk has its goal on other servers (the full
 * rule is in mst_background.h). A heartbeat with `draining` set starts a
 * drain too; only the Drain RPC with `cancel` ends one.
 *
 * Threads: every function takes the master's lock itself unless it says
 * "caller holds the write lock"; none may be called with the lock held
 * otherwise. Errors are negative CAIRN_* codes; `err` (may be NULL) then
 * holds a one-line reason.
 */
#ifndef MST_SERVERS_SVC_H
#define MST_SERVERS_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mst_master.h"

#include "cairn.pb-c.h"
#include "master.pb-c.h"

#define MST_SVC_MAX_INSTRUCTIONS 1000 /* instructions per registration / heartbeat reply */
#define MST_SVC_SET_VERSION_TIMEOUT_MS 2000

struct Cairn__V1__ServerAddress;
struct cmn_rpc_status;
/* SetVersion(old_v -> new_v) on the chunkserver at rpc_addr, with the
 * lease expiry (0: a secondary) and the replica set. Idempotent on the
 * server, so one that timed out or was unreachable (no answer) is asked up
 * to three times
 * (MST_SVC_SET_VERSION_TIMEOUT_MS each, 200 ms apart) before the error is
 * returned. Runs without the master lock; *st gets the last status. */
int mst_svc_set_version(mst_master *m, const char *rpc_addr, uint64_t handle, uint64_t old_v,
                        uint64_t new_v, int64_t expiry, struct Cairn__V1__ServerAddress **replicas,
                        size_t nrep, struct cmn_rpc_status *st);

/* One SetVersion of a batch: where, and the lease expiry (0: a secondary);
 * rc and msg are filled in. */
typedef struct mst_sv_push {
  const char *rpc_addr;
  int64_t expiry;
  int rc;
  char msg[160];
} mst_sv_push;

/* The SetVersion calls p[0..n) (same handle, versions and replica set), all
 * at once, each as mst_svc_set_version: a grant or a bump waits for its
 * slowest replica instead of the sum of them. Returns when every call
 * answered or gave up. Runs without the master lock. */
void mst_svc_set_versions(mst_master *m, mst_sv_push *p, size_t n, uint64_t handle,
                          uint64_t old_v, uint64_t new_v,
                          struct Cairn__V1__ServerAddress **replicas, size_t nrep);

/* What mst_server_report did with one replica. */
typedef enum mst_report_outcome {
  MST_REPORT_ADDED = 0,      /* in the replica set */
  MST_REPORT_ORPHAN = 1,     /* unknown chunk: DELETE queued */
  MST_REPORT_STALE = 2,      /* older version: DELETE queued */
  MST_REPORT_KEPT_STALE = 3, /* older version, but no other copy known: left alone */
  MST_REPORT_ADOPTED = 4,    /* newer version adopted (logged), replica added */
  MST_REPORT_CORRUPT = 5,    /* DELETE queued */
  MST_REPORT_CLONE_FAILED = 6, /* a clone's copy at the wrong version: DELETE queued */
} mst_report_outcome;

/* Pending instructions converted for a reply. `v[0..n)` is what the
 * reply's `instructions` field points to; everything (CLONE source
 * addresses included) is owned by the struct and released with
 * mst_instr_out_free, and stays valid after the lock is released. */
typedef struct mst_instr_out {
  size_t n;
  Cairn__V1__ServerInstruction **v;
  void *mem;
} mst_instr_out;

void mst_instr_out_free(mst_instr_out *o);

/* Moves up to `cap` pending instructions of server idx into *out (CLONE
 * carries the source's addresses, LEASE its expiry) and counts the DELETEs
 * in m_deletes_sent. Caller holds the write lock. Returns the number, or
 * CAIRN_ENOENT. */
int mst_server_take_instructions(mst_master *m, uint16_t idx, size_t cap, mst_instr_out *out);

/* Handles one replica report from server idx by the rules above. Caller
 * holds the write lock. Returns an mst_report_outcome, or CAIRN_EINVAL (bad
 * handle or length), CAIRN_ENOENT (no server idx), or an error of the
 * replica set (CAIRN_ETOOBIG: 15 replicas already; a DELETE is queued). */
int mst_server_report(mst_master *m, uint16_t idx, const Cairn__V1__ReplicaReport *r,
                      int64_t now_ms);

/* RegisterServer: validates, registers (a known id keeps its index and
 * abandons its clones in flight), REPLACES the server's replica set with the
 * full report, queues chunks that fell short for repair, and moves up to
 * MST_SVC_MAX_INSTRUCTIONS pending instructions into *out (may be NULL).
 * Returns the server's index, or CAIRN_EINVAL, CAIRN_EAUTH (cluster id),
 * CAIRN_ENOSPC (server table full). */
int mst_server_register(mst_master *m, const Cairn__V1__RegisterRequest *req, int64_t now_ms,
                        mst_instr_out *out, char *err, size_t errlen);

/* Heartbeat: for an unknown server or one the master declared dead sets
 * *reregister and changes nothing. Otherwise records the figures, handles
 * `added` (as above), `removed` (replica leaves the set, chunk re-checked),
 * `lease_extensions` (each chunk whose valid lease this server holds gets
 * now + lease_ms and a LEASE instruction with the new expiry; others are
 * ignored), the draining flag, and moves pending instructions into *out
 * (may be NULL). 0 or CAIRN_EINVAL. */
int mst_server_heartbeat(mst_master *m, const Cairn__V1__HeartbeatRequest *req, int64_t now_ms,
                         bool *reregister, mst_instr_out *out, char *err, size_t errlen);

/* Drain: sets (cancel false) or clears the drain flag of a server and looks
 * at every chunk it holds. 0, CAIRN_EINVAL (bad id), CAIRN_ENOENT. */
int mst_server_drain(mst_master *m, const char *server_id, bool cancel, char *err, size_t errlen);

/*
 * ReportFailedReplica. The reporter must hold the chunk's valid lease
 * (else CAIRN_ENOTPRIMARY) and `version` must be the chunk's current
 * version (else CAIRN_ESTALE: another report or a new lease got there
 * first, so concurrent reports for one chunk bump it once). The failed
 * server leaves the set; the version is bumped (OpSetVersion applied and
 * logged) and, once durable, pushed with SetVersion to every surviving
 * replica (m->peers, MST_SVC_SET_VERSION_TIMEOUT_MS each, no lock held); a
 * survivor that does not acknowledge leaves the set too. When at least one
 * survivor took the new version, the failed server and the silent survivors
 * get DELETE(handle, old version). The chunk is queued for repair.
 * *new_version gets the new version. Blocks for the log and the RPCs: call
 * it from a thread that may wait. Errors: CAIRN_EINVAL, CAIRN_ENOENT (chunk
 * or failed server unknown), CAIRN_ENOTPRIMARY, CAIRN_ESTALE, CAIRN_EUNAVAIL
 * (the reporter itself did not take the new version -- its lease is then
 * cleared -- or no survivor did; the version was bumped all the same).
 */
int mst_server_report_failed(mst_master *m, const Cairn__V1__ReportFailedReplicaRequest *req,
                             uint64_t *new_version, char *err, size_t errlen);

#endif /* MST_SERVERS_SVC_H */
