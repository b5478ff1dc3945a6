/*
 * mst_chunks.h - the master's chunk table and re-replication queue.
 *
 * The table maps a chunk handle (u64, allocated by the caller, never reused;
 * 0 and UINT64_MAX are invalid) to what the master knows about the chunk:
 * version, owning file id and chunk index in that file, committed length,
 * replication goal, replica set (chunkserver indices from mst_servers.h),
 * lease (primary + expiry), flags and a reference count for copy-on-write
 * snapshots (1 unless shared).
 *
 * Memory is the design constraint (at most 64 bytes per chunk with every
 * overhead, at a million chunks and beyond): an entry is 32 bytes and does
 * not store its handle. Entries live in pages of 64 consecutive handles
 * holding only the entries present (a 64-bit occupancy mask + a packed
 * array), found through a hash directory keyed by handle / 64. Handles are
 * allocated densely, so pages are full and a chunk costs about 33 bytes;
 * removing chunks shrinks and frees pages (a chunk alone in its page costs
 * about 100 bytes, the worst case; measured: 33 bytes per chunk of RSS at
 * 1M and 4M chunks, about 41 after deleting a random half). What few chunks need is kept aside:
 * replica sets bigger than 3 (a spill pool), leases (a hash map of the
 * chunks being written) and reference counts above 1.
 *
 * Replica sets hold distinct server indices (never two replicas on one
 * server), up to MST_CHUNK_REPLICAS_MAX: more than the goal is allowed so
 * that over-replication (a move in progress, a lowered goal, a server that
 * came back after its chunks were repaired) is represented and the caller
 * can choose which copy to delete.
 *
 * Repair queue. Chunks with fewer replicas than their goal are queued by the
 * caller (who knows whether the owning file is in the trash) and popped most
 * urgent first: fewest live replicas first (1, then 2, ...), for the same
 * count chunks of live files before trashed ones, then the largest deficit
 * (goal - replicas) first, then first in, first out. A chunk is at most once
 * in the queue. Queued chunks follow their own changes: adding or removing a
 * replica, or changing the goal, moves a queued chunk to its new place, and
 * one that reaches its goal leaves the queue. A queued chunk with no replica
 * is "missing": it stays queued but is not handed out until a replica comes
 * back (it cannot be copied from nowhere). Operations are O(1) amortised
 * (128 FIFO buckets).
 *
 * Determinism: no clock reads (callers pass now_ms), no randomness.
 *
 * Thread safety: none inside. The master's service layer serialises every
 * call with its own lock (const functions may run concurrently with each
 * other while no mutation runs).
 *
 * Errors: 0 or a positive count on success, a negative CAIRN_* code on
 * failure; a failed call changes nothing.
 */
#ifndef MST_CHUNKS_H
#define MST_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MST_CHUNK_GOAL_MIN 1
#define MST_CHUNK_GOAL_MAX 9
#define MST_CHUNK_REPLICAS_MAX 15
#define MST_CHUNK_LEASE_MAX_MS ((int64_t)1 << 47) /* lease expiries are below this */

/* Flags the caller sets and clears (mst_chunks_set_flags). */
#define MST_CHUNK_F_CORRUPT 0x01u /* a replica failed checksum verification */
#define MST_CHUNK_F_STALE 0x02u   /* a replica with an old version was seen */
/* A lease grant is under way: the version is bumped in the table but the
 * lease is not set yet, and writes at the new version may start any time.
 * No clone, move or trim may start on the chunk until it is cleared. */
#define MST_CHUNK_F_GRANTING 0x04u
#define MST_CHUNK_F_USER_MASK 0x07u

typedef struct mst_chunks mst_chunks;

/* A copy of one chunk's record (mst_chunks_get, mst_chunks_iterate). */
typedef struct mst_chunk_info {
  uint64_t handle;
  uint64_t version;
  uint64_t file_id;          /* 0 when no file owns it */
  uint32_t index;            /* chunk index within the file */
  uint32_t length;           /* committed length in bytes */
  uint8_t goal;
  uint8_t nrep;              /* replicas[0..nrep) */
  uint8_t flags;             /* MST_CHUNK_F_* */
  bool leased;               /* a lease was set and not cleared (see lease_expiry_ms) */
  bool queued;               /* in the repair queue */
  bool queued_trashed;       /* queued as belonging to a trashed file */
  uint16_t primary;          /* leased: the lease holder */
  int64_t lease_expiry_ms;   /* leased: valid while now_ms < this */
  uint32_t refcount;
  uint16_t replicas[MST_CHUNK_REPLICAS_MAX];
} mst_chunk_info;

