/*
 * lib_internal.h - the inside of libcairn: the client and file structs, the
 * chunk-location cache, the retry policy, the data-plane connection pool
 * and the helpers the lib_*.c files share. Nothing here is installed or
 * exported (the shared library exports only the public cairn_* names; the
 * internal helpers use the cairn__ prefix, which the version script keeps
 * local).
 *
 * Layout of the library:
 *   lib_policy.c  pure rules: options and environment, path and flag checks,
 *                 backoff, replica order, temporary names
 *   lib_cache.c   chunk locations (refcounted) and their TTL cache
 *   lib_client.c  connect / disconnect, master calls with retries, chunk size
 *   lib_dp.c      pooled data-plane connections: read, push
 *   lib_ns.c      namespace calls, listing, cluster status, drain
 *   lib_file.c    open / close / fstat, lookups, reads
 *   lib_write.c   writes, hole filling, record append
 *   lib_xfer.c    worker threads for parallel chunk pieces
 *   lib_whole.c   cairn_put_fd / cairn_get_fd
 */
#ifndef CAIRN_LIB_INTERNAL_H
#define CAIRN_LIB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn.h"
#include "cairn.pb-c.h"
#include "master.pb-c.h"
#include "cmn_dpclient.h"
#include "cmn_rpc.h"

#define CAIRN__LOG "client"

#define CAIRN__DEFAULT_MASTER "127.0.0.1:9000"
#define CAIRN__DEFAULT_RPC_TIMEOUT_MS 10000
#define CAIRN__DEFAULT_OP_TIMEOUT_MS 60000
#define CAIRN__DEFAULT_MAX_RETRIES 16
#define CAIRN__DEFAULT_CACHE_TTL_MS 30000
#define CAIRN__DEFAULT_IO_THREADS 4
#define CAIRN__MAX_IO_THREADS 64
#define CAIRN__MAX_RETRIES_LIMIT 1000

#define CAIRN__MAX_REPLICAS 16            /* more than the master ever lists (15) */
#define CAIRN__IO_MAX (8u << 20)          /* largest single read, and push / Write from a buffer of ours */
/* Largest push / Write of bytes the caller holds (cairn_pwrite): no memory
 * of ours, so larger pieces, fewer rounds; a server whose push buffer
 * cannot take one gets CAIRN__IO_MAX pieces instead (lib_write.c). */
#define CAIRN__WRITE_MAX (32u << 20)
#define CAIRN__PATH_MAX 4096              /* as the master's namespace */
#define CAIRN__NAME_MAX 255
#define CAIRN__CACHE_MAX 65536            /* cached locations per client */
#define CAIRN__BACKOFF_BASE_MS 50
#define CAIRN__BACKOFF_CAP_MS 5000
#define CAIRN__PUT_BUFFER_BUDGET (256u << 20) /* put_fd from a pipe: bytes buffered at most */

/* ---- options (lib_policy.c) ------------------------------------------------------ */

/* cairn_options after defaults and environment, with owned copies of strings. */
typedef struct cairn__opts {
  char *master;
  char *secret_file;
  int64_t rpc_timeout_ms;
  int64_t op_timeout_ms;
  int max_retries;
  int64_t cache_ttl_ms; /* 0: nothing is cached */
  int io_threads;
  char *local_host;     /* NULL: no preference */
  char *zone;           /* NULL: no preference */
} cairn__opts;

/*
 * Resolve `o` into `out`: NULL strings fall back to env_master /
 * env_secret_file (the values of $CAIRN_MASTER / $CAIRN_SECRET_FILE, NULL or
 * "" when unset) and then to the defaults; numeric fields at 0 take the
 * default (cache_ttl_ms 0 turns the cache off). Pure: any thread.
 * Errors: CAIRN_EINVAL (no secret file, a bad master address, a negative or
 * out-of-range value); *out is then untouched. On success free with
 * cairn__opts_free.
 */
int cairn__opts_resolve(const cairn_options *o, const char *env_master,
                        const char *env_secret_file, cairn__opts *out);
void cairn__opts_free(cairn__opts *o);

/* "host:port" or "[v6]:port", non-empty host, port 1..65535. 0 or CAIRN_EINVAL. */
int cairn__addr_check(const char *addr);

/* The host part of "host:port" / "[v6]:port" into out (NUL-terminated).
 * 0 or CAIRN_EINVAL (malformed, or does not fit). */
