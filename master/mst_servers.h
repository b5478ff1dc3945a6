/*
 * mst_servers.h - the master's chunkserver table.
 *
 * Every chunkserver that ever registered has an entry, found by its id (the
 * UUID the server keeps in <data_dir>/ID) or by its index: a small dense
 * number (0, 1, 2, ...) given at first registration and kept for the life of
 * the table, so the chunk table stores a replica as a 2-byte index. A server
 * that dies keeps its entry and index; when it registers again it gets the
 * same index back with its new addresses.
 *
 * State. A server is dead (silent for longer than the caller's limit, see
 * mst_servers_tick), else draining (an operator asked to move its replicas
 * away, mst_servers_set_drain), else alive. The drain flag outlives death
 * and re-registration: a drained server that restarts is still draining.
 * Independently, a heartbeat may say the server is read-only (a data
 * directory failed); placement never picks such a server as a target.
 *
 * Recent creations. Each server counts the replicas created on it (new
 * chunks and clone targets, as the caller reports them with
 * mst_servers_note_creation) over a sliding window (default 60 s) kept as a
 * ring of MST_SERVERS_CREATION_SLOTS counters, each covering 1/8 of the
 * window. The count is therefore that of the last 7/8 to 8/8 of a window,
 * depending on where `now` falls in the current slot: exact integers, no
 * floating-point decay, deterministic for a given sequence of calls.
 *
 * Pending instructions. Each server has a queue of instructions for its next
 * heartbeat reply (delete a replica, clone a chunk, new version, lease news),
 * bounded (default 10,000; what does not fit is dropped and counted, the
 * caller recomputes it later, e.g. from the next full report) and
 * deduplicated (see mst_servers_queue). Instructions leave in the order they
 * were first queued. A server's queue is emptied when it is marked dead:
 * what it would have been told is recomputed from its full report when it
 * registers again.
 *
 * Determinism: the module never reads a clock; callers pass `now_ms`
 * (a monotonic millisecond clock, 0 or more).
 *
 * Thread safety: none inside. The master's service layer serialises every
 * call with its own lock (const functions may run concurrently with each
 * other while no mutation runs).
 *
 * Errors: 0 or a positive count (or an index) on success, a negative CAIRN_*
 * code on failure; a failed call changes nothing.
 */
#ifndef MST_SERVERS_H
#define MST_SERVERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MST_SERVER_NONE 0xFFFFu              /* "no server" in 16-bit index fields */
#define MST_SERVERS_MAX 65535u               /* indices 0..65534 */
#define MST_SERVER_ID_MAX 64                 /* bytes of an id (printable ASCII, no space) */
#define MST_SERVER_ADDR_MAX 255              /* bytes of a host:port address */
#define MST_SERVER_ZONE_MAX 64               /* bytes of a zone label ("" is a zone too) */
#define MST_SERVERS_DEFAULT_MAX_PENDING 10000u
#define MST_SERVERS_DEFAULT_CREATION_WINDOW_MS 60000
#define MST_SERVERS_CREATION_SLOTS 8

typedef struct mst_servers mst_servers;

typedef enum mst_server_state {
  MST_SERVER_ALIVE = 0,
  MST_SERVER_DRAINING = 1,
  MST_SERVER_DEAD = 2,
} mst_server_state;

/* One server as the table describes it. Read-only for callers: change it
 * only through the functions below. The strings are NUL-terminated, owned by
 * the table, and stay valid until this server registers again (addresses and
 * zone may change then) or the table is freed. */
typedef struct mst_server {
  uint16_t idx;
  uint16_t zone_id;          /* equal zone labels have equal ids */
  bool dead;
  bool draining;
  bool read_only;            /* from the last heartbeat */
  const char *id;
  const char *data_addr;     /* host:port of the data plane */
  const char *rpc_addr;      /* host:port of cairn.v1.Chunkserver */
  const char *zone;
  uint64_t capacity_bytes;
  uint64_t free_bytes;
  uint32_t chunk_count;      /* as the server reported it */
  uint32_t load;             /* writes in flight, as reported */
  int64_t registered_ms;     /* last (re-)registration */
  int64_t last_heartbeat_ms; /* last registration or heartbeat */
  uint32_t clones_as_source; /* clones in flight copying from this server */
  uint32_t clones_as_target; /* clones in flight copying to this server */
  uint32_t pending;          /* instructions queued */
  uint64_t dropped;          /* instructions dropped because the queue was full */
} mst_server;

