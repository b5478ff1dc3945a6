/*
 * chunks.c - the chunk table: records, replica sets, leases, reference
 * counts (see mst_chunks.h; the repair queue is in chunks_repair.c).
 *
 * Storage is a sparse table in the manner of sparsehash's sparsetable: the
 * handle space is cut into pages of 64 handles; a page holds a 64-bit mask
 * of the handles present and a packed array of just their entries, so a
 * present chunk costs its 32-byte entry and an absent one costs one bit.
 * The position of handle h in its page is the number of mask bits below
 * slot h % 64 (a popcount). Pages are found through a hash directory keyed
 * by h / 64 (16 bytes per page at most 3/4 full), so handles need not start
 * at 0 or stay dense for correctness, only for compactness.
 *
 * A page's array grows by doubling up to 64 entries and shrinks to fit
 * (plus 1/8) when it is a quarter empty; an empty page is freed. Handles are
 * allocated in increasing order and never reused, so only the newest pages
 * grow and older ones only shrink: the slack stays small. Inserting or
 * removing moves at most 63 entries (2 KiB), so every operation is O(1).
 *
 * Counters (missing, under-replicated) are kept exact by `account`, which
 * every change of a replica count or goal brackets: subtract the entry's
 * contribution before the change, add it back after.
 */
#include "chunks_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "mst_servers.h"

#include <stdlib.h>
#include <string.h>

int mst_chunks_new(mst_chunks **out) {
  mst_chunks *t = cmn_calloc(1, sizeof *t);
  t->spill_free = CK_NOSPILL;
  *out = t;
  return 0;
}

void mst_chunks_free(mst_chunks *t) {
  if (!t) return;
  for (size_t i = 0; i < t->dir.cap; i++)
    if (t->dir.slots[i].key != MST__U64MAP_EMPTY) free((void *)(uintptr_t)t->dir.slots[i].val);
  mst__u64map_free(&t->dir);
  mst__u64map_free(&t->leases);
  mst__u64map_free(&t->refs);
  free(t->spill);
  mst__rq_free(t);
  free(t);
}

/* ---- entries and pages ------------------------------------------------- */

static bool handle_ok(uint64_t h) { return h != 0 && h != UINT64_MAX; }

static ck_page *page_of(const mst_chunks *t, uint64_t handle) {
  uint64_t v;
  if (!mst__u64map_get(&t->dir, handle >> CK_PAGE_SHIFT, &v)) return NULL;
  return (ck_page *)(uintptr_t)v;
}

/* Position of slot `s` in page p's packed array. */
static unsigned slot_pos(const ck_page *p, unsigned s) {
  uint64_t below = s ? p->bits & (~0ULL >> (64 - s)) : 0;
  return (unsigned)__builtin_popcountll(below);
}

ck_ent *mst__ck_find(const mst_chunks *t, uint64_t handle) {
  ck_page *p = page_of(t, handle);
  unsigned s = (unsigned)(handle & (CK_PAGE_SLOTS - 1));
  if (!p || !(p->bits >> s & 1)) return NULL;
  return &p->e[slot_pos(p, s)];
}

static size_t page_size(uint32_t cap) { return sizeof(ck_page) + cap * sizeof(ck_ent); }

/* Reallocates page `p` (directory key `key`) to `cap` entries. */
static ck_page *page_resize(mst_chunks *t, uint64_t key, ck_page *p, uint32_t cap) {
  t->page_bytes -= page_size(p->cap);
  p = cmn_realloc(p, page_size(cap));
  p->cap = cap;
  t->page_bytes += page_size(cap);
  *mst__u64map_ref(&t->dir, key) = (uint64_t)(uintptr_t)p;
  return p;
}

/* Adds (+1) or removes (-1) entry e's share of the missing and
 * under-replicated counters. */
static void account(mst_chunks *t, const ck_ent *e, int sign) {
  if (ck_nrep(e) == 0) t->missing += (uint64_t)(int64_t)sign;
  if (ck_nrep(e) < ck_goal(e)) t->under += (uint64_t)(int64_t)sign;
}

