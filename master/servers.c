/*
 * servers.c - the chunkserver table (see mst_servers.h).
 *
 * Layout: an array of pointers to server records, indexed by the dense
 * server index; records are allocated one by one and never freed before the
 * table, so a `const mst_server *` handed out stays valid. An open-addressing
 * index maps ids to indices (servers are never removed, so it needs no
 * deletion). Zone labels are interned into a small list so placement
 * compares 16-bit ids instead of strings.
 *
 * Each record carries its instruction queue: an array in queue order plus a
 * hash index of positions keyed by the deduplication key, so queueing stays
 * O(1) even with 10,000 instructions waiting for one server.
 */
#include "mst_servers.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_u64map.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS MST_SERVERS_CREATION_SLOTS

typedef struct iqueue {
  mst_instr *v;     /* queued instructions, oldest first */
  uint32_t n, cap;
  uint32_t *pos;    /* hash index: position + 1, 0 = free */
  uint32_t npos;    /* 0 or a power of two, at least 2n */
} iqueue;

typedef struct srv {
  mst_server pub;
  char *id, *data_addr, *rpc_addr; /* owned; pub points at them */
  uint32_t cr[NSLOTS];             /* creations per slot, ring by epoch */
  int64_t cr_epoch;                /* epoch (now / slot_ms) of the newest slot */
  iqueue q;
} srv;

struct mst_servers {
  srv **v;
  size_t n, cap;
  uint32_t *ids;   /* id index: server index + 1, 0 = free */
  size_t nids;     /* power of two, at least 2n */
  char **zones;
  size_t nzones, zcap;
  uint32_t max_pending;
  int64_t slot_ms;
};

const char *mst_server_state_name(mst_server_state st) {
  switch (st) {
  case MST_SERVER_ALIVE: return "alive";
  case MST_SERVER_DRAINING: return "draining";
  case MST_SERVER_DEAD: return "dead";
  }
  return "unknown";
}

/* ---- lifetime ---------------------------------------------------------- */

int mst_servers_new(const mst_servers_opts *o, mst_servers **out) {
  int64_t window = o && o->creation_window_ms ? o->creation_window_ms
                                              : MST_SERVERS_DEFAULT_CREATION_WINDOW_MS;
  if (window < NSLOTS) return CAIRN_EINVAL;
  mst_servers *t = cmn_calloc(1, sizeof *t);
  t->max_pending = o && o->max_pending ? o->max_pending : MST_SERVERS_DEFAULT_MAX_PENDING;
  t->slot_ms = window / NSLOTS;
  t->nids = 16;
  t->ids = cmn_calloc(t->nids, sizeof *t->ids);
  *out = t;
  return 0;
}

static void iqueue_free(iqueue *q) {
  free(q->v);
  free(q->pos);
  memset(q, 0, sizeof *q);
}

void mst_servers_free(mst_servers *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) {
    srv *s = t->v[i];
    free(s->id);
    free(s->data_addr);
    free(s->rpc_addr);
    iqueue_free(&s->q);
    free(s);
  }
  for (size_t i = 0; i < t->nzones; i++) free(t->zones[i]);
  free(t->zones);
  free(t->v);
  free(t->ids);
  free(t);
}

/* ---- id index and zones ------------------------------------------------ */

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return mst__mix64(h);
}

/* Slot of `id` in the id index, or of the free slot where it would go. */
static size_t id_slot(const mst_servers *t, const char *id) {
  size_t mask = t->nids - 1, i = (size_t)(str_hash(id) & mask);
  while (t->ids[i] && strcmp(t->v[t->ids[i] - 1]->id, id) != 0) i = (i + 1) & mask;
  return i;
}

