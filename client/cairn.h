/*
 * cairn.h - the cairn client library (libcairn): files in a cairn cluster,
 * from C.
 *
 *   cairn_client *c;
 *   cairn_options o;
 *   cairn_options_init(&o);
 *   o.master = "127.0.0.1:9000";
 *   o.secret_file = "/etc/cairn/secret";
 *   if (cairn_connect(&o, &c) != 0) ...
 *   cairn_file *f;
 *   cairn_open(c, "/logs/today", CAIRN_O_CREATE | CAIRN_O_WRITE, &f);
 *   cairn_pwrite(f, buf, len, 0);
 *   cairn_close(f);
 *   cairn_disconnect(c);
 *
 * Conventions (stable API):
 *   - Every function returns 0, or a non-negative count, on success and a
 *     negative CAIRN_E* code (cairn_error.h) on failure; cairn_strerror()
 *     says what it means and cairn_err_retryable() whether trying again may
 *     help. The library already retries retryable errors with backoff until
 *     the operation's deadline (cairn_options.op_timeout_ms).
 *   - Types are opaque; constructors return the object through an out
 *     parameter, which the caller owns until the matching free/close.
 *   - Paths are absolute, '/'-separated, NUL-terminated strings.
 *   - Thread safety: a cairn_client may be used from any number of threads
 *     at once. A cairn_file may be shared between threads too (pread and
 *     pwrite carry their offset); cairn_close must not race other calls on
 *     the same file. A cairn_list iterator belongs to one thread.
 *
 * Consistency (what readers can rely on): a write that returned success is
 * durable on at least two replicas, and any replica that missed it has
 * already been made stale by the master, so every read that looks the chunk
 * up after the write returned sees it. Chunk locations are cached for
 * cairn_options.cache_ttl_ms; a reader in another process may see older
 * data for at most that long unless it opens the file with
 * CAIRN_O_FRESH (always look up). Record append is at-least-once: a
 * retried append may store a record twice; records are never torn.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_VERSION_MAJOR 0
#define CAIRN_VERSION_MINOR 1

typedef struct cairn_client cairn_client;
typedef struct cairn_file cairn_file;
typedef struct cairn_list cairn_list;

/* ---- connecting ---------------------------------------------------------------- */

typedef struct cairn_options {
  const char *master;        /* "host:port" of the master; NULL: $CAIRN_MASTER, else
                              * "127.0.0.1:9000" */
  const char *secret_file;   /* cluster secret; NULL: $CAIRN_SECRET_FILE */
  int64_t rpc_timeout_ms;    /* one RPC attempt (default 10 s) */
  int64_t op_timeout_ms;     /* a whole operation with its retries (default 60 s);
                              * long transfers apply it to each chunk's part */
  int max_retries;           /* attempts of a retryable failure (default 16: with the
                              * backoff capped at 5 s, enough to outlast a dead
                              * primary's lease within op_timeout_ms) */
  int64_t cache_ttl_ms;      /* how long chunk locations are cached (default 30 s;
                              * 0: not cached) */
  int io_threads;            /* chunks transferred in parallel by large reads and
                              * writes (default 4) */
  const char *local_host;    /* prefer replicas on this host for reads (default: none) */
  const char *zone;          /* prefer replicas in this zone after the local host */
} cairn_options;

/* Fill `o` with the defaults above. (A numeric field left at 0 also gets
 * its default at connect, except cache_ttl_ms, where 0 turns caching off.) */
void cairn_options_init(cairn_options *o);

/* Read the secret and prepare a channel to the master (the connection is
 * made lazily). *out is the caller's until cairn_disconnect.
 * Errors: CAIRN_EINVAL (no master/secret given, a malformed master address,
 * a negative or out-of-range value), CAIRN_ENOENT (secret file missing),
 * CAIRN_ECONFIG (bad secret file). */
int cairn_connect(const cairn_options *o, cairn_client **out);

/* Free the client. Every file and list must be closed first. NULL is fine. */
void cairn_disconnect(cairn_client *c);

/* ---- namespace -------------------------------------------------------------------- */

typedef enum cairn_type { CAIRN_TYPE_FILE = 1, CAIRN_TYPE_DIR = 2 } cairn_type;

typedef struct cairn_stat {
  uint64_t id;             /* file id */
  cairn_type type;
  uint64_t size;
  int64_t mtime_ms;        /* milliseconds since the epoch */
  uint32_t goal;           /* replicas per chunk */
  uint64_t chunks;
  int64_t trashed_ms;      /* when deleted (entries under /.trash), else 0 */
} cairn_stat;

/* Errors (all): CAIRN_EBADPATH, CAIRN_ENAMETOOLONG, CAIRN_ENOENT,
 * CAIRN_ENOTDIR, CAIRN_EEXIST, CAIRN_EPERM (/.trash), CAIRN_EAUTH,
 * CAIRN_EUNAVAIL / CAIRN_ETIMEDOUT (master unreachable). */
int cairn_mkdir(cairn_client *c, const char *path, int parents);
int cairn_stat_path(cairn_client *c, const char *path, cairn_stat *out);
/* Rename atomically; `overwrite` replaces an existing file (it goes to the trash). */
int cairn_rename(cairn_client *c, const char *from, const char *to, int overwrite);
/* Move to /.trash (recursive for non-empty directories, else CAIRN_ENOTEMPTY).
 * trash_path (may be NULL, size n) gets the entry's path for cairn_undelete. */
