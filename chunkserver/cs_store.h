/*
 * cs_store.h - the chunkserver's replica store: one checksummed file per
 * replica on one or more data directories, two-phase (prepare / commit /
 * abort) mutations that survive a crash at any point, start-up recovery,
 * scrubbing, import of whole replicas, space and disk-failure accounting.
 *
 * On disk (details and crash windows in store_internal.h):
 *   <dir>/ID                                server id (UUID), same in every dir
 *   <dir>/<xx>/<handle:016x>_<version>.chunk  one replica, xx = handle & 0xff
 *   <dir>/<xx>/<handle:016x>_<version>.s<serial>  side copy of a prepared overwrite
 *   *.tmp                                   unfinished creates / imports
 * A replica file holds two header slots (header + CRC32C per 64 KiB block;
 * the valid one with the higher sequence number is current, so a header
 * update is atomic), an intent page (the prepared mutation and the commit
 * decision) and then the data.
 *
 * Every call blocks on disk I/O: call it from worker threads, never from an
 * event loop.
 *
 * Threads. Calls on different chunks may run concurrently from any threads.
 * For one chunk (handle) the caller serialises the calls that change it:
 * create, set_version, delete, prepare, commit, abort, import. Reads
 * (cs_store_read, cs_store_info, cs_store_foreach, cs_store_pending,
 * cs_store_scrub_one, cs_store_stats) may run at any time, concurrently with
 * each other and with any of those: a read that overlaps a prepare sees only
 * committed bytes; a read that overlaps a commit, abort or version change
 * waits for it (or retries) and returns the state from before or after it,
 * never a mix, and never reports a checksum error caused by the overlap.
 *
 * Errors common to every call: CAIRN_EINVAL (bad argument: handle
 * UINT64_MAX, version 0, NULL pointers), CAIRN_EIO (disk error; the data dir
 * is then marked failed and its replicas are reported missing; also every
 * call after a simulated crash, see cs_store_fault_fn).
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CS_STORE_BLOCK_SIZE 65536u           /* one CRC32C per block */
#define CS_STORE_DEFAULT_CHUNK_SIZE (64u << 20)
#define CS_STORE_MAX_CHUNK_SIZE (1u << 30)
#define CS_STORE_MAX_DIRS 64

typedef struct cs_store cs_store;

typedef enum cs_store_dir_state {
  CS_STORE_DIR_OK = 0,        /* takes new replicas */
  CS_STORE_DIR_READ_ONLY = 1, /* out of space: serves, no new replicas */
  CS_STORE_DIR_FAILED = 2,    /* I/O error: its replicas are reported missing */
} cs_store_dir_state;

/* How a prepared mutation is kept until it is decided. */
typedef enum cs_store_kind {
  CS_STORE_KIND_APPEND = 1,    /* bytes at the committed length, written in place past it */
  CS_STORE_KIND_OVERWRITE = 2, /* bytes overlapping committed data, kept in a side file */
  CS_STORE_KIND_PAD = 3,       /* zero-fill from the committed length to the chunk size */
} cs_store_kind;

/* Events the store raises as they happen, so the chunkserver can report
 * them to the master at once instead of waiting for a full report. */
typedef enum cs_store_event_kind {
  CS_STORE_EV_CORRUPT = 1,   /* a replica failed checksum verification */
  CS_STORE_EV_DIR_STATE = 2, /* a data dir changed state (dir, state) */
} cs_store_event_kind;

typedef struct cs_store_event {
  cs_store_event_kind kind;
  uint64_t handle, version;  /* CORRUPT */
  unsigned dir;              /* index into the dirs given to cs_store_open */
  cs_store_dir_state state;  /* DIR_STATE: the new state */
} cs_store_event;

/* Called from the thread that noticed the event, with no store lock held;
 * it may call store functions. Keep it short (queue the report). */
typedef void (*cs_store_notify_fn)(void *arg, const cs_store_event *ev);

/*
 * Fault injection, for tests only. Called at each named step of every
 * mutating operation ("prepare.data", "commit.header", ...) just before the
 * step's effect would be made; return 0 to go on, CS_STORE_FAULT_CRASH to
 * simulate a crash right there (the call returns CAIRN_EIO without undoing
 * anything, and the store refuses every later call but cs_store_close: close
 * it and open the dirs again, as after a restart), or a negative cairn code
 * to make the step fail with that error as if the system call had (e.g.
 * CAIRN_ENOSPC or CAIRN_EIO; the store then handles it as it would a real one).
 */
