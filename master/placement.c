/*
 * placement.c - replica placement, clone sources and rebalancing plans
 * (see mst_placement.h for the rules).
 *
 * Every function works on a snapshot of the servers it may use, built at the
 * start of the call, and picks greedily: one server at a time, the best by a
 * small integer score, uniformly at random among the best (reservoir
 * sampling, so one pass and no sort). Server counts are small (at most
 * 65,535, usually tens), so O(k * servers) per placement is cheap next to
 * the RPC that asks for it.
 */
#include "mst_placement.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

uint64_t mst_place_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rand_below(uint64_t *rng, uint64_t n) { return mst_place_rand(rng) % n; }

/* A server not dead, not draining, not read-only, with capacity and at
 * least `min_free` bytes free. */
static bool usable(const mst_server *sv, uint64_t min_free) {
  return !sv->dead && !sv->draining && !sv->read_only && sv->capacity_bytes > 0 &&
         sv->free_bytes >= min_free;
}

static bool in_list(const uint16_t *v, size_t n, uint16_t x) {
  for (size_t i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

/* ---- targets ------------------------------------------------------------ */

typedef struct cand {
  uint16_t idx;
  uint16_t zone;
  unsigned base; /* 2: over the creation cap, +1: not below the average */
} cand;

/*
 * Snapshot of the usable servers, then k greedy picks. The zone rule is
 * applied per pick (score +4 while the candidate's zone is taken), so after
 * every zone has a replica the rule stops mattering and the next replicas
 * go by creation cap and utilisation alone.
 */
int mst_place_targets(const mst_servers *s, const mst_place_opts *o, const mst_place_req *r,
                      int64_t now_ms, uint64_t *rng, uint16_t *out) {
  if (!s || !o || !r || !rng || !out || r->k < 1 || r->k > MST_CHUNK_REPLICAS_MAX ||
      (r->n_holders && !r->holders) || (r->n_exclude && !r->exclude))
    return CAIRN_EINVAL;
  size_t n = mst_servers_count(s);
  for (size_t i = 0; i < r->n_holders; i++)
    if (r->holders[i] >= n) return CAIRN_EINVAL;
  for (size_t i = 0; i < r->n_exclude; i++)
    if (r->exclude[i] >= n) return CAIRN_EINVAL;

  mst_servers_totals tot;
  mst_servers_get_totals(s, &tot);
  cand *cs = cmn_malloc((n ? n : 1) * sizeof *cs);
  uint16_t *zones = cmn_malloc((r->n_holders + r->k) * sizeof *zones);
  size_t nc = 0, nz = 0, throttled = 0;
  for (size_t i = 0; i < r->n_holders; i++)
    zones[nz++] = mst_servers_get(s, r->holders[i])->zone_id;
  for (size_t i = 0; i < n; i++) {
    const mst_server *sv = mst_servers_get(s, (uint16_t)i);
    if (!usable(sv, o->min_free_bytes) || in_list(r->holders, r->n_holders, sv->idx) ||
        in_list(r->exclude, r->n_exclude, sv->idx))
      continue;
    if (o->max_clones_as_target && sv->clones_as_target >= o->max_clones_as_target) {
      throttled++;
      continue;
    }
    unsigned base = 0;
    if (o->creation_cap && mst_servers_recent_creations(s, sv->idx, now_ms) >= o->creation_cap)
      base += 2;
    if (!(mst_server_util(sv) < tot.avg_util)) base += 1;
    cs[nc++] = (cand){sv->idx, sv->zone_id, base};
  }

  unsigned got = 0;
  while (got < r->k && nc > 0) {
    unsigned best = ~0u;
    size_t pick = 0, ties = 0;
    for (size_t i = 0; i < nc; i++) {
      unsigned sc = cs[i].base + (in_list(zones, nz, cs[i].zone) ? 4u : 0u);
      if (sc > best) continue;
      if (sc < best) {
        best = sc;
        ties = 0;
      }
      if (rand_below(rng, ++ties) == 0) pick = i; /* reservoir: each tie equally likely */
    }
    out[got++] = cs[pick].idx;
    zones[nz++] = cs[pick].zone;
    cs[pick] = cs[--nc];
  }
  free(cs);
  free(zones);
  if (got == r->k || (r->allow_fewer && got > 0)) return (int)got;
  return throttled ? CAIRN_EBUSY : CAIRN_ENOSERVERS;
}

/* ---- clone source -------------------------------------------------------- */

int mst_place_clone_source(const mst_servers *s, const mst_chunks *c, uint64_t handle,
                           uint32_t max_clones_as_source, uint64_t *rng) {
  if (!s || !c || !rng) return CAIRN_EINVAL;
  mst_chunk_info ci;
  int rc = mst_chunks_get(c, handle, &ci);
  if (rc < 0) return rc;
  int pick = CAIRN_ENOSERVERS;
  uint64_t best = UINT64_MAX, ties = 0;
  for (unsigned i = 0; i < ci.nrep; i++) {
    const mst_server *sv = mst_servers_get(s, ci.replicas[i]);
    if (!sv || sv->dead) continue;
    if (max_clones_as_source && sv->clones_as_source >= max_clones_as_source) {
      if (pick == CAIRN_ENOSERVERS) pick = CAIRN_EBUSY;
      continue;
    }
    uint64_t load = (uint64_t)sv->load + sv->clones_as_source;
    if (load > best) continue;
    if (load < best) {
      best = load;
      ties = 0;
    }
    if (rand_below(rng, ++ties) == 0) pick = sv->idx;
  }
  return pick;
}

/* ---- rebalancing -------------------------------------------------------- */

typedef struct rb_srv {
  uint64_t used;     /* projected used bytes */
  uint64_t cap;
  uint16_t zone;
  bool source;       /* may give: not dead, not draining */
  bool target;       /* may receive: usable */
} rb_srv;

typedef struct rb_ctx {
  const mst_servers *s;
  const mst_rebalance_opts *o;
  int64_t now_ms;
  uint64_t *rng;
  rb_srv *v;
  size_t n;
  double hi, lo;     /* give above hi, receive below lo */
  mst_move *moves;
  size_t nmoves, max_moves;
} rb_ctx;

static double rb_util(const rb_srv *x) { return (double)x->used / (double)x->cap; }

static bool rb_gives(const rb_ctx *x, uint16_t i) {
  return x->v[i].source && rb_util(&x->v[i]) > x->hi;
}

static bool rb_takes(const rb_ctx *x, uint16_t i, uint64_t len) {
  const rb_srv *t = &x->v[i];
  return t->target && rb_util(t) < x->lo && t->cap - t->used >= len + x->o->min_free_bytes;
}

/* Distinct zones of the servers in v[0..n). */
static unsigned zone_count(const rb_ctx *x, const uint16_t *v, size_t n) {
  unsigned d = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < i && x->v[v[j]].zone != x->v[v[i]].zone) j++;
    if (j == i) d++;
  }
  return d;
}