int cairn__addr_host(const char *addr, char *out, size_t n);

/* The namespace's path rules, checked before anything is sent: absolute,
 * no empty, "." or ".." component (one trailing '/' allowed), names of at
 * most 255 bytes, at most 4096 bytes in all. 0, CAIRN_EINVAL (NULL),
 * CAIRN_EBADPATH or CAIRN_ENAMETOOLONG. */
int cairn__path_check(const char *path);

/* cairn_open flags: no unknown bits, READ or WRITE, EXCL and PARENTS only
 * with CREATE. 0 or CAIRN_EINVAL. */
int cairn__open_flags_check(unsigned flags);

/* The temporary name cairn_put_fd writes to: "<dir>/.<name>.put-<16 hex>"
 * next to `path` (the name part shortened so the component stays within
 * 255 bytes). 0, CAIRN_EISDIR ("/" or a trailing '/'), CAIRN_ENAMETOOLONG
 * (does not fit in n) or the errors of cairn__path_check. */
int cairn__temp_path(const char *path, uint64_t rnd, char *out, size_t n);

/* A byte range of a file cut at chunk boundaries: chunks first .. first+count-1,
 * of which chunk first+i holds [start, end) of the range. Pure. */
typedef struct cairn__span {
  uint64_t offset, len, cs;
  uint64_t first;
  size_t count;
} cairn__span;

void cairn__span_init(cairn__span *s, uint64_t offset, uint64_t len, uint64_t chunk_size);
void cairn__span_part(const cairn__span *s, size_t i, uint64_t *start, uint64_t *end);

/* ---- retry policy (lib_policy.c) ------------------------------------------------- */

/* One operation's retry budget: attempts and a deadline (monotonic ms). */
typedef struct cairn__retry {
  int64_t deadline_ms;
  int attempts;     /* failures so far */
  int max_attempts;
} cairn__retry;

void cairn__retry_init(cairn__retry *r, int max_attempts, int64_t op_timeout_ms, int64_t now_ms);

/* Backoff before retry number `attempt` (0 for the first retry): exponential
 * from CAIRN__BACKOFF_BASE_MS, capped at CAIRN__BACKOFF_CAP_MS, with jitter
 * (uniform in [d/2, d] from the random bits `rnd`). */
int64_t cairn__backoff_ms(int attempt, uint64_t rnd);

/*
 * Decide after a failure with `rc` at `now_ms`: -1 to give up (not
 * retryable, out of attempts, or the backoff would end past the deadline),
 * else the milliseconds to wait before the next attempt. Counts the
 * failure. Pure.
 */
int64_t cairn__retry_next(cairn__retry *r, int rc, int64_t now_ms, uint64_t rnd);

/* Timeout of the next attempt: rpc_timeout_ms, cut to what is left before
 * the deadline (at least 1 ms). */
int64_t cairn__retry_timeout(const cairn__retry *r, int64_t rpc_timeout_ms, int64_t now_ms);

/* ---- chunk locations (lib_cache.c) ---------------------------------------------- */

typedef struct cairn__replica {
  const char *id;
  const char *data_addr;
  const char *rpc_addr;
  const char *zone;
} cairn__replica;

/*
 * Where a chunk lives, as the master said. Immutable once built and shared
 * by reference count: the cache and every operation using it hold a
 * reference (cairn__loc_ref / cairn__loc_unref, any thread).
 */
typedef struct cairn__loc {
  atomic_int refs;
  uint64_t handle, version, index, length;
  int64_t lease_expiry_ms; /* wall clock; 0 when no lease was named */
  bool has_primary;        /* rep[0] is the lease holder */
  size_t n;
  cairn__replica rep[CAIRN__MAX_REPLICAS];
  char strings[];          /* the replicas' strings */
} cairn__loc;

/* A new location (one reference) copied from a message. Replicas beyond
 * CAIRN__MAX_REPLICAS are left out. */
cairn__loc *cairn__loc_from_pb(const Cairn__V1__ChunkLocation *pb);
cairn__loc *cairn__loc_ref(cairn__loc *l);
void cairn__loc_unref(cairn__loc *l); /* NULL is fine */

/*
 * Order in which to read the replicas of `l`: those on `local_host` first
 * (the host part of their data address), then those in `zone`, then the
 * rest; within a class the order is rotated by the chunk handle so that
 * parallel reads of many chunks spread over the servers. `order` gets
 * l->n indexes into l->rep. Pure.
 */