#define CS_STORE_FAULT_CRASH 1
typedef int (*cs_store_fault_fn)(void *arg, const char *step);

typedef struct cs_store_opts {
  uint64_t chunk_size;       /* 0: 64 MiB. A multiple of 64 KiB, at most 1 GiB; every
                              * replica on disk must have this size (others are corrupt) */
  uint64_t reserve_bytes;    /* 0: one chunk. A dir with less free space takes no new replica */
  int64_t readonly_retry_ms; /* 0: 60 s. A read-only dir is checked for free space again
                              * (by cs_store_stats) at most this often */
  cs_store_notify_fn notify; /* may be NULL */
  void *notify_arg;
  cs_store_fault_fn fault;   /* tests only; NULL in production */
  void *fault_arg;
} cs_store_opts;

/*
 * Open the store on `n` data directories (1..CS_STORE_MAX_DIRS, each created
 * if missing, distinct) and run the start-up scan: create the ID file (one
 * new UUID shared by every dir that lacks one) and the 256 subfolders, remove
 * *.tmp files, finish commits that were decided before a crash, keep prepared
 * mutations pending (cs_store_pending), drop torn or orphaned ones, keep only
 * the highest version of each handle, mark replicas without a valid header
 * corrupt (reported, never served), and build the index. Logs what it found.
 * A dir that fails with an I/O error is marked failed and the others are used.
 * `opts` may be NULL (defaults); it is copied. The caller locks the dirs
 * (cmn_daemon_lock_dir) if other processes could use them.
 * On success *out owns the store (cs_store_close). Errors: CAIRN_EINVAL (bad
 * options, no dirs, duplicate dirs), CAIRN_ECONFIG (dirs carry different or
 * malformed server ids), CAIRN_ENAMETOOLONG, CAIRN_EIO (every dir failed).
 * Call from one thread; the store is usable from any thread afterwards.
 */
int cs_store_open(const char *const *dirs, size_t n, const cs_store_opts *opts,
                  cs_store **out);

/* Free the store (NULL is fine). Writes nothing: every durable state is
 * already on disk. No other call may be running or start. */
void cs_store_close(cs_store *s);

/* The server id (36-character UUID) read from or written to every dir's ID
 * file. Owned by the store, valid until cs_store_close. Any thread. */
const char *cs_store_server_id(const cs_store *s);

/* The chunk size replicas of this store have. Any thread. */
uint64_t cs_store_chunk_size(const cs_store *s);

/*
 * Create an empty replica (handle, version) on the ok dir with the most free
 * space, durably (temp file, fsync, rename, dir fsync).
 * Errors: CAIRN_EEXIST (some version of the handle is held), CAIRN_ENOSPC
 * (no dir has room: all read-only, or ENOSPC while writing), CAIRN_EIO.
 * Any thread; a mutation (serialised per chunk by the caller).
 */
int cs_store_create(cs_store *s, uint64_t handle, uint64_t version);

/*
 * Move a replica from old_version to new_version (new > old): the header is
 * rewritten (atomically, in the other slot) and then the file renamed, with
 * fsyncs, so a crash leaves either version, never a half state. The serial
 * record restarts: serials are per (handle, version).
 * Rule for never-written chunks: when the store holds no replica of the
 * handle and old_version is 1 (a chunk allocated but never leased, so never
 * written), an empty replica is created at new_version.
 * Already at new_version: 0 (idempotent).
 * Errors: CAIRN_EINVAL (new <= old), CAIRN_ENOENT (no replica, old != 1),
 * CAIRN_ESTALE (the replica has another version), CAIRN_EBUSY (a prepared
 * mutation is undecided: commit or abort it first), CAIRN_ECORRUPT (the
 * replica is corrupt), CAIRN_ENOSPC, CAIRN_EIO.
 * Any thread; a mutation (serialised per chunk by the caller).
 */
int cs_store_set_version(cs_store *s, uint64_t handle, uint64_t old_version,
                         uint64_t new_version);

/*
 * Delete the replica of `handle` (any version when version is 0, else only
 * that version), with its prepared mutation if any; durable (dir fsync).
 * Errors: CAIRN_ENOENT (no such replica), CAIRN_ESTALE (another version is
 * held), CAIRN_EIO. Any thread; a mutation (serialised per chunk).
 */