int mst_chunks_insert(mst_chunks *t, uint64_t handle, uint64_t version, uint64_t file_id,
                      uint64_t index, uint64_t length, unsigned goal) {
  if (!handle_ok(handle) || index > UINT32_MAX || length > UINT32_MAX ||
      goal < MST_CHUNK_GOAL_MIN || goal > MST_CHUNK_GOAL_MAX)
    return CAIRN_EINVAL;
  uint64_t key = handle >> CK_PAGE_SHIFT;
  unsigned s = (unsigned)(handle & (CK_PAGE_SLOTS - 1));
  ck_page *p = page_of(t, handle);
  if (p && (p->bits >> s & 1)) return CAIRN_EEXIST;
  if (!p) {
    p = cmn_malloc(page_size(1));
    p->bits = 0;
    p->cap = 1;
    t->page_bytes += page_size(1);
    t->pages++;
    mst__u64map_put(&t->dir, key, (uint64_t)(uintptr_t)p);
  }
  unsigned n = (unsigned)__builtin_popcountll(p->bits);
  if (n == p->cap) p = page_resize(t, key, p, CMN_MIN(p->cap * 2, CK_PAGE_SLOTS));
  unsigned pos = slot_pos(p, s);
  memmove(&p->e[pos + 1], &p->e[pos], (n - pos) * sizeof(ck_ent));
  p->bits |= 1ULL << s;
  ck_ent *e = &p->e[pos];
  memset(e, 0, sizeof *e);
  e->version = version;
  e->file_id = file_id;
  e->index = (uint32_t)index;
  e->length = (uint32_t)length;
  e->gn = (uint8_t)(goal << 4);
  account(t, e, +1);
  t->count++;
  return 0;
}

/* Returns spill block `i` to the pool's free list. */
static void spill_put(mst_chunks *t, uint32_t i) {
  memcpy(t->spill[i], &t->spill_free, sizeof t->spill_free);
  t->spill_free = i;
}

static uint32_t spill_idx(const ck_ent *e) {
  uint32_t i;
  memcpy(&i, e->rep, sizeof i);
  return i;
}

int mst_chunks_remove(mst_chunks *t, uint64_t handle) {
  ck_page *p = page_of(t, handle);
  unsigned s = (unsigned)(handle & (CK_PAGE_SLOTS - 1));
  if (!p || !(p->bits >> s & 1)) return CAIRN_ENOENT;
  unsigned pos = slot_pos(p, s);
  ck_ent *e = &p->e[pos];
  mst__rq_forget(t, e);
  account(t, e, -1);
  if (e->flags & CK_F_SPILLED) {
    spill_put(t, spill_idx(e));
    t->spilled--;
  }
  if (e->flags & CK_F_LEASED) mst__u64map_del(&t->leases, handle, NULL);
  if (e->flags & CK_F_SHARED) {
    mst__u64map_del(&t->refs, handle, NULL);
    t->shared--;
  }
  unsigned n = (unsigned)__builtin_popcountll(p->bits);
  memmove(&p->e[pos], &p->e[pos + 1], (n - pos - 1) * sizeof(ck_ent));
  p->bits &= ~(1ULL << s);
  n--;
  uint64_t key = handle >> CK_PAGE_SHIFT;
  if (n == 0) {
    t->page_bytes -= page_size(p->cap);
    t->pages--;
    mst__u64map_del(&t->dir, key, NULL);
    free(p);
  } else if (n <= p->cap * 3 / 4) {
    /* Shrink to fit (plus 1/8 slack): pages far from the newest handles
     * only ever lose entries, so they should not keep room for more. */
    page_resize(t, key, p, n + n / 8);
  }
  t->count--;
  return 0;
}

uint64_t mst_chunks_count(const mst_chunks *t) { return t->count; }

/* ---- replica sets ------------------------------------------------------ */

static uint16_t *reps(const mst_chunks *t, ck_ent *e) {
  return (e->flags & CK_F_SPILLED) ? t->spill[spill_idx(e)] : e->rep;
}

static const uint16_t *creps(const mst_chunks *t, const ck_ent *e) {
  return (e->flags & CK_F_SPILLED) ? t->spill[spill_idx(e)] : e->rep;
}