static void id_index_add(mst_servers *t, uint16_t idx) {
  if ((t->n + 1) * 2 > t->nids) {
    uint32_t *old = t->ids;
    size_t old_n = t->nids;
    t->nids *= 2;
    t->ids = cmn_calloc(t->nids, sizeof *t->ids);
    for (size_t i = 0; i < old_n; i++)
      if (old[i]) t->ids[id_slot(t, t->v[old[i] - 1]->id)] = old[i];
    free(old);
  }
  t->ids[id_slot(t, t->v[idx]->id)] = (uint32_t)idx + 1;
}

int mst_servers_find(const mst_servers *t, const char *id) {
  if (!id) return CAIRN_EINVAL;
  uint32_t v = t->ids[id_slot(t, id)];
  return v ? (int)(v - 1) : CAIRN_ENOENT;
}

/* Id of zone label `z`, interning it when new; CAIRN_ENOSPC when the list
 * is full. Labels are few (racks, rooms), so a linear search is enough. */
static int zone_intern(mst_servers *t, const char *z) {
  for (size_t i = 0; i < t->nzones; i++)
    if (strcmp(t->zones[i], z) == 0) return (int)i;
  if (t->nzones >= MST_SERVER_NONE) return CAIRN_ENOSPC;
  if (t->nzones == t->zcap) {
    t->zcap = t->zcap ? t->zcap * 2 : 8;
    t->zones = cmn_realloc(t->zones, t->zcap * sizeof *t->zones);
  }
  t->zones[t->nzones] = cmn_strdup(z);
  return (int)t->nzones++;
}

/* ---- registration ------------------------------------------------------ */

/* True when s is 1..max bytes (min 0 when allow_empty) of printable ASCII;
 * spaces allowed only when `spaces`. */
static bool text_ok(const char *s, size_t max, bool allow_empty, bool spaces) {
  if (!s) return allow_empty;
  size_t len = strnlen(s, max + 1);
  if (len > max || (len == 0 && !allow_empty)) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c > 0x7e || c < 0x20 || (c == ' ' && !spaces)) return false;
  }
  return true;
}

static void set_str(char **own, const char **pub, const char *v) {
  char *nv = cmn_strdup(v);
  free(*own);
  *own = nv;
  *pub = nv;
}

/*
 * New servers get the next index; a known id keeps its entry. Everything is
 * validated (and the zone interned) before the first change, so a refused
 * registration leaves the table as it was.
 */
int mst_servers_register(mst_servers *t, const mst_server_reg *r, int64_t now_ms) {
  if (!r || now_ms < 0 || !text_ok(r->id, MST_SERVER_ID_MAX, false, false) ||
      !text_ok(r->data_addr, MST_SERVER_ADDR_MAX, false, false) ||
      !text_ok(r->rpc_addr, MST_SERVER_ADDR_MAX, false, false) ||
      !text_ok(r->zone, MST_SERVER_ZONE_MAX, true, true) || r->free_bytes > r->capacity_bytes)
    return CAIRN_EINVAL;
  const char *zone = r->zone ? r->zone : "";
  int found = mst_servers_find(t, r->id);
  if (found < 0 && t->n >= MST_SERVERS_MAX) return CAIRN_ENOSPC;
  int zid = zone_intern(t, zone);
  if (zid < 0) return zid;

  srv *s;
  bool fresh = found < 0;
  if (fresh) {
    if (t->n == t->cap) {
      t->cap = t->cap ? t->cap * 2 : 16;
      t->v = cmn_realloc(t->v, t->cap * sizeof *t->v);
    }
    s = cmn_calloc(1, sizeof *s);
    s->pub.idx = (uint16_t)t->n;
    t->v[t->n] = s;
    set_str(&s->id, &s->pub.id, r->id);
    id_index_add(t, s->pub.idx);
    t->n++;
  } else {
    s = t->v[found];
  }
  bool was_dead = s->pub.dead;
  set_str(&s->data_addr, &s->pub.data_addr, r->data_addr);
  set_str(&s->rpc_addr, &s->pub.rpc_addr, r->rpc_addr);
  s->pub.zone = t->zones[zid];
  s->pub.zone_id = (uint16_t)zid;
  s->pub.capacity_bytes = r->capacity_bytes;
  s->pub.free_bytes = r->free_bytes;
  s->pub.dead = false;
  s->pub.read_only = false;
  s->pub.clones_as_source = s->pub.clones_as_target = 0;
  s->pub.registered_ms = now_ms;
  s->pub.last_heartbeat_ms = now_ms;
  CMN_INFO("servers", "%s id=%s idx=%u data=%s rpc=%s zone=\"%s\" capacity=%" PRIu64
                      " free=%" PRIu64,
           fresh ? "registered" : was_dead ? "revived" : "re-registered", s->pub.id,
           (unsigned)s->pub.idx, s->pub.data_addr, s->pub.rpc_addr, s->pub.zone,
           r->capacity_bytes, r->free_bytes);
  return s->pub.idx;
}

