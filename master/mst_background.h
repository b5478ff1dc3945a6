/*
 * mst_background.h - the master's background work: liveness, re-replication
 * (repair, drains, rebalancing moves), trimming of extra replicas, garbage
 * collection of the trash, lease expiry and checkpoints.
 *
 * One thread (mst_background_start in mst_master.h) runs the steps below
 * every ~200 ms, each under the master's write lock for a short stretch and
 * never across an RPC, a sleep or an fsync wait. Every step is also callable
 * on its own (tests drive them without the thread, with chosen clocks).
 *
 * State. The in-flight clones, a watch list of chunks that need attention
 * the repair queue cannot express (see "Drain" below) and progress counters
 * live in a `struct mst_bg` that the master context points to
 * (m->bg_state). It is created on first use, protected by the master's lock
 * (write lock to change, any mode to read), and freed by
 * mst_background_stop, which is safe to call when the thread never ran.
 * After mst_background_stop the hooks below do no clone bookkeeping (a
 * heartbeat that arrives during shutdown is still answered).
 *
 * Clones. A clone copies one replica of a chunk from a holder (`source`) to
 * a new server (`target`): a CLONE instruction queued to the target, and a
 * record here with the chunk's version and a start time. It completes when
 * the target reports the replica at that version (mst_bg_clone_reported):
 * the replica joins the set, the chunk is trimmed if it now has too many
 * copies, and re-checked if it still has too few. It fails when the target
 * reports it corrupt, stale or at another version (the chunk's version moved
 * during the copy: writes may be missing), and is abandoned when it is not
 * done within 10 heartbeat intervals or when the source or the target dies
 * or re-registers; a failed or abandoned clone puts the chunk back in the
 * queue. At most `clones_per_server` clones run per server as source and as
 * target. A chunk under a valid lease is never cloned (writes during the
 * copy would not reach the new replica): it waits until the lease ends.
 * A rebalancing move is a clone with `move_from` set: once it completes,
 * the copy on `move_from` is the first one trimmed.
 *
 * Drain (the counting rule). Replicas on draining servers do not count
 * toward a chunk's goal: the "effective" replicas of a chunk are those on
 * servers that are neither dead nor draining. Chunks whose effective count
 * is below the goal get clones (the draining copy may be the source);
 * chunks with fewer replicas than the goal in total go through the chunk
 * table's repair queue, the others (only their draining copies are missing)
 * through the watch list. Extra copies are deleted only when the effective
 * count is at least the goal, so a draining copy is deleted only once the
 * chunk has its full goal on other servers.
 *
 * Trimming (over-replication). A chunk with more replicas than its goal and
 * at least `goal` effective ones loses its extra copies, chosen in order:
 * the source of a completed move, copies on draining servers, copies whose
 * zone another remaining copy shares, then the fullest server (highest
 * utilisation). The holder of a valid lease and the copies of a chunk with
 * a clone in flight are never deleted (the chunk is looked at again later).
 * A deleted copy leaves the replica set at once and its server gets a
 * DELETE(handle, version).
 *
 * Start-up grace: the thread does no repair, scan or rebalancing until
 * `dead_after` has passed since it started, so servers have time to
 * register their replicas before missing copies are re-created elsewhere.
 *
 * Thread safety: functions marked "caller holds the write lock" must be
 * called with m->lock held exclusively; the step functions take the lock
 * themselves and must be called without it.
 */
#ifndef MST_BACKGROUND_H
#define MST_BACKGROUND_H

#include <stdbool.h>
#include <stdint.h>

#include "mst_master.h"

typedef struct mst_bg mst_bg;

/* Progress for /status and metrics. */
typedef struct mst_bg_stats {
  uint64_t clones_in_flight;  /* repair clones and moves under way */
  uint64_t moves_in_flight;   /* ... of which rebalancing moves */
  uint64_t clones_started;    /* since start, moves included */
  uint64_t clones_done;       /* completed: the target reported the replica */
  uint64_t clones_failed;     /* the target reported a bad copy */
  uint64_t clones_abandoned;  /* timed out, or source/target died or restarted */
  uint64_t moves_done;
  uint64_t deletes_ordered;   /* DELETEs queued by repair, trimming and reports */
  uint64_t trimmed;           /* extra replicas deleted (part of deletes_ordered) */
  uint64_t purged;            /* trash entries removed for good */
  uint64_t watched;           /* chunks waiting on the watch list (drains, trims) */
  uint64_t servers_died;      /* servers declared dead by the liveness check */
  int64_t last_scan_ms;       /* last over-replication / drain scan, 0 = none yet */
  int64_t last_rebalance_ms;  /* last rebalancing round, 0 = none yet */
} mst_bg_stats;

