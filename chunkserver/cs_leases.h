/*
 * cs_leases.h - per-chunk state of the two-phase-commit layer: the lease
 * this server holds as primary (version, expiry, replica set, next serial),
 * the mutex that serialises every mutation of a chunk on this server, the
 * data id of a mutation prepared here and not yet decided, and a bounded
 * ring of recent decisions (handle, version, serial -> committed / aborted)
 * that answers Outcome queries from restarted replicas.
 *
 * Chunk mutex: every module that changes a replica (2PC rounds and
 * participant steps, SetVersion, deletes, clone imports) takes
 * cs_leases_lock(handle) around the change, so the store sees the calls of
 * one chunk in order (cs_store.h requires the caller to serialise them).
 * The mutex is not recursive. It is held across disk I/O and, on a primary,
 * across a whole 2PC round; never hold it while waiting for the master.
 *
 * Leases are wall-clock (ms since the epoch), as the master hands them
 * out. A lease counts as expired `margin_ms` before its expiry so that a
 * little clock skew never gives two primaries.
 *
 * Memory: a record exists for a chunk while its mutex is held or awaited,
 * while it has a lease (or had one in the last lease period), or while a
 * prepared mutation is noted; idle records are freed. The decision ring is
 * one array of fixed size for the whole server.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef CS_LEASES_H
#define CS_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CS_LEASES_MAX_REPLICAS 16
#define CS_LEASES_ID_MAX 64    /* bytes of a server id */
#define CS_LEASES_ADDR_MAX 255 /* bytes of a host:port */
#define CS_LEASES_DEFAULT_LEASE_MS 60000
#define CS_LEASES_DEFAULT_MARGIN_MS 500
#define CS_LEASES_DEFAULT_DECISIONS 4096

typedef struct cs_leases cs_leases;

/* One replica of a lease's set, as the master named it. */
typedef struct cs_replica_addr {
  char id[CS_LEASES_ID_MAX + 1];
  char rpc_addr[CS_LEASES_ADDR_MAX + 1];
  char data_addr[CS_LEASES_ADDR_MAX + 1];
} cs_replica_addr;

/* A copy of a lease (the caller's; about 9 KiB, fine on a thread stack). */
typedef struct cs_lease_view {
  uint64_t version;
  int64_t expiry_ms;
  size_t n; /* replicas, the primary (this server) first */
  cs_replica_addr replicas[CS_LEASES_MAX_REPLICAS];
} cs_lease_view;

typedef struct cs_leases_opts {
  int64_t lease_ms;  /* 0: 60 s. Lease length as the master grants it: a lease is
                      * worth extending in its last half, and a record is kept
                      * this long after its lease expired */
  int64_t margin_ms; /* 0: 500 ms; negative: none. A lease ends this much early */
  size_t decisions;  /* 0: 4096. Capacity of the decision ring */
} cs_leases_opts;

/* New, empty state. `o` may be NULL (defaults); it is copied. *out is the
 * caller's until cs_leases_free. Errors: CAIRN_EINVAL (negative lease_ms,
 * NULL out). */
int cs_leases_new(const cs_leases_opts *o, cs_leases **out);

/* Free everything, including the attachment (cs_leases_attach). No other
 * call may run or start, and no chunk mutex may be held. NULL is fine. */
void cs_leases_free(cs_leases *l);

/* The options in force (defaults resolved); valid until cs_leases_free. */
const cs_leases_opts *cs_leases_options(const cs_leases *l);

/* ---- the chunk mutex ---- */

/* Take the mutation mutex of `handle`, waiting as long as it takes. */
void cs_leases_lock(cs_leases *l, uint64_t handle);

/* The same, waiting at most timeout_ms (<= 0: only try).
 * 0, or CAIRN_EBUSY when it stayed held. */
int cs_leases_lock_timed(cs_leases *l, uint64_t handle, int64_t timeout_ms);

/* Release it; only the thread that took it may. */
void cs_leases_unlock(cs_leases *l, uint64_t handle);

/* ---- leases ---- */

/*
 * Record that this server is primary of (handle, version) until expiry_ms
 * with replica set reps[0, n) (itself first, copied) and that the next
 * mutation gets serial `next_serial` (1 after a version change: serials are
 * per (handle, version)). Replaces any earlier lease of the handle.
 * Errors: CAIRN_EINVAL (expiry <= 0, n 0 or above CS_LEASES_MAX_REPLICAS,
 * next_serial 0). Call with the chunk mutex held (SetVersion).
 */
int cs_leases_set(cs_leases *l, uint64_t handle, uint64_t version, int64_t expiry_ms,
                  const cs_replica_addr *reps, size_t n, uint64_t next_serial);

/* Move the expiry of the lease on (handle, version) to expiry_ms (a LEASE
 * instruction from the master; an earlier expiry than the current one is
 * ignored). Errors: CAIRN_ENOENT (no lease on the handle, or at another
 * version: this server was not made primary of that version), CAIRN_EINVAL. */
int cs_leases_extend(cs_leases *l, uint64_t handle, uint64_t version, int64_t expiry_ms);

/* Forget the lease of `handle` (another server became primary, or this
 * replica can no longer serve as one). Unknown handles are ignored. */
void cs_leases_drop(cs_leases *l, uint64_t handle);

/* Copy the lease of `handle` into *out if it is valid at now_ms (at any
 * version: the caller compares). 0 or CAIRN_ENOTPRIMARY. */
int cs_leases_primary(cs_leases *l, uint64_t handle, int64_t now_ms, cs_lease_view *out);

/* Take the next serial of the lease on (handle, version) and note a write
 * at now_ms (for cs_leases_wanted). Call with the chunk mutex held.
 * 0, or CAIRN_ENOTPRIMARY (no lease at that version). */
int cs_leases_next_serial(cs_leases *l, uint64_t handle, uint64_t version, int64_t now_ms,
                          uint64_t *serial);

/* The next serial of the lease on (handle, version) without taking it;
 * 0 when there is no such lease. */
uint64_t cs_leases_peek_serial(cs_leases *l, uint64_t handle, uint64_t version);

/* Handles whose lease is valid at now_ms, saw a write during its current
 * term (since it was granted or last extended) and is past the middle of
 * that term: the heartbeat asks the master to
 * extend them. Writes at most cap handles into out; returns how many. Also
 * frees records that went idle. */
size_t cs_leases_wanted(cs_leases *l, int64_t now_ms, uint64_t *out, size_t cap);

/* ---- prepared, undecided mutations of this server (participant side) ---- */

/* Note the data id of the prepared mutation (handle, version, serial), so
 * the pushed bytes can be dropped when it commits. Chunk mutex held. */
void cs_leases_note_prepared(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                             const uint8_t id[16]);

/* Forget the note of (handle, version, serial) and copy its data id into
 * id. true when there was one. Chunk mutex held. */
bool cs_leases_take_prepared(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                             uint8_t id[16]);

/* ---- decisions ---- */

/* Remember that (handle, version, serial) committed or aborted here. The
 * oldest entry goes when the ring is full. */
void cs_leases_decided(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                       bool committed);

/* What the ring knows: 1 committed, 0 aborted, CAIRN_ENOENT unknown. */
int cs_leases_decision(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial);

/* ---- attachment ---- */

/* Hang the 2PC layer's own state on the leases object (cs_server has one
 * slot for both); free_fn(ext) runs in cs_leases_free. Set once, at start. */
void cs_leases_attach(cs_leases *l, void *ext, void (*free_fn)(void *ext));
void *cs_leases_attached(const cs_leases *l);

#endif /* CS_LEASES_H */