const mst_server *mst_servers_get(const mst_servers *t, uint16_t idx) {
  return idx < t->n ? &t->v[idx]->pub : NULL;
}

size_t mst_servers_count(const mst_servers *t) { return t->n; }

/* ---- heartbeats and liveness ------------------------------------------ */

int mst_servers_heartbeat(mst_servers *t, uint16_t idx, const mst_server_hb *hb, int64_t now_ms) {
  if (idx >= t->n) return CAIRN_ENOENT;
  if (!hb || now_ms < 0 || hb->free_bytes > hb->capacity_bytes) return CAIRN_EINVAL;
  srv *s = t->v[idx];
  if (s->pub.dead) return CAIRN_ESTALE;
  s->pub.capacity_bytes = hb->capacity_bytes;
  s->pub.free_bytes = hb->free_bytes;
  s->pub.chunk_count = hb->chunk_count;
  s->pub.load = hb->load;
  s->pub.read_only = hb->read_only;
  if (now_ms > s->pub.last_heartbeat_ms) s->pub.last_heartbeat_ms = now_ms;
  return 0;
}

static void make_dead(srv *s, const char *why) {
  s->pub.dead = true;
  iqueue_free(&s->q);
  s->pub.pending = 0;
  CMN_WARN("servers", "server dead id=%s idx=%u reason=%s last_heartbeat_ms=%" PRId64, s->pub.id,
           (unsigned)s->pub.idx, why, s->pub.last_heartbeat_ms);
}

int mst_servers_tick(mst_servers *t, int64_t now_ms, int64_t dead_after_ms, uint16_t *died,
                     size_t cap) {
  if (now_ms < 0 || dead_after_ms <= 0 || (!died && cap > 0)) return CAIRN_EINVAL;
  size_t k = 0;
  for (size_t i = 0; i < t->n && k < cap; i++) {
    srv *s = t->v[i];
    if (s->pub.dead || now_ms - s->pub.last_heartbeat_ms <= dead_after_ms) continue;
    make_dead(s, "silent");
    died[k++] = s->pub.idx;
  }
  return (int)k;
}

int mst_servers_mark_dead(mst_servers *t, uint16_t idx) {
  if (idx >= t->n) return CAIRN_ENOENT;
  if (t->v[idx]->pub.dead) return 0;
  make_dead(t->v[idx], "marked");
  return 1;
}

int mst_servers_set_drain(mst_servers *t, uint16_t idx, bool draining) {
  if (idx >= t->n) return CAIRN_ENOENT;
  srv *s = t->v[idx];
  if (s->pub.draining != draining)
    CMN_INFO("servers", "%s id=%s idx=%u", draining ? "drain started" : "drain cancelled",
             s->pub.id, (unsigned)idx);
  s->pub.draining = draining;
  return 0;
}

/* ---- recent creations -------------------------------------------------- */