/* Fills *out (zeros when no background state exists). Caller holds the lock
 * in any mode. Any thread. */
void mst_background_stats(mst_master *m, mst_bg_stats *out);

/* ---- hooks for the chunkserver service (caller holds the write lock) ---- */

/* The background state, created on first use; NULL once
 * mst_background_stop has begun. Caller holds the write lock. */
mst_bg *mst_bg_state(mst_master *m);

/* Looks at chunk `handle` after its replica set changed: queues it for
 * repair when it has fewer replicas than its goal (trashed mark from its
 * file), puts it on the watch list when only the drain counting rule makes
 * it short, or when it has extra copies to trim. Unknown chunks are
 * ignored. */
void mst_bg_check(mst_master *m, uint64_t handle);

/* Server `target` reported a replica of `handle` at `version`; `good` says
 * it is not corrupt and `version` is the chunk's current one. When a clone
 * of that chunk to that server is in flight it ends here. Returns:
 *   0  no clone was in flight: the caller handles the replica as usual;
 *   1  the clone completed (good, and at the clone's version): the caller
 *      adds the replica to the set, then calls mst_bg_clone_finish with
 *      *move_from (the move's source, MST_SERVER_NONE for a repair);
 *   2  the clone failed: the caller must not add the replica, deletes it
 *      and calls mst_bg_check. */
int mst_bg_clone_reported(mst_master *m, uint16_t target, uint64_t handle, uint64_t version,
                          bool good, uint16_t *move_from);

/* After a completed clone's replica was added: trims the chunk (deleting
 * first the copy on `move_from` when it was a move), clears its corrupt
 * mark once it has its goal again, re-checks it and lets the next repair
 * round run at once. */
void mst_bg_clone_finish(mst_master *m, uint64_t handle, uint16_t move_from, int64_t now_ms);

/* Abandons every clone in which server idx is source or target (it died or
 * re-registered), putting the chunks back in the queue. Call it BEFORE
 * mst_servers_register resets the server's clone counters, so the other
 * side's counter is released too. Returns the number abandoned. */
int mst_bg_server_reset(mst_master *m, uint16_t idx);

/* Queues DELETE(handle, version) to server idx and counts it for status.
 * Returns what mst_servers_queue returns (a dead server: CAIRN_ESTALE). */
int mst_bg_queue_delete(mst_master *m, uint16_t idx, uint64_t handle, uint64_t version);

/* Trims chunk `handle` by the rules above, deleting first the copy on
 * `prefer` (MST_SERVER_NONE for no preference). Returns the number of
 * copies deleted. */
int mst_bg_trim(mst_master *m, uint64_t handle, uint16_t prefer, int64_t now_ms);

/* Makes the next repair round run at once (new servers or replicas may
 * make placements possible that were not) and wakes the thread. */
void mst_bg_kick(mst_master *m);

/* ---- steps (caller does NOT hold the lock) -------------------------------- */

/* Declares dead the servers silent for more than cfg.dead_after_ms, drops
 * their replicas (queuing the chunks) and abandons their clones. Returns
 * the number of servers declared dead. */
int mst_bg_liveness(mst_master *m, int64_t now_ms);

/* Starts clones for queued and watched chunks within the clone throttle.
 * Chunks that cannot be placed now are retried later (a round that places
 * nothing backs off for a second). Returns the number of clones started. */
int mst_bg_repair(mst_master *m, int64_t now_ms);

/* Abandons clones older than 10 heartbeat intervals (or whose chunk is
 * gone) and forgets expired leases. Returns the number of clones abandoned. */
int mst_bg_expire(mst_master *m, int64_t now_ms);

/* Walks the whole chunk table: trims over-replicated chunks, watches chunks
 * short only by the drain rule, queues under-replicated chunks the queue
 * lost track of. Returns the number of replicas deleted. */
int mst_bg_scan(mst_master *m, int64_t now_ms);

/* One rebalancing round: up to cfg.rebalance_moves moves from servers more
 * than cfg.rebalance_threshold_pct above the average use to servers below
 * it, within the clone throttle. Returns the number of moves started. */
int mst_bg_rebalance(mst_master *m, int64_t now_ms);

/* Purges up to 1000 trash entries older than cfg.trash_period_ms (logged
 * OpPurge records; their replicas get DELETEs). Returns the number purged. */
int mst_bg_gc(mst_master *m, int64_t now_ms);

/* Frees the background state (the thread must not run). Caller does not
 * hold the lock. */
void mst_bg_free(mst_master *m);

#endif /* MST_BACKGROUND_H */