/* A free spill block (the pool array may move: take pointers after). */
static uint32_t spill_get(mst_chunks *t) {
  if (t->spill_free != CK_NOSPILL) {
    uint32_t i = t->spill_free;
    memcpy(&t->spill_free, t->spill[i], sizeof t->spill_free);
    return i;
  }
  if (t->spill_n == t->spill_cap) {
    t->spill_cap = t->spill_cap ? t->spill_cap * 2 : 16;
    t->spill = cmn_realloc(t->spill, t->spill_cap * sizeof *t->spill);
  }
  return t->spill_n++;
}

static void fill_info(const mst_chunks *t, uint64_t handle, const ck_ent *e, mst_chunk_info *o) {
  memset(o, 0, sizeof *o);
  o->handle = handle;
  o->version = e->version;
  o->file_id = e->file_id;
  o->index = e->index;
  o->length = e->length;
  o->goal = (uint8_t)ck_goal(e);
  o->nrep = (uint8_t)ck_nrep(e);
  o->flags = e->flags & MST_CHUNK_F_USER_MASK;
  o->queued = (e->flags & CK_F_QUEUED) != 0;
  o->queued_trashed = o->queued && (e->flags & CK_F_QTRASHED);
  memcpy(o->replicas, creps(t, e), o->nrep * sizeof o->replicas[0]);
  o->primary = MST_SERVER_NONE;
  uint64_t v;
  if ((e->flags & CK_F_LEASED) && mst__u64map_get(&t->leases, handle, &v)) {
    o->leased = true;
    o->primary = (uint16_t)(v & 0xffff);
    o->lease_expiry_ms = (int64_t)(v >> 16);
  }
  o->refcount = 1;
  if ((e->flags & CK_F_SHARED) && mst__u64map_get(&t->refs, handle, &v)) o->refcount = (uint32_t)v;
}

int mst_chunks_get(const mst_chunks *t, uint64_t handle, mst_chunk_info *out) {
  const ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (out) fill_info(t, handle, e, out);
  return 0;
}

int mst_chunks_add_replica(mst_chunks *t, uint64_t handle, uint16_t server) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (server == MST_SERVER_NONE) return CAIRN_EINVAL;
  unsigned n = ck_nrep(e);
  const uint16_t *r = reps(t, e);
  for (unsigned i = 0; i < n; i++)
    if (r[i] == server) return 0;
  if (n == MST_CHUNK_REPLICAS_MAX) return CAIRN_ETOOBIG;
  account(t, e, -1);
  if (n == 3 && !(e->flags & CK_F_SPILLED)) {
    /* Fourth replica: move the set out to a spill block. */
    uint32_t b = spill_get(t);
    memcpy(t->spill[b], e->rep, sizeof e->rep);
    memcpy(e->rep, &b, sizeof b);
    e->flags |= CK_F_SPILLED;
    t->spilled++;
  }
  reps(t, e)[n] = server;
  e->gn = (uint8_t)((e->gn & 0xf0u) | (n + 1));
  account(t, e, +1);
  if (e->flags & CK_F_QUEUED) mst__rq_changed(t, handle, e, n, ck_goal(e));
  return 1;
}

/* Removes the replica at position `pos` of e's set (order kept), moving the
 * set back inline when it shrinks to 3. */
static void drop_replica(mst_chunks *t, uint64_t handle, ck_ent *e, unsigned pos) {
  unsigned n = ck_nrep(e);
  uint16_t *r = reps(t, e);
  account(t, e, -1);
  memmove(&r[pos], &r[pos + 1], (n - pos - 1) * sizeof *r);
  if ((e->flags & CK_F_SPILLED) && n - 1 <= 3) {
    uint32_t b = spill_idx(e);
    memcpy(e->rep, t->spill[b], sizeof e->rep);
    spill_put(t, b);
    e->flags &= (uint8_t)~CK_F_SPILLED;
    t->spilled--;
  }
  e->gn = (uint8_t)((e->gn & 0xf0u) | (n - 1));
  account(t, e, +1);
  if (e->flags & CK_F_QUEUED) mst__rq_changed(t, handle, e, n, ck_goal(e));
}

int mst_chunks_remove_replica(mst_chunks *t, uint64_t handle, uint16_t server) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  unsigned n = ck_nrep(e);
  const uint16_t *r = reps(t, e);
  for (unsigned i = 0; i < n; i++) {
    if (r[i] != server) continue;
    drop_replica(t, handle, e, i);
    return 1;
  }
  return 0;
}