int mst_servers_note_creation(mst_servers *t, uint16_t idx, int64_t now_ms) {
  if (idx >= t->n) return CAIRN_ENOENT;
  if (now_ms < 0) return CAIRN_EINVAL;
  srv *s = t->v[idx];
  int64_t epoch = now_ms / t->slot_ms;
  if (epoch > s->cr_epoch) {
    /* Clear the slots of the epochs skipped since the newest one (at most
     * the whole ring), then make `epoch` the newest. */
    int64_t first = epoch - s->cr_epoch > NSLOTS ? epoch - NSLOTS + 1 : s->cr_epoch + 1;
    for (int64_t e = first; e <= epoch; e++) s->cr[e % NSLOTS] = 0;
    s->cr_epoch = epoch;
  }
  /* A `now` older than the newest slot (a caller's clock hiccup) counts in
   * the newest slot. */
  uint32_t *c = &s->cr[s->cr_epoch % NSLOTS];
  if (*c < UINT32_MAX) (*c)++;
  return 0;
}

uint32_t mst_servers_recent_creations(const mst_servers *t, uint16_t idx, int64_t now_ms) {
  if (idx >= t->n) return 0;
  const srv *s = t->v[idx];
  int64_t epoch = now_ms < 0 ? 0 : now_ms / t->slot_ms;
  if (epoch < s->cr_epoch) epoch = s->cr_epoch;
  /* Slots hold epochs (cr_epoch - NSLOTS, cr_epoch]; count those still in
   * (epoch - NSLOTS, epoch]. */
  uint64_t sum = 0;
  for (int64_t e = epoch - NSLOTS + 1; e <= s->cr_epoch; e++)
    if (e >= 0 && e > s->cr_epoch - NSLOTS) sum += s->cr[e % NSLOTS];
  return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

int mst_servers_clone_begin(mst_servers *t, uint16_t source, uint16_t target) {
  if (source >= t->n || target >= t->n) return CAIRN_ENOENT;
  if (source == target) return CAIRN_EINVAL;
  t->v[source]->pub.clones_as_source++;
  t->v[target]->pub.clones_as_target++;
  return 0;
}

int mst_servers_clone_end(mst_servers *t, uint16_t source, uint16_t target) {
  if (source >= t->n || target >= t->n) return CAIRN_ENOENT;
  if (source == target) return CAIRN_EINVAL;
  if (t->v[source]->pub.clones_as_source) t->v[source]->pub.clones_as_source--;
  if (t->v[target]->pub.clones_as_target) t->v[target]->pub.clones_as_target--;
  return 0;
}

void mst_servers_get_totals(const mst_servers *t, mst_servers_totals *out) {
  memset(out, 0, sizeof *out);
  out->servers = (uint32_t)t->n;
  for (size_t i = 0; i < t->n; i++) {
    const mst_server *s = &t->v[i]->pub;
    out->by_state[mst_server_state_of(s)]++;
    out->pending += s->pending;
    if (s->dead) continue;
    if (s->read_only) out->read_only++;
    out->capacity_bytes += s->capacity_bytes;
    out->free_bytes += s->free_bytes;
    out->chunk_count += s->chunk_count;
    out->clones_in_flight += s->clones_as_target;
  }
  if (out->capacity_bytes)
    out->avg_util = (double)(out->capacity_bytes - out->free_bytes) / (double)out->capacity_bytes;
}

/* ---- pending instructions --------------------------------------------- */

/* Deduplication key: DELETEs are equal only with equal versions; the other
 * kinds are one per handle. */
static uint64_t instr_hash(const mst_instr *in) {
  uint64_t v = in->kind == MST_INSTR_DELETE ? in->version : 0;
  return mst__mix64(in->handle ^ mst__mix64(v + (uint64_t)in->kind));
}

static bool instr_same(const mst_instr *a, const mst_instr *b) {
  return a->kind == b->kind && a->handle == b->handle &&
         (a->kind != MST_INSTR_DELETE || a->version == b->version);
}

/* Slot of the entry equal to `in`, or of the free slot where it would go. */
static size_t iq_slot(const iqueue *q, const mst_instr *in) {
  size_t mask = q->npos - 1, i = (size_t)(instr_hash(in) & mask);
  while (q->pos[i] && !instr_same(&q->v[q->pos[i] - 1], in)) i = (i + 1) & mask;
  return i;
}

/* Rebuilds the hash index for the current queue, sized for `want` entries. */
static void iq_reindex(iqueue *q, size_t want) {
  size_t np = 16;
  while (np < want * 2) np *= 2;
  if (np != q->npos) {
    free(q->pos);
    q->pos = cmn_malloc(np * sizeof *q->pos);
    q->npos = (uint32_t)np;
  }
  memset(q->pos, 0, np * sizeof *q->pos);
  for (uint32_t i = 0; i < q->n; i++) q->pos[iq_slot(q, &q->v[i])] = i + 1;
}

/* Folds a duplicate into the queued entry `old` by the rules in the header. */
static void merge(mst_instr *old, const mst_instr *in) {
  switch (in->kind) {
  case MST_INSTR_DELETE: break;
  case MST_INSTR_SET_VERSION:
    if (in->version > old->version) old->version = in->version;
    break;
  case MST_INSTR_LEASE:
    if (in->lease_expiry_ms > old->lease_expiry_ms) old->lease_expiry_ms = in->lease_expiry_ms;
    if (in->version > old->version) old->version = in->version;
    break;
  case MST_INSTR_CLONE:
    old->source = in->source;
    old->version = in->version;
    break;
  }
}

int mst_servers_queue(mst_servers *t, uint16_t idx, const mst_instr *in) {
  if (idx >= t->n) return CAIRN_ENOENT;
  if (!in || in->handle == 0 || in->kind < MST_INSTR_DELETE || in->kind > MST_INSTR_LEASE)
    return CAIRN_EINVAL;
  if (in->kind == MST_INSTR_CLONE && (in->source >= t->n || in->source == idx))
    return CAIRN_EINVAL;
  srv *s = t->v[idx];
  if (s->pub.dead) return CAIRN_ESTALE;
  iqueue *q = &s->q;
  if (q->npos) {
    size_t i = iq_slot(q, in);
    if (q->pos[i]) {
      merge(&q->v[q->pos[i] - 1], in);
      return 0;
    }
  }
  if (q->n >= t->max_pending) {
    s->pub.dropped++;
    return CAIRN_EBUSY;
  }
  if (q->n == q->cap) {
    q->cap = q->cap ? q->cap * 2 : 16;
    if (q->cap > t->max_pending) q->cap = t->max_pending;
    q->v = cmn_realloc(q->v, q->cap * sizeof *q->v);
  }
  q->v[q->n] = *in;
  if (in->kind != MST_INSTR_CLONE) q->v[q->n].source = MST_SERVER_NONE;
  q->n++;
  if ((size_t)q->n * 2 > q->npos)
    iq_reindex(q, q->n);
  else
    q->pos[iq_slot(q, in)] = q->n;
  s->pub.pending = q->n;
  return 1;
}

int mst_servers_take(mst_servers *t, uint16_t idx, mst_instr *out, size_t cap) {
  if (idx >= t->n) return CAIRN_ENOENT;
  srv *s = t->v[idx];
  iqueue *q = &s->q;
  size_t k = cap < q->n ? cap : q->n;
  if (k == 0) return 0;
  memcpy(out, q->v, k * sizeof *out);
  if (k == q->n) {
    iqueue_free(q); /* an idle server holds no queue memory */
  } else {
    memmove(q->v, q->v + k, (q->n - k) * sizeof *q->v);
    q->n -= (uint32_t)k;
    iq_reindex(q, q->n);
  }
  s->pub.pending = q->n;
  return (int)k;
}
