/*
 * cs_heartbeat.h - the chunkserver's conversation with the master.
 *
 * One thread registers the server (id, addresses, zone, space, the full
 * replica report), then sends a heartbeat every interval the master asked
 * for: free space, load, the replicas added or removed since the last one
 * (clones imported, deletions, replicas found corrupt), the leases it wants
 * extended, and whether a data dir went read-only or failed. It carries out
 * the instructions in every reply: delete a replica, clone one from another
 * server (on a small pool of clone threads), set a replica's version,
 * extend a lease. A master that asks it to re-register gets the full report
 * again; an unreachable master is retried with backoff.
 *
 * The cluster id is learnt at the first registration and kept in every data
 * dir (`CLUSTER`), so a data dir never joins another cluster by mistake.
 *
 * Thread safety: start/stop from main(); the report functions from any
 * thread.
 */
#ifndef CS_HEARTBEAT_H
#define CS_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_server.h"

typedef struct cs_heartbeat cs_heartbeat;

/* Start the thread. On success *out is owned by the caller until
 * cs_heartbeat_stop. Errors: CAIRN_ECONFIG (a data dir belongs to another
 * cluster than the others), CAIRN_EIO. */
int cs_heartbeat_start(cs_server *s, cs_heartbeat **out);

/* Stop the thread (and wait for clones in flight to end); frees hb. */
void cs_heartbeat_stop(cs_heartbeat *hb);

/* Queue an incremental report for the next heartbeat: a replica that
 * appeared or changed (added, with its length and corrupt flag) or went. */
void cs_heartbeat_report_added(cs_heartbeat *hb, uint64_t handle, uint64_t version,
                               uint64_t length, bool corrupt);
void cs_heartbeat_report_removed(cs_heartbeat *hb, uint64_t handle);

/* Wake the thread now (a replica went corrupt: the master should hear it
 * at once, not in a few seconds). */
void cs_heartbeat_kick(cs_heartbeat *hb);

/* 1 once registered with the master and its last heartbeat was answered
 * (for /healthz). */
bool cs_heartbeat_connected(cs_heartbeat *hb);

#endif /* CS_HEARTBEAT_H */
