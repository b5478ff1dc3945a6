/*
 * mst_oplog.h - the master's durable operation log.
 *
 * Every metadata mutation is appended here and made durable (fdatasync)
 * before the master replies. Records are opaque bytes (the master packs
 * protobuf messages into them); this module provides framing, durability,
 * group commit and crash recovery.
 *
 * On disk: a directory of segment files `oplog.<first lsn, 16 hex digits>`.
 * A segment starts with a 32-byte header
 *
 *   0  "CAIRNLOG"      8 bytes magic
 *   8  u32 version     (1)
 *   12 u32 reserved    (0)
 *   16 u64 first lsn   (must match the file name)
 *   24 u32 crc32c of bytes 0..23
 *   28 u32 reserved    (0)
 *
 * followed by records, each framed as (all integers little-endian)
 *
 *   [u32 payload length][u32 crc32c over (lsn, payload)][u64 lsn][payload]
 *
 * LSNs start at 1 and are consecutive across segments. A new segment is
 * written to `oplog.<lsn>.tmp`, fsynced and renamed, so a segment file under
 * its final name always has a complete header. The current (last) segment is
 * the only one ever written to.
 *
 * Group commit: appends from any thread are copied into an in-memory batch;
 * one flusher thread writes the batch with one write(2) and one fdatasync for
 * all records in it, then marks them durable and runs their callbacks.
 *
 * Failure: a failed write or fdatasync is fatal for a metadata log (the
 * caller's in-memory state is ahead of the disk, and after a failed fsync the
 * page cache cannot be trusted). Every record not yet durable is reported
 * with CAIRN_EIO (callbacks, waiters), the log enters a failed state in which
 * every later append, rotate and close return CAIRN_EIO, and the master is
 * expected to exit and recover from disk on restart.
 *
 * Recovery (mst_oplog_open): segments are read in LSN order; headers, framing,
 * CRCs and LSN continuity are checked. A bad or partial record at the end of
 * the LAST segment with no valid record anywhere after it is a torn tail
 * from a crash: it is logged (file and offset) and cut off. Anything else -- a
 * bad record followed by a valid one, a bad record in an earlier segment, an
 * LSN gap, a bad segment header, a log that starts after the checkpoint --
 * stops recovery with CAIRN_ECORRUPT and a message naming the file and byte
 * offset: acknowledged records are never dropped silently.
 *
 * Threads: mst_oplog_open and mst_oplog_close are called by one thread while
 * no other call on the same log is running or can start. Every other function
 * may be called from any thread concurrently, except from inside a completion
 * callback where noted. The flusher thread is private to the log. After
 * fork() the child must not use a log inherited from its parent.
 */
#ifndef MST_OPLOG_H
#define MST_OPLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct mst_oplog mst_oplog;

#define MST_OPLOG_DEFAULT_MAX_RECORD ((size_t)16 << 20)
#define MST_OPLOG_DEFAULT_MAX_PENDING ((size_t)64 << 20)
/* Upper bound accepted for max_record (the length field is 32 bits). */
#define MST_OPLOG_LIMIT_MAX_RECORD ((size_t)1 << 30)

typedef struct mst_oplog_opts {
  /* Largest payload accepted by append; a length above it on disk is
   * corruption. 0 = MST_OPLOG_DEFAULT_MAX_RECORD; at most
   * MST_OPLOG_LIMIT_MAX_RECORD. Must be the same (or larger) on reopen. */
  size_t max_record;
  /* Bound on bytes appended but not yet durable (framing included); appends
   * wait while it is exceeded. 0 = MST_OPLOG_DEFAULT_MAX_PENDING. A single
   * record larger than the bound is still accepted when nothing is pending. */
  size_t max_pending;
} mst_oplog_opts;

/* Replay callback of mst_oplog_open: one call per record with lsn > after_lsn,
 * in LSN order, on the thread calling open. `data` is valid only during the
 * call. Return 0 to continue, or a negative code to stop: open then fails
 * with that code. */
typedef int (*mst_oplog_replay_fn)(void *arg, uint64_t lsn, const void *data, size_t len);

/* Completion callback of mst_oplog_append: runs exactly once on the flusher
 * thread, after the record is durable (status 0) or once the log has failed
 * (status CAIRN_EIO). It must be quick and must not block on a lock that a
 * thread may hold while calling mst_oplog_append (the flusher writes no new
 * batch while a callback runs, so a full buffer would deadlock). It may call
 * mst_oplog_append (never waits for space when called from the flusher) but
 * not append_wait, rotate or close (those return CAIRN_EINVAL there). */
typedef void (*mst_oplog_done_fn)(void *arg, uint64_t lsn, int status);

typedef struct mst_oplog_stats {
  uint64_t records_appended;  /* accepted by append since open */
  uint64_t records_durable;   /* written and fdatasync'ed since open */
  uint64_t batches;           /* group commits (one write + one fdatasync each) */
  uint64_t fsyncs;            /* every fsync/fdatasync of a segment file since open */
  uint64_t bytes_written;     /* record bytes (framing included) written since open */
  uint64_t last_lsn;          /* last LSN assigned (0: none ever) */
  uint64_t durable_lsn;       /* every record <= this is durable */
  uint64_t pending_bytes;     /* appended, not yet durable */
  uint64_t segments;          /* segment files in the directory */
  uint64_t max_batch_records; /* largest group commit so far */
  int failed;                 /* 1 once the log is in the failed state */
} mst_oplog_stats;