int cairn_remove(cairn_client *c, const char *path, int recursive, char *trash_path, size_t n);
/* Restore a trash entry to where it was (restore_to NULL) or elsewhere. */
int cairn_undelete(cairn_client *c, const char *trash_path, const char *restore_to);
/* Replication goal of a file (its chunks are repaired or trimmed to it), or
 * the default for new files under a directory. 1..9. */
int cairn_set_goal(cairn_client *c, const char *path, uint32_t goal);

/* Directory listing, in name order, fetched page by page. */
typedef struct cairn_dirent {
  const char *name;        /* valid until the next cairn_list_next or close */
  cairn_stat st;
} cairn_dirent;
int cairn_list_open(cairn_client *c, const char *path, cairn_list **out);
/* 1 and *ent filled, 0 at the end, or an error. */
int cairn_list_next(cairn_list *l, cairn_dirent *ent);
void cairn_list_close(cairn_list *l);

/* ---- files ------------------------------------------------------------------------ */

#define CAIRN_O_READ 0x01u
#define CAIRN_O_WRITE 0x02u
#define CAIRN_O_CREATE 0x04u    /* create if missing */
#define CAIRN_O_EXCL 0x08u      /* with CREATE: fail with CAIRN_EEXIST if it exists */
#define CAIRN_O_PARENTS 0x10u   /* with CREATE: create missing directories */
#define CAIRN_O_FRESH 0x20u     /* never use cached chunk locations */

int cairn_open(cairn_client *c, const char *path, unsigned flags, cairn_file **out);
/* Close: frees the handle. Writes are durable when they return, so close
 * has nothing to flush. NULL is fine. */
void cairn_close(cairn_file *f);
/* Size and attributes as the master knows them now. */
int cairn_fstat(cairn_file *f, cairn_stat *out);

/* Read up to `len` bytes at `offset`. Returns the bytes read (short only at
 * the end of the file). Never returns bytes that failed their checksum: a
 * bad replica is skipped (and reported by its server) and another read.
 * Errors: CAIRN_EPERM (not opened for reading), CAIRN_ECHECKSUM /
 * CAIRN_EUNAVAIL (no replica could serve a chunk), ... */
int64_t cairn_pread(cairn_file *f, void *buf, size_t len, uint64_t offset);

/* Write `len` bytes at `offset` (the file grows as needed; a write past the
 * end leaves a zero-filled hole). Returns len once durable on a quorum.
 * Large writes move several chunks in parallel (io_threads), each in
 * pieces of up to 32 MiB sent from `buf` itself; a server holds a piece in
 * its push buffer until it is committed, and one whose push buffer refuses
 * such a piece gets 8 MiB pieces instead. Errors: CAIRN_EPERM,
 * CAIRN_ENOQUORUM / CAIRN_EUNAVAIL / CAIRN_ENOSERVERS after retries.
 * A gap inside a chunk is filled by writing zeros over it first, which is
 * not atomic with other writers: writers of the same chunk at the same time
 * must not leave gaps in it. */
int64_t cairn_pwrite(cairn_file *f, const void *buf, size_t len, uint64_t offset);

/* Record append: store the record atomically at the end of the file and
 * return its offset in *offset (may be NULL). Records are at most a quarter
 * of a chunk (CAIRN_ETOOBIG). At-least-once (see the top of this file). */
int cairn_append(cairn_file *f, const void *buf, size_t len, uint64_t *offset);

/* ---- whole files --------------------------------------------------------------------- */

/* Progress callback for long transfers: bytes done and total (total 0 when
 * unknown). Called from the calling thread. */
typedef void (*cairn_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* Copy everything readable from `fd` (a file or a pipe) into `path`. The
 * bytes go to a temporary name next to it, which is renamed to `path` once
 * complete: a reader never sees a half-written file, and a failed copy
 * leaves no file behind. An existing `path` gives CAIRN_EEXIST unless
 * `overwrite` (the old file then goes to the trash); its directory must
 * exist (CAIRN_ENOENT). A regular file is copied from its current offset.
 * From a pipe, whole chunks are buffered: io_threads of them, fewer when
 * that is over 256 MiB (at least one). Returns 0; *bytes (may be NULL) gets
 * the size. */
int cairn_put_fd(cairn_client *c, int fd, const char *path, int overwrite, cairn_progress_fn cb,
                 void *arg, uint64_t *bytes);

/* Write the whole file `path` to `fd`. */
int cairn_get_fd(cairn_client *c, const char *path, int fd, cairn_progress_fn cb, void *arg,
                 uint64_t *bytes);

/* ---- administration -------------------------------------------------------------------- */

typedef struct cairn_server_status {
  char id[64];
  char data_addr[128];
  char zone[64];
  char state[16];          /* alive, dead, draining, read-only */
  uint64_t capacity, free;
  uint32_t chunks;
  int64_t last_heartbeat_ms;
} cairn_server_status;

typedef struct cairn_cluster_status {
  char cluster_id[40];
  uint64_t files, directories, chunks;
  uint64_t under_replicated, missing, corrupt, repair_queue, clones_in_flight;
  uint64_t capacity, free;
  size_t nservers;
  cairn_server_status *servers; /* nservers entries, owned by the struct */
} cairn_cluster_status;

int cairn_cluster_status_get(cairn_client *c, cairn_cluster_status *out);
void cairn_cluster_status_free(cairn_cluster_status *s);
/* Start (or cancel) draining a chunkserver: it takes no new replicas and
 * the master moves its replicas away. */
int cairn_drain(cairn_client *c, const char *server_id, int cancel);

#ifdef __cplusplus
}
#endif
#endif /* CAIRN_H */