static inline mst_server_state mst_server_state_of(const mst_server *s) {
  return s->dead ? MST_SERVER_DEAD : s->draining ? MST_SERVER_DRAINING : MST_SERVER_ALIVE;
}

/* "alive", "draining", "dead" (static strings, as in ServerStatus.state). */
const char *mst_server_state_name(mst_server_state st);

/* Fraction of the capacity in use, 0..1 (1 when the capacity is 0). */
static inline double mst_server_util(const mst_server *s) {
  if (s->capacity_bytes == 0) return 1.0;
  return (double)(s->capacity_bytes - s->free_bytes) / (double)s->capacity_bytes;
}

typedef struct mst_servers_opts {
  uint32_t max_pending;        /* per-server queue bound; 0 = default */
  int64_t creation_window_ms;  /* recent-creation window; 0 = default; >= 8 */
} mst_servers_opts;

/* What a server says when it registers. `zone` may be NULL (= ""). */
typedef struct mst_server_reg {
  const char *id;
  const char *data_addr;
  const char *rpc_addr;
  const char *zone;
  uint64_t capacity_bytes;
  uint64_t free_bytes;         /* at most capacity_bytes */
} mst_server_reg;

/* What a heartbeat says. */
typedef struct mst_server_hb {
  uint64_t capacity_bytes;
  uint64_t free_bytes;         /* at most capacity_bytes */
  uint32_t chunk_count;
  uint32_t load;
  bool read_only;
} mst_server_hb;

typedef struct mst_servers_totals {
  uint32_t servers;            /* every registered server */
  uint32_t by_state[3];        /* indexed by mst_server_state */
  uint32_t read_only;          /* non-dead servers that said read-only */
  uint64_t capacity_bytes;     /* sums over non-dead servers */
  uint64_t free_bytes;
  uint64_t chunk_count;
  uint64_t pending;            /* instructions queued, every server */
  uint64_t clones_in_flight;   /* sum of clones_as_target */
  double avg_util;             /* used / capacity over non-dead servers; 0 if none */
} mst_servers_totals;

/* ---- lifetime ---------------------------------------------------------- */

/* A new empty table with options `o` (NULL = defaults). The caller owns *out
 * and frees it with mst_servers_free. 0, or CAIRN_EINVAL for a creation
 * window below MST_SERVERS_CREATION_SLOTS ms or negative. */
int mst_servers_new(const mst_servers_opts *o, mst_servers **out);
/* Frees the table and everything in it. NULL is fine. */
void mst_servers_free(mst_servers *t);

/* ---- registration and lookup ------------------------------------------ */

/* Registers a server, or re-registers a known id: the known entry keeps its
 * index, takes the new addresses, zone and space figures, becomes not dead
 * and not read-only, and its clone counters restart at 0 (a restarted server
 * has no clone in flight); its drain flag and queue are kept. Sets the last
 * heartbeat to now_ms. Returns the index (0..MST_SERVERS_MAX-1).
 * Errors: CAIRN_EINVAL (id empty, too long or not printable ASCII without
 * spaces; an address empty or too long; zone too long; free > capacity;
 * now_ms < 0), CAIRN_ENOSPC (MST_SERVERS_MAX servers already). */
int mst_servers_register(mst_servers *t, const mst_server_reg *r, int64_t now_ms);

/* Index of server `id` (NUL-terminated), CAIRN_ENOENT, or CAIRN_EINVAL for
 * NULL. */
int mst_servers_find(const mst_servers *t, const char *id);

/* The server with index `idx`, or NULL when no server has it. The pointer
 * stays valid until the table is freed (entries never move); its fields
 * change with the mutations below. */
const mst_server *mst_servers_get(const mst_servers *t, uint16_t idx);

/* Number of servers ever registered: indices are 0..count-1, so iterating
 * is `for (i = 0; i < count; i++) mst_servers_get(t, i)`. */
size_t mst_servers_count(const mst_servers *t);

/* ---- heartbeats and liveness ------------------------------------------ */

/* Records a heartbeat: space, counts, load, read-only flag, last heartbeat
 * (never moved backwards). Errors: CAIRN_ENOENT (no such index),
 * CAIRN_ESTALE (the server is dead: it must register again with a full
 * report, the reply says `reregister`), CAIRN_EINVAL (free > capacity,
 * now_ms < 0). */