/*
 * Recover the log in `dir` and open it for appending.
 *
 * `dir` is created (one level, mode 0755) if missing. Leftover `oplog.*.tmp`
 * files are removed. Every record with lsn > after_lsn (the LSN covered by the
 * checkpoint that was loaded; 0 for none) is passed to `replay` (may be NULL
 * to only validate). A torn tail of the last segment is cut (truncate +
 * fsync, with a warning naming file and offset). Appending continues after
 * the last valid record, or at after_lsn + 1 in a new segment when the log
 * ends before after_lsn (the checkpoint may hold records whose log copy was
 * never made durable) or the directory holds no segment.
 *
 * On success *out is a new log (caller closes it with mst_oplog_close) with
 * its flusher thread running. On failure nothing is returned, no thread is
 * left running, and -- for CAIRN_ECORRUPT -- `err` (may be NULL, size errlen)
 * receives a one-line message naming the file and byte offset, also logged.
 * `replay` may already have been called for a prefix of the records; the
 * caller discards what it built. Nothing on disk is changed by a failed open
 * except leftover temp files and a torn tail cut before the failure was found
 * (neither holds acknowledged data).
 *
 * Errors: CAIRN_EINVAL (bad arguments or options), CAIRN_ECORRUPT, CAIRN_EIO,
 * CAIRN_ENOSPC, CAIRN_EPERM, or a code returned by `replay`.
 */
int mst_oplog_open(const char *dir, const mst_oplog_opts *opts, uint64_t after_lsn,
                   mst_oplog_replay_fn replay, void *arg, mst_oplog **out, char *err,
                   size_t errlen);

/*
 * Append a record asynchronously. The payload is copied (the caller keeps
 * ownership of `data`); the record gets the next LSN (stored in *lsn, may be
 * NULL) in call order, and `cb` (may be NULL) runs on the flusher thread once
 * it is durable -- possibly before this function returns. The call itself is
 * fast: it copies into the batch buffer and signals the flusher, so callers
 * that need LSN order to match their own apply order call it while holding
 * their own lock. It blocks only while more than max_pending bytes are not
 * yet durable (backpressure).
 *
 * Errors (the callback is then never called): CAIRN_EINVAL (NULL log, data
 * NULL with len > 0), CAIRN_ETOOBIG (len > max_record), CAIRN_EIO (the log has
 * failed), CAIRN_ECLOSED (close has begun).
 */
int mst_oplog_append(mst_oplog *log, const void *data, size_t len, mst_oplog_done_fn cb,
                     void *arg, uint64_t *lsn);

/*
 * Append a record and return once it is durable (sharing the fdatasync with
 * every record appended concurrently). *lsn (may be NULL) receives its LSN;
 * it is set even when the record was accepted but then failed with CAIRN_EIO.
 * Errors: as mst_oplog_append, plus CAIRN_EINVAL when called from a
 * completion callback.
 */
int mst_oplog_append_wait(mst_oplog *log, const void *data, size_t len, uint64_t *lsn);

/*
 * Start a new segment at the current end of the log and return once done:
 * every record appended before this call (in call order) is durable in the
 * old segment, which is closed; records appended afterwards go to a new
 * segment `oplog.<*next_lsn>`. *next_lsn is the first LSN of the new segment,
 * so a checkpoint of the caller's state as of this call covers
 * LSN *next_lsn - 1. Callers that need that exact correspondence hold their
 * own lock across the call (the wait is one group commit plus creating the
 * segment: a few fsyncs). If the current segment holds no record yet, no new
 * file is made. Concurrent rotations are serialised.
 *
 * Errors: CAIRN_EINVAL (NULL arguments, called from a completion callback),
 * CAIRN_EIO (the log failed), CAIRN_ECLOSED.
 */
int mst_oplog_rotate(mst_oplog *log, uint64_t *next_lsn);

/*
 * Delete the segments whose records all have LSN < `lsn` (never the current
 * segment), then fsync the directory. Call it only once a checkpoint covering
 * lsn - 1 is durable; to keep falling back to an older checkpoint possible,
 * pass (oldest checkpoint kept) + 1 -- see mst_ckpt_prune.
 * Returns the number of segments removed, or CAIRN_EINVAL / CAIRN_EIO (some
 * may have been removed; the list is kept consistent).
 */
int mst_oplog_remove_before(mst_oplog *log, uint64_t lsn);

/* Counters for metrics; consistent with each other (taken under the lock). */
void mst_oplog_stats_get(mst_oplog *log, mst_oplog_stats *st);

/*
 * Make every appended record durable (their callbacks run), stop and join the
 * flusher thread, close the segment and free the log (NULL is a no-op).
 * Returns 0, or CAIRN_EIO if the log failed at any time (then records were
 * lost and callers have been told), or CAIRN_EINVAL from a completion
 * callback (nothing is done then).
 */
int mst_oplog_close(mst_oplog *log);

#endif /* MST_OPLOG_H */