int cs_store_delete(cs_store *s, uint64_t handle, uint64_t version);

/*
 * Read up to `len` bytes at `offset` of the committed data of (handle,
 * version) into buf, verifying the CRC of every block touched. Returns the
 * number of bytes read: short (possibly 0) when the range passes the
 * committed length. A checksum mismatch returns CAIRN_ECHECKSUM, zeroes buf,
 * and marks the replica corrupt (reported by cs_store_info/foreach and the
 * notify callback); other blocks stay readable. The caller owns buf.
 * Errors: CAIRN_ERANGE (offset + len beyond the chunk size), CAIRN_ENOENT,
 * CAIRN_ESTALE (another version is held), CAIRN_ECORRUPT (the replica has no
 * valid header, or its file vanished), CAIRN_ECHECKSUM, CAIRN_EBUSY (the
 * chunk kept changing under the read), CAIRN_EIO.
 * CLONE sources stream a whole replica with it: cs_store_info for the
 * length, then reads of a few MiB each; a version change or delete in
 * between shows as CAIRN_ESTALE or CAIRN_ENOENT, never as mixed data.
 * Any thread, at any time (see the top of this file).
 */
int64_t cs_store_read(cs_store *s, uint64_t handle, uint64_t version, uint64_t offset,
                      void *buf, size_t len);

typedef struct cs_store_replica {
  uint64_t handle, version;
  uint64_t length;   /* committed bytes */
  bool corrupt;      /* failed verification or no valid header: report it; it takes no
                      * writes, and only blocks that verify are still read */
  bool pending;      /* a prepared mutation awaits commit or abort */
  unsigned dir;      /* data dir index */
} cs_store_replica;

/* The replica of `handle` (any version) into *out (the caller's). Replicas
 * on failed dirs are missing. Errors: CAIRN_ENOENT. Any thread, any time. */
int cs_store_info(cs_store *s, uint64_t handle, cs_store_replica *out);

/*
 * Call cb for every replica (not on failed dirs), from a snapshot taken when
 * the call starts; cb runs with no lock held and may call the store. A
 * nonzero return from cb stops the walk and is returned. Order unspecified.
 * `r` is valid only during the callback. Returns 0 when every replica was
 * visited. Any thread, any time.
 */
typedef int (*cs_store_replica_fn)(void *arg, const cs_store_replica *r);
int cs_store_foreach(cs_store *s, cs_store_replica_fn cb, void *arg);

/* Number of replicas (not on failed dirs). Any thread, any time. */
size_t cs_store_count(cs_store *s);

/* ---- two-phase mutations (the participant's storage side) ---- */

#define CS_STORE_PAD 1u /* flags: prepare zero-fill to the chunk size */

/*
 * Staging, an optimisation of APPEND invisible to readers: while a push
 * arrives, the data plane writes its bytes where an APPEND will put them,
 * past the committed length of the replica, so the prepare that follows
 * finds them in place with their writeback begun instead of writing them
 * then. Committed state never changes by staging.
 *  - begin claims the tail of replica (handle, version) for `len` bytes at
 *    `offset` (CS_STORE_STAGE_END: wherever the committed length is then).
 *    Refused (the caller simply does not stage): CAIRN_ENOENT, CAIRN_ESTALE,
 *    CAIRN_ECORRUPT, CAIRN_EREADONLY (dir not OK), CAIRN_EBUSY (a mutation
 *    is pending), CAIRN_ECONFLICT (offset is not the committed length),
 *    CAIRN_ERANGE (past the chunk size), CAIRN_EIO; CAIRN_EBUSY also while
 *    another stage of the chunk is listed (the first push to claim the tail
 *    keeps it until a prepare or the reaper takes it). On success *out is
 *    the caller's until end.
 *  - write appends the next bytes. CAIRN_ECANCELED once the claim is lost,
 *    another code when the write failed; the caller then stops writing.
 *  - sync makes the bytes written so far durable (fdatasync), so that the
 *    disk flushes while the push still arrives instead of all at once in
 *    the prepare. It may run on another thread at the same time as write
 *    (never after end). CAIRN_ECANCELED once the claim is lost; another
 *    code when the sync failed, and the stage is then not used.
 *  - end: the writer is done with the stage (always call it once).
 * A prepare of exactly the staged bytes (APPEND at the same offset, same
 * length and CRC, all written) does not write them again; it waits for a
 * stage still being written while bytes keep coming. Any other prepare on
 * the chunk cuts the staged bytes off first. cs_store_stage_reap cuts off
 * stages idle for over `idle_ms` that no prepare took; returns how many.
 * Threads: all do disk I/O (worker threads); one writer per stage; they
 * need no serialisation with the other calls on the chunk.
 */
