/*
 * mst_placement.h - where replicas go: targets for a new chunk or a repair,
 * the source of a clone, and rebalancing moves.
 *
 * Choosing targets (mst_place_targets). A server is usable when it is alive
 * (not dead, not draining), not read-only, has capacity, has at least
 * `min_free_bytes` free, is not excluded, does not already hold the chunk,
 * and (with a clone-target throttle) is not at its limit of incoming clones.
 * Among usable servers, k distinct ones are picked one at a time, each time
 * the best by these rules, in this order:
 *   1. a zone no chosen server and no holder of the chunk is in yet: no two
 *      replicas share a zone while a usable server in another zone exists
 *      (spread is a durability property, so it comes before the rest);
 *   2. recent creations below `creation_cap`: a server over the cap is used
 *      only when nothing else is left, so a small cluster still accepts
 *      writes during a burst (the cap protects a newly added, empty server
 *      from receiving every new chunk at once; it is not a hard limit);
 *   3. utilisation below the cluster average (used / capacity over non-dead
 *      servers): emptier servers fill first;
 *   4. uniformly at random among servers equal on 1-3, so load spreads.
 * Randomness comes from a caller-owned splitmix64 state, so a placement is
 * deterministic for a given state and table.
 *
 * Thread safety: none inside; the tables are read under the caller's lock,
 * the PRNG state belongs to the caller. Nothing here allocates memory that
 * outlives a call.
 *
 * Errors: 0 or a positive count (or an index) on success, a negative CAIRN_*
 * code on failure; a failed call writes nothing but may have advanced the
 * PRNG state.
 */
#ifndef MST_PLACEMENT_H
#define MST_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mst_chunks.h"
#include "mst_servers.h"

/* Next value of the splitmix64 generator whose state is *state (any value
 * is a valid seed). */
uint64_t mst_place_rand(uint64_t *state);

typedef struct mst_place_opts {
  uint64_t min_free_bytes;       /* free-space floor of a usable server */
  uint32_t creation_cap;         /* recent creations at or above this: last resort; 0 = no cap */
  uint32_t max_clones_as_target; /* clones_as_target at or above this: unusable; 0 = no limit */
} mst_place_opts;

typedef struct mst_place_req {
  unsigned k;                    /* servers wanted, 1..MST_CHUNK_REPLICAS_MAX */
  const uint16_t *holders;       /* servers holding the chunk: never chosen, */
  size_t n_holders;              /* and their zones count as taken */
  const uint16_t *exclude;       /* other servers never to choose (a target that just failed) */
  size_t n_exclude;
  bool allow_fewer;              /* return what there is (at least 1) instead of failing */
} mst_place_req;

/* Chooses up to r->k distinct servers by the rules above, writing their
 * indices to out[0..] (room for r->k), in the order chosen. Returns the
 * number chosen: r->k, or with allow_fewer between 1 and r->k (the caller
 * then queues the chunk for repair). Errors: CAIRN_ENOSERVERS (fewer usable
 * servers than wanted, or none with allow_fewer), CAIRN_EBUSY (the same, but
 * some servers were left out only by the clone-target throttle: retry
 * later), CAIRN_EINVAL (k out of range, an index in holders or exclude that
 * names no server, NULL pointers). */
int mst_place_targets(const mst_servers *s, const mst_place_opts *o, const mst_place_req *r,
                      int64_t now_ms, uint64_t *rng, uint16_t *out);

/* The server to copy chunk `handle` from: among its replica holders that are
 * not dead (draining and read-only servers may serve as sources) and below
 * `max_clones_as_source` clones in flight (0 = no limit), the least loaded
 * (reported load + clones in flight as source), at random among equals.
 * Returns the index, or CAIRN_ENOENT (unknown chunk), CAIRN_ENOSERVERS (no
 * live holder), CAIRN_EBUSY (every live holder is at its clone limit). */
int mst_place_clone_source(const mst_servers *s, const mst_chunks *c, uint64_t handle,
                           uint32_t max_clones_as_source, uint64_t *rng);

typedef struct mst_rebalance_opts {
  double threshold;              /* utilisation margin around the average, 0..1, e.g. 0.05 */
  uint64_t min_free_bytes;       /* a target keeps at least this much free after a move */
} mst_rebalance_opts;

/* One proposed move: copy `handle` to `to`, then delete it from `from`. */
typedef struct mst_move {
  uint64_t handle;
  uint16_t from;
  uint16_t to;
} mst_move;

/*
 * Proposes up to max_moves moves from servers above the average utilisation
 * + threshold (sources: not dead, not draining) to servers below the average
 * - threshold (usable as targets as above). Only chunks at or above their
 * goal, not queued for repair, without a valid lease at now_ms and with a
 * non-zero length move; at most one move per chunk. A move never puts two
 * replicas on one server and never lowers the number of distinct zones of
 * the chunk's replicas (a chunk that cannot move without doing so is left
 * alone: another chunk will do). Each move is taken into account (the
 * chunk's length leaves `from` and lands on `to`) before choosing the next,
 * so a plan does not overshoot; a source stops giving once it is within the
 * margin, a target stops receiving once it is. The most utilised holder
 * gives; the least utilised eligible target receives (random among equals).
 * Returns the number of moves written to moves[0..], or CAIRN_EINVAL
 * (threshold outside 0..1, NULL pointers with max_moves > 0).
 * Costs O(chunks) in the worst case.
 */
int mst_place_rebalance(const mst_servers *s, const mst_chunks *c, const mst_rebalance_opts *o,
                        int64_t now_ms, uint64_t *rng, mst_move *moves, size_t max_moves);

#endif /* MST_PLACEMENT_H */