/* Per chunk: pick the fullest giving holder and the emptiest taking
 * non-holder that keeps the zone count; record the move. */
static int rb_visit(void *arg, const mst_chunk_info *ci) {
  rb_ctx *x = arg;
  if (ci->nrep < ci->goal || ci->queued || ci->length == 0) return 0;
  if (ci->leased && x->now_ms < ci->lease_expiry_ms) return 0;
  if (ci->flags & MST_CHUNK_F_GRANTING) return 0;
  int from = -1;
  for (unsigned i = 0; i < ci->nrep; i++) {
    uint16_t h = ci->replicas[i];
    if (h >= x->n || !rb_gives(x, h)) continue;
    if (from < 0 || rb_util(&x->v[h]) > rb_util(&x->v[from])) from = h;
  }
  if (from < 0) return 0;
  uint16_t set[MST_CHUNK_REPLICAS_MAX];
  memcpy(set, ci->replicas, ci->nrep * sizeof set[0]);
  unsigned zones_before = zone_count(x, set, ci->nrep);
  unsigned slot = 0;
  while (set[slot] != from) slot++;
  int to = -1;
  uint64_t ties = 0;
  for (size_t t = 0; t < x->n; t++) {
    if (!rb_takes(x, (uint16_t)t, ci->length) || in_list(ci->replicas, ci->nrep, (uint16_t)t))
      continue;
    set[slot] = (uint16_t)t;
    if (zone_count(x, set, ci->nrep) < zones_before) continue;
    if (to >= 0 && rb_util(&x->v[t]) > rb_util(&x->v[to])) continue;
    if (to < 0 || rb_util(&x->v[t]) < rb_util(&x->v[to])) ties = 0;
    if (rand_below(x->rng, ++ties) == 0) to = (int)t;
  }
  if (to < 0) return 0;
  x->moves[x->nmoves++] = (mst_move){ci->handle, (uint16_t)from, (uint16_t)to};
  x->v[from].used -= CMN_MIN(ci->length, x->v[from].used);
  x->v[to].used += ci->length;
  if (x->nmoves == x->max_moves) return 1;
  /* Stop early once nobody gives or nobody takes any more. */
  bool gives = false, takes = false;
  for (size_t i = 0; i < x->n && !(gives && takes); i++) {
    gives = gives || rb_gives(x, (uint16_t)i);
    takes = takes || (x->v[i].target && rb_util(&x->v[i]) < x->lo);
  }
  return gives && takes ? 0 : 1;
}

int mst_place_rebalance(const mst_servers *s, const mst_chunks *c, const mst_rebalance_opts *o,
                        int64_t now_ms, uint64_t *rng, mst_move *moves, size_t max_moves) {
  if (!s || !c || !o || !rng || (!moves && max_moves > 0) || !(o->threshold >= 0.0) ||
      !(o->threshold <= 1.0))
    return CAIRN_EINVAL;
  if (max_moves == 0) return 0;
  mst_servers_totals tot;
  mst_servers_get_totals(s, &tot);
  rb_ctx x = {.s = s, .o = o, .now_ms = now_ms, .rng = rng, .moves = moves,
              .max_moves = max_moves, .n = mst_servers_count(s),
              .hi = tot.avg_util + o->threshold, .lo = tot.avg_util - o->threshold};
  x.v = cmn_calloc(x.n ? x.n : 1, sizeof *x.v);
  bool any_src = false, any_dst = false;
  for (size_t i = 0; i < x.n; i++) {
    const mst_server *sv = mst_servers_get(s, (uint16_t)i);
    rb_srv *r = &x.v[i];
    r->cap = sv->capacity_bytes;
    r->used = sv->capacity_bytes - sv->free_bytes;
    r->zone = sv->zone_id;
    r->source = !sv->dead && !sv->draining && r->cap > 0;
    r->target = usable(sv, 0);
    any_src = any_src || rb_gives(&x, (uint16_t)i);
    any_dst = any_dst || (r->target && rb_util(r) < x.lo);
  }
  if (any_src && any_dst) mst_chunks_iterate(c, rb_visit, &x);
  free(x.v);
  return (int)x.nmoves;
}