#define CS_STORE_STAGE_END UINT64_MAX
typedef struct cs_stage cs_stage;
int cs_store_stage_begin(cs_store *s, uint64_t handle, uint64_t version, uint64_t offset,
                         uint64_t len, cs_stage **out);
/* Where the stage's bytes go in the chunk (resolves CS_STORE_STAGE_END). */
uint64_t cs_store_stage_offset(const cs_stage *st);
int cs_store_stage_write(cs_stage *st, const void *data, size_t len);
int cs_store_stage_sync(cs_stage *st);
void cs_store_stage_end(cs_stage *st);
int cs_store_stage_reap(cs_store *s, int64_t idle_ms);

/*
 * Phase one: check and make a mutation durable in undoable form, then
 * return 0 (the yes vote). `crc` is the CRC32C of data[0, len). Serials
 * are per (handle, version), nonzero, and increase; one mutation per chunk
 * may be pending at a time (the next waits for commit or abort).
 *  - offset == committed length: bytes written in place past it (APPEND);
 *  - offset <  committed length: the new contents of every touched block go
 *    to a side file (OVERWRITE); the committed bytes are untouched;
 *  - flags & CS_STORE_PAD: data NULL, len 0, offset == committed length:
 *    zero-fill to the chunk size (PAD; crc ignored).
 * The intent record (serial, offset, length, crc, kind) is fsynced with the
 * data before the return. Preparing the same serial again with the same
 * arguments returns 0.
 * Errors: CAIRN_ENOENT (no replica), CAIRN_ESTALE (another version),
 * CAIRN_ERANGE (offset + len > chunk size), CAIRN_EINVAL (a hole: offset past
 * the committed length; len 0 without PAD; bad PAD arguments),
 * CAIRN_ECHECKSUM (data does not match crc, or committed bytes it must merge
 * with failed their CRC: the replica is then marked corrupt),
 * CAIRN_ECORRUPT (replica corrupt), CAIRN_EBUSY (another serial is pending),
 * CAIRN_ECONFLICT (serial already used: pending with other arguments, or not
 * above the last committed serial), CAIRN_ENOSPC (nothing remains of the
 * attempt; the dir is marked read-only), CAIRN_EIO.
 * Any thread; serialised per chunk with the other mutations, while reads
 * of the chunk may run (they see only committed bytes). `data` is only read
 * during the call.
 */
int cs_store_prepare(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial,
                     uint64_t offset, const void *data, size_t len, uint32_t crc,
                     unsigned flags);

/*
 * Phase two, yes: apply the prepared mutation `serial` (raise the committed
 * length / copy the side file into place, update the block CRCs, switch the
 * header, fsync, remove the intent). A crash inside leaves the intent so
 * that the start-up scan redoes or reports it. Idempotent: a serial at or
 * below the last committed one (and not pending) returns 0; the store keeps
 * only the newest committed serial, so the caller never commits a serial it
 * aborted.
 * Errors: CAIRN_ENOENT (no replica, or serial never prepared),
 * CAIRN_ESTALE, CAIRN_ECHECKSUM (the prepared bytes or the committed bytes
 * they merge with no longer verify: the mutation is dropped and this
 * replica keeps its old state, or, if it could not, is marked corrupt),
 * CAIRN_ENOSPC / CAIRN_EIO (the mutation stays pending and only a commit is
 * accepted for it now; after a restart it is either finished or listed
 * pending again, and committing it again completes it).
 * Any thread; serialised per chunk with the other mutations.
 */
int cs_store_commit(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial);

/*
 * Phase two, no: drop the prepared mutation `serial`, leaving the replica
 * file byte-identical to before the prepare (in-place bytes truncated, side
 * file and intent removed). Idempotent: a serial not pending returns 0.
 * Errors: CAIRN_ENOENT (no replica), CAIRN_ESTALE, CAIRN_ECONFLICT (serial is
 * the last committed one, or its commit was already decided), CAIRN_EIO.
 * Any thread; serialised per chunk with the other mutations.
 */
int cs_store_abort(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial);

