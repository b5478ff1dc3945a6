/*
 * mst_checkpoint.h - checkpoint files: the master's full state at one LSN.
 *
 * Recovery loads the newest valid checkpoint and replays the operation log
 * after its LSN (mst_oplog_open's after_lsn). Records are opaque bytes (the
 * master packs protobuf messages into them).
 *
 * On disk: `checkpoint.<lsn, 16 hex digits>` (all integers little-endian)
 *
 *   header  32 bytes: "CAIRNCKP", u32 version (1), u32 0, u64 lsn,
 *                     u32 crc32c of bytes 0..23, u32 0
 *   records [u32 payload length][u32 crc32c of payload][payload] ...
 *   trailer 32 bytes: u32 0xFFFFFFFF (end marker), u32 0, u64 record count,
 *                     u64 lsn, u32 crc32c of every byte before the trailer,
 *                     u32 crc32c of trailer bytes 0..27
 *
 * A checkpoint is written to `checkpoint.<lsn>.tmp`, fsynced, renamed to its
 * final name and the directory fsynced, so a file under the final name is
 * either complete or damaged afterwards (bad disk), never half-written.
 *
 * Threads and processes: the writer uses no threads, locks or globals --
 * only open/write/fsync/rename and malloc -- so it may run in a child made
 * by fork() from a multi-threaded master (Redis BGSAVE style) while the parent
 * keeps serving. (The CRC32C implementation is chosen on first use; the
 * parent has used it -- the oplog does -- before it forks.) One writer object
 * is used by one thread at a time. The loader and prune are for start-up and
 * the parent's housekeeping; they must not run on the same directory at the
 * same time as each other.
 */
#ifndef MST_CHECKPOINT_H
#define MST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mst_ckpt_writer mst_ckpt_writer;

/* Largest record a checkpoint holds; a larger length on disk is corruption. */
#define MST_CKPT_MAX_RECORD ((size_t)16 << 20)

/*
 * Start a checkpoint of the state as of `lsn` in `dir` (which must exist):
 * creates (truncating a leftover) `checkpoint.<lsn>.tmp` and writes the
 * header. *out is owned by the caller until mst_ckpt_commit or
 * mst_ckpt_abort, which free it.
 * Errors: CAIRN_EINVAL (NULL arguments), CAIRN_ENOENT (no such directory),
 * CAIRN_EPERM, CAIRN_ENOSPC, CAIRN_EIO.
 */
int mst_ckpt_writer_open(const char *dir, uint64_t lsn, mst_ckpt_writer **out);

/*
 * Append one record (copied; `data` may be NULL when len is 0). Writes are
 * buffered: small records cost no system call each. After an error the
 * writer stays failed: later writes and the commit return the same error.
 * Errors: CAIRN_EINVAL, CAIRN_ETOOBIG (len > MST_CKPT_MAX_RECORD; the writer
 * is not failed by this), CAIRN_ENOSPC, CAIRN_EIO.
 */
int mst_ckpt_write(mst_ckpt_writer *w, const void *data, size_t len);

/*
 * Finish: write the trailer, fsync, rename to `checkpoint.<lsn>` (replacing
 * one with the same LSN), fsync the directory. Frees `w` whatever happens;
 * on failure the temp file is removed and no checkpoint appears.
 * Returns 0 once the checkpoint is durable, or CAIRN_ENOSPC / CAIRN_EIO (or
 * the error that failed an earlier write).
 */
int mst_ckpt_commit(mst_ckpt_writer *w);

/* Give up: close and remove the temp file, free `w` (NULL is a no-op). */
void mst_ckpt_abort(mst_ckpt_writer *w);

/* Called by mst_ckpt_load_newest for each record in order, on the calling
 * thread; `data` is valid only during the call. Return 0 to continue or a
 * negative code to stop the load with that code. */
typedef int (*mst_ckpt_record_fn)(void *arg, const void *data, size_t len);

/*
 * Load the newest checkpoint in `dir` that validates completely (header,
 * every record, trailer, whole-file CRC) -- it is validated before `cb`
 * sees any record, so a damaged file never feeds the caller half a state.
 * A damaged newer checkpoint is logged and the next older one tried. Removes
 * leftover `checkpoint.*.tmp` files first (call only when no checkpoint
 * child is running). *lsn receives the LSN of the loaded checkpoint, or 0
 * with success and no call of `cb` when the directory holds no checkpoint
 * (fresh cluster). `cb` may be NULL to only validate.
 *
 * Errors: CAIRN_EINVAL, CAIRN_ENOENT (no such directory), CAIRN_ECORRUPT
 * (checkpoints exist but none is valid; `err` -- may be NULL -- gets a line
 * naming the newest file, the byte offset and the reason), CAIRN_EIO, or the
 * code `cb` returned. If the file changes on disk between validation and
 * streaming, CAIRN_ECORRUPT after some records were delivered.
 */
int mst_ckpt_load_newest(const char *dir, mst_ckpt_record_fn cb, void *arg, uint64_t *lsn,
                         char *err, size_t errlen);

/*
 * LSNs of the committed checkpoint files in `dir` (by name, not validated),
 * ascending, in a new array *lsns (caller frees; NULL when *n is 0).
 * Errors: CAIRN_EINVAL, CAIRN_ENOENT, CAIRN_EIO.
 */
int mst_ckpt_list(const char *dir, uint64_t **lsns, size_t *n);

/*
 * Remove all but the newest `keep` (>= 1) checkpoints, then fsync the
 * directory. *oldest_kept (may be NULL) receives the LSN of the oldest
 * checkpoint left (0 if none): pass oldest_kept + 1 to
 * mst_oplog_remove_before so that falling back to it remains possible.
 * Returns the number of files removed, or CAIRN_EINVAL / CAIRN_ENOENT /
 * CAIRN_EIO.
 */
int mst_ckpt_prune(const char *dir, unsigned keep, uint64_t *oldest_kept);

#endif /* MST_CHECKPOINT_H */