void cairn__order_replicas(const cairn__loc *l, const char *local_host, const char *zone,
                           size_t *order);

typedef struct cairn__cache cairn__cache;

/* A cache of (file id, chunk index) -> location, entries living `ttl_ms`
 * (<= 0: nothing is kept) and at most `max_entries` of them. Thread-safe. */
cairn__cache *cairn__cache_new(int64_t ttl_ms, size_t max_entries);
void cairn__cache_free(cairn__cache *c);

/* A new reference to the cached location, or NULL (missing or expired at
 * now_ms, monotonic). */
cairn__loc *cairn__cache_get(cairn__cache *c, uint64_t file, uint64_t index, int64_t now_ms);

/* Cache `l` (the cache takes its own reference) for ttl from now_ms,
 * replacing what was there. When full, expired entries go first, then
 * everything. */
void cairn__cache_put(cairn__cache *c, uint64_t file, cairn__loc *l, int64_t now_ms);

/* Forget the entry of (file, index) if it still names the replica set that
 * failed (same handle and version as `failed`; NULL: whatever it is). */
void cairn__cache_drop(cairn__cache *c, uint64_t file, uint64_t index, const cairn__loc *failed);

size_t cairn__cache_count(cairn__cache *c);

/* ---- data-plane connections (lib_dp.c) ------------------------------------------ */

typedef struct cairn__dpool cairn__dpool;

cairn__dpool *cairn__dpool_new(const char *secret, int timeout_ms);
void cairn__dpool_free(cairn__dpool *p);

/* ---- the client ------------------------------------------------------------------ */

typedef struct cairn__stats {
  uint64_t lookups;   /* LookupChunks calls */
  uint64_t prepares;  /* PrepareWrite calls */
  uint64_t fallbacks; /* reads that moved on to another replica */
} cairn__stats;

struct cairn_client {
  cairn__opts o;
  char *secret;
  cmn_rpc_channel *master;
  cmn_rpc_pool *peers;          /* chunkserver RPC channels */
  cairn__dpool *dp;             /* data-plane connections */
  cairn__cache *cache;
  atomic_uint_fast64_t chunk_size; /* 0 until learned */
  atomic_uint_fast64_t rng;
  atomic_uint_fast64_t n_lookups, n_prepares, n_fallbacks;
};

struct cairn_file {
  cairn_client *c;
  char *path;
  unsigned flags;
  uint64_t id;
  cairn_stat st;              /* as of open */
  atomic_uint_fast64_t size;  /* a lower bound of the file size (sizes only grow) */
};

/* 64 random bits (jitter, temporary names); not for secrets. Any thread. */
uint64_t cairn__rand(cairn_client *c);

/* Sleep; negative or 0 returns at once. */
void cairn__sleep_ms(int64_t ms);

/* Start an operation's retry budget from the client's options. */
void cairn__retry_start(cairn_client *c, cairn__retry *r);

/* After a failure: wait the backoff and return 1 to try again, or 0 to give
 * up (then return rc). */
int cairn__retry_wait(cairn_client *c, cairn__retry *r, int rc);

/* Counters for tests and debugging. */
void cairn__client_stats(cairn_client *c, cairn__stats *out);

/* One call of a cairn.v1.Master method with `timeout_ms`. *reply as for
 * cmn_rpc_call_unary (caller frees). */
int cairn__master_once(cairn_client *c, const char *method, const ProtobufCMessage *req,
                       ProtobufCMessage **reply, int64_t timeout_ms);

/* Whether a failed call may be repeated. */
typedef enum cairn__call_kind {
  CAIRN__IDEMPOTENT = 0, /* any retryable error */
  CAIRN__MUTATION = 1,   /* not after a timeout or cancel: the first may have applied */
} cairn__call_kind;

/* A master call with retries and backoff within the operation's budget. */
int cairn__master_call(cairn_client *c, const char *method, const ProtobufCMessage *req,
                       ProtobufCMessage **reply, cairn__call_kind kind);

/* One call of a cairn.v1.Chunkserver method on the server at rpc_addr. */
int cairn__cs_call(cairn_client *c, const char *rpc_addr, const char *method,
                   const ProtobufCMessage *req, ProtobufCMessage **reply, int64_t timeout_ms);