typedef struct mst_chunks_stats {
  uint64_t chunks;
  uint64_t missing;          /* chunks with no replica */
  uint64_t under_replicated; /* chunks with fewer replicas than their goal (missing included) */
  uint64_t queued;           /* in the repair queue and repairable (at least one replica) */
  uint64_t queued_missing;   /* in the repair queue, waiting for a replica to come back */
  uint64_t leases;           /* lease records (valid or expired, not yet cleared) */
  uint64_t spilled;          /* chunks with more than 3 replicas */
  uint64_t shared;           /* chunks with a reference count above 1 */
  uint64_t pages;            /* pages of 64 handles allocated */
  uint64_t mem_bytes;        /* bytes the table allocated (without allocator overhead) */
} mst_chunks_stats;

/* ---- lifetime ---------------------------------------------------------- */

/* A new empty table; the caller owns *out and frees it with mst_chunks_free.
 * Always 0. */
int mst_chunks_new(mst_chunks **out);
/* Frees the table and everything in it. NULL is fine. */
void mst_chunks_free(mst_chunks *t);

/* ---- records ----------------------------------------------------------- */

/* Adds chunk `handle` with no replica, no lease, no flags, refcount 1.
 * Errors: CAIRN_EEXIST, CAIRN_EINVAL (handle 0 or UINT64_MAX, index or length
 * above UINT32_MAX, goal outside MST_CHUNK_GOAL_MIN..MAX). */
int mst_chunks_insert(mst_chunks *t, uint64_t handle, uint64_t version, uint64_t file_id,
                      uint64_t index, uint64_t length, unsigned goal);

/* Copies chunk `handle` into *out (may be NULL to test presence).
 * 0 or CAIRN_ENOENT. */
int mst_chunks_get(const mst_chunks *t, uint64_t handle, mst_chunk_info *out);

/* Removes chunk `handle` with its replicas, lease, reference count and queue
 * place. 0 or CAIRN_ENOENT. */
int mst_chunks_remove(mst_chunks *t, uint64_t handle);

/* Number of chunks. */
uint64_t mst_chunks_count(const mst_chunks *t);

/* The version can only grow (CAIRN_EINVAL when below the current one; equal
 * is accepted). 0, CAIRN_ENOENT or CAIRN_EINVAL. */
int mst_chunks_set_version(mst_chunks *t, uint64_t handle, uint64_t version);
/* Committed length. 0, CAIRN_ENOENT, CAIRN_EINVAL (above UINT32_MAX). */
int mst_chunks_set_length(mst_chunks *t, uint64_t handle, uint64_t length);
/* Owning file and index (e.g. after a copy-on-write duplicate).
 * 0, CAIRN_ENOENT, CAIRN_EINVAL (index above UINT32_MAX). */
int mst_chunks_set_owner(mst_chunks *t, uint64_t handle, uint64_t file_id, uint64_t index);
/* Replication goal; a queued chunk moves or leaves the queue accordingly
 * (a chunk newly below its goal is not queued: the caller enqueues it).
 * 0, CAIRN_ENOENT, CAIRN_EINVAL (goal out of range). */
int mst_chunks_set_goal(mst_chunks *t, uint64_t handle, unsigned goal);
/* Sets (on) or clears (!on) the MST_CHUNK_F_* bits of `mask`.
 * 0, CAIRN_ENOENT, CAIRN_EINVAL (bits outside MST_CHUNK_F_USER_MASK). */
int mst_chunks_set_flags(mst_chunks *t, uint64_t handle, unsigned mask, bool on);

/* ---- replicas ---------------------------------------------------------- */

/* Adds server `server` to the replica set. Returns 1 when added, 0 when it
 * was already there. Errors: CAIRN_ENOENT, CAIRN_EINVAL (MST_SERVER_NONE),
 * CAIRN_ETOOBIG (MST_CHUNK_REPLICAS_MAX replicas already). */
int mst_chunks_add_replica(mst_chunks *t, uint64_t handle, uint16_t server);

/* Removes server `server` from the replica set. Returns 1 when removed, 0
 * when it was not there, or CAIRN_ENOENT. The lease is kept even when its
 * holder goes: a lease ends only by expiry or mst_chunks_clear_lease, so no
 * second primary can be appointed while the first may still act. */
int mst_chunks_remove_replica(mst_chunks *t, uint64_t handle, uint16_t server);

/* Number of replicas, or CAIRN_ENOENT. */
int mst_chunks_replica_count(const mst_chunks *t, uint64_t handle);