int mst_chunks_replica_count(const mst_chunks *t, uint64_t handle) {
  const ck_ent *e = mst__ck_find(t, handle);
  return e ? (int)ck_nrep(e) : CAIRN_ENOENT;
}

/*
 * Walks every page (O(chunks), a few milliseconds per million) rather than
 * keeping a per-server chunk list, which would cost more memory per chunk
 * than the entry itself. The callback runs after each removal; it may
 * enqueue for repair, which touches only the entry's flags and the queue, so
 * the page being walked stays where it is.
 */
int mst_chunks_remove_server(mst_chunks *t, uint16_t server, mst_chunks_lost_fn cb, void *arg) {
  if (server == MST_SERVER_NONE) return CAIRN_EINVAL;
  int lost = 0;
  for (size_t i = 0; i < t->dir.cap; i++) {
    const mst__u64pair *d = &t->dir.slots[i];
    if (d->key == MST__U64MAP_EMPTY) continue;
    ck_page *p = (ck_page *)(uintptr_t)d->val;
    unsigned pos = 0;
    for (uint64_t bits = p->bits; bits; bits &= bits - 1, pos++) {
      ck_ent *e = &p->e[pos];
      unsigned n = ck_nrep(e);
      const uint16_t *r = reps(t, e);
      for (unsigned k = 0; k < n; k++) {
        if (r[k] != server) continue;
        uint64_t handle = d->key << CK_PAGE_SHIFT | (uint64_t)__builtin_ctzll(bits);
        drop_replica(t, handle, e, k);
        lost++;
        if (cb) cb(arg, handle, ck_nrep(e), ck_goal(e));
        break;
      }
    }
  }
  return lost;
}

/* ---- simple fields ----------------------------------------------------- */

int mst_chunks_set_version(mst_chunks *t, uint64_t handle, uint64_t version) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (version < e->version) return CAIRN_EINVAL;
  e->version = version;
  return 0;
}

int mst_chunks_set_length(mst_chunks *t, uint64_t handle, uint64_t length) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (length > UINT32_MAX) return CAIRN_EINVAL;
  e->length = (uint32_t)length;
  return 0;
}

int mst_chunks_set_owner(mst_chunks *t, uint64_t handle, uint64_t file_id, uint64_t index) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (index > UINT32_MAX) return CAIRN_EINVAL;
  e->file_id = file_id;
  e->index = (uint32_t)index;
  return 0;
}

int mst_chunks_set_goal(mst_chunks *t, uint64_t handle, unsigned goal) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (goal < MST_CHUNK_GOAL_MIN || goal > MST_CHUNK_GOAL_MAX) return CAIRN_EINVAL;
  unsigned old = ck_goal(e);
  account(t, e, -1);
  e->gn = (uint8_t)((goal << 4) | ck_nrep(e));
  account(t, e, +1);
  if (e->flags & CK_F_QUEUED) mst__rq_changed(t, handle, e, ck_nrep(e), old);
  return 0;
}

int mst_chunks_set_flags(mst_chunks *t, uint64_t handle, unsigned mask, bool on) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (mask & ~MST_CHUNK_F_USER_MASK) return CAIRN_EINVAL;
  if (on)
    e->flags |= (uint8_t)mask;
  else
    e->flags &= (uint8_t)~mask;
  return 0;
}

/* ---- leases ------------------------------------------------------------ */

int mst_chunks_set_lease(mst_chunks *t, uint64_t handle, uint16_t primary, int64_t expiry_ms) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (expiry_ms < 0 || expiry_ms >= MST_CHUNK_LEASE_MAX_MS) return CAIRN_EINVAL;
  const uint16_t *r = reps(t, e);
  unsigned n = ck_nrep(e), i = 0;
  while (i < n && r[i] != primary) i++;
  if (i == n) return CAIRN_EINVAL;
  mst__u64map_put(&t->leases, handle, (uint64_t)expiry_ms << 16 | primary);
  e->flags |= CK_F_LEASED;
  return 0;
}