/* The cluster's chunk size: learned from PrepareWrite replies, or measured
 * once on a chunkserver (see lib_client.c). 0 or an error. Any thread. */
int cairn__chunk_size(cairn_client *c, uint64_t *out);
void cairn__chunk_size_learn(cairn_client *c, uint64_t chunk_size);

/* Read through a pooled connection to replica `r` (retried once on a fresh
 * connection when a reused one turns out to be closed). Returns bytes read
 * or an error as cmn_dp_read. */
int64_t cairn__dp_read(cairn_client *c, const cairn__replica *r, uint64_t handle,
                       uint64_t version, uint64_t offset, size_t len, void *buf);

/* Push `len` bytes under `id` to `head` and along `chain` (data addresses),
 * telling the servers where they are expected to land (`place`, may be
 * NULL) so they can stage them. 0 or the push's error. */
int cairn__dp_push(cairn_client *c, const cairn__replica *head, const char *const *chain,
                   size_t nchain, const uint8_t id[16], const void *data, size_t len,
                   const cmn_frame_place *place);

/* Did the data plane at addr fail to answer lately (connect refused or
 * timed out, connection broken)? Such servers are read last and left out
 * of push chains for a few seconds. */
bool cairn__dp_suspect(cairn_client *c, const char *addr);


/* ---- files (lib_file.c, lib_write.c) ---------------------------------------------- */

/* Fill a cairn_stat from the master's FileInfo. */
void cairn__stat_from_pb(const Cairn__V1__FileInfo *fi, cairn_stat *out);

/* Raise the known size of f to at least `size`. */
void cairn__file_size_raise(cairn_file *f, uint64_t size);

/* Read [offset, offset+len) of the file into buf with up to `threads`
 * chunks at once; the range must lie within the file's size (bytes no
 * replica holds there are holes and read as zeros). 0 or an error. */
int cairn__read_range(cairn_file *f, uint64_t offset, size_t len, void *buf, int threads);

/* Write all of `len` bytes at `offset` with up to `threads` chunks at once,
 * each in pushes of at most `piece` bytes (CAIRN__IO_MAX..CAIRN__WRITE_MAX),
 * zero-filling a gap before it inside its first chunk; the file size is not
 * updated (see cairn__complete_write). 0 or an error. */
int cairn__write_range(cairn_file *f, uint64_t offset, const void *buf, size_t len, int threads,
                       size_t piece);

/* Raise the file size on the master to at least `end`. 0 or an error. */
int cairn__complete_write(cairn_file *f, uint64_t end);

/* ---- parallel pieces (lib_xfer.c) ------------------------------------------------- */

/* Task `i` of a parallel run; 0 or an error. */
typedef int (*cairn__task_fn)(void *arg, size_t i);

/* Run tasks 0..n-1 on up to `threads` threads (the caller is one of them);
 * after the first failure no new task starts. Returns 0 or the first
 * failure's code. */
int cairn__run_parallel(int threads, size_t n, cairn__task_fn fn, void *arg);

/*
 * An ordered transfer through a ring of `nslots` buffers of `slot_size`
 * bytes, with `nslots` worker threads. The calling thread fills slot k
 * (fill: 1 when it prepared piece k, 0 at the end), the workers process the
 * pieces (work), and the calling thread drains them in order (drain). The
 * first failure stops the transfer and is returned.
 */
typedef struct cairn__slot {
  uint8_t *buf;    /* slot_size bytes */
  size_t cap;
  uint64_t index;  /* piece number */
  uint64_t offset; /* where the piece starts in the file */
  size_t len;      /* its bytes */
} cairn__slot;

typedef struct cairn__ring_ops {
  int (*fill)(void *arg, cairn__slot *s);   /* calling thread */
  int (*work)(void *arg, cairn__slot *s);   /* a worker thread */
  int (*drain)(void *arg, cairn__slot *s);  /* calling thread, in piece order */
  void (*tick)(void *arg);                  /* calling thread, about every
                                             * CAIRN__TICK_MS while it waits
                                             * (progress within pieces); may be NULL */
} cairn__ring_ops;

#define CAIRN__TICK_MS 100

int cairn__ring_run(int nslots, size_t slot_size, const cairn__ring_ops *ops, void *arg);

#endif /* CAIRN_LIB_INTERNAL_H */