/* Called by mst_chunks_remove_server for each chunk that lost its replica on
 * the server, after the removal: `nrep` replicas remain, the goal is `goal`.
 * Inside the callback the table may be read (mst_chunks_get) and
 * mst_chunks_repair_enqueue may be called; nothing else. */
typedef void (*mst_chunks_lost_fn)(void *arg, uint64_t handle, unsigned nrep, unsigned goal);

/* Drops server `server` from every replica set (it died), calling `cb` (may
 * be NULL) for each chunk that lost a replica, and returns how many did.
 * Leases held by the server are kept until they expire (see above). Costs
 * O(chunks). CAIRN_EINVAL for MST_SERVER_NONE. */
int mst_chunks_remove_server(mst_chunks *t, uint16_t server, mst_chunks_lost_fn cb, void *arg);

/* ---- leases ------------------------------------------------------------ */

/* Records a lease held by `primary` (which must hold a replica) until
 * expiry_ms (0..MST_CHUNK_LEASE_MAX_MS-1), replacing any previous one.
 * 0, CAIRN_ENOENT, CAIRN_EINVAL. */
int mst_chunks_set_lease(mst_chunks *t, uint64_t handle, uint16_t primary, int64_t expiry_ms);

/* Forgets the lease. Returns 1 when there was one, 0 when not, or
 * CAIRN_ENOENT. */
int mst_chunks_clear_lease(mst_chunks *t, uint64_t handle);

/* 1 when a lease exists and now_ms < its expiry (holder in *primary, may be
 * NULL), 0 when not, CAIRN_ENOENT for an unknown chunk. */
int mst_chunks_lease_valid(const mst_chunks *t, uint64_t handle, int64_t now_ms,
                           uint16_t *primary);

/* 1 when the chunk may be written now or soon: a lease is valid or a grant
 * is under way (MST_CHUNK_F_GRANTING). A copy taken of it now could miss a
 * write. 0 when not, CAIRN_ENOENT for an unknown chunk. */
int mst_chunks_write_busy(const mst_chunks *t, uint64_t handle, int64_t now_ms);

/* Forgets every lease that expired at or before now_ms; returns how many. */
int mst_chunks_expire_leases(mst_chunks *t, int64_t now_ms);

/* ---- reference counts (copy-on-write snapshots) ------------------------ */

/* Adds one reference. Returns the new count, CAIRN_ENOENT, or CAIRN_ETOOBIG
 * at INT32_MAX references. */
int mst_chunks_ref(mst_chunks *t, uint64_t handle);
/* Drops one reference and returns the new count (1 or more). The last
 * reference goes with mst_chunks_remove: dropping it here is CAIRN_EINVAL.
 * CAIRN_ENOENT for an unknown chunk. */
int mst_chunks_unref(mst_chunks *t, uint64_t handle);

/* ---- walking ----------------------------------------------------------- */

/* Calls `cb` for every chunk, in an unspecified order; `info` is valid
 * during the call only. `cb` must not change the table. A non-zero return
 * from `cb` stops the walk and is returned; otherwise 0. */
typedef int (*mst_chunks_visit_fn)(void *arg, const mst_chunk_info *info);
int mst_chunks_iterate(const mst_chunks *t, mst_chunks_visit_fn cb, void *arg);

/* Counts for status and memory accounting. */
void mst_chunks_get_stats(const mst_chunks *t, mst_chunks_stats *out);

/* ---- repair queue ------------------------------------------------------ */

typedef struct mst_repair_item {
  uint64_t handle;
  unsigned nrep;             /* live replicas now (1 or more) */
  unsigned goal;
  bool trashed;              /* as given at enqueue */
} mst_repair_item;

/* Queues chunk `handle` for repair (or puts a popped chunk back: it goes to
 * the end of its bucket). `trashed` says whether the owning file is in the
 * trash. Returns 1 when queued, 0 when the chunk was already queued (its
 * trashed mark is updated and it moves if that changes its place) or is not
 * below its goal (nothing queued). CAIRN_ENOENT for an unknown chunk. */
int mst_chunks_repair_enqueue(mst_chunks *t, uint64_t handle, bool trashed);

/* Takes the most urgent repairable chunk out of the queue into *out.
 * Returns 1, or 0 when no queued chunk has a replica to copy from. */
int mst_chunks_repair_pop(mst_chunks *t, mst_repair_item *out);

/* Takes chunk `handle` out of the queue. Returns 1 when it was queued, 0 when
 * not, or CAIRN_ENOENT. */
int mst_chunks_repair_cancel(mst_chunks *t, uint64_t handle);

/* Number of queued repairable chunks (the same as stats.queued). */
uint64_t mst_chunks_repair_size(const mst_chunks *t);

#endif /* MST_CHUNKS_H */