int mst_chunks_clear_lease(mst_chunks *t, uint64_t handle) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (!(e->flags & CK_F_LEASED)) return 0;
  mst__u64map_del(&t->leases, handle, NULL);
  e->flags &= (uint8_t)~CK_F_LEASED;
  return 1;
}

int mst_chunks_lease_valid(const mst_chunks *t, uint64_t handle, int64_t now_ms,
                           uint16_t *primary) {
  const ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  uint64_t v;
  if (!(e->flags & CK_F_LEASED) || !mst__u64map_get(&t->leases, handle, &v)) return 0;
  if (now_ms >= (int64_t)(v >> 16)) return 0;
  if (primary) *primary = (uint16_t)(v & 0xffff);
  return 1;
}

int mst_chunks_write_busy(const mst_chunks *t, uint64_t handle, int64_t now_ms) {
  const ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (e->flags & MST_CHUNK_F_GRANTING) return 1;
  return mst_chunks_lease_valid(t, handle, now_ms, NULL);
}

/* Collects the expired handles first: deleting from the lease map while
 * walking it would shift entries past the walk. */
int mst_chunks_expire_leases(mst_chunks *t, int64_t now_ms) {
  size_t n = 0, cap = 0;
  uint64_t *dead = NULL;
  for (size_t i = 0; i < t->leases.cap; i++) {
    const mst__u64pair *p = &t->leases.slots[i];
    if (p->key == MST__U64MAP_EMPTY || (int64_t)(p->val >> 16) > now_ms) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      dead = cmn_realloc(dead, cap * sizeof *dead);
    }
    dead[n++] = p->key;
  }
  for (size_t i = 0; i < n; i++) mst_chunks_clear_lease(t, dead[i]);
  free(dead);
  return (int)n;
}

/* ---- reference counts -------------------------------------------------- */

int mst_chunks_ref(mst_chunks *t, uint64_t handle) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (!(e->flags & CK_F_SHARED)) {
    mst__u64map_put(&t->refs, handle, 2);
    e->flags |= CK_F_SHARED;
    t->shared++;
    return 2;
  }
  uint64_t *v = mst__u64map_ref(&t->refs, handle);
  if (*v >= INT32_MAX) return CAIRN_ETOOBIG;
  return (int)++*v;
}

int mst_chunks_unref(mst_chunks *t, uint64_t handle) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (!(e->flags & CK_F_SHARED)) return CAIRN_EINVAL;
  uint64_t *v = mst__u64map_ref(&t->refs, handle);
  if (--*v > 1) return (int)*v;
  mst__u64map_del(&t->refs, handle, NULL);
  e->flags &= (uint8_t)~CK_F_SHARED;
  t->shared--;
  return 1;
}

/* ---- walking and stats ------------------------------------------------- */

int mst_chunks_iterate(const mst_chunks *t, mst_chunks_visit_fn cb, void *arg) {
  mst_chunk_info info;
  for (size_t i = 0; i < t->dir.cap; i++) {
    const mst__u64pair *d = &t->dir.slots[i];
    if (d->key == MST__U64MAP_EMPTY) continue;
    const ck_page *p = (const ck_page *)(uintptr_t)d->val;
    unsigned pos = 0;
    for (uint64_t bits = p->bits; bits; bits &= bits - 1, pos++) {
      uint64_t handle = d->key << CK_PAGE_SHIFT | (uint64_t)__builtin_ctzll(bits);
      fill_info(t, handle, &p->e[pos], &info);
      int rc = cb(arg, &info);
      if (rc) return rc;
    }
  }
  return 0;
}

void mst_chunks_get_stats(const mst_chunks *t, mst_chunks_stats *out) {
  memset(out, 0, sizeof *out);
  out->chunks = t->count;
  out->missing = t->missing;
  out->under_replicated = t->under;
  out->queued = t->rq_queued - t->rq_missing;
  out->queued_missing = t->rq_missing;
  out->leases = t->leases.n;
  out->spilled = t->spilled;
  out->shared = t->shared;
  out->pages = t->pages;
  out->mem_bytes = sizeof *t + t->page_bytes + mst__u64map_bytes(&t->dir) +
                   mst__u64map_bytes(&t->leases) + mst__u64map_bytes(&t->refs) +
                   (uint64_t)t->spill_cap * sizeof *t->spill + mst__rq_bytes(t);
}