int mst_servers_heartbeat(mst_servers *t, uint16_t idx, const mst_server_hb *hb, int64_t now_ms);

/* Marks dead every non-dead server whose last heartbeat is more than
 * dead_after_ms before now_ms, clearing its queue, and writes their indices
 * to died[0..]. At most `cap` servers are marked per call (the rest on the
 * next call; the return value equal to cap says there may be more).
 * Returns the number marked, or CAIRN_EINVAL (dead_after_ms <= 0, now_ms < 0,
 * died NULL with cap > 0). */
int mst_servers_tick(mst_servers *t, int64_t now_ms, int64_t dead_after_ms, uint16_t *died,
                     size_t cap);

/* Marks one server dead now (operator action, failed connection). Returns 1
 * when it was alive, 0 when already dead, or CAIRN_ENOENT. */
int mst_servers_mark_dead(mst_servers *t, uint16_t idx);

/* Sets or clears the drain flag. 0 or CAIRN_ENOENT. */
int mst_servers_set_drain(mst_servers *t, uint16_t idx, bool draining);

/* ---- placement bookkeeping -------------------------------------------- */

/* Counts one replica created on server idx at now_ms (a new chunk or a
 * clone target). 0, CAIRN_ENOENT or CAIRN_EINVAL (now_ms < 0). */
int mst_servers_note_creation(mst_servers *t, uint16_t idx, int64_t now_ms);

/* Creations on server idx within the window ending at now_ms (see above);
 * 0 for an unknown index. */
uint32_t mst_servers_recent_creations(const mst_servers *t, uint16_t idx, int64_t now_ms);

/* A clone from `source` to `target` started / finished (either way): moves
 * their clones_as_source / clones_as_target counters (never below 0).
 * 0, CAIRN_ENOENT, or CAIRN_EINVAL (source == target). */
int mst_servers_clone_begin(mst_servers *t, uint16_t source, uint16_t target);
int mst_servers_clone_end(mst_servers *t, uint16_t source, uint16_t target);

/* Counts per state, space totals, average utilisation. */
void mst_servers_get_totals(const mst_servers *t, mst_servers_totals *out);

/* ---- pending instructions --------------------------------------------- */

/* Values match cairn.v1.ServerInstruction.Kind. */
typedef enum mst_instr_kind {
  MST_INSTR_DELETE = 1,      /* delete replica `handle` at `version` (0 = any) */
  MST_INSTR_CLONE = 2,       /* copy replica `handle` at `version` from server `source` */
  MST_INSTR_SET_VERSION = 3, /* the replica of `handle` you hold is now at `version` */
  MST_INSTR_LEASE = 4,       /* lease on `handle` (at `version`) until lease_expiry_ms */
} mst_instr_kind;

typedef struct mst_instr {
  mst_instr_kind kind;
  uint16_t source;           /* CLONE: index of the server to copy from */
  uint64_t handle;           /* non-zero */
  uint64_t version;
  int64_t lease_expiry_ms;   /* LEASE */
} mst_instr;

/* Queues an instruction for server idx, deduplicated against the queue:
 *  - DELETE: an identical (handle, version) DELETE already queued: nothing;
 *  - SET_VERSION: one per handle; the higher version is kept;
 *  - LEASE: one per handle; the later expiry (and higher version) is kept;
 *  - CLONE: one per handle; the newer source and version replace the old.
 * A merged instruction keeps its place in the queue.
 * Returns 1 when a new entry was queued, 0 when merged with one already
 * there. Errors: CAIRN_EBUSY (queue full: dropped and counted in `dropped`),
 * CAIRN_ENOENT (no such server), CAIRN_ESTALE (the server is dead),
 * CAIRN_EINVAL (unknown kind, handle 0, CLONE from itself or from an unknown
 * server). */
int mst_servers_queue(mst_servers *t, uint16_t idx, const mst_instr *in);

/* Moves up to `cap` of server idx's pending instructions, oldest first, into
 * out[0..] (copies the caller owns); the rest stay queued. Returns the number
 * moved, or CAIRN_ENOENT. */
int mst_servers_take(mst_servers *t, uint16_t idx, mst_instr *out, size_t cap);

#endif /* MST_SERVERS_H */