typedef struct cs_store_intent {
  uint64_t handle, version, serial;
  uint64_t offset, length;  /* PAD: from the committed length to the chunk size */
  uint32_t crc;             /* of the new bytes */
  cs_store_kind kind;
} cs_store_intent;

/* Call cb for every prepared, undecided mutation (after a restart: those
 * the 2PC layer must resolve with the primary), from a snapshot; same rules
 * as cs_store_foreach (any thread, any time; `it` valid during the call). */
typedef int (*cs_store_intent_fn)(void *arg, const cs_store_intent *it);
int cs_store_pending(cs_store *s, cs_store_intent_fn cb, void *arg);

/* ---- whole-replica import (re-replication, CLONE destination) ---- */

typedef struct cs_store_import_ctx cs_store_import_ctx;

/*
 * Start receiving replica (handle, version) of `length` committed bytes into
 * a temp file on the ok dir with the most free space. Errors: CAIRN_EEXIST (a
 * replica of this version or a newer one is held), CAIRN_ERANGE (length above
 * the chunk size), CAIRN_ENOSPC, CAIRN_EIO. On success *out is owned by the
 * caller until cs_store_import_finish or _cancel. Any thread, one at a time
 * per import; the whole import is a mutation of the chunk (serialised with
 * the others by the caller).
 */
int cs_store_import_begin(cs_store *s, uint64_t handle, uint64_t version, uint64_t length,
                          cs_store_import_ctx **out);

/* Append the next `len` bytes, whose CRC32C is `crc` (checked: a mismatch
 * is CAIRN_ECHECKSUM; the import is then unusable: every later write returns
 * the same error, finish returns CAIRN_EPROTO). `data` is only read during
 * the call. Errors: CAIRN_ECHECKSUM, CAIRN_ERANGE (more than `length`),
 * CAIRN_ENOSPC, CAIRN_EIO. */
int cs_store_import_write(cs_store_import_ctx *imp, const void *data, size_t len, uint32_t crc);

/* Publish: header with the block CRCs, fsync, rename into place, dir fsync;
 * a lower version of the handle held here is then deleted. Frees imp in
 * every case. Errors: CAIRN_EPROTO (fewer bytes than announced, or an
 * earlier write failed), CAIRN_EEXIST (a newer version appeared meanwhile),
 * CAIRN_ENOSPC, CAIRN_EIO. */
int cs_store_import_finish(cs_store_import_ctx *imp);

/* Drop the import and its temp file; frees imp (NULL is fine). */
void cs_store_import_cancel(cs_store_import_ctx *imp);

/* begin + one write + finish, for a replica already in memory. */
int cs_store_import(cs_store *s, uint64_t handle, uint64_t version, const void *data,
                    size_t len, uint32_t crc);

/* ---- space, health, scrubbing ---- */

typedef struct cs_store_dir_usage {
  const char *path;           /* owned by the store */
  cs_store_dir_state state;
  uint64_t capacity, free;    /* bytes (statvfs; 0 when failed) */
  uint64_t chunks;            /* replicas on this dir */
} cs_store_dir_usage;

typedef struct cs_store_usage {
  uint64_t capacity, free;    /* summed over distinct filesystems of usable dirs */
  uint64_t chunks, corrupt, pending;
  size_t ndirs;
  cs_store_dir_usage dirs[CS_STORE_MAX_DIRS];
} cs_store_usage;

/* Fill *out (statvfs of every dir; a read-only dir whose retry interval has
 * passed and that has room again becomes ok; an ok dir below the reserve
 * becomes read-only). The dir paths in *out stay valid until
 * cs_store_close. Any thread, any time. Returns 0 (CAIRN_EINVAL for NULL). */
int cs_store_stats(cs_store *s, cs_store_usage *out);

/*
 * Scrubber step: verify every block of the next replica after *cursor
 * (start with 0; the store advances it) and mark it corrupt on mismatch.
 * *handle (may be NULL) gets the replica verified. Returns 1 when a replica
 * verified good, 0 when the walk reached the end (cursor back to 0; call
 * again for the next pass), CAIRN_ECHECKSUM or CAIRN_ECORRUPT when the
 * replica is bad (now marked corrupt), CAIRN_EIO. The daemon calls it at its
 * configured rate from a worker thread.
 */
int cs_store_scrub_one(cs_store *s, uint64_t *cursor, uint64_t *handle);

#endif /* CS_STORE_H */
